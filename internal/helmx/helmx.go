// Package helmx wraps the helm SDK for coderctl's stages: locate a chart
// (HTTP repository, OCI registry or local path), install-or-upgrade a
// release idempotently, report what would change, uninstall, and read
// status. Releases are stored by helm's "secret" driver, as `helm` itself
// does, so `helm list -A` shows what coderctl installed.
//
// Helm's repository cache and registry config live under Options.CacheDir,
// never in the user's ~/.config/helm or ~/.cache/helm.
package helmx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/registry"
	"k8s.io/client-go/rest"
)

// Chart names a chart and where to get it.
type Chart struct {
	Name string
	// Repo is an http(s) chart repository URL, an oci:// reference base (the
	// chart is Repo/Name), or a local path: a chart directory, a .tgz, or a
	// directory holding Name/ or Name-Version.tgz.
	Repo string
	// Version is the exact chart version; empty means the latest.
	Version string
}

func (c Chart) String() string {
	if c.Version == "" {
		return fmt.Sprintf("%s from %s", c.Name, c.Repo)
	}
	return fmt.Sprintf("%s %s from %s", c.Name, c.Version, c.Repo)
}

// Release is a release as coderctl wants it.
type Release struct {
	Name      string
	Namespace string
	Chart     Chart
	// Values are the complete user-supplied values (see MergeValues); helm's
	// chart defaults apply beneath them. The release is upgraded whenever
	// they differ from the deployed release's values.
	Values map[string]any
	// Wait waits for the release's Deployments, DaemonSets, Services and so
	// on to be ready, up to Timeout (DefaultTimeout when zero).
	Wait    bool
	Timeout time.Duration
	// Strategies, when set, post-renders the chart's manifests to give the
	// named Deployments these rollout strategies (see Strategies).
	Strategies Strategies
	// RolledOut names Deployments whose rollout Apply waits to complete
	// (every replica updated and available, no old one left: see
	// WaitRolledOut) after helm's own wait, within the same Timeout. Only
	// with Wait.
	RolledOut []string
}

// Actions a Change can carry.
const (
	ActionInstall = "install"
	ActionUpgrade = "upgrade"
	ActionNone    = "none"
)

// Change is what Apply would do to a release, and why.
type Change struct {
	Action      string // ActionInstall, ActionUpgrade or ActionNone
	Reason      string // one line
	ChangedKeys []string
}

// DefaultTimeout bounds Wait when Release.Timeout is zero; helm's default.
const DefaultTimeout = 5 * time.Minute

// historyMax bounds the revisions kept per release, as `helm upgrade
// --history-max` does, so release secrets do not pile up.
const historyMax = 10

// Options configure a Client.
type Options struct {
	// CacheDir holds helm's repository cache and registry config. Empty means
	// DefaultCacheDir().
	CacheDir string
	// Log receives helm's debug lines. Nil discards them.
	Log func(string)
}

// Client runs helm actions against one cluster.
type Client struct {
	access   *clusterAccess
	settings *cli.EnvSettings
	log      func(string)

	registryMu sync.Mutex
	registries map[bool]*registry.Client // keyed by plain HTTP
}

// DefaultCacheDir is ~/.cache/coderctl/helm (the platform's user cache dir).
func DefaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(base, "coderctl", "helm")
}

// New returns a Client for the cluster rc reaches. It contacts nothing yet.
func New(rc *rest.Config, opts Options) (*Client, error) {
	if rc == nil {
		return nil, errors.New("helmx: nil rest.Config")
	}
	dir := opts.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("helm cache directory: %w", err)
	}
	log := opts.Log
	if log == nil {
		log = func(string) {}
	}
	return &Client{
		access:     newClusterAccess(rc),
		settings:   envSettings(dir),
		log:        log,
		registries: map[bool]*registry.Client{},
	}, nil
}

// envSettings points every helm path into dir, so nothing reads or writes
// the user's helm configuration, plugins or caches.
func envSettings(dir string) *cli.EnvSettings {
	return &cli.EnvSettings{
		RepositoryConfig: filepath.Join(dir, "repositories.yaml"),
		RepositoryCache:  filepath.Join(dir, "repository"),
		RegistryConfig:   filepath.Join(dir, "registry", "config.json"),
		PluginsDirectory: filepath.Join(dir, "plugins"),
	}
}

// actionConfig is helm's per-namespace configuration: the secret storage
// driver is namespaced, so every release namespace gets its own.
func (c *Client) actionConfig(namespace string, debug action.DebugLog) (*action.Configuration, error) {
	cfg := &action.Configuration{}
	getter := &restClientGetter{access: c.access, namespace: namespace}
	if debug == nil {
		debug = c.debugLog
	}
	if err := cfg.Init(getter, namespace, "secret", debug); err != nil {
		return nil, fmt.Errorf("helm configuration for namespace %s: %w", namespace, err)
	}
	return cfg, nil
}

func (c *Client) debugLog(format string, args ...any) {
	c.log(fmt.Sprintf(format, args...))
}

// registryClient returns the OCI client, plain HTTP for loopback registries
// (tests, `make demo`) and HTTPS otherwise.
func (c *Client) registryClient(plainHTTP bool) (*registry.Client, error) {
	c.registryMu.Lock()
	defer c.registryMu.Unlock()
	if rc, ok := c.registries[plainHTTP]; ok {
		return rc, nil
	}
	opts := []registry.ClientOption{
		registry.ClientOptCredentialsFile(c.settings.RegistryConfig),
		registry.ClientOptWriter(logWriter{c.log}),
		registry.ClientOptEnableCache(true),
	}
	if plainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	c.registries[plainHTTP] = rc
	return rc, nil
}

func (c *Client) getters() getter.Providers { return getter.All(c.settings) }

// logWriter turns helm's progress output (e.g. "Pulled: …") into log lines.
type logWriter struct{ log func(string) }

func (w logWriter) Write(p []byte) (int, error) {
	w.log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
