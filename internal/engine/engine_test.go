package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder collects events in order.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// stepLog lists "<id> <status>" for step events, in emission order.
func (r *recorder) stepLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Type == EventStep {
			out = append(out, e.Stage+"/"+e.Step+" "+e.Status)
		}
	}
	return out
}

func (r *recorder) index(entry string) int { return slices.Index(r.stepLog(), entry) }

// fakeWorld builds Stages whose steps record their calls.
type fakeWorld struct {
	mu      sync.Mutex
	applied []string
	failOn  map[string]error
	checks  map[string][]Check
	hooks   map[string]func(ctx context.Context) error
}

func newWorld() *fakeWorld {
	return &fakeWorld{failOn: map[string]error{}, checks: map[string][]Check{}, hooks: map[string]func(context.Context) error{}}
}

func (w *fakeWorld) step(stage, name string, needs ...string) Step {
	id := StepID(stage, name)
	do := func(verb string) func(ctx context.Context, r Reporter) error {
		return func(ctx context.Context, r Reporter) error {
			if h := w.hooks[id]; h != nil {
				if err := h(ctx); err != nil {
					return err
				}
			}
			w.mu.Lock()
			w.applied = append(w.applied, verb+" "+id)
			w.mu.Unlock()
			return w.failOn[id]
		}
	}
	return Step{Name: name, Needs: needs, Typical: time.Minute,
		Plan: func(ctx context.Context) ([]Action, error) {
			return []Action{{Kind: Create, Resource: id, Reason: "missing"}}, nil
		},
		Apply: do("apply"), Destroy: do("destroy")}
}

func (w *fakeWorld) stage(name string, needs []string, steps ...Step) Stage {
	return Stage{Name: name, Needs: needs, Steps: steps,
		Verify: func(ctx context.Context) []Check { return w.checks[name] }}
}

func (w *fakeWorld) did(entry string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.applied, entry)
}

// threeStages: network -> (eks, rds); rds/instance needs only network/subnets.
func threeStages(w *fakeWorld) []Stage {
	return []Stage{
		w.stage("network", nil, w.step("network", "vpc"), w.step("network", "subnets", "network/vpc")),
		w.stage("eks", []string{"network"}, w.step("eks", "cluster")),
		w.stage("rds", []string{"network", "eks"},
			w.step("rds", "instance", "network/subnets"),
			w.step("rds", "ingress", "rds/instance", "eks/cluster")),
	}
}

func mustGraph(t *testing.T, stages []Stage) *Graph {
	t.Helper()
	g, err := NewGraph(stages)
	if err != nil {
		t.Fatalf("NewGraph: %v", err)
	}
	return g
}

