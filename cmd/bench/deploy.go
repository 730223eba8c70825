package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
)

// upResult is the first `up`, the bound and the guide, in detail.
type upResult struct {
	WallMS          int64            `json:"wall_ms"`
	RunMS           int64            `json:"run_ms"`
	BeforeRunMS     int64            `json:"before_run_ms"`
	AfterRunMS      int64            `json:"after_run_ms"`
	BoundMS         int64            `json:"critical_path_ms"`
	BoundPath       []pathNode       `json:"critical_path"`
	ProfileOnlyMS   int64            `json:"critical_path_aws_only_ms"`
	ProfileOnlyPath []string         `json:"critical_path_aws_only"`
	GuideMS         int64            `json:"guide_ms"`
	GuideStageMS    map[string]int64 `json:"guide_stage_ms"`
	TypicalPathMS   int64            `json:"model_critical_path_typical_ms"`
	TypicalGuideMS  int64            `json:"model_guide_typical_ms"`
	BinaryPath      []string         `json:"binary_critical_path_typical"`
	AWSCalls        callCounts       `json:"calls"`
	Weights         map[string]int64 `json:"weights_ms"`
}

// pathNode is one node on the bound's critical path: what the bound gave
// it, what it took, and how long it waited to start after its last
// dependency finished (the scheduler's latency).
type pathNode struct {
	ID         string `json:"id"`
	Checkpoint bool   `json:"checkpoint,omitempty"`
	Kind       string `json:"aws_kind,omitempty"`
	WeightMS   int64  `json:"weight_ms"`
	MeasuredMS int64  `json:"measured_ms"`
	StartGapMS int64  `json:"start_gap_ms"`
}

// waitResult is one slowed resource: how long the profile held it, and how
// long after it turned ready coderctl first saw it ready.
type waitResult struct {
	Resource string  `json:"resource"`
	WaitMS   int64   `json:"wait_ms"`
	LagMS    float64 `json:"lag_ms"`
}

// callCounts are one command's AWS and Kubernetes requests.
type callCounts struct {
	WallMS        int64          `json:"wall_ms,omitempty"`
	AWSReads      int            `json:"aws_reads"`
	AWSMutations  int            `json:"aws_mutations"`
	AWSOperations map[string]int `json:"aws_operations"`
	Kube          kubeCalls      `json:"kube"`
}

// deployment is section 1-3's outcome.
type deployment struct {
	planWall time.Duration
	up       upResult
	waits    []waitResult
	verify   callCounts
	secondUp callCounts
	upgrade  *upgradeResult
	down     *downResult
	figures  []figure
}

