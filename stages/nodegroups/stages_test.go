package nodegroups_test

import (
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	eksstage "github.com/coderctl/coderctl/stages/eks"
	"github.com/coderctl/coderctl/stages/network"
	"github.com/coderctl/coderctl/stages/nodegroups"
	"github.com/coderctl/coderctl/stages/prereqs"
)

// TestWithTheRealStages runs the stage after the real prereqs, network and
// eks stages: the step names it needs exist, a second apply of everything
// changes nothing, and destroy removes
// the groups before the eks stage deletes the cluster (EKS refuses to
// delete a cluster that still has node groups).
func TestWithTheRealStages(t *testing.T) {
	emu := ekstest.Use(t, ekstest.Options{})
	env := stagetest.New(t, nil)
	emu.Wire(env.Deps)
	all := func() []engine.Stage {
		d := env.Deps
		return []engine.Stage{prereqs.New(d), network.New(d), eksstage.New(d), nodegroups.New(d)}
	}
	if _, err := engine.NewGraph(all()); err != nil {
		t.Fatalf("graph: %v", err) // a step name the stage needs is missing
	}

	run := func(mode engine.Mode) *engine.Summary {
		t.Helper()
		sum, _ := env.MustRun(t, all(), engine.Options{Mode: mode})
		return sum
	}
	run(engine.ModeApply)
	if got := env.Deps.State.Get(names.KeyNodeGroups); got != groupsList {
		t.Errorf("NODEGROUPS = %q, want %q", got, groupsList)
	}
	env.Calls.Reset()
	run(engine.ModeApply)
	if got := env.Calls.Mutations(); len(got) != 0 {
		t.Errorf("second apply of all stages made mutating calls: %v", got)
	}
	run(engine.ModeDestroy)
	for _, k := range []string{names.KeyNodeRoleARN, names.KeyNodeGroups} {
		if v := env.Deps.State.Get(k); v != "" {
			t.Errorf("%s = %q after destroy", k, v)
		}
	}
	for k, v := range env.Deps.State.Snapshot() {
		if strings.HasPrefix(v, "arn:aws:iam::123456789012:role/coder-prod-node") {
			t.Errorf("%s still names the node role", k)
		}
	}
}