func TestGraphRejectsBadDependencies(t *testing.T) {
	w := newWorld()
	tests := []struct {
		name   string
		stages []Stage
		want   string
	}{
		{"unknown step", []Stage{w.stage("a", nil, w.step("a", "x", "a/nope"))}, `unknown step or stage "a/nope"`},
		{"unknown stage need", []Stage{w.stage("a", []string{"ghost"}, w.step("a", "x"))}, `unknown stage "ghost"`},
		{"undeclared cross-stage need", []Stage{
			w.stage("a", nil, w.step("a", "x")),
			w.stage("b", nil, w.step("b", "y", "a/x"))}, "does not declare that it needs stage a"},
		{"cycle", []Stage{w.stage("a", nil, w.step("a", "x", "a/y"), w.step("a", "y", "a/x"))}, "dependency cycle among a/x, a/y"},
		{"cross-stage cycle", []Stage{
			w.stage("a", []string{"b"}, w.step("a", "x", "b/y")),
			w.stage("b", []string{"a"}, w.step("b", "y", "a/x"))}, "dependency cycle"},
		{"duplicate step", []Stage{w.stage("a", nil, w.step("a", "x"), w.step("a", "x"))}, "declared twice"},
		{"duplicate stage", []Stage{w.stage("a", nil), w.stage("a", nil)}, "registered twice"},
		{"destroyed alongside a stage it does not need", []Stage{
			w.stage("a", nil, w.step("a", "x")),
			{Name: "b", DestroyAlongside: []string{"a"}}}, `destroyed alongside "a", which it does not need`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewGraph(tt.stages)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRunRespectsOrder(t *testing.T) {
	w := newWorld()
	rec := &recorder{}
	g := mustGraph(t, threeStages(w))
	sum, err := g.Run(context.Background(), rec, Options{Mode: ModeApply})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !sum.OK {
		t.Fatalf("summary not ok: %+v", sum)
	}
	before := [][2]string{
		{"network/vpc done", "network/subnets started"},
		{"network/subnets done", "rds/instance started"},
		{"network/subnets done", "eks/cluster started"}, // eks needs network's checkpoint
		{"rds/instance done", "rds/ingress started"},
		{"eks/cluster done", "rds/ingress started"},
	}
	for _, b := range before {
		i, j := rec.index(b[0]), rec.index(b[1])
		if i < 0 || j < 0 || i > j {
			t.Errorf("%q (at %d) should come before %q (at %d); log %v", b[0], i, b[1], j, rec.stepLog())
		}
	}
}

// TestIndependentStepsOverlap proves two steps with no dependency between
// them run at the same time: each waits until it has seen the other start.
// A serial runner would make the first wait forever (bounded by a timeout).
func TestIndependentStepsOverlap(t *testing.T) {
	w := newWorld()
	var started sync.WaitGroup
	started.Add(2)
	barrier := func(ctx context.Context) error {
		started.Done()
		done := make(chan struct{})
		go func() { started.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the other step never started: steps did not overlap")
		}
	}
	w.hooks["eks/cluster"] = barrier
	w.hooks["rds/instance"] = barrier
	rec := &recorder{}
	g := mustGraph(t, threeStages(w))
	if _, err := g.Run(context.Background(), rec, Options{Mode: ModeApply}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Both started before either finished.
	firstDone := min(rec.index("eks/cluster done"), rec.index("rds/instance done"))
	if rec.index("eks/cluster started") > firstDone || rec.index("rds/instance started") > firstDone {
		t.Fatalf("steps did not overlap: %v", rec.stepLog())
	}
}

func TestConcurrencyBound(t *testing.T) {
	w := newWorld()
	var mu sync.Mutex
	running, peak := 0, 0
	var steps []Step
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		steps = append(steps, w.step("s", n))
		w.hooks["s/"+n] = func(ctx context.Context) error {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // hold the slot so others would pile up
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		}
	}
	g := mustGraph(t, []Stage{w.stage("s", nil, steps...)})
	if _, err := g.Run(context.Background(), nil, Options{Mode: ModeApply, Concurrency: 2}); err != nil {
		t.Fatal(err)
	}
	if peak != 2 {
		t.Fatalf("peak concurrency = %d, want 2", peak)
	}
}

func TestFailureStopsNewWork(t *testing.T) {
	w := newWorld()
	w.failOn["network/subnets"] = errors.New("subnet CIDR conflict")
	rec := &recorder{}
	g := mustGraph(t, threeStages(w))
	sum, err := g.Run(context.Background(), rec, Options{Mode: ModeApply})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "subnet CIDR conflict") {
		t.Fatalf("err = %v, want ErrFailed naming the cause", err)
	}
	for _, never := range []string{"apply eks/cluster", "apply rds/instance", "apply rds/ingress"} {
		if w.did(never) {
			t.Errorf("%s ran after the failure", never)
		}
	}
	got := map[string]string{}
	for _, s := range sum.Stages {
		got[s.Stage] = s.Status
	}
	want := map[string]string{"network": StatusFailed, "eks": StatusNotRun, "rds": StatusNotRun}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stage %s status %q, want %q", k, got[k], v)
		}
	}
}

// TestRunningStepsFinishAfterFailure: a step already running when another
// fails is allowed to finish (so it records what it created).
func TestRunningStepsFinishAfterFailure(t *testing.T) {
	w := newWorld()
	release := make(chan struct{})
	w.hooks["rds/instance"] = func(ctx context.Context) error { <-release; return nil }
	w.hooks["eks/cluster"] = func(ctx context.Context) error { close(release); return errors.New("boom") }
	stages := []Stage{
		w.stage("network", nil, w.step("network", "vpc")),
		w.stage("eks", []string{"network"}, w.step("eks", "cluster", "network/vpc")),
		w.stage("rds", []string{"network"}, w.step("rds", "instance", "network/vpc"), w.step("rds", "after", "rds/instance")),
	}
	g := mustGraph(t, stages)
	_, err := g.Run(context.Background(), nil, Options{Mode: ModeApply})
	if err == nil {
		t.Fatal("want failure")
	}
	if !w.did("apply rds/instance") {
		t.Error("running step rds/instance was not allowed to finish")
	}
	if w.did("apply rds/after") {
		t.Error("rds/after started after the failure")
	}
}