// benchDeployment runs up, verify and a second up on the proving ground
// behind the realistic profile and computes sections 1-3.
func benchDeployment(ctx context.Context, o options, progress func(string)) (*deployment, error) {
	profile := awsproxy.Realistic(o.scale)
	workDir, err := os.MkdirTemp("", "coderctl-bench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		progress("keeping " + workDir + " (each command's output is in it)")
	} else {
		defer os.RemoveAll(workDir)
	}
	progress("starting the proving ground (realistic profile ×" + scaleText(o.scale) + ") in " + workDir)
	w, err := startWorld(ctx, o.bin, profile, o.poll, workDir)
	if err != nil {
		return nil, err
	}
	defer w.Stop()

	d := &deployment{}
	// The README's flow runs plan before up. It also loads what moto loads
	// lazily on its first calls (seconds on a cold moto, nothing on AWS),
	// which would otherwise be charged to up.
	progress("coderctl plan")
	plan, err := w.succeed(ctx, "plan", "-o", "json")
	if err != nil {
		return nil, err
	}
	d.planWall = plan.wall
	progress("coderctl up")
	w.resetCounts()
	up, err := w.succeed(ctx, "up", "--yes", "-o", "json")
	if err != nil {
		return nil, err
	}
	if err := d.analyseUp(w, up, profile); err != nil {
		return nil, err
	}
	progress("coderctl verify")
	w.resetCounts()
	verify, err := w.succeed(ctx, "verify", "-o", "json")
	if err != nil {
		return nil, err
	}
	d.verify = w.counts(verify)
	progress("second coderctl up")
	w.resetCounts()
	again, err := w.succeed(ctx, "up", "--yes", "-o", "json")
	if err != nil {
		return nil, err
	}
	d.secondUp = w.counts(again)
	d.figures = append(d.figures, d.waitFigures()...)
	d.figures = append(d.figures, rerunFigures(d.secondUp, d.verify)...)
	// An upgrade that fails is recorded, and down still runs: the ground
	// must be emptied either way, and down's figures stand on their own.
	uerr := d.benchUpgrade(ctx, w, profile, progress)
	if uerr != nil {
		uerr = fmt.Errorf("upgrade: %w", uerr)
	}
	if err := d.benchDown(ctx, w, profile, progress); err != nil {
		return d, errors.Join(uerr, fmt.Errorf("down: %w", err))
	}
	return d, uerr
}

// benchDown destroys the deployment with every deletion flag, as the e2e
// teardown does, and sets it beside its destroy critical path. The graph
// is loaded before down, which empties the state it is built from.
func (d *deployment) benchDown(ctx context.Context, w *world, p awsproxy.Profile, progress func(string)) error {
	g, err := loadGraph(w.dir)
	if err != nil {
		return err
	}
	progress("coderctl down")
	w.resetCounts()
	down, err := w.succeed(ctx, "down", "--yes", "--delete-database", "--skip-final-snapshot",
		"--force-delete-secrets", "--delete-volumes", "-o", "json")
	if err != nil {
		return err
	}
	r, err := analyseDown(g, down, w.counts(down), p)
	if err != nil {
		return err
	}
	d.down = &r
	d.figures = append(d.figures, downFigures(r)...)
	return nil
}

// succeed runs a coderctl command that must exit 0.
func (w *world) succeed(ctx context.Context, args ...string) (run, error) {
	r := w.run(ctx, args...)
	if r.code != 0 {
		return r, fmt.Errorf("coderctl %s: exit %d: %s\n%s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr), tail(r.stdout, 8))
	}
	return r, nil
}

func (w *world) resetCounts() {
	w.g.Proxy.ResetCounts()
	w.kube.Reset()
}

func (w *world) counts(r run) callCounts {
	c := w.g.Proxy.Counts()
	ops := map[string]int{}
	for k, v := range c.Reads {
		ops[k] = v
	}
	for k, v := range c.Mutations {
		ops[k] = v
	}
	return callCounts{WallMS: r.wall.Milliseconds(), AWSReads: c.TotalReads(), AWSMutations: c.TotalMutations(),
		AWSOperations: ops, Kube: w.kube.Snapshot()}
}

// analyseUp computes section 1 and the waits of section 2 from the first
// run's events, its calls and the proxy's readiness record.
func (d *deployment) analyseUp(w *world, up run, p awsproxy.Profile) error {
	calls := w.counts(up)
	tl, err := parseTimeline(strings.NewReader(up.stdout))
	if err != nil {
		return fmt.Errorf("coderctl up -o json: %w", err)
	}
	g, err := loadGraph(w.dir)
	if err != nil {
		return err
	}
	slowed := d.recordWaits(w.g.Proxy.Readiness())
	if d.up, err = limits(g, tl, up, p, slowed); err != nil {
		return err
	}
	d.up.AWSCalls = calls
	d.figures = append(d.figures, upFigures(d.up, d.planWall)...)
	return nil
}

// recordWaits keeps each slowed resource's wait and lag, and returns the
// kinds the proxy held back.
func (d *deployment) recordWaits(readiness []awsproxy.Readiness) map[awsproxy.Kind]bool {
	slowed := map[awsproxy.Kind]bool{}
	for _, r := range readiness {
		kind, _, _ := strings.Cut(r.Key, "/")
		slowed[awsproxy.Kind(kind)] = true
		d.waits = append(d.waits, waitResult{Resource: r.Key, WaitMS: r.Waiting.Milliseconds(), LagMS: millis(r.Seen.Sub(r.Ready))})
	}
	return slowed
}

// limits sets the run beside its lower bound, the guide's order and the
// model at real durations.
func limits(g *stepGraph, tl *timeline, up run, p awsproxy.Profile, slowed map[awsproxy.Kind]bool) (upResult, error) {
	bw := boundWeights(g, tl, p, slowed)
	bound, path := longestPath(g, g.nodes(), bw, nil)
	guide, perStage := guideTime(g, bw, guidePhases)
	awsOnly, awsOnlyPath := g.CriticalPath(profileOnlyWeight(g, p, slowed))
	typical, binaryPath := g.CriticalPath(nil)
	typicalGuide, _ := guideTime(g, typicalWeights(g), guidePhases)
	if !slices.Equal(binaryPath, tl.criticalPath) {
		return upResult{}, fmt.Errorf("the in-process graph's critical path %v differs from the one coderctl up printed %v: the bench does not model the binary's graph", binaryPath, tl.criticalPath)
	}
	r := upResult{
		WallMS: up.wall.Milliseconds(), RunMS: tl.runDuration.Milliseconds(),
		BeforeRunMS: tl.runStart.Sub(up.start).Milliseconds(), AfterRunMS: up.start.Add(up.wall).Sub(tl.summaryTime).Milliseconds(),
		BoundMS: bound.Milliseconds(), BoundPath: pathDetail(g, tl, bw, path),
		ProfileOnlyMS: awsOnly.Milliseconds(), ProfileOnlyPath: awsOnlyPath,
		GuideMS: guide.Milliseconds(), GuideStageMS: map[string]int64{},
		TypicalPathMS: typical.Milliseconds(), TypicalGuideMS: typicalGuide.Milliseconds(), BinaryPath: binaryPath,
		Weights: map[string]int64{},
	}
	for k, v := range perStage {
		r.GuideStageMS[k] = v.Milliseconds()
	}
	for k, v := range bw {
		r.Weights[k] = v.Milliseconds()
	}
	return r, nil
}

// upFigures are section 1's rows, with where up lost time against the
// bound: before its first step, inside the path's steps beyond their
// weight, and between them.
func upFigures(u upResult, planWall time.Duration) []figure {
	var beyond, gaps int64
	for _, n := range u.BoundPath {
		beyond += n.MeasuredMS - n.WeightMS
		gaps += n.StartGapMS
	}
	sec := func(ms int64) float64 { return float64(ms) / 1000 }
	const s1 = "1. up against the limit"
	return []figure{
		{Key: "plan_wall_s", Section: s1, Name: "coderctl plan first (read-only), wall time", Value: seconds(planWall), Unit: "s"},
		{Key: "up_wall_s", Section: s1, Name: "coderctl up, wall time", Value: sec(u.WallMS), Unit: "s"},
		{Key: "critical_path_s", Section: s1, Name: "critical path (profile waits + measured local work)", Value: sec(u.BoundMS), Unit: "s"},
		figure{Key: "up_over_critical_path", Section: s1, Name: "up / critical path", Value: msRatio(u.WallMS, u.BoundMS), Unit: "ratio"}.within(1.05, false),
		{Key: "run_over_critical_path", Section: s1, Name: "  the run alone (first step → summary) / critical path", Value: msRatio(u.RunMS, u.BoundMS), Unit: "ratio"},
		{Key: "up_before_run_s", Section: s1, Name: "  lost before the first step (session, validation)", Value: sec(u.BeforeRunMS), Unit: "s"},
		{Key: "up_path_beyond_weights_s", Section: s1, Name: "  lost in path steps beyond their weight (polling, API calls)", Value: sec(beyond), Unit: "s"},
		{Key: "up_path_start_gaps_s", Section: s1, Name: "  lost between path steps (scheduling)", Value: sec(gaps), Unit: "s"},
		{Key: "guide_s", Section: s1, Name: "guide's order, same weights", Value: sec(u.GuideMS), Unit: "s"},
		figure{Key: "up_over_guide", Section: s1, Name: "coderctl / guide", Value: msRatio(u.WallMS, u.GuideMS), Unit: "ratio"}.within(0.65, false),
		{Key: "critical_path_aws_only_s", Section: s1, Name: "critical path of the AWS waits alone", Value: sec(u.ProfileOnlyMS), Unit: "s"},
		{Key: "model_critical_path_min", Section: s1, Name: "model at real durations (Typical): critical path", Value: float64(u.TypicalPathMS) / 60000, Unit: "min"},
		{Key: "model_guide_min", Section: s1, Name: "model at real durations (Typical): guide", Value: float64(u.TypicalGuideMS) / 60000, Unit: "min"},
		{Key: "model_critical_path_over_guide", Section: s1, Name: "model at real durations: critical path / guide", Value: msRatio(u.TypicalPathMS, u.TypicalGuideMS), Unit: "ratio"},
	}
}

// pathDetail describes each node of the bound's path as it really ran.
func pathDetail(g *stepGraph, tl *timeline, w weights, path []string) []pathNode {
	end := func(id string) time.Time {
		if isCheckpoint(id) {
			return tl.stageEnd[id]
		}
		return tl.stepEnd[id]
	}
	var out []pathNode
	for _, id := range path {
		n := pathNode{ID: id, Checkpoint: isCheckpoint(id), WeightMS: w[id].Milliseconds(), Kind: string(g.kinds[id])}
		var start time.Time
		if n.Checkpoint {
			d := tl.checkpointDuration(id, stageSteps(g, id))
			start = tl.stageEnd[id].Add(-d)
			n.MeasuredMS = d.Milliseconds()
		} else {
			start = tl.stepStart[id]
			n.MeasuredMS = tl.stepDuration(id).Milliseconds()
		}
		ready := tl.runStart
		for _, dep := range g.Needs(id) {
			if t := end(dep); t.After(ready) {
				ready = t
			}
		}
		if start.After(ready) {
			n.StartGapMS = start.Sub(ready).Milliseconds()
		}
		out = append(out, n)
	}
	return out
}

// waitFigures are section 2: the polling lag of each kind of slowed
// resource, then over all of them.
func (d *deployment) waitFigures() []figure {
	sort.Slice(d.waits, func(i, j int) bool { return d.waits[i].Resource < d.waits[j].Resource })
	type total struct {
		n    int
		lag  float64
		wait int64
	}
	var kinds []string
	byKind := map[string]*total{}
	all := &total{}
	for _, r := range d.waits {
		kind, _, _ := strings.Cut(r.Resource, "/")
		if byKind[kind] == nil {
			byKind[kind] = &total{}
			kinds = append(kinds, kind)
		}
		for _, t := range []*total{byKind[kind], all} {
			t.n++
			t.lag += r.LagMS
			t.wait += r.WaitMS
		}
	}
	share := func(t *total) float64 {
		if t.wait == 0 {
			return 0
		}
		return 100 * t.lag / float64(t.wait)
	}
	const s2 = "2. waiting overhead (ready → seen by coderctl)"
	var figs []figure
	for _, k := range kinds {
		t := byKind[k]
		figs = append(figs, figure{Key: "wait_lag_share_" + strings.ReplaceAll(k, "-", "_") + "_pct", Section: s2,
			Name: fmt.Sprintf("%s ×%d", k, t.n), Value: share(t), Unit: "%",
			Display: fmt.Sprintf("%.0f ms of %.2f s (%.2f %%)", t.lag, float64(t.wait)/1000, share(t))})
	}
	return append(figs,
		figure{Key: "wait_total_s", Section: s2, Name: fmt.Sprintf("all %d resources: time held by the profile", all.n), Value: float64(all.wait) / 1000, Unit: "s"},
		figure{Key: "wait_lag_total_s", Section: s2, Name: "all: lag after ready", Value: all.lag / 1000, Unit: "s"},
		figure{Key: "wait_lag_share_pct", Section: s2, Name: "all: lag / wait", Value: share(all), Unit: "%"}.within(2, false),
	)
}

// rerunFigures are section 3.
func rerunFigures(again, verify callCounts) []figure {
	const s3 = "3. idempotent re-run and verify"
	return []figure{
		{Key: "second_up_wall_s", Section: s3, Name: "second up, wall time", Value: float64(again.WallMS) / 1000, Unit: "s"},
		{Key: "second_up_aws_reads", Section: s3, Name: "second up, AWS reads", Value: float64(again.AWSReads), Unit: "calls"},
		figure{Key: "second_up_aws_mutations", Section: s3, Name: "second up, AWS mutations", Value: float64(again.AWSMutations), Unit: "calls"}.within(0, false),
		{Key: "second_up_kube_reads", Section: s3, Name: "second up, Kubernetes reads", Value: float64(again.Kube.Reads), Unit: "calls"},
		figure{Key: "second_up_kube_mutations", Section: s3, Name: "second up, Kubernetes writes", Value: float64(again.Kube.Mutations), Unit: "calls"}.within(0, false),
		figure{Key: "verify_wall_s", Section: s3, Name: "verify, wall time", Value: float64(verify.WallMS) / 1000, Unit: "s"}.within(2, true),
		{Key: "verify_aws_reads", Section: s3, Name: "verify, AWS reads", Value: float64(verify.AWSReads), Unit: "calls"},
		figure{Key: "verify_aws_mutations", Section: s3, Name: "verify, AWS mutations", Value: float64(verify.AWSMutations), Unit: "calls"}.within(0, false),
		{Key: "verify_kube_reads", Section: s3, Name: "verify, Kubernetes reads", Value: float64(verify.Kube.Reads), Unit: "calls"},
		figure{Key: "verify_kube_mutations", Section: s3, Name: "verify, Kubernetes writes", Value: float64(verify.Kube.Mutations), Unit: "calls"}.within(0, false),
	}
}

func msRatio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// scaleText shows a scale as "1/200".
func scaleText(s float64) string {
	if s > 0 && s < 1 {
		return fmt.Sprintf("1/%.0f", 1/s)
	}
	return fmt.Sprintf("%g", s)
}

// tail is the last n lines of s, each cut to 300 bytes (a summary line
// holds every check).
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:300] + "…"
		}
	}
	return strings.Join(lines, "\n")
}
