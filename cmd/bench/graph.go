package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/stages"
)

// stepGraph is coderctl's step graph for one deployment directory, and the
// steps that wait for one of the slow proxy's resources.
type stepGraph struct {
	*engine.Graph
	// kinds maps each step that waits for a slowed AWS resource to its kind.
	kinds map[string]awsproxy.Kind
}

// loadGraph builds the step graph in-process for the deployment in dir,
// the way the CLI's session does, without AWS or Kubernetes access: stage
// constructors do no I/O, so this is exactly the graph `up` ran.
func loadGraph(dir string) (*stepGraph, error) {
	envPath := filepath.Join(dir, "coder-infra.env")
	cfgPath := filepath.Join(dir, "cluster-config.yaml")
	store, err := state.Open(envPath)
	if err != nil {
		return nil, err
	}
	cluster, err := config.LoadCluster(cfgPath)
	if err != nil {
		return nil, err
	}
	noEnv := func(string) (string, bool) { return "", false }
	inputs, err := config.ResolveInputs(envPath, store.Snapshot(), noEnv, cluster, cfgPath)
	if err != nil {
		return nil, err
	}
	deps := &deploy.Deps{Inputs: inputs, Cluster: cluster, ConfigPath: cfgPath, State: store, LookupEnv: noEnv}
	g, err := engine.NewGraph(stages.Build(deps), engine.WithInputKeys(config.IsInputKey))
	if err != nil {
		return nil, fmt.Errorf("stage graph: %w", err)
	}
	kinds := map[string]awsproxy.Kind{
		"network/nat":   awsproxy.NATGateway,
		"eks/cluster":   awsproxy.EKSCluster,
		"eks/addons":    awsproxy.EKSAddon, // created in parallel: one duration
		"rds/instance":  awsproxy.RDSInstance,
		"acm/issued":    awsproxy.Certificate,
		"coder/service": awsproxy.LoadBalancer,
	}
	for _, ng := range deps.NodeGroups() {
		kinds["nodegroups/"+ng.Name] = awsproxy.EKSNodegroup
	}
	for id := range kinds {
		if !slices.Contains(g.StepIDs(), id) {
			return nil, fmt.Errorf("step %s is not in coderctl's graph any more: update the bench's step-to-resource map", id)
		}
	}
	return &stepGraph{Graph: g, kinds: kinds}, nil
}

// nodes lists every step ID and every stage name (a stage's checkpoint).
func (g *stepGraph) nodes() []string {
	ids := g.StepIDs()
	for _, s := range g.Stages() {
		ids = append(ids, s.Name)
	}
	return ids
}

// stageOf is the stage of a step ID or checkpoint.
func stageOf(id string) string {
	stage, _, _ := strings.Cut(id, "/")
	return stage
}

func isCheckpoint(id string) bool { return !strings.Contains(id, "/") }

// weights gives every node (steps and checkpoints) a duration.
type weights map[string]time.Duration

// boundWeights are the lower bound's durations: a step that waits for a
// slowed resource weighs the profile's duration for it (never more than it
// measured, so a step that did not wait cannot inflate the bound); every
// other step and every checkpoint weighs what it measured in this run —
// local work on the proving ground that no scheduler removes. slowed holds
// the kinds the proxy actually held back (the ground's NLBs are made by its
// cloud controller directly in moto, so load balancers are not slowed).
func boundWeights(g *stepGraph, tl *timeline, p awsproxy.Profile, slowed map[awsproxy.Kind]bool) weights {
	w := weights{}
	for _, id := range g.nodes() {
		if isCheckpoint(id) {
			w[id] = tl.checkpointDuration(id, stageSteps(g, id))
			continue
		}
		measured := tl.stepDuration(id)
		kind, ok := g.kinds[id]
		if !ok || !slowed[kind] {
			w[id] = measured
			continue
		}
		wait := p.Create[kind]
		if id == "acm/issued" {
			// The certificate's clock starts at RequestCertificate, in
			// acm/certificate; publishing the validation records runs
			// inside that wait.
			wait = max(0, wait-tl.stepDuration("acm/validation-records"))
		}
		w[id] = min(measured, wait)
	}
	return w
}

