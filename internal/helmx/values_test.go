package helmx

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/internal/fault"
)

func TestMergeValues(t *testing.T) {
	base := []byte(`
coder:
  replicaCount: 1
  env:
    - name: A
      value: base
  service:
    type: LoadBalancer
    annotations:
      a: base
  affinity:
    podAntiAffinity: {}
`)
	computed := map[string]any{"coder": map[string]any{
		"replicaCount": 2,
		"service":      map[string]any{"annotations": map[string]any{"b": "computed"}},
		"tolerations":  []corev1.Toleration{{Key: "coder/node-type", Operator: corev1.TolerationOpEqual, Value: "coderd", Effect: corev1.TaintEffectNoSchedule}},
	}}
	tests := []struct {
		name     string
		override string // file contents; "" means no file
		want     map[string]any
	}{
		{
			name: "defaults then computed",
			want: map[string]any{"coder": map[string]any{
				"replicaCount": float64(2),
				"env":          []any{map[string]any{"name": "A", "value": "base"}},
				"service":      map[string]any{"type": "LoadBalancer", "annotations": map[string]any{"a": "base", "b": "computed"}},
				"affinity":     map[string]any{"podAntiAffinity": map[string]any{}},
				"tolerations":  []any{map[string]any{"key": "coder/node-type", "operator": "Equal", "value": "coderd", "effect": "NoSchedule"}},
			}},
		},
		{
			name:     "override file wins, lists replace, null kept for helm to drop the chart default",
			override: "coder:\n  replicaCount: 3\n  env: [{name: B, value: user}]\n  service: {annotations: {a: user}}\n  affinity: null\n",
			want: map[string]any{"coder": map[string]any{
				"replicaCount": float64(3),
				"env":          []any{map[string]any{"name": "B", "value": "user"}},
				"service":      map[string]any{"type": "LoadBalancer", "annotations": map[string]any{"a": "user", "b": "computed"}},
				"affinity":     nil,
				"tolerations":  []any{map[string]any{"key": "coder/node-type", "operator": "Equal", "value": "coderd", "effect": "NoSchedule"}},
			}},
		},
		{
			name:     "empty override file changes nothing",
			override: "# nothing here\n",
			want: map[string]any{"coder": map[string]any{
				"replicaCount": float64(2),
				"env":          []any{map[string]any{"name": "A", "value": "base"}},
				"service":      map[string]any{"type": "LoadBalancer", "annotations": map[string]any{"a": "base", "b": "computed"}},
				"affinity":     map[string]any{"podAntiAffinity": map[string]any{}},
				"tolerations":  []any{map[string]any{"key": "coder/node-type", "operator": "Equal", "value": "coderd", "effect": "NoSchedule"}},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.override != "" {
				file = writeTemp(t, "values.yaml", tc.override)
			}
			got, _, err := MergeValues(base, computed, file, Owned{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MergeValues =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}

	t.Run("inputs are not modified", func(t *testing.T) {
		before := computed["coder"].(map[string]any)["service"].(map[string]any)["annotations"].(map[string]any)
		if _, _, err := MergeValues(base, computed, writeTemp(t, "v.yaml", "coder: {service: {annotations: {c: x}}}"), Owned{}); err != nil {
			t.Fatal(err)
		}
		if len(before) != 1 {
			t.Errorf("computed annotations were modified: %v", before)
		}
	})
}

func TestMergeValuesBadInput(t *testing.T) {
	tests := []struct {
		name     string
		base     string
		override string // contents; "-" means a missing file
		wantIn   string // error must be bad input naming the file
	}{
		{name: "override is not YAML", override: "coder: [unclosed", wantIn: "not a YAML mapping"},
		{name: "override is a list", override: "- a\n- b\n", wantIn: "not a YAML mapping"},
		{name: "override is plain text", override: "just some words\n", wantIn: "not a YAML mapping"},
		{name: "override missing", override: "-", wantIn: "cannot read values file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "missing.yaml")
			if tc.override != "-" {
				file = writeTemp(t, "override.yaml", tc.override)
			}
			_, _, err := MergeValues([]byte("a: 1\n"), nil, file, Owned{})
			if !fault.IsInput(err) {
				t.Fatalf("err = %v, want bad input", err)
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("err = %q, want it to name %s and say %q", err, file, tc.wantIn)
			}
		})
	}

	t.Run("broken embedded defaults are a bug, not bad input", func(t *testing.T) {
		_, _, err := MergeValues([]byte("a: [1"), nil, "", Owned{})
		if err == nil || fault.IsInput(err) {
			t.Errorf("err = %v, want a plain error", err)
		}
	})
}

func TestChangedKeys(t *testing.T) {
	tests := []struct {
		name     string
		old, new map[string]any
		want     []string
	}{
		{"equal", map[string]any{"a": map[string]any{"b": 1.0}}, map[string]any{"a": map[string]any{"b": 1.0}}, nil},
		{"scalar changed", map[string]any{"coder": map[string]any{"replicaCount": 1.0}}, map[string]any{"coder": map[string]any{"replicaCount": 2.0}}, []string{"coder.replicaCount"}},
		{"key added and removed", map[string]any{"x": 1.0}, map[string]any{"y": 1.0}, []string{"x", "y"}},
		{"list changed as a whole", map[string]any{"env": []any{"a"}}, map[string]any{"env": []any{"a", "b"}}, []string{"env"}},
		{"map replaced by scalar", map[string]any{"a": map[string]any{"b": 1.0}}, map[string]any{"a": "x"}, []string{"a"}},
		{"nested", map[string]any{"coder": map[string]any{"service": map[string]any{"type": "LoadBalancer", "x": 1.0}}},
			map[string]any{"coder": map[string]any{"service": map[string]any{"type": "ClusterIP", "x": 1.0}}}, []string{"coder.service.type"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := changedKeys(tc.old, tc.new); !slices.Equal(got, tc.want) {
				t.Errorf("changedKeys = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	values := map[string]any{"coder": map[string]any{"replicaCount": 2.0}}
	want := wanted{chart: &chart.Chart{Metadata: &chart.Metadata{Name: "coder", Version: "2.36.1"}}, values: values}
	rev := func(status release.Status, version string, config map[string]any) *release.Release {
		return &release.Release{
			Version: 3,
			Info:    &release.Info{Status: status},
			Chart:   &chart.Chart{Metadata: &chart.Metadata{Name: "coder", Version: version}},
			Config:  config,
		}
	}
	tests := []struct {
		name       string
		last       *release.Release
		wantAction string
		wantReason string
		wantKeys   []string
	}{
		{"absent", nil, ActionInstall, "not installed", nil},
		{"uninstalled with history", rev(release.StatusUninstalled, "2.36.1", values), ActionInstall, "uninstalled", nil},
		{"same", rev(release.StatusDeployed, "2.36.1", values), ActionNone, "revision 3 with the same values", nil},
		{"new version", rev(release.StatusDeployed, "2.35.0", values), ActionUpgrade, "2.35.0 -> 2.36.1", nil},
		{"new values", rev(release.StatusDeployed, "2.36.1", map[string]any{"coder": map[string]any{"replicaCount": 1}}),
			ActionUpgrade, "values changed: coder.replicaCount", []string{"coder.replicaCount"}},
		{"failed", rev(release.StatusFailed, "2.36.1", values), ActionUpgrade, "revision 3 is failed; rolling forward", nil},
		{"pending", rev(release.StatusPendingUpgrade, "2.36.1", values), ActionUpgrade, "interrupted run", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.last, want)
			if got.Action != tc.wantAction || !strings.Contains(got.Reason, tc.wantReason) || !slices.Equal(got.ChangedKeys, tc.wantKeys) {
				t.Errorf("decide = %+v, want %s with reason containing %q and keys %v", got, tc.wantAction, tc.wantReason, tc.wantKeys)
			}
		})
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
