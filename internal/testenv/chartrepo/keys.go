package chartrepo

import (
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
)

// RequireChartKeys fails t unless every path is a key of the default values
// of the newest version of chart the repository serves, or runs into one of
// its empty mappings (nodeSelector: {}, annotations: {}) whose keys are the
// user's to choose. Stages use it so that a typo in the keys they guard
// cannot make a guard that guards nothing.
func (r *Repo) RequireChartKeys(t testing.TB, chart string, paths [][]string) {
	t.Helper()
	versions := r.Versions(chart)
	if len(versions) == 0 {
		t.Fatalf("the chart repository has no chart %s", chart)
	}
	ch, err := loader.Load(r.ChartArchive(chart, versions[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if !valuesHave(ch.Values, p) {
			t.Errorf("chart %s has no key %q", chart, p)
		}
	}
}

func valuesHave(values map[string]any, path []string) bool {
	node := values
	for i, k := range path {
		if len(node) == 0 {
			return true
		}
		v, ok := node[k]
		if !ok {
			return false
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			return i == len(path)-1
		}
		node = m
	}
	return true
}
