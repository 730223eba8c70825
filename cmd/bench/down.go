package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
)

// downResult is `coderctl down` beside its lower bound and beside
// destroying one stage after another.
type downResult struct {
	WallMS     int64            `json:"wall_ms"`
	RunMS      int64            `json:"run_ms"`
	BoundMS    int64            `json:"critical_path_ms"`
	BoundPath  []string         `json:"critical_path"`
	SerialMS   int64            `json:"stage_by_stage_ms"`
	StageMS    map[string]int64 `json:"stage_ms"`
	Weights    map[string]int64 `json:"weights_ms"`
	AWSCalls   callCounts       `json:"calls"`
	DeleteKind []string         `json:"slowed_deletes"`
}

// deleteOps are the calls after which the proxy holds each kind in its
// deleting status for the profile's Delete duration.
var deleteOps = map[awsproxy.Kind]string{
	awsproxy.EKSCluster: "DeleteCluster", awsproxy.EKSNodegroup: "DeleteNodegroup", awsproxy.EKSAddon: "DeleteAddon",
	awsproxy.RDSInstance: "DeleteDBInstance", awsproxy.NATGateway: "DeleteNatGateway",
	awsproxy.LoadBalancer: "DeleteLoadBalancer",
}

// slowedDeletes are the kinds whose delete call went through the proxy in
// this run: the ground's cloud controller deletes its NLB in moto directly,
// so that wait is not the profile's and must not weigh the bound.
func slowedDeletes(c callCounts) map[awsproxy.Kind]bool {
	out := map[awsproxy.Kind]bool{}
	for kind, op := range deleteOps {
		for k := range c.AWSOperations {
			if strings.HasSuffix(k, "."+op) {
				out[kind] = true
			}
		}
	}
	return out
}

// destroyWeights are the bound's durations for down, made as boundWeights
// makes up's: a step that deletes a slowed resource weighs the profile's
// Delete duration for it (never more than it measured); every other step
// weighs what it measured. Checkpoints run no checks when destroying, so
// they weigh nothing.
func destroyWeights(g *stepGraph, tl *timeline, p awsproxy.Profile, slowed map[awsproxy.Kind]bool) weights {
	w := weights{}
	for _, id := range g.nodes() {
		if isCheckpoint(id) {
			w[id] = 0
			continue
		}
		measured := tl.stepDuration(id)
		if kind, ok := g.kinds[id]; ok && slowed[kind] {
			w[id] = min(measured, p.Delete[kind])
			continue
		}
		w[id] = measured
	}
	return w
}

// destroyLimits are down's critical path and the stage-by-stage sum with
// the same weights: each stage takes its own longest chain of destroys
// (only its in-stage edges), one stage after another in reverse order.
func destroyLimits(g *stepGraph, w weights) (bound time.Duration, path []string, serial time.Duration, perStage map[string]time.Duration) {
	bound, path = longestPathBy(g.DestroyNeeds, g.nodes(), w, nil)
	perStage = map[string]time.Duration{}
	sameStage := func(id, dep string) bool { return !isCheckpoint(dep) && stageOf(dep) == stageOf(id) }
	for _, s := range g.Stages() {
		inner, _ := longestPathBy(g.DestroyNeeds, stageSteps(g, s.Name), w, sameStage)
		perStage[s.Name] = inner + w[s.Name]
		serial += perStage[s.Name]
	}
	return bound, path, serial, perStage
}

// analyseDown computes the down section from its events and calls.
func analyseDown(g *stepGraph, down run, calls callCounts, p awsproxy.Profile) (downResult, error) {
	tl, err := parseTimeline(strings.NewReader(down.stdout))
	if err != nil {
		return downResult{}, fmt.Errorf("coderctl down -o json: %w", err)
	}
	slowed := slowedDeletes(calls)
	w := destroyWeights(g, tl, p, slowed)
	bound, path, serial, perStage := destroyLimits(g, w)
	r := downResult{WallMS: down.wall.Milliseconds(), RunMS: tl.runDuration.Milliseconds(),
		BoundMS: bound.Milliseconds(), BoundPath: path, SerialMS: serial.Milliseconds(),
		StageMS: map[string]int64{}, Weights: map[string]int64{}, AWSCalls: calls}
	for k, v := range perStage {
		r.StageMS[k] = v.Milliseconds()
	}
	for k, v := range w {
		r.Weights[k] = v.Milliseconds()
	}
	for k := range slowed {
		r.DeleteKind = append(r.DeleteKind, string(k))
	}
	slices.Sort(r.DeleteKind)
	return r, nil
}

// downFigures are the down section's rows.
func downFigures(d downResult) []figure {
	sec := func(ms int64) float64 { return float64(ms) / 1000 }
	const s5 = "5. down against the limit"
	return []figure{
		{Key: "down_wall_s", Section: s5, Name: "coderctl down (--delete-database --delete-volumes ...), wall time", Value: sec(d.WallMS), Unit: "s"},
		{Key: "down_critical_path_s", Section: s5, Name: "destroy critical path (profile deletes + measured local work)", Value: sec(d.BoundMS), Unit: "s"},
		figure{Key: "down_over_critical_path", Section: s5, Name: "down / critical path", Value: msRatio(d.WallMS, d.BoundMS), Unit: "ratio"}.within(1.05, false),
		{Key: "down_run_over_critical_path", Section: s5, Name: "  the run alone (first step → summary) / critical path", Value: msRatio(d.RunMS, d.BoundMS), Unit: "ratio"},
		{Key: "down_stage_by_stage_s", Section: s5, Name: "stage by stage in reverse order, same weights", Value: sec(d.SerialMS), Unit: "s"},
		{Key: "down_over_stage_by_stage", Section: s5, Name: "down / stage by stage", Value: msRatio(d.WallMS, d.SerialMS), Unit: "ratio"},
	}
}