func TestCheckpointFailureStopsDependents(t *testing.T) {
	w := newWorld()
	w.checks["network"] = []Check{Passf("vpc", "ok"), Failf("routes", "fix routes", "private subnet has no NAT route")}
	rec := &recorder{}
	g := mustGraph(t, threeStages(w))
	sum, err := g.Run(context.Background(), rec, Options{Mode: ModeApply})
	if err == nil || !strings.Contains(err.Error(), "routes") {
		t.Fatalf("err = %v, want the failed check named", err)
	}
	if !slices.Equal(sum.FailedChecks, []string{"network/routes"}) {
		t.Errorf("FailedChecks = %v", sum.FailedChecks)
	}
	if w.did("apply eks/cluster") {
		t.Error("eks ran although network's checkpoint failed")
	}
}

func TestOnlySkipAndDryRun(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantDid    []string
		wantNotDid []string
		wantPlan   int
	}{
		{"only rds", Options{Mode: ModeApply, Only: []string{"rds"}},
			[]string{"apply rds/instance", "apply rds/ingress"}, []string{"apply network/vpc", "apply eks/cluster"}, 0},
		{"skip eks", Options{Mode: ModeApply, Skip: []string{"eks"}},
			[]string{"apply network/vpc", "apply rds/ingress"}, []string{"apply eks/cluster"}, 0},
		{"dry run changes nothing", Options{Mode: ModePlan},
			nil, []string{"apply network/vpc", "apply rds/instance"}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			rec := &recorder{}
			g := mustGraph(t, threeStages(w))
			if _, err := g.Run(context.Background(), rec, tt.opts); err != nil {
				t.Fatal(err)
			}
			for _, d := range tt.wantDid {
				if !w.did(d) {
					t.Errorf("%s did not run", d)
				}
			}
			for _, d := range tt.wantNotDid {
				if w.did(d) {
					t.Errorf("%s ran", d)
				}
			}
			plans := 0
			for _, e := range rec.events {
				if e.Type == EventPlan {
					plans++
				}
			}
			if plans != tt.wantPlan {
				t.Errorf("plan events = %d, want %d", plans, tt.wantPlan)
			}
		})
	}
}

