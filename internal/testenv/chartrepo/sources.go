package chartrepo

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// CoderModule holds the coder and coder-provisioner charts (helm/coder,
// helm/provisioner) and the library chart both depend on (helm/libcoder).
const CoderModule = "github.com/coder/coder/v2"

// CSIDriverModule holds the secrets-store-csi-driver chart.
const CSIDriverModule = "sigs.k8s.io/secrets-store-csi-driver"

// CoderVersions are the Coder releases whose charts are served, highest
// first: the pinned CODER_VERSION and an older one, so that an upgrade can be
// tested.
var CoderVersions = []string{"2.36.1", "2.35.2"}

// CSIDriverVersions are the secrets-store-csi-driver releases served.
var CSIDriverVersions = []string{"1.5.5"}

// StandIns are the charts served from stand-ins under charts/ because no
// module the proxy serves holds them (github.com/aws/secrets-store-csi-
// driver-provider-aws and k8s.io/autoscaler's charts are not served). Every
// other chart is the real one.
var StandIns = []string{"cluster-autoscaler", "secrets-store-csi-driver-provider-aws"}

// ChartVersion is a chart version and the application release it packages.
type ChartVersion struct {
	Version    string // the chart's version
	AppVersion string // its appVersion
}

// AutoscalerVersions are the versions the cluster-autoscaler stand-in is
// served as, highest first. The real repository pairs chart 9.x with
// autoscaler 1.N (one autoscaler minor per Kubernetes minor); the pairs up
// to 9.56.0 are the real repository's (its index.yaml), 9.57.0 and 9.58.0
// are INVENTED for Kubernetes 1.36 and 1.37 (the proving ground runs 1.37),
// which that index did not reach. Two versions carry 1.34 so that picking
// "the highest chart for the cluster's minor" is exercised.
var AutoscalerVersions = []ChartVersion{
	{"9.58.0", "1.37.0"},
	{"9.57.0", "1.36.0"},
	{"9.56.0", "1.35.0"},
	{"9.53.0", "1.34.2"},
	{"9.52.1", "1.34.1"},
	{"9.51.0", "1.33.0"},
}

// standInVersions are the stand-ins served in several versions; the others
// are served as their Chart.yaml says.
var standInVersions = map[string][]ChartVersion{"cluster-autoscaler": AutoscalerVersions}

// appVersionPlaceholder in a stand-in's values.yaml becomes the served
// appVersion (the cluster-autoscaler image tag is v<appVersion>).
const appVersionPlaceholder = "CHART_APP_VERSION"

// realChart is a chart published from a directory of a Go module; chart
// version X comes from module version vX, as the projects tag them.
type realChart struct {
	name     string
	module   string
	dir      string // the chart, inside the module
	library  string // a library chart the chart takes as a file:// dependency
	versions []string
}

func realCharts() []realChart {
	return []realChart{
		{name: "coder", module: CoderModule, dir: "helm/coder", library: "helm/libcoder", versions: CoderVersions},
		{name: "coder-provisioner", module: CoderModule, dir: "helm/provisioner", library: "helm/libcoder", versions: CoderVersions},
		{name: "secrets-store-csi-driver", module: CSIDriverModule, dir: "charts/secrets-store-csi-driver", versions: CSIDriverVersions},
	}
}

