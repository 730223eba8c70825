package nodegroups_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	eksstage "github.com/coderctl/coderctl/stages/eks"
	"github.com/coderctl/coderctl/stages/network"
	"github.com/coderctl/coderctl/stages/nodegroups"
	"github.com/coderctl/coderctl/stages/prereqs"
)

// TestKubernetesUpgradeRunsControlPlaneAddonsThenNodeGroups raises
// metadata.version under the real prereqs, network, eks and nodegroups
// stages: plan shows the chain, each minor with its steps and the node
// groups after them; apply upgrades, for each minor, the control plane
// (UpdateClusterVersion, waited), then the add-ons, then every node group
// (UpdateNodegroupVersion with that minor, in parallel), in that order as
// the EKS stand-in saw the calls (it refuses a control plane update while
// a node group trails the cluster, as EKS does); a re-apply of everything
// changes nothing.
func TestKubernetesUpgradeRunsControlPlaneAddonsThenNodeGroups(t *testing.T) {
	tests := []struct {
		name, from, to string
		hops           []string
	}{
		{name: "one minor", from: "1.33", to: "1.34", hops: []string{"1.34"}},
		{name: "two minors", from: "1.32", to: "1.34", hops: []string{"1.33", "1.34"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { testUpgrade(t, tc.from, tc.to, tc.hops) })
	}
}

func testUpgrade(t *testing.T, from, to string, hops []string) {
	shipped := `version: "1.34"`
	emu := ekstest.Use(t, ekstest.Options{UpdatePolls: 1, Polls: 1})
	env := stagetest.NewWithClusterConfig(t, nil, stagetest.WriteClusterConfig(t, t.TempDir(), shipped, `version: "`+from+`"`))
	emu.Wire(env.Deps)
	all := func() []engine.Stage {
		d := env.Deps
		return []engine.Stage{prereqs.New(d), network.New(d), eksstage.New(d), nodegroups.New(d)}
	}
	run := func(mode engine.Mode) *engine.Summary {
		t.Helper()
		sum, _ := env.MustRun(t, all(), engine.Options{Mode: mode})
		return sum
	}
	run(engine.ModeApply)
	groups := strings.Split(groupsList, ",")
	for _, g := range groups {
		if v := aws.ToString(describeGroup(t, env, g).Version); v != from {
			t.Fatalf("node group %s created at %s, want the cluster's %s", g, v, from)
		}
	}

	env.ClusterConfig = stagetest.WriteClusterConfig(t, t.TempDir(), shipped, `version: "`+to+`"`)
	env.Reload(t)
	emu.Wire(env.Deps)

	env.Calls.Reset()
	sum := run(engine.ModePlan)
	if m := env.Calls.Mutations(); len(m) != 0 {
		t.Errorf("plan made mutating calls: %v", m)
	}
	acts := map[string]engine.Action{}
	for _, st := range sum.Stages {
		for _, a := range st.Actions {
			if a.Kind == engine.Update {
				acts[a.Resource] = a
			}
		}
	}
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	names := strings.Join(sorted, ", ")
	eksPlan := []string{"Kubernetes " + from + " to " + to + ", one minor at a time", "typically about",
		fmt.Sprintf("%d) node groups %s to %s in parallel (nodegroups stage", len(hops)+1, names, to)}
	for i, v := range hops {
		step := fmt.Sprintf("%d) %s: control plane (UpdateClusterVersion), add-ons kube-proxy", i+1, v)
		if i < len(hops)-1 {
			step = fmt.Sprintf("%d) %s: control plane (UpdateClusterVersion), add-ons kube-proxy v%s.0-eksbuild.2 to v%s.0-eksbuild.2, node groups %s in parallel", i+1, v, from, v, names)
		}
		eksPlan = append(eksPlan, step)
	}
	wantPlan := map[string][]string{"kubernetes-version/coder-prod": eksPlan}
	for _, g := range groups {
		wantPlan["nodegroup/"+g] = []string{"Kubernetes " + from + " to " + to + " once the control plane is there", "UpdateNodegroupVersion", "batches (updateConfig)"}
	}
	for res, fragments := range wantPlan {
		a, ok := acts[res]
		if !ok {
			t.Errorf("plan has no update of %s", res)
			continue
		}
		for _, f := range fragments {
			if !strings.Contains(a.Reason, f) {
				t.Errorf("plan %s reason %q lacks %q", res, a.Reason, f)
			}
		}
	}

	before := len(emu.Mutations())
	run(engine.ModeApply)
	muts := emu.Mutations()[before:]
	t.Logf("EKS calls of the upgrade: %v", muts)
	// The calls collapse into phases; each minor must be control plane,
	// add-ons, node groups, with nothing interleaved.
	var phases []string
	for _, m := range muts {
		p := ""
		switch {
		case m == "POST /clusters/coder-prod/updates":
			p = "control-plane"
		case strings.HasPrefix(m, "POST /clusters/coder-prod/addons/") && strings.HasSuffix(m, "/update"):
			p = "add-ons"
		case strings.HasPrefix(m, "POST /clusters/coder-prod/node-groups/") && strings.HasSuffix(m, "/update-version"):
			p = "node-groups"
		}
		if p != "" && (len(phases) == 0 || phases[len(phases)-1] != p) {
			phases = append(phases, p)
		}
	}
	var want []string
	for range hops {
		want = append(want, "control-plane", "add-ons", "node-groups")
	}
	if strings.Join(phases, " ") != strings.Join(want, " ") {
		t.Errorf("upgrade phases %v, want %v", phases, want)
	}
	for _, g := range groups {
		var asked []string
		for _, body := range emu.Requests("POST", "/clusters/coder-prod/node-groups/"+g+"/update-version") {
			var in struct{ Version string }
			if err := json.Unmarshal(body, &in); err != nil {
				t.Fatal(err)
			}
			asked = append(asked, in.Version)
		}
		if strings.Join(asked, ",") != strings.Join(hops, ",") {
			t.Errorf("node group %s asked for versions %v, want %v", g, asked, hops)
		}
		if v := aws.ToString(describeGroup(t, env, g).Version); v != to {
			t.Errorf("node group %s at %s after the upgrade, want %s", g, v, to)
		}
	}

	env.Calls.Reset()
	run(engine.ModeApply)
	if m := env.Calls.Mutations(); len(m) != 0 {
		t.Errorf("re-apply after the upgrade made mutating calls: %v", m)
	}
	if f := emu.Faults(); len(f) != 0 {
		t.Errorf("stand-in faults: %v", f)
	}
}

func describeGroup(t *testing.T, env *stagetest.ConfigEnv, name string) *ekstypes.Nodegroup {
	t.Helper()
	w := &world{env: env.Env}
	return w.describe(t, name)
}
