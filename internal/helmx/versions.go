package helmx

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// ChartVersion is one release of a chart in a repository.
type ChartVersion struct {
	Version    string
	AppVersion string
}

// Releases lists the releases of chart name in the http(s) chart
// repository at repoURL, newest chart version first. It reads only the
// repository's index (through helm's cache under cacheDir, "" for the
// default), never a cluster, so validation can use it before anything
// exists.
func Releases(repoURL, name, cacheDir string) ([]ChartVersion, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("helm cache directory: %w", err)
	}
	c := &Client{settings: envSettings(cacheDir), log: func(string) {}}
	index, err := c.repoIndex(repoURL)
	if err != nil {
		return nil, err
	}
	entries, ok := index.Entries[name]
	if !ok || len(entries) == 0 {
		return nil, fmt.Errorf("chart repository %s has no chart %s", repoURL, name)
	}
	out := make([]ChartVersion, 0, len(entries))
	for _, e := range entries {
		out = append(out, ChartVersion{Version: e.Version, AppVersion: e.AppVersion})
	}
	sort.SliceStable(out, func(i, j int) bool { return newer(out[i].Version, out[j].Version) })
	return out, nil
}

// newer orders versions by semver; what does not parse sorts last.
func newer(a, b string) bool {
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	switch {
	case errA != nil:
		return false
	case errB != nil:
		return true
	}
	return va.GreaterThan(vb)
}

// NewestForMinor picks the newest stable release whose appVersion is of
// the Kubernetes minor given as "1.34": charts such as cluster-autoscaler
// release one application line per Kubernetes minor, and only the
// matching line is supported against that control plane.
func NewestForMinor(releases []ChartVersion, minor string) (ChartVersion, bool) {
	for _, r := range releases {
		v, err := semver.NewVersion(strings.TrimPrefix(r.AppVersion, "v"))
		if err != nil || v.Prerelease() != "" {
			continue
		}
		if cv, err := semver.NewVersion(r.Version); err != nil || cv.Prerelease() != "" {
			continue
		}
		if fmt.Sprintf("%d.%d", v.Major(), v.Minor()) == minor {
			return r, true
		}
	}
	return ChartVersion{}, false
}