// Modules lists the module versions the real charts come from, each once;
// scripts/ground-prereqs.sh downloads the same list ahead of the tests.
func Modules() []Module {
	var out []Module
	seen := map[Module]bool{}
	for _, c := range realCharts() {
		for _, v := range c.versions {
			m := Module{Path: c.module, Version: "v" + v}
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// RealChartDir is the directory, inside its Go module, of the real chart
// name at version: what tests compare an installed release's templates
// with. A stand-in or a version not served is an error.
func RealChartDir(ctx context.Context, name, version string) (string, error) {
	c, ok := findReal(name)
	if !ok || !slices.Contains(c.versions, version) {
		return "", fmt.Errorf("no real chart %s %s is served", name, version)
	}
	dir, err := ModuleDir(ctx, Module{Path: c.module, Version: "v" + version})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, c.dir), nil
}

// loadCharts loads every served chart version, highest first per chart:
// the real ones from their modules, then the stand-ins (written to
// standInDir) with their dependencies vendored from the real ones.
func loadCharts(ctx context.Context, standInDir string) (map[string][]*chart.Chart, error) {
	out := map[string][]*chart.Chart{}
	for _, c := range realCharts() {
		for _, v := range c.versions {
			ch, err := loadReal(ctx, c, v)
			if err != nil {
				return nil, err
			}
			out[c.name] = append(out[c.name], ch)
		}
	}
	if err := writeStandIns(standInDir); err != nil {
		return nil, err
	}
	for _, name := range StandIns {
		versions, ok := standInVersions[name]
		if !ok {
			ch, err := loadStandIn(ctx, filepath.Join(standInDir, name))
			if err != nil {
				return nil, err
			}
			out[name] = []*chart.Chart{ch}
			continue
		}
		for _, v := range versions {
			ch, err := loadStandIn(ctx, filepath.Join(standInDir, name))
			if err != nil {
				return nil, err
			}
			if err := setVersion(ch, v); err != nil {
				return nil, err
			}
			out[name] = append(out[name], ch)
		}
	}
	return out, nil
}

// setVersion stamps a freshly loaded stand-in with a served version, as
// `helm package --version V --app-version A` would, and puts the appVersion
// in its values where the placeholder stands.
func setVersion(ch *chart.Chart, v ChartVersion) error {
	ch.Metadata.Version = v.Version
	ch.Metadata.AppVersion = v.AppVersion
	for _, f := range ch.Raw {
		if f.Name == "values.yaml" {
			f.Data = []byte(strings.ReplaceAll(string(f.Data), appVersionPlaceholder, v.AppVersion))
		}
	}
	replaceInValues(ch.Values, appVersionPlaceholder, v.AppVersion)
	return ch.Validate()
}

// replaceInValues replaces old in every string of values, in place.
func replaceInValues(values map[string]any, old, repl string) {
	for k, v := range values {
		switch x := v.(type) {
		case string:
			values[k] = strings.ReplaceAll(x, old, repl)
		case map[string]any:
			replaceInValues(x, old, repl)
		}
	}
}

// loadReal loads one version of a real chart as its release packaging
// builds it: coder's scripts/helm.sh runs `helm dependency update` (which
// vendors libcoder from file://../libcoder into charts/) and `helm package
// --version V --app-version V`, because the Chart.yaml in git carries the
// placeholder 0.1.0 for both. The CSI driver's Chart.yaml is already the
// release's.
func loadReal(ctx context.Context, c realChart, version string) (*chart.Chart, error) {
	m := Module{Path: c.module, Version: "v" + version}
	dir, err := ModuleDir(ctx, m)
	if err != nil {
		return nil, err
	}
	ch, err := loader.LoadDir(filepath.Join(dir, c.dir))
	if err != nil {
		return nil, fmt.Errorf("load chart %s from %s: %w", c.dir, m, err)
	}
	if c.library != "" {
		lib, err := loader.LoadDir(filepath.Join(dir, c.library))
		if err != nil {
			return nil, fmt.Errorf("load library chart %s from %s: %w", c.library, m, err)
		}
		ch.SetDependencies(lib)
	}
	ch.Metadata.Version = version
	ch.Metadata.AppVersion = version
	if ch.Name() != c.name {
		return nil, fmt.Errorf("%s/%s is chart %q, want %q", m, c.dir, ch.Name(), c.name)
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", c.name, version, err)
	}
	return ch, nil
}

// loadStandIn loads a stand-in and vendors its dependencies from the real
// charts, as `helm dependency build` would from their repositories.
func loadStandIn(ctx context.Context, dir string) (*chart.Chart, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load stand-in %s: %w", filepath.Base(dir), err)
	}
	var deps []*chart.Chart
	for _, d := range ch.Metadata.Dependencies {
		dep, err := loadDependency(ctx, d.Name)
		if err != nil {
			return nil, fmt.Errorf("stand-in %s: %w", ch.Name(), err)
		}
		deps = append(deps, dep)
	}
	ch.SetDependencies(deps...)
	return ch, ch.Validate()
}

// loadDependency loads the highest served version of a real chart afresh:
// SetDependencies makes a chart another's child, so the published copy is
// not shared.
func loadDependency(ctx context.Context, name string) (*chart.Chart, error) {
	c, ok := findReal(name)
	if !ok {
		return nil, fmt.Errorf("depends on %s, which the repository does not serve as a real chart", name)
	}
	return loadReal(ctx, c, c.versions[0])
}

func findReal(name string) (realChart, bool) {
	for _, c := range realCharts() {
		if c.name == name {
			return c, true
		}
	}
	return realChart{}, false
}

// writeStandIns copies the embedded stand-ins to dst.
func writeStandIns(dst string) error {
	err := fs.WalkDir(chartsFS, "charts", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, strings.TrimPrefix(path, "charts"))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := chartsFS.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		return fmt.Errorf("write stand-in charts: %w", err)
	}
	return nil
}
