package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coderctl/coderctl/internal/fault"
)

// runSizeCmd runs `coderctl size args...` in dir with the given env file
// content ("" for none) and process environment.
func runSizeCmd(t *testing.T, output, envFile string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	g := &globalOptions{output: output, envFile: filepath.Join(dir, "coder-infra.env"), configPath: filepath.Join(dir, "cluster-config.yaml")}
	if envFile != "" {
		if err := os.WriteFile(g.envFile, []byte(envFile), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	f := &Factory{
		IO:        IOStreams{Out: &out, ErrOut: &out},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Now:       func() time.Time { return time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC) },
	}
	cmd := newSizeCmd(f, g)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage = true
	err := cmd.Execute()
	return out.String(), err
}

func TestSizeJSON(t *testing.T) {
	cases := []struct {
		name         string
		envFile      string
		env          map[string]string
		args         []string
		users        int
		provisioners int
		nodesNeeded  int
		maxNodes     int    // provisioner nodes counted
		status       string // of the capacity check
	}{
		{"flag", "", nil, []string{"--users", "800"}, 800, 70, 10, 6, "warn"},
		{"env file", "USERS=150\n", nil, nil, 150, 30, 5, 6, "pass"},
		{"environment over env file", "USERS=150\n", map[string]string{"USERS": "40"}, nil, 40, 20, 3, 6, "pass"},
		{"default", "", nil, nil, 500, 40, 6, 6, "pass"},
		// Nothing grows the group: counted at its desiredCapacity.
		{"autoscaler off in env file", "AUTOSCALER=none\n", nil, nil, 500, 40, 6, 2, "warn"},
		{"autoscaler off in environment", "", map[string]string{"AUTOSCALER": "none"}, []string{"--users", "40"}, 40, 20, 3, 2, "warn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSizeCmd(t, "json", tc.envFile, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("size: %v\n%s", err, out)
			}
			var r struct {
				Type   string `json:"type"`
				Time   string `json:"time"`
				Sizing struct {
					Users        int `json:"users"`
					Provisioners struct {
						Replicas int `json:"replicas"`
					} `json:"provisioners"`
					Database struct {
						InstanceClass string `json:"instance_class"`
					} `json:"database"`
				} `json:"sizing"`
				NodeGroups []struct {
					Role        string `json:"role"`
					NodesNeeded int    `json:"nodes_needed"`
					MaxNodes    int    `json:"max_nodes"`
				} `json:"node_groups"`
				Check struct {
					Status string `json:"status"`
				} `json:"check"`
				ClusterConfig string `json:"cluster_config"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out)
			}
			if r.Type != "size" || r.Time == "" || r.Sizing.Users != tc.users || r.Sizing.Provisioners.Replicas != tc.provisioners {
				t.Errorf("report %+v, want %d users and %d provisioners", r, tc.users, tc.provisioners)
			}
			if r.NodeGroups[0].Role != "provisioner" || r.NodeGroups[0].NodesNeeded != tc.nodesNeeded || r.NodeGroups[0].MaxNodes != tc.maxNodes {
				t.Errorf("provisioner fit %+v, want %d nodes needed of %d", r.NodeGroups[0], tc.nodesNeeded, tc.maxNodes)
			}
			if r.Check.Status != tc.status || !strings.Contains(r.ClusterConfig, "shipped default") {
				t.Errorf("check %s from %s, want %s against the shipped config", r.Check.Status, r.ClusterConfig, tc.status)
			}
		})
	}
}

func TestSizeText(t *testing.T) {
	out, err := runSizeCmd(t, "text", "", nil, "--users", "500")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Sizing for 500 peak concurrent users",
		"40 replicas = 40 concurrent builds (one build per provisioner), requests 1 CPU / 1Gi",
		"guide: 250–500 users",
		"2 replicas, requests 2 CPU / 4Gi, limits 4 CPU / 8Gi",
		"2–6 × m7i.12xlarge",
		"db.m7i.large, multi-AZ",
		"coder-provisioner: up to 6 × c7i.2xlarge (maxSize, grown by the cluster-autoscaler), 7 pods per node; 40 pods need 6 node(s) — ok",
		"coder-coderd: 2 × m7i.xlarge (desiredCapacity; nothing grows it), 1 pods per node; 2 pods need 2 node(s) — ok",
		"PASS: node groups hold 40 provisioners, 2 coderd replicas and 500 workspaces",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSizeBadUsers(t *testing.T) {
	for _, args := range [][]string{{"--users", "0"}, {"--users", "-5"}, {"--users", "200000"}} {
		_, err := runSizeCmd(t, "text", "", nil, args...)
		if !fault.IsInput(err) || !strings.Contains(err.Error(), "--users") {
			t.Errorf("size %v: %v, want bad input naming --users", args, err)
		}
	}
	_, err := runSizeCmd(t, "text", "USERS=lots\n", nil)
	if !fault.IsInput(err) || !strings.Contains(err.Error(), "USERS") {
		t.Errorf("USERS=lots in the env file: %v, want bad input naming USERS", err)
	}
}
