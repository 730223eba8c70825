package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coderctl "github.com/coderctl/coderctl"
	"github.com/coderctl/coderctl/internal/fault"
)

// FuzzParseCluster: whatever bytes cluster-config.yaml holds, the loader
// returns either a config the stages can use or bad input naming the file —
// never a panic, a hang or an error the CLI would report as internal.
func FuzzParseCluster(f *testing.F) {
	f.Add(coderctl.DefaultClusterConfig)
	f.Add([]byte(""))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata: {name: a, region: us-west-2}\n---\nkind: x\n"))
	f.Add([]byte("\x00\xff"))
	f.Add([]byte("managedNodeGroups: [{name: taints}]"))
	for _, seed := range corpusConfigs(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("ParseCluster hangs on %q", data))
			}
		}()
		cfg, err := ParseCluster("cluster-config.yaml", data)
		if err != nil {
			var ie *fault.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("not bad input: %T %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "cluster-config.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		checkUsable(t, cfg.Metadata.Name, cfg.Metadata.Region, len(cfg.ManagedNodeGroups))
		for i, ng := range cfg.ManagedNodeGroups {
			if ng.Name == NodeGroupsRoleStep || ng.Name == NodeGroupsTaintsStep {
				t.Fatalf("managedNodeGroups[%d] took a reserved step name %q", i, ng.Name)
			}
			if sc := ng.ScalingConfig; sc != nil && sc.MaxSize != nil && *sc.MaxSize > maxNodesPerGroup {
				t.Fatalf("managedNodeGroups[%d].maxSize %d accepted", i, *sc.MaxSize)
			}
		}
	})
}

func checkUsable(t *testing.T, name, region string, groups int) {
	t.Helper()
	if name == "" || region == "" || groups == 0 {
		t.Fatalf("accepted a config without name, region or node groups: %q %q %d", name, region, groups)
	}
}

// corpusConfigs are the whole cluster configs of testdata/bad, as seeds.
func corpusConfigs(f *testing.F) [][]byte {
	paths, _ := filepath.Glob("../../testdata/bad/*/cluster-config.yaml")
	var out [][]byte
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, b)
		}
	}
	return out
}
