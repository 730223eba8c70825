package chartrepo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// TestOnlyTheListedChartsAreStandIns fails when the repository serves a
// stand-in for a chart whose module the proxy serves (only StandIns may be):
// every other package must carry its module's templates byte for byte.
func TestOnlyTheListedChartsAreStandIns(t *testing.T) {
	r := Require(t)
	want := []string{}
	for _, c := range realCharts() {
		want = append(want, c.name)
	}
	want = append(want, StandIns...)
	slices.Sort(want)
	if got := r.Charts(); !slices.Equal(got, want) {
		t.Fatalf("Charts() = %v, want %v", got, want)
	}
	index := fetchIndex(t, r.URL)
	for name, versions := range index.Entries {
		for _, cv := range versions {
			t.Run(name+"-"+cv.Version, func(t *testing.T) {
				ch, err := loader.Load(r.ChartArchive(name, cv.Version))
				if err != nil {
					t.Fatal(err)
				}
				isStandIn := strings.HasPrefix(ch.Metadata.Description, "TEST STAND-IN") ||
					ch.Metadata.Annotations["coderctl.dev/test-stand-in"] != ""
				if isStandIn != slices.Contains(StandIns, name) {
					t.Fatalf("%s %s stand-in = %v, want %v (description %q)", name, cv.Version, isStandIn, !isStandIn, ch.Metadata.Description)
				}
				if c, ok := findReal(name); ok {
					assertSameTemplates(t, ch, moduleChartDir(t, c.module, cv.Version, c.dir))
				}
			})
		}
	}
}

// TestRealChartsArePackagedAsReleased: version and appVersion are the
// release's (the image tag follows appVersion), and libcoder is vendored.
func TestRealChartsArePackagedAsReleased(t *testing.T) {
	r := Require(t)
	for _, c := range realCharts() {
		for _, v := range c.versions {
			t.Run(c.name+"-"+v, func(t *testing.T) {
				ch, err := loader.Load(r.ChartArchive(c.name, v))
				if err != nil {
					t.Fatal(err)
				}
				if ch.Metadata.Version != v || ch.Metadata.AppVersion != v {
					t.Errorf("version %q appVersion %q, want both %s", ch.Metadata.Version, ch.Metadata.AppVersion, v)
				}
				if c.library == "" {
					return
				}
				deps := ch.Dependencies()
				if len(deps) != 1 || deps[0].Name() != "libcoder" {
					t.Fatalf("dependencies %v, want libcoder", chartNames(deps))
				}
				assertSameTemplates(t, deps[0], moduleChartDir(t, c.module, v, c.library))
				assertImage(t, r.ChartArchive(c.name, v), c.name, "ghcr.io/coder/coder:v"+v)
			})
		}
	}
}

func assertImage(t *testing.T, archive, name, want string) {
	t.Helper()
	values := map[string]any{}
	if name == "coder-provisioner" {
		values["provisionerDaemon"] = map[string]any{"keySecretName": "k", "keySecretKey": "key"}
	}
	m, err := Render(archive, name, "coder", values)
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	if err := m.Decode("Deployment/"+name, &dep); err != nil {
		t.Fatal(err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != want {
		t.Errorf("image = %q, want %q", got, want)
	}
}

func TestParseDownload(t *testing.T) {
	m := Module{Path: "example.com/m", Version: "v1.0.0"}
	failed := errors.New("exit status 1")
	tests := []struct {
		name    string
		out     string
		stderr  string
		runErr  error
		want    string
		wantErr []string
	}{
		{"found", `{"Path":"example.com/m","Dir":"/mod/example.com/m@v1.0.0"}`, "", nil, "/mod/example.com/m@v1.0.0", nil},
		{"unknown version", `{"Path":"example.com/m","Error":"example.com/m@v1.0.0: reading https://proxy.golang.org/...: 404 Not Found"}`, "", failed,
			"", []string{"example.com/m@v1.0.0", "404 Not Found"}},
		{"no JSON", "", "go: cannot find GOROOT", failed, "", []string{"example.com/m@v1.0.0", "cannot find GOROOT"}},
		{"failed without an error field", `{"Path":"example.com/m"}`, "killed", failed, "", []string{"exit status 1", "killed"}},
		{"no directory", `{"Path":"example.com/m"}`, "", nil, "", []string{"no Dir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDownload(m, []byte(tc.out), tc.stderr, tc.runErr)
			if got != tc.want {
				t.Errorf("dir = %q, want %q", got, tc.want)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want one containing %q", err, w)
				}
			}
			if tc.wantErr == nil && err != nil {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// TestPrereqScriptFetchesEveryModule keeps scripts/ground-prereqs.sh, which
// fills the module cache before the tests run, in step with Modules().
func TestPrereqScriptFetchesEveryModule(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", "..", "scripts", "ground-prereqs.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Modules() {
		if !bytes.Contains(script, []byte(m.String())) {
			t.Errorf("scripts/ground-prereqs.sh does not download %s", m)
		}
	}
}

func moduleChartDir(t *testing.T, module, version, dir string) string {
	t.Helper()
	root, err := ModuleDir(context.Background(), Module{Path: module, Version: "v" + version})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, dir)
}

// assertSameTemplates compares a loaded chart's templates with the files
// of the chart directory they must come from.
func assertSameTemplates(t *testing.T, ch *chart.Chart, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates in %s (%v)", dir, err)
	}
	if len(ch.Templates) != len(files) {
		t.Errorf("%s has %d templates, %s has %d", ch.Name(), len(ch.Templates), dir, len(files))
	}
	for _, tpl := range ch.Templates {
		want, err := os.ReadFile(filepath.Join(dir, tpl.Name))
		if err != nil || !bytes.Equal(tpl.Data, want) {
			t.Errorf("%s %s differs from %s (%v)", ch.Name(), tpl.Name, dir, err)
		}
	}
}

func TestRealChartDir(t *testing.T) {
	tests := []struct {
		chart, version string
		wantSuffix     string // "" = an error
	}{
		{"coder", "2.36.1", "coder/v2@v2.36.1/helm/coder"},
		{"coder-provisioner", "2.35.2", "coder/v2@v2.35.2/helm/provisioner"},
		{"secrets-store-csi-driver", "1.5.5", "secrets-store-csi-driver@v1.5.5/charts/secrets-store-csi-driver"},
		{"coder", "99.0.0", ""},
		{"secrets-store-csi-driver-provider-aws", "2.2.0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.chart+"-"+tc.version, func(t *testing.T) {
			dir, err := RealChartDir(context.Background(), tc.chart, tc.version)
			switch {
			case tc.wantSuffix == "" && err == nil:
				t.Errorf("RealChartDir = %s, want an error: not served as a real chart", dir)
			case tc.wantSuffix != "" && (err != nil || !strings.HasSuffix(dir, tc.wantSuffix)):
				t.Errorf("RealChartDir = %q, %v; want a directory ending in %s", dir, err, tc.wantSuffix)
			}
		})
	}
}
