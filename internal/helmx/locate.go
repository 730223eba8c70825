package helmx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/coderctl/coderctl/internal/fault"
)

// loadChart finds the chart (downloading it into the cache when remote),
// loads it and checks its version and bundled dependencies.
func (c *Client) loadChart(ch Chart) (*chart.Chart, error) {
	path, err := c.locate(ch)
	if err != nil {
		return nil, err
	}
	loaded, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", ch, err)
	}
	if ch.Version != "" && loaded.Metadata.Version != ch.Version {
		return nil, fault.Input(ch.Repo, "chart "+ch.Name, "point the chart path at the wanted version, or change the version",
			"version %q wanted, but %s holds version %q", ch.Version, path, loaded.Metadata.Version)
	}
	if deps := loaded.Metadata.Dependencies; len(deps) > 0 {
		if err := action.CheckDependencies(loaded, deps); err != nil {
			return nil, fmt.Errorf("chart %s: %w", ch, err)
		}
	}
	return loaded, nil
}

// locate returns a local path to the chart archive or directory.
func (c *Client) locate(ch Chart) (string, error) {
	switch {
	case ch.Repo == "":
		return "", fault.Input("", "chart "+ch.Name, "set the chart repository URL, oci:// reference or local path",
			"no chart repository given")
	case registry.IsOCI(ch.Repo):
		return c.locateOCI(ch)
	case strings.HasPrefix(ch.Repo, "http://") || strings.HasPrefix(ch.Repo, "https://"):
		return c.locateHTTP(ch)
	default:
		return c.locateLocal(ch)
	}
}

// locateHTTP reads the repository index itself, so that an unknown chart
// or version is reported as bad input listing what the repository has, then
// downloads the chart by URL through helm's LocateChart. (Passing the bare
// chart name to LocateChart would prefer a same-named directory in the
// working directory over the repository.)
func (c *Client) locateHTTP(ch Chart) (string, error) {
	index, err := c.repoIndex(ch.Repo)
	if err != nil {
		return "", err
	}
	versions := index.Entries[ch.Name]
	if len(versions) == 0 {
		return "", fault.Input(ch.Repo, "chart "+ch.Name, "check the chart name",
			"chart %q not found in repository %s (it has: %s)", ch.Name, ch.Repo, strings.Join(sortedKeys(index.Entries), ", "))
	}
	cv, err := index.Get(ch.Name, ch.Version)
	if err != nil {
		return "", unknownVersion(ch, versionList(versions))
	}
	if len(cv.URLs) == 0 {
		return "", fmt.Errorf("chart %s %s in %s has no download URL", ch.Name, cv.Version, ch.Repo)
	}
	chartURL, err := repo.ResolveReferenceURL(ch.Repo, cv.URLs[0])
	if err != nil {
		return "", fmt.Errorf("chart %s %s in %s: %w", ch.Name, cv.Version, ch.Repo, err)
	}
	opts := action.ChartPathOptions{Version: cv.Version}
	path, err := opts.LocateChart(chartURL, c.settings)
	if err != nil {
		return "", fmt.Errorf("download chart %s %s from %s: %w", ch.Name, cv.Version, chartURL, err)
	}
	return path, nil
}

// indexMu serialises repository index downloads across all clients.
var indexMu sync.Mutex

// repoIndex downloads index.yaml into the cache under a name derived from
// the URL, so repositories never collide and reruns overwrite.
func (c *Client) repoIndex(repoURL string) (*repo.IndexFile, error) {
	// One lock for the whole process, not per client: every stage builds
	// its own client over the same cache directory, and helm rewrites the
	// cached index file in place, so two steps reading one repository at
	// once could read a half-written (empty) file.
	indexMu.Lock()
	defer indexMu.Unlock()
	sum := sha256.Sum256([]byte(repoURL))
	entry := &repo.Entry{Name: "coderctl-" + hex.EncodeToString(sum[:8]), URL: repoURL}
	r, err := repo.NewChartRepository(entry, c.getters())
	if err != nil {
		return nil, fault.Input(repoURL, "", "use an http(s):// chart repository URL", "not a chart repository URL: %v", err)
	}
	r.CachePath = c.settings.RepositoryCache
	if err := os.MkdirAll(r.CachePath, 0o755); err != nil {
		return nil, err
	}
	path, err := r.DownloadIndexFile()
	if err != nil {
		return nil, fmt.Errorf("chart repository %s cannot be read: %w", repoURL, err)
	}
	index, err := repo.LoadIndexFile(path)
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %w", repoURL, err)
	}
	return index, nil
}

