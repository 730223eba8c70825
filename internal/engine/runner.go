package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Mode is what a run does with each step.
type Mode string

// Run modes.
const (
	ModeApply   Mode = "apply"   // apply steps, verify each stage after its steps
	ModePlan    Mode = "plan"    // compute each step's plan; change nothing
	ModeDestroy Mode = "destroy" // destroy steps in reverse dependency order
)

// Options configure one run.
type Options struct {
	Mode Mode
	// Only limits the run to these stages; Skip removes stages. Steps of the
	// stages left out count as already done.
	Only, Skip []string
	// Concurrency bounds how many steps run at once (default 8).
	Concurrency int
	// OnStageApplied is called after a stage's steps and checkpoint succeed
	// in apply mode (the CLI records STAGE_<NAME>_APPLIED_AT with it).
	OnStageApplied func(stage string) error
	// OnStageDestroyed is called after a stage's steps are destroyed.
	OnStageDestroyed func(stage string) error
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// ErrFailed is returned (wrapped) when a step or checkpoint failed.
var ErrFailed = errors.New("run failed")

// Selected resolves --only/--skip against the graph's stages. Unknown names
// are an error naming the valid stages.
func (g *Graph) Selected(only, skip []string) (map[string]bool, error) {
	for _, n := range append(slices.Clone(only), skip...) {
		if _, ok := g.stages[n]; !ok {
			return nil, fmt.Errorf("unknown stage %q (stages: %v)", n, g.names)
		}
	}
	sel := map[string]bool{}
	for _, n := range g.names {
		sel[n] = (len(only) == 0 || slices.Contains(only, n)) && !slices.Contains(skip, n)
	}
	return sel, nil
}

// Run executes the graph in the given mode and returns the summary. It
// starts every node whose dependencies are done, up to the concurrency
// bound; after the first failure it starts nothing new but lets running
// steps finish so they record what they created.
func (g *Graph) Run(ctx context.Context, sink Sink, opts Options) (*Summary, error) {
	sel, err := g.Selected(opts.Only, opts.Skip)
	if err != nil {
		return nil, err
	}
	r := newRun(g, sink, opts, sel)
	return r.execute(ctx)
}

type outcome struct {
	id     string
	err    error
	checks []Check
	acts   []Action
}

type run struct {
	g        *Graph
	sink     Sink
	opts     Options
	selected map[string]bool
	now      func() time.Time

	mu       sync.Mutex
	status   map[string]string // node id -> status
	errs     map[string]error
	checks   map[string][]Check  // stage -> checks
	actions  map[string][]Action // stage -> actions
	started  map[string]time.Time
	finished map[string]time.Time
}

func newRun(g *Graph, sink Sink, opts Options, sel map[string]bool) *run {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if sink == nil {
		sink = SinkFunc(func(Event) {})
	}
	return &run{g: g, sink: sink, opts: opts, selected: sel, now: now,
		status: map[string]string{}, errs: map[string]error{}, checks: map[string][]Check{},
		actions: map[string][]Action{}, started: map[string]time.Time{}, finished: map[string]time.Time{}}
}

// needsOf returns a node's dependencies in this run's direction: destroy
// follows Graph.DestroyNeeds.
func (r *run) needsOf(id string) []string {
	if r.opts.Mode != ModeDestroy {
		return r.g.nodes[id].needs
	}
	return r.g.DestroyNeeds(id)
}

func (r *run) execute(ctx context.Context) (*Summary, error) {
	start := r.now()
	cp, path := r.g.CriticalPath(nil)
	r.sink.Emit(Event{Type: EventRunStarted, Time: start, Status: string(r.opts.Mode), Typical: cp,
		Message: fmt.Sprintf("%s: %d stages, critical path %s", r.opts.Mode, len(r.selectedNames()), cp.Round(time.Second)),
		Data:    map[string]any{"stages": r.selectedNames(), "critical_path": path, "critical_path_ms": cp.Milliseconds()}})

	pending := map[string]bool{}
	for _, id := range r.g.order {
		if r.selected[r.g.nodes[id].stage] {
			pending[id] = true
		} else {
			r.status[id] = StatusSkipped
		}
	}
	for _, name := range r.g.names {
		if !r.selected[name] {
			r.sink.Emit(Event{Type: EventStage, Time: r.now(), Stage: name, Status: StatusSkipped})
		}
	}

	done := make(chan outcome)
	running := 0
	failed := false
	sem := r.opts.Concurrency
	for {
		if !failed && ctx.Err() == nil {
			for _, id := range r.readyNodes(pending) {
				if running >= sem && !r.g.nodes[id].isCheckpoint() {
					break
				}
				delete(pending, id)
				running++
				r.begin(id)
				go func(id string) { done <- r.exec(ctx, id) }(id)
			}
		}
		if running == 0 {
			break
		}
		o := <-done
		running--
		if r.finish(o) {
			failed = true
		}
	}
	// What never ran waited either on a failure (not run) or, in a run with
	// no failure, on a step left pending: then it is pending too, and the
	// run is not a failure — a later run resumes it.
	for id := range pending {
		r.status[id] = StatusNotRun
		if !failed && ctx.Err() == nil {
			r.status[id] = StatusPending
		}
	}
	return r.summarize(start, cp)
}

// readyNodes lists pending nodes whose dependencies are all done or skipped,
// in topological order.
func (r *run) readyNodes(pending map[string]bool) []string {
	var ready []string
	for _, id := range r.g.order {
		if !pending[id] {
			continue
		}
		ok := true
		for _, dep := range r.needsOf(id) {
			st := r.status[dep]
			if st != StatusDone && st != StatusSkipped && st != StatusPlanned {
				ok = false
				break
			}
		}
		if ok {
			ready = append(ready, id)
		}
	}
	return ready
}

func (r *run) begin(id string) {
	n := r.g.nodes[id]
	r.mu.Lock()
	r.status[id] = StatusStarted
	r.started[id] = r.now()
	r.mu.Unlock()
	if r.stageFirstStart(n.stage, id) {
		r.sink.Emit(Event{Type: EventStage, Time: r.now(), Stage: n.stage, Status: StatusStarted})
	}
	if !n.isCheckpoint() {
		r.sink.Emit(Event{Type: EventStep, Time: r.now(), Stage: n.stage, Step: n.step.Name, Status: StatusStarted, Typical: n.step.Typical})
	}
}

// stageFirstStart reports whether id is the first node of its stage to start.
func (r *run) stageFirstStart(stage, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.started["stage:"+stage]; ok {
		return false
	}
	r.started["stage:"+stage] = r.started[id]
	return true
}

// exec runs one node in the run's mode. It never touches shared maps.
func (r *run) exec(ctx context.Context, id string) (o outcome) {
	o.id = id
	n := r.g.nodes[id]
	defer func() {
		if p := recover(); p != nil {
			o.err = fmt.Errorf("%s panicked: %v", id, p)
		}
	}()
	if n.isCheckpoint() {
		if r.opts.Mode == ModeApply {
			o.checks = r.g.stages[n.stage].checks(ctx)
		}
		return o
	}
	rep := &stepReporter{sink: r.sink, stage: n.stage, step: n.step.Name, now: r.now}
	switch r.opts.Mode {
	case ModePlan:
		if n.step.Plan != nil {
			o.acts, o.err = n.step.Plan(ctx)
		}
	case ModeDestroy:
		if n.step.Destroy != nil {
			o.err = n.step.Destroy(ctx, rep)
		}
	default:
		o.err = n.step.Apply(ctx, rep)
	}
	return o
}

// finish records an outcome, emits its events and reports whether the run
// must stop scheduling.
func (r *run) finish(o outcome) bool {
	n := r.g.nodes[o.id]
	r.mu.Lock()
	r.finished[o.id] = r.now()
	dur := r.finished[o.id].Sub(r.started[o.id])
	r.mu.Unlock()

	status := StatusDone
	if r.opts.Mode == ModePlan {
		status = StatusPlanned
	}
	switch {
	case IsPending(o.err):
		status = StatusPending
	case o.err != nil:
		status = StatusFailed
	}
	if n.isCheckpoint() {
		if failed := r.recordChecks(n.stage, o.checks); len(failed) > 0 {
			status = StatusFailed
			o.err = fmt.Errorf("checkpoint %s failed: %v", n.stage, failed)
		}
	} else {
		r.recordStep(n, o, status, dur)
	}
	r.status[o.id] = status
	r.errs[o.id] = o.err
	r.completeStage(n.stage)
	return r.status[o.id] == StatusFailed
}

func (r *run) recordStep(n *node, o outcome, status string, dur time.Duration) {
	for i := range o.acts {
		a := o.acts[i]
		r.sink.Emit(Event{Type: EventPlan, Time: r.now(), Stage: n.stage, Step: n.step.Name, Action: &a})
	}
	r.actions[n.stage] = append(r.actions[n.stage], o.acts...)
	ev := Event{Type: EventStep, Time: r.now(), Stage: n.stage, Step: n.step.Name, Status: status, Duration: dur}
	if o.err != nil {
		ev.Error = o.err.Error()
	}
	r.sink.Emit(ev)
}

// recordChecks emits a checkpoint's checks and returns the failed ones.
func (r *run) recordChecks(stage string, checks []Check) []string {
	for i := range checks {
		checks[i].Stage = stage
		c := checks[i]
		r.sink.Emit(Event{Type: EventCheck, Time: r.now(), Stage: stage, Status: string(c.Status), Check: &c})
	}
	r.checks[stage] = checks
	return failedNames(checks)
}

// completeStage emits the stage's final event once every node of the stage
// has finished, and runs the mode's hook when the stage succeeded.
func (r *run) completeStage(stage string) {
	for _, id := range r.stageNodes(stage) {
		switch r.status[id] {
		case StatusDone, StatusPlanned, StatusFailed, StatusPending:
		default:
			return
		}
	}
	status := r.stageStatus(stage)
	ev := Event{Type: EventStage, Time: r.now(), Stage: stage, Status: status, Duration: r.now().Sub(r.stageStart(stage))}
	if status == StatusDone {
		if err := r.stageHook(stage); err != nil {
			status, ev.Status = StatusFailed, StatusFailed
			r.errs[checkpointID(stage)] = err
			r.status[checkpointID(stage)] = StatusFailed
		}
	}
	for _, id := range r.stageNodes(stage) {
		if err := r.errs[id]; err != nil && ev.Error == "" {
			ev.Error = err.Error()
		}
	}
	r.sink.Emit(ev)
}

func (r *run) stageHook(stage string) error {
	switch {
	case r.opts.Mode == ModeApply && r.opts.OnStageApplied != nil:
		return r.opts.OnStageApplied(stage)
	case r.opts.Mode == ModeDestroy && r.opts.OnStageDestroyed != nil:
		return r.opts.OnStageDestroyed(stage)
	}
	return nil
}

func (r *run) stageStart(stage string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started["stage:"+stage]
}

func failedNames(checks []Check) []string {
	var out []string
	for _, c := range checks {
		if c.Status == Fail {
			out = append(out, c.Name)
		}
	}
	return out
}

func (r *run) selectedNames() []string {
	var out []string
	for _, n := range r.g.names {
		if r.selected[n] {
			out = append(out, n)
		}
	}
	return out
}

// summarize builds per-stage results: a stage's status is the worst of its
// nodes' statuses.
func (r *run) summarize(start time.Time, cp time.Duration) (*Summary, error) {
	sum := &Summary{Mode: string(r.opts.Mode), OK: true, CriticalPath: cp}
	var firstErr error
	for _, name := range r.g.names {
		res := StageResult{Stage: name, Checks: r.checks[name], Actions: r.actions[name]}
		res.Status = r.stageStatus(name)
		if t, ok := r.started["stage:"+name]; ok {
			res.Duration = r.lastFinish(name).Sub(t)
		}
		for _, id := range r.stageNodes(name) {
			if err := r.errs[id]; err != nil && !IsPending(err) {
				if res.Error == "" {
					res.Error = err.Error()
				}
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", id, err)
				}
			}
		}
		for _, c := range res.Checks {
			if c.Status == Fail {
				sum.FailedChecks = append(sum.FailedChecks, name+"/"+c.Name)
			}
		}
		if res.Status == StatusFailed || res.Status == StatusNotRun {
			sum.OK = false
		}
		sum.Stages = append(sum.Stages, res)
	}
	sum.Duration = r.now().Sub(start)
	r.sink.Emit(Event{Type: EventSummary, Time: r.now(), Status: okWord(sum.OK), Duration: sum.Duration, Summary: sum})
	if !sum.OK {
		if firstErr == nil {
			firstErr = errors.New("interrupted")
		}
		return sum, fmt.Errorf("%w: %w", ErrFailed, firstErr)
	}
	return sum, nil
}