// profileOnlyWeight is engine.CriticalPath's weight for the bound with
// everything but the slowed AWS resources free.
func profileOnlyWeight(g *stepGraph, p awsproxy.Profile, slowed map[awsproxy.Kind]bool) func(string, time.Duration) time.Duration {
	return func(id string, _ time.Duration) time.Duration {
		if kind, ok := g.kinds[id]; ok && slowed[kind] {
			return p.Create[kind]
		}
		return 0
	}
}

// typicalWeights are the steps' Typical durations (real AWS), checkpoints
// free: the model `coderctl plan` prints.
func typicalWeights(g *stepGraph) weights {
	w := weights{}
	for _, s := range g.Stages() {
		w[s.Name] = 0
		for _, st := range s.Steps {
			w[engine.StepID(s.Name, st.Name)] = st.Typical
		}
	}
	return w
}

func stageSteps(g *stepGraph, stage string) []string {
	var ids []string
	for _, id := range g.StepIDs() {
		if stageOf(id) == stage {
			ids = append(ids, id)
		}
	}
	return ids
}

// longestPath is the critical path through steps and checkpoints. The
// engine's CriticalPath weighs checkpoints zero (it plans from Typical,
// which checkpoints lack); here a checkpoint is a stage's verify, which
// `up` runs and its dependents wait for, so it carries its measured time.
// keep filters edges (nil keeps all).
func longestPath(g *stepGraph, ids []string, w weights, keep func(id, dep string) bool) (time.Duration, []string) {
	return longestPathBy(g.Needs, ids, w, keep)
}

// longestPathBy is longestPath over any direction of the graph: needs says
// what a node waits for (g.Needs for up, g.DestroyNeeds for down).
func longestPathBy(needs func(string) []string, ids []string, w weights, keep func(id, dep string) bool) (time.Duration, []string) {
	finish := map[string]time.Duration{}
	via := map[string]string{}
	var visit func(id string) time.Duration
	visit = func(id string) time.Duration {
		if f, ok := finish[id]; ok {
			return f
		}
		var start time.Duration
		for _, dep := range needs(id) {
			if keep != nil && !keep(id, dep) {
				continue
			}
			if f := visit(dep); f >= start {
				start, via[id] = f, dep
			}
		}
		finish[id] = start + w[id]
		return finish[id]
	}
	end := ""
	for _, id := range ids {
		// Ties go to the later node: a path ends with its stage's checkpoint.
		if visit(id); end == "" || finish[id] >= finish[end] {
			end = id
		}
	}
	var path []string
	for id := end; id != ""; id = via[id] {
		path = append(path, id)
	}
	slices.Reverse(path)
	return finish[end], path
}

// guidePhases is the guide's order: each phase waits for the previous one;
// the stages inside a phase run side by side (the guide creates the node
// groups while RDS creates the database).
var guidePhases = [][]string{{"prereqs"}, {"network"}, {"eks"}, {"nodegroups", "rds"}, {"acm"}, {"secrets"}, {"coder"}, {"provisioners"}}

// guideTime is how long the guide's order takes with the same weights:
// each stage takes its own critical path (its steps, only their in-stage
// dependencies, then its checkpoint) — generous to the guide, whose
// commands inside a stage are typed one after another. A stage the phases
// do not name runs last, on its own.
func guideTime(g *stepGraph, w weights, guide [][]string) (time.Duration, map[string]time.Duration) {
	perStage := map[string]time.Duration{}
	sameStage := func(id, dep string) bool { return !isCheckpoint(dep) && stageOf(dep) == stageOf(id) }
	for _, s := range g.Stages() {
		inner, _ := longestPath(g, stageSteps(g, s.Name), w, sameStage)
		perStage[s.Name] = inner + w[s.Name]
	}
	phases := slices.Clone(guide)
	for _, s := range g.Stages() {
		if !slices.ContainsFunc(phases, func(p []string) bool { return slices.Contains(p, s.Name) }) {
			phases = append(phases, []string{s.Name})
		}
	}
	var total time.Duration
	for _, phase := range phases {
		var longest time.Duration
		for _, name := range phase {
			longest = max(longest, perStage[name])
		}
		total += longest
	}
	return total, perStage
}
