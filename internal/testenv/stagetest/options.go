package stagetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	cfgpkg "github.com/coderctl/coderctl/internal/config"
)

// ConfigEnv is an Env whose Deps use a cluster configuration other than the
// shipped one, and keep using it after Reload.
type ConfigEnv struct {
	*Env
	// ClusterConfig is the cluster configuration file the Deps are built from.
	ClusterConfig string
}

// NewWithClusterConfig is New with the cluster configuration at path (write
// one with WriteClusterConfig). The file must load: tests of configs that
// config.LoadCluster rejects belong to the config package.
func NewWithClusterConfig(t testing.TB, inputs map[string]string, path string) *ConfigEnv {
	t.Helper()
	e := &ConfigEnv{Env: New(t, inputs), ClusterConfig: path}
	e.useClusterConfig(t)
	return e
}

// Reload rebuilds Deps from the state file, as a new process given the
// same --config would.
func (e *ConfigEnv) Reload(t testing.TB) {
	t.Helper()
	e.Env.Reload(t)
	e.useClusterConfig(t)
}

// useClusterConfig swaps the cluster configuration and the inputs resolved
// against it into Deps, keeping the state store and AWS clients.
func (e *ConfigEnv) useClusterConfig(t testing.TB) {
	t.Helper()
	cluster, err := cfgpkg.LoadCluster(e.ClusterConfig)
	if err != nil {
		t.Fatalf("cluster config %s: %v", e.ClusterConfig, err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	inputs, err := cfgpkg.ResolveInputs(e.EnvFile, e.Deps.State.Snapshot(), noEnv, cluster, e.ClusterConfig)
	if err != nil {
		t.Fatalf("inputs: %v", err)
	}
	e.Deps.Cluster, e.Deps.ConfigPath, e.Deps.Inputs = cluster, e.ClusterConfig, inputs
}

// WriteClusterConfig writes the shipped cluster-config.yaml into dir with
// the first occurrence of each (old, new) pair of oldNew replaced, and
// returns the new file's path.
// A pair whose old text is not in the file fails the test, so an edit to
// the shipped file cannot silently turn a test into a no-op.
func WriteClusterConfig(t testing.TB, dir string, oldNew ...string) string {
	t.Helper()
	if len(oldNew)%2 != 0 {
		t.Fatalf("WriteClusterConfig: odd number of replacement strings")
	}
	data, err := os.ReadFile(ClusterConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(text, oldNew[i]) {
			t.Fatalf("WriteClusterConfig: %q is not in the shipped cluster-config.yaml", oldNew[i])
		}
		text = strings.Replace(text, oldNew[i], oldNew[i+1], 1)
	}
	path := filepath.Join(dir, "cluster-config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