func okWord(ok bool) string {
	if ok {
		return StatusDone
	}
	return StatusFailed
}

func (r *run) stageNodes(stage string) []string { return r.g.stageNodes(stage) }

func (r *run) lastFinish(stage string) time.Time {
	var last time.Time
	for _, id := range r.stageNodes(stage) {
		if t := r.finished[id]; t.After(last) {
			last = t
		}
	}
	return last
}

// stageStatus folds node statuses: failed > not-run > pending > started > skipped > done/planned.
func (r *run) stageStatus(stage string) string {
	rank := map[string]int{StatusFailed: 6, StatusNotRun: 5, StatusPending: 4, StatusStarted: 3, StatusPlanned: 1, StatusDone: 1, StatusSkipped: 0}
	worst := StatusSkipped
	for _, id := range r.stageNodes(stage) {
		st := r.status[id]
		if st == "" {
			st = StatusNotRun
		}
		if rank[st] > rank[worst] {
			worst = st
		}
	}
	return worst
}

// stepReporter turns a step's progress into events.
type stepReporter struct {
	sink        Sink
	stage, step string
	now         func() time.Time
}

func (s *stepReporter) Progress(msg string) {
	s.sink.Emit(Event{Type: EventProgress, Time: s.now(), Stage: s.stage, Step: s.step, Message: msg})
}

func (s *stepReporter) Notice(msg string, data map[string]any) {
	s.sink.Emit(Event{Type: EventNotice, Time: s.now(), Stage: s.stage, Step: s.step, Message: msg, Data: data})
}
