package provisioners

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// valuesStage is a stage without cluster access whose
// PROVISIONER_VALUES_FILE holds content.
func valuesStage(t *testing.T, content string, inputs map[string]string) (*stage, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"CODER_DOMAIN": "coder.example.com", KeyValuesFile: file}
	for k, v := range inputs {
		all[k] = v
	}
	return &stage{d: stagetest.New(t, all).Deps}, file
}

func TestValuesFileRefused(t *testing.T) {
	cases := []struct {
		name, values string
		inputs       map[string]string
		path, msg    string
	}{
		{"another key secret", "provisionerDaemon: {keySecretName: mine}", nil, "provisionerDaemon.keySecretName", `set to "mine"`},
		{"another key field", "provisionerDaemon: {keySecretKey: token}", nil, "provisionerDaemon.keySecretKey", `set to "token"`},
		{"a PSK beside the key", "provisionerDaemon: {pskSecretName: coder-provisioner-psk}", nil, "provisionerDaemon.pskSecretName", "leaves it unset"},
		{"a PSK over coderctl's empty one (chart 2.17.0)", "provisionerDaemon: {pskSecretName: psk}",
			map[string]string{"PROVISIONER_CHART_VERSION": "2.17.0"}, "provisionerDaemon.pskSecretName", `coderctl keeps it ""`},
		{"tags beside the key", "provisionerDaemon: {tags: {scope: organization}}", nil, "provisionerDaemon.tags", "leaves it unset"},
		{"tags in the env", "coder: {env: [{name: CODER_PROVISIONERD_TAGS, value: \"a=b\"}]}", nil, "coder.env", "sets CODER_PROVISIONERD_TAGS"},
		{"a key in the env", "coder: {env: [{name: CODER_PROVISIONER_DAEMON_KEY, value: k}]}", nil, "coder.env", "sets CODER_PROVISIONER_DAEMON_KEY"},
		{"placement moved", "coder: {nodeSelector: {coder/node-type: coderd}}", nil, `coder.nodeSelector["coder/node-type"]`, `set to "coderd"`},
		{"provisionerDaemon dropped", "provisionerDaemon: null", nil, "provisionerDaemon", "is null, not a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, file := valuesStage(t, tc.values, tc.inputs)
			_, _, err := s.release("")
			var ie *fault.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("release = %v, want bad input", err)
			}
			if ie.Source != file || ie.Field != KeyValuesFile+" "+tc.path || !strings.Contains(ie.Msg, tc.msg) {
				t.Errorf("error %q, want it to name %s, %s %s and say %q", err, file, KeyValuesFile, tc.path, tc.msg)
			}
		})
	}
}

func TestValuesFileMerged(t *testing.T) {
	const note = "PROVISIONER_VALUES_FILE sets coder.env CODER_URL: coderctl's value is kept"
	s, _ := valuesStage(t, `coder:
  env:
    - {name: CODER_URL, value: "https://coder.example.com"}
    - {name: CODER_VERBOSE, value: "true"}
  tolerations: [{key: spot, operator: Exists}]
provisionerDaemon:
  pskSecretName: ""
  tags: {}
`, map[string]string{"PROVISIONER_CHART_VERSION": "2.17.0"})
	rel, notes, err := s.release("key-id")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(notes, []string{note}) {
		t.Errorf("notes %q, want %q", notes, note)
	}
	c := rel.Values["coder"].(map[string]any)
	env := c["env"].([]any)
	want := []any{
		map[string]any{"name": "CODER_URL", "value": names.CoderInClusterURL},
		map[string]any{"name": "CODER_VERBOSE", "value": "true"},
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env %v, want coderctl's CODER_URL and the file's CODER_VERBOSE", env)
	}
	if n := len(c["tolerations"].([]any)); n != 2 {
		t.Errorf("%d tolerations, want coderctl's and the file's", n)
	}

	// The plan says it before anything changes, even without the cluster.
	acts, err := s.planRelease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(acts, engine.Action{Kind: engine.Nothing, Resource: KeyValuesFile, Reason: "warning: " + note}) {
		t.Errorf("plan %+v does not carry the note", acts)
	}
}

// TestOwnedPathsAreChartKeys: a typo in Owned would guard nothing.
func TestOwnedPathsAreChartKeys(t *testing.T) {
	chartrepo.Require(t).RequireChartKeys(t, ChartName, Owned().Paths())
}