// locateOCI checks the version against the registry's tags first, for the
// same reason as locateHTTP, then pulls with helm's registry client.
func (c *Client) locateOCI(ch Chart) (string, error) {
	ref := strings.TrimSuffix(ch.Repo, "/") + "/" + ch.Name
	u, err := url.Parse(ref)
	if err != nil {
		return "", fault.Input(ch.Repo, "", "use oci://HOST/PATH", "not an OCI reference: %v", err)
	}
	plainHTTP := isLoopback(u.Hostname())
	rc, err := c.registryClient(plainHTTP)
	if err != nil {
		return "", err
	}
	tags, err := rc.Tags(strings.TrimPrefix(ref, registry.OCIScheme+"://"))
	if err != nil {
		if isNotFound(err) {
			return "", fault.Input(ch.Repo, "chart "+ch.Name, "check the chart name and the oci:// base",
				"chart %q not found in registry %s", ch.Name, ch.Repo)
		}
		return "", fmt.Errorf("list versions of %s: %w", ref, err)
	}
	version := ch.Version
	switch {
	case len(tags) == 0:
		return "", fault.Input(ch.Repo, "chart "+ch.Name, "check the chart name and the oci:// base",
			"registry %s has no chart versions under %s", ch.Repo, ch.Name)
	case version == "":
		version = tags[0] // Tags sorts highest first
	case !slices.Contains(tags, version):
		return "", unknownVersion(ch, tags)
	}
	opts := action.NewInstall(&action.Configuration{RegistryClient: rc}).ChartPathOptions
	opts.Version = version
	opts.PlainHTTP = plainHTTP
	path, err := opts.LocateChart(ref, c.settings)
	if err != nil {
		return "", fmt.Errorf("pull chart %s %s: %w", ref, version, err)
	}
	return path, nil
}

// locateLocal accepts a chart directory or archive, or a directory holding
// Name/ or Name-Version.tgz.
func (c *Client) locateLocal(ch Chart) (string, error) {
	candidates := []string{ch.Repo}
	if ch.Name != "" {
		candidates = append(candidates, filepath.Join(ch.Repo, ch.Name))
		if ch.Version != "" {
			candidates = append(candidates, filepath.Join(ch.Repo, ch.Name+"-"+ch.Version+".tgz"))
		}
	}
	for _, p := range candidates {
		if isChart(p) {
			abs, err := filepath.Abs(p)
			if err != nil {
				return "", err
			}
			var opts action.ChartPathOptions
			return opts.LocateChart(abs, c.settings)
		}
	}
	return "", fault.Input(ch.Repo, "chart "+ch.Name, "give a chart directory, a .tgz, or an http(s):// or oci:// repository",
		"no chart found at this path")
}

func isChart(p string) bool {
	st, err := os.Stat(p)
	if err != nil {
		return false
	}
	if st.IsDir() {
		_, err := os.Stat(filepath.Join(p, "Chart.yaml"))
		return err == nil
	}
	return strings.HasSuffix(p, ".tgz") || strings.HasSuffix(p, ".tar.gz")
}

func unknownVersion(ch Chart, available []string) error {
	list := "none"
	if len(available) > 0 {
		list = strings.Join(available, ", ")
	}
	return &UnknownVersionError{InputError: fault.InputError{Source: ch.Repo, Field: "chart " + ch.Name,
		Hint: "pick a version the repository has",
		Msg:  fmt.Sprintf("version %q not found in %s (available: %s)", ch.Version, ch.Repo, list)}, Chart: ch, Available: list}
}

// UnknownVersionError is bad input: the repository has no such version of
// the chart. Callers that derived the version from another input (the chart
// version from CODER_VERSION) reword it to name that input.
type UnknownVersionError struct {
	fault.InputError
	Chart Chart
	// Available lists the versions the repository has, comma-separated.
	Available string
}

// Unwrap lets errors.As find the InputError, so the exit code stays 2.
func (e *UnknownVersionError) Unwrap() error { return &e.InputError }

func versionList(vs repo.ChartVersions) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isNotFound recognises a registry's 404 for an unknown repository. oras-go
// reports it as "response status code 404: name unknown"; its error type is
// not part of helm's API, so the status is matched in the message.
func isNotFound(err error) bool {
	return strings.Contains(err.Error(), "status code 404")
}
