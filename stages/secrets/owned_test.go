package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
)

func writeValuesFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestValuesFileRefused: the validator refuses a CSI values file that
// undoes what the coder stage relies on, naming the file, key and path.
func TestValuesFileRefused(t *testing.T) {
	cases := []struct {
		name, key, values, path, msg string
	}{
		{"secret sync off", KeyDriverValuesFile, "syncSecret:\n  enabled: false\n", "syncSecret.enabled", "set to false; coderctl keeps it true"},
		{"no Linux DaemonSet", KeyDriverValuesFile, "linux: {enabled: false}", "linux.enabled", "set to false; coderctl leaves it unset"},
		{"driver tolerations not a list", KeyDriverValuesFile, "linux: {tolerations: {key: a}}", "linux.tolerations", "not a list"},
		{"linux mapping dropped", KeyDriverValuesFile, "linux: null", "linux", "is null, not a mapping"},
		{"provider installs a second driver", KeyProviderValuesFile, "secrets-store-csi-driver: {install: true}", "secrets-store-csi-driver.install",
			"set to true; coderctl keeps it false"},
		{"provider tolerations null", KeyProviderValuesFile, "tolerations: null", "tolerations", "is null, not a list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeValuesFile(t, tc.values)
			s := testStage(t, map[string]string{"CODER_DOMAIN": "coder.example.com", tc.key: file}, "")
			err := s.validate(context.Background())
			var ie *fault.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("validate = %v, want bad input", err)
			}
			if ie.Source != file || ie.Field != tc.key+" "+tc.path || !strings.Contains(ie.Msg, tc.msg) {
				t.Errorf("error %q, want it to name %s, %s %s and say %q", err, file, tc.key, tc.path, tc.msg)
			}
		})
	}
}

// TestValuesFileTolerationsAdd: the file's tolerations add to coderctl's,
// so the DaemonSets still reach every node.
func TestValuesFileTolerationsAdd(t *testing.T) {
	file := writeValuesFile(t, "linux:\n  enabled: true\n  tolerations:\n    - {key: gpu, operator: Exists, effect: NoExecute}\nsyncSecret: {enabled: true}\n")
	s := testStage(t, map[string]string{"CODER_DOMAIN": "coder.example.com", KeyDriverValuesFile: file}, "")
	if err := s.validate(context.Background()); err != nil {
		t.Fatalf("validate = %v, want the file accepted", err)
	}
	rel, err := s.release(driverSpec())
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"operator": "Exists"},
		map[string]any{"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
	}
	if got := rel.Values["linux"].(map[string]any)["tolerations"]; !reflect.DeepEqual(got, want) {
		t.Errorf("linux.tolerations %v, want %v", got, want)
	}
}

// TestOwnedPathsAreChartKeys: a typo in a spec's owned keys would guard
// nothing.
func TestOwnedPathsAreChartKeys(t *testing.T) {
	repo := chartrepo.Require(t)
	for _, spec := range []releaseSpec{driverSpec(), providerSpec()} {
		versions := repo.Versions(spec.chart)
		if len(versions) == 0 {
			t.Fatalf("the chart repository has no chart %s", spec.chart)
		}
		ch, err := loader.Load(repo.ChartArchive(spec.chart, versions[0]))
		if err != nil {
			t.Fatal(err)
		}
		values := ch.Values
		if spec.owned.Key != spec.valuesKey {
			t.Errorf("%s: owned.Key %s, want %s", spec.chart, spec.owned.Key, spec.valuesKey)
		}
		for _, p := range spec.owned.Paths() {
			if _, ok := lookupPath(values, p); !ok {
				t.Errorf("chart %s has no key %s", spec.chart, helmx.PathString(p))
			}
		}
	}
}

func lookupPath(values map[string]any, path []string) (any, bool) {
	var node any = values
	for _, k := range path {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[k]; !ok {
			return nil, false
		}
	}
	return node, true
}