func TestUnknownOnlyStage(t *testing.T) {
	g := mustGraph(t, threeStages(newWorld()))
	_, err := g.Run(context.Background(), nil, Options{Mode: ModeApply, Only: []string{"rdss"}})
	if err == nil || !strings.Contains(err.Error(), `unknown stage "rdss"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDestroyRunsInReverse(t *testing.T) {
	w := newWorld()
	rec := &recorder{}
	g := mustGraph(t, threeStages(w))
	var destroyed []string
	_, err := g.Run(context.Background(), rec, Options{Mode: ModeDestroy,
		OnStageDestroyed: func(s string) error { destroyed = append(destroyed, s); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	before := [][2]string{
		{"rds/ingress done", "rds/instance started"},
		{"rds/ingress done", "eks/cluster started"},
		{"rds/instance done", "network/subnets started"},
		{"eks/cluster done", "network/subnets started"},
		{"network/subnets done", "network/vpc started"},
		// Stage order holds even without a step edge: rds/instance needs
		// only network/subnets, yet eks (which rds needs) waits for it.
		{"rds/instance done", "eks/cluster started"},
	}
	for _, b := range before {
		if i, j := rec.index(b[0]), rec.index(b[1]); i < 0 || j < 0 || i > j {
			t.Errorf("%q should come before %q; log %v", b[0], b[1], rec.stepLog())
		}
	}
	if len(destroyed) != 3 || destroyed[2] != "network" {
		t.Errorf("stages destroyed in order %v, want network last", destroyed)
	}
}

// TestDestroyAlongside: a stage destroyed alongside one it needs lets that
// stage's steps go as soon as the step edges allow: eks/cluster is deleted
// while rds/instance still is (the instance's destroy waits to see it
// start), after rds/ingress, and the network still waits for all of rds.
func TestDestroyAlongside(t *testing.T) {
	w := newWorld()
	stages := threeStages(w)
	stages[2].DestroyAlongside = []string{"eks"}
	clusterStarted := make(chan struct{})
	var once sync.Once
	w.hooks["eks/cluster"] = func(context.Context) error { once.Do(func() { close(clusterStarted) }); return nil }
	w.hooks["rds/instance"] = func(ctx context.Context) error {
		select {
		case <-clusterStarted:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("eks/cluster was not destroyed while rds/instance was")
		}
	}
	rec := &recorder{}
	if _, err := mustGraph(t, stages).Run(context.Background(), rec, Options{Mode: ModeDestroy}); err != nil {
		t.Fatal(err)
	}
	before := [][2]string{
		{"rds/ingress done", "eks/cluster started"},
		{"eks/cluster started", "rds/instance done"},
		{"rds/instance done", "network/subnets started"},
		{"eks/cluster done", "network/subnets started"},
	}
	for _, b := range before {
		if i, j := rec.index(b[0]), rec.index(b[1]); i < 0 || j < 0 || i > j {
			t.Errorf("%q should come before %q; log %v", b[0], b[1], rec.stepLog())
		}
	}
}

func TestPendingIsNotFailure(t *testing.T) {
	w := newWorld()
	w.failOn["rds/instance"] = Pending("waiting for DNS records")
	g := mustGraph(t, threeStages(w))
	sum, err := g.Run(context.Background(), nil, Options{Mode: ModeApply})
	if err != nil {
		t.Fatalf("a run left pending is not a failure: %v", err)
	}
	want := map[string]string{"network": StatusDone, "eks": StatusDone, "rds": StatusPending}
	for _, s := range sum.Stages {
		if s.Status != want[s.Stage] {
			t.Errorf("%s status = %s, want %s", s.Stage, s.Status, want[s.Stage])
		}
	}
	if w.did("apply rds/ingress") {
		t.Error("dependent of a pending step ran")
	}
}

func TestPendingThenFailureIsFailure(t *testing.T) {
	w := newWorld()
	w.failOn["rds/instance"] = Pending("waiting for DNS records")
	w.failOn["eks/cluster"] = errors.New("boom")
	g := mustGraph(t, threeStages(w))
	sum, err := g.Run(context.Background(), nil, Options{Mode: ModeApply})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want the failure", err)
	}
	if sum.OK {
		t.Error("summary ok despite a failed step")
	}
}

func TestCriticalPath(t *testing.T) {
	w := newWorld()
	stages := threeStages(w)
	g := mustGraph(t, stages)
	weights := map[string]time.Duration{
		"network/vpc": 1 * time.Minute, "network/subnets": 1 * time.Minute,
		"eks/cluster": 13 * time.Minute, "rds/instance": 20 * time.Minute, "rds/ingress": 1 * time.Minute,
	}
	total, path := g.CriticalPath(func(id string, _ time.Duration) time.Duration { return weights[id] })
	if total != 23*time.Minute {
		t.Errorf("critical path = %s, want 23m (vpc, subnets, rds instance, ingress)", total)
	}
	if want := []string{"network/vpc", "network/subnets", "rds/instance", "rds/ingress"}; !slices.Equal(path, want) {
		t.Errorf("path = %v, want %v", path, want)
	}
}

func TestVerifyStagesTagsChecks(t *testing.T) {
	w := newWorld()
	w.checks["eks"] = []Check{Passf("active", "ACTIVE")}
	w.checks["rds"] = []Check{Failf("multi-az", "modify the instance", "MultiAZ=false")}
	g := mustGraph(t, threeStages(w))
	checks, err := g.VerifyStages(context.Background(), []string{"rds", "eks"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || checks[0].Stage != "eks" || checks[1].Stage != "rds" || checks[1].Status != Fail {
		t.Fatalf("checks = %+v", checks)
	}
}

// TestCheckDestroyAll: destroy's checks run for the selected stages only,
// and a stage's Validate is not among them.
func TestCheckDestroyAll(t *testing.T) {
	w := newWorld()
	refused := errors.New("protected")
	stages := threeStages(w)
	stages[2].CheckDestroy = func(context.Context) error { return refused }
	stages[1].Validate = func(context.Context) error { return errors.New("an input only creating needs") }
	g := mustGraph(t, stages)
	tests := []struct {
		name       string
		only, skip []string
		want       error
	}{
		{name: "every stage", want: refused},
		{name: "rds skipped", skip: []string{"rds"}},
		{name: "eks alone", only: []string{"eks"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := g.CheckDestroyAll(context.Background(), tc.only, tc.skip); !errors.Is(err, tc.want) {
				t.Errorf("CheckDestroyAll = %v, want %v", err, tc.want)
			}
		})
	}
}
