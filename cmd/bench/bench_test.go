package main

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
)

// threeStages: a → {b, c}. b/p needs a/x across stages (a step edge); c/r
// declares no needs, so it waits for a's checkpoint.
func threeStages(t *testing.T) *stepGraph {
	t.Helper()
	noop := func(context.Context, engine.Reporter) error { return nil }
	step := func(name string, typical time.Duration, needs ...string) engine.Step {
		return engine.Step{Name: name, Needs: needs, Typical: typical, Apply: noop}
	}
	g, err := engine.NewGraph([]engine.Stage{
		engine.Stage{Name: "a", Steps: []engine.Step{step("x", time.Minute), step("y", 2*time.Minute, "a/x")}},
		engine.Stage{Name: "b", Needs: []string{"a"}, Steps: []engine.Step{step("p", 5*time.Minute, "a/x"), step("q", time.Minute, "b/p")}},
		engine.Stage{Name: "c", Needs: []string{"a"}, Steps: []engine.Step{step("r", 3*time.Minute)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &stepGraph{Graph: g, kinds: map[string]awsproxy.Kind{"b/p": awsproxy.EKSCluster}}
}

func TestLongestPathWeighsCheckpoints(t *testing.T) {
	g := threeStages(t)
	w := typicalWeights(g)
	got, path := longestPath(g, g.nodes(), w, nil)
	if want := 7 * time.Minute; got != want {
		t.Errorf("critical path = %s, want %s", got, want)
	}
	if want := []string{"a/x", "b/p", "b/q", "b"}; !slices.Equal(path, want) {
		t.Errorf("path = %v, want %v", path, want)
	}
	// A slow checkpoint of a puts c, which waits for it, on the path.
	w["a"] = 3 * time.Minute
	got, path = longestPath(g, g.nodes(), w, nil)
	if want := 9 * time.Minute; got != want || !slices.Contains(path, "c/r") {
		t.Errorf("with a's checkpoint at 3m: %s via %v, want %s via c/r", got, path, want)
	}
	// With checkpoints free, it agrees with the engine's own CriticalPath.
	w["a"] = 0
	mine, _ := longestPath(g, g.nodes(), w, nil)
	engines, _ := g.CriticalPath(nil)
	if mine != engines {
		t.Errorf("longestPath %s != engine.CriticalPath %s", mine, engines)
	}
}

func TestGuideTime(t *testing.T) {
	g := threeStages(t)
	w := typicalWeights(g)
	w["a"] = 30 * time.Second
	tests := []struct {
		name   string
		phases [][]string
		want   time.Duration
	}{
		{"each stage after the previous", nil, 3*time.Minute + 30*time.Second + 6*time.Minute + 3*time.Minute},
		{"b and c side by side", [][]string{{"a"}, {"b", "c"}}, 3*time.Minute + 30*time.Second + 6*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, perStage := guideTime(g, w, tt.phases)
			if got != tt.want {
				t.Errorf("guide = %s, want %s (stages %v)", got, tt.want, perStage)
			}
			// b's own path ignores a/x, which a finished in an earlier phase.
			if perStage["b"] != 6*time.Minute {
				t.Errorf("stage b = %s, want 6m", perStage["b"])
			}
		})
	}
}

func TestBoundWeights(t *testing.T) {
	g := threeStages(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tl := &timeline{
		stepStart:  map[string]time.Time{"a/x": at(0), "a/y": at(1), "b/p": at(1), "b/q": at(20), "c/r": at(4)},
		stepEnd:    map[string]time.Time{"a/x": at(1), "a/y": at(3), "b/p": at(20), "b/q": at(21), "c/r": at(5)},
		stageStart: map[string]time.Time{"a": at(0), "b": at(1), "c": at(4)},
		stageEnd:   map[string]time.Time{"a": at(3.5), "b": at(21.25), "c": at(5)},
	}
	p := awsproxy.Profile{Create: map[awsproxy.Kind]time.Duration{awsproxy.EKSCluster: 15 * time.Second}}
	tests := []struct {
		name   string
		slowed map[awsproxy.Kind]bool
		want   map[string]time.Duration
	}{
		{"slowed: the profile's wait, not the measured 19 s", map[awsproxy.Kind]bool{awsproxy.EKSCluster: true},
			map[string]time.Duration{"b/p": 15 * time.Second, "a/y": 2 * time.Second, "a": 500 * time.Millisecond, "b": 250 * time.Millisecond}},
		{"not slowed by the proxy: measured", map[awsproxy.Kind]bool{},
			map[string]time.Duration{"b/p": 19 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := boundWeights(g, tl, p, tt.slowed)
			for id, want := range tt.want {
				if w[id] != want {
					t.Errorf("weight[%s] = %s, want %s", id, w[id], want)
				}
			}
		})
	}
	// A step that finished sooner than the profile's wait (it did not
	// wait) weighs what it measured: the bound never exceeds reality.
	tl.stepEnd["b/p"] = at(2)
	if w := boundWeights(g, tl, p, map[awsproxy.Kind]bool{awsproxy.EKSCluster: true}); w["b/p"] != time.Second {
		t.Errorf("weight of a step that did not wait = %s, want its measured 1s", w["b/p"])
	}
}

func TestParseTimeline(t *testing.T) {
	lines := `{"type":"run","time":"2026-01-01T00:00:00Z","critical_path":["a/x","b/p"],"critical_path_ms":420000}
{"type":"stage","time":"2026-01-01T00:00:00Z","stage":"a","status":"started"}
{"type":"step","time":"2026-01-01T00:00:00Z","stage":"a","step":"x","status":"started"}
{"type":"progress","time":"2026-01-01T00:00:00.5Z","stage":"a","step":"x","message":"waiting"}
{"type":"step","time":"2026-01-01T00:00:01.25Z","stage":"a","step":"x","status":"done","duration_ms":1250}
{"type":"check","time":"2026-01-01T00:00:01.5Z","stage":"a","name":"ok","status":"pass"}
{"type":"stage","time":"2026-01-01T00:00:01.75Z","stage":"a","status":"done"}
{"type":"summary","time":"2026-01-01T00:00:02Z","status":"done","ok":true,"duration_ms":2000}
`
	tl, err := parseTimeline(strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	if got := tl.stepDuration("a/x"); got != 1250*time.Millisecond {
		t.Errorf("a/x took %s, want 1.25s", got)
	}
	if got := tl.checkpointDuration("a", []string{"a/x"}); got != 500*time.Millisecond {
		t.Errorf("a's checkpoint took %s, want 500ms", got)
	}
	if !tl.ok || tl.runDuration != 2*time.Second || !slices.Equal(tl.criticalPath, []string{"a/x", "b/p"}) {
		t.Errorf("summary: ok=%v run=%s path=%v", tl.ok, tl.runDuration, tl.criticalPath)
	}
	if _, err := parseTimeline(strings.NewReader(strings.SplitAfter(lines, "\n")[0])); err == nil {
		t.Error("a run without a summary line parsed")
	}
	if _, err := parseTimeline(strings.NewReader("Error: nope\n")); err == nil {
		t.Error("a non-JSON line parsed")
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/coderctl/coderctl/internal/state
BenchmarkLoad200-2   	    2847	    437661 ns/op	  232650 B/op	    1934 allocs/op
PASS
pkg: github.com/coderctl/coderctl/internal/engine
BenchmarkRun200-16   	     397	   3177804.5 ns/op	  421642 B/op	    2221 allocs/op
ok  	github.com/coderctl/coderctl/internal/engine	3.722s
`
	got, err := parseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []goBenchmark{
		{Package: "github.com/coderctl/coderctl/internal/state", Name: "BenchmarkLoad200", Iterations: 2847, NsPerOp: 437661, BytesPerOp: 232650, AllocsPerOp: 1934},
		{Package: "github.com/coderctl/coderctl/internal/engine", Name: "BenchmarkRun200", Iterations: 397, NsPerOp: 3177804.5, BytesPerOp: 421642, AllocsPerOp: 2221},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
	}
}

func TestKubeVerbAndResource(t *testing.T) {
	tests := []struct{ method, url, want string }{
		{"GET", "/api/v1/nodes", "get nodes"},
		{"GET", "/api/v1/namespaces/coder", "get namespaces"},
		{"GET", "/api/v1/namespaces/coder/pods?watch=true", "watch pods"},
		{"PATCH", "/api/v1/nodes/system-0", "patch nodes"},
		{"PUT", "/api/v1/namespaces/coder/pods/x/status", "update pods/status"},
		{"POST", "/apis/apps/v1/namespaces/coder/deployments", "create deployments"},
		{"DELETE", "/apis/secrets-store.csi.x-k8s.io/v1/namespaces/coder/secretproviderclasses/coder", "delete secretproviderclasses"},
		{"GET", "/apis/apps/v1", "get discovery"},
		{"GET", "/version", "get discovery"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.url, nil)
		if got := kubeVerb(r) + " " + kubeResource(r.URL.Path); got != tt.want {
			t.Errorf("%s %s = %q, want %q", tt.method, tt.url, got, tt.want)
		}
	}
}

func TestKubeCallsSplitReadsAndWrites(t *testing.T) {
	kc := &kubeCounter{calls: map[string]int{"get nodes": 3, "watch pods": 1, "patch nodes": 2, "create deployments": 1}}
	if c := kc.Snapshot(); c.Reads != 4 || c.Mutations != 3 {
		t.Errorf("reads %d, writes %d; want 4 and 3", c.Reads, c.Mutations)
	}
	kc.Reset()
	if c := kc.Snapshot(); c.Reads+c.Mutations != 0 {
		t.Errorf("after Reset: %+v", c)
	}
}

func TestFigureTargets(t *testing.T) {
	tests := []struct {
		f      figure
		limit  float64
		strict bool
		target string
		ok     bool
	}{
		{figure{Value: 1.04, Unit: "ratio"}, 1.05, false, "≤ 1.05", true},
		{figure{Value: 1.06, Unit: "ratio"}, 1.05, false, "≤ 1.05", false},
		{figure{Value: 2, Unit: "s"}, 2, true, "< 2.00 s", false},
		{figure{Value: 0, Unit: "calls"}, 0, false, "= 0", true},
		{figure{Value: 3, Unit: "calls"}, 0, false, "= 0", false},
	}
	for _, tt := range tests {
		got := tt.f.within(tt.limit, tt.strict)
		if got.Target != tt.target || got.OK == nil || *got.OK != tt.ok {
			t.Errorf("%v within %v (strict %v) = %q ok=%v, want %q ok=%v", tt.f.Value, tt.limit, tt.strict, got.Target, *got.OK, tt.target, tt.ok)
		}
	}
}

func TestMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	if got := median(ms(50, 10, 30)); got != 30*time.Millisecond {
		t.Errorf("median of 3 = %s", got)
	}
	if got := median(ms(40, 10, 30, 20)); got != 25*time.Millisecond {
		t.Errorf("median of 4 = %s", got)
	}
}

func TestUpFigures(t *testing.T) {
	u := upResult{WallMS: 33000, RunMS: 31000, BeforeRunMS: 1500, BoundMS: 30000, GuideMS: 60000,
		TypicalPathMS: 30 * 60000, TypicalGuideMS: 60 * 60000,
		BoundPath: []pathNode{
			{ID: "eks/cluster", WeightMS: 15600, MeasuredMS: 15900},
			{ID: "nodegroups/system", WeightMS: 3600, MeasuredMS: 3800, StartGapMS: 5},
			{ID: "nodegroups", Checkpoint: true, WeightMS: 50, MeasuredMS: 50, StartGapMS: 2},
		}}
	byKey := map[string]figure{}
	for _, f := range upFigures(u, 2*time.Second) {
		byKey[f.Key] = f
	}
	tests := []struct {
		key  string
		want float64
		ok   *bool
	}{
		{"up_over_critical_path", 1.1, ptr(false)},
		{"run_over_critical_path", 31.0 / 30, nil},
		{"up_over_guide", 0.55, ptr(true)},
		{"up_path_beyond_weights_s", 0.5, nil},
		{"up_path_start_gaps_s", 0.007, nil},
		{"model_critical_path_over_guide", 0.5, nil},
	}
	for _, tt := range tests {
		f, found := byKey[tt.key]
		if !found {
			t.Errorf("no figure %s", tt.key)
			continue
		}
		if diff := f.Value - tt.want; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("%s = %v, want %v", tt.key, f.Value, tt.want)
		}
		if tt.ok != nil && (f.OK == nil || *f.OK != *tt.ok) {
			t.Errorf("%s ok = %v, want %v", tt.key, f.OK, *tt.ok)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestDestroyLimits checks the destroy bound's arithmetic on threeStages:
// down reverses the step edges and makes a wait for all of b and c.
func TestDestroyLimits(t *testing.T) {
	g := threeStages(t)
	tests := []struct {
		name            string
		weights         func(w weights)
		bound, serial   time.Duration
		first, last     string
		stageA, stageB  time.Duration
		pathHasC, pathB bool
	}{
		// b: q then p (6m), beside c/r (3m); then a: y then x (3m).
		{name: "typical", weights: func(weights) {}, bound: 9 * time.Minute, serial: 12 * time.Minute,
			first: "b", last: "a/x", stageA: 3 * time.Minute, stageB: 6 * time.Minute, pathB: true},
		// c/r slower than all of b: the path goes through c instead.
		{name: "slow c", weights: func(w weights) { w["c/r"] = 10 * time.Minute }, bound: 13 * time.Minute, serial: 19 * time.Minute,
			first: "c", last: "a/x", stageA: 3 * time.Minute, stageB: 6 * time.Minute, pathHasC: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := typicalWeights(g)
			tt.weights(w)
			bound, path, serial, perStage := destroyLimits(g, w)
			if bound != tt.bound || serial != tt.serial {
				t.Errorf("bound %s, serial %s; want %s, %s", bound, serial, tt.bound, tt.serial)
			}
			if len(path) == 0 || path[0] != tt.first || path[len(path)-1] != tt.last {
				t.Errorf("path %v: want it from %s to %s", path, tt.first, tt.last)
			}
			if slices.Contains(path, "c/r") != tt.pathHasC || slices.Contains(path, "b/p") != tt.pathB {
				t.Errorf("path %v: through c/r %v, through b/p %v", path, tt.pathHasC, tt.pathB)
			}
			if perStage["a"] != tt.stageA || perStage["b"] != tt.stageB {
				t.Errorf("per stage %v", perStage)
			}
		})
	}
}

// TestDestroyWeights: a slowed delete weighs the profile's Delete duration
// (capped by what it measured), a delete the proxy did not see weighs what
// it measured, checkpoints nothing.
func TestDestroyWeights(t *testing.T) {
	g := threeStages(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tl := &timeline{stepStart: map[string]time.Time{}, stepEnd: map[string]time.Time{}}
	for id, d := range map[string]time.Duration{"a/x": time.Second, "a/y": 2 * time.Second, "b/p": 9 * time.Second, "b/q": time.Second, "c/r": 3 * time.Second} {
		tl.stepStart[id], tl.stepEnd[id] = t0, t0.Add(d)
	}
	p := awsproxy.Profile{Delete: map[awsproxy.Kind]time.Duration{awsproxy.EKSCluster: 4 * time.Second}}
	tests := []struct {
		name   string
		slowed map[awsproxy.Kind]bool
		want   time.Duration
	}{
		{"slowed delete weighs the profile", map[awsproxy.Kind]bool{awsproxy.EKSCluster: true}, 4 * time.Second},
		{"unslowed delete weighs what it measured", nil, 9 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := destroyWeights(g, tl, p, tt.slowed)
			if w["b/p"] != tt.want || w["c/r"] != 3*time.Second || w["a"] != 0 {
				t.Errorf("b/p %s (want %s), c/r %s, checkpoint a %s", w["b/p"], tt.want, w["c/r"], w["a"])
			}
		})
	}
}

func TestSlowedDeletes(t *testing.T) {
	got := slowedDeletes(callCounts{AWSOperations: map[string]int{"eks.DeleteCluster": 1, "rds.DeleteDBInstance": 1, "eks.DescribeCluster": 9}})
	if !got[awsproxy.EKSCluster] || !got[awsproxy.RDSInstance] || got[awsproxy.LoadBalancer] || len(got) != 2 {
		t.Errorf("slowed deletes %v", got)
	}
}

func TestRaiseVersion(t *testing.T) {
	// The newest two versions coderctl offers: the last has no next minor.
	v := config.SupportedEKSVersions()
	prev, last := v[len(v)-2], v[len(v)-1]
	tests := []struct {
		name, in, want, from, to string
		wantErr                  bool
	}{
		{name: "next minor", in: "metadata:\n  name: x\n  version: \"" + prev + "\"\n", want: "metadata:\n  name: x\n  version: \"" + last + "\"\n", from: prev, to: last},
		{name: "no next minor offered", in: "metadata:\n  version: \"" + last + "\"\n", wantErr: true},
		{name: "no version line", in: "metadata:\n  name: x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, from, to, err := raiseVersion([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (string(out) != tt.want || from != tt.from || to != tt.to) {
				t.Errorf("got %q %s→%s, want %q %s→%s", out, from, to, tt.want, tt.from, tt.to)
			}
		})
	}
}

func TestUpgradeModel(t *testing.T) {
	p := awsproxy.Profile{Create: map[awsproxy.Kind]time.Duration{
		awsproxy.EKSVersionUpdate: 10 * time.Second, awsproxy.EKSAddonUpdate: 2 * time.Second, awsproxy.EKSNodegroupUpdate: 5 * time.Second}}
	tests := []struct {
		groups               int
		parallel, sequential time.Duration
	}{
		{0, 12 * time.Second, 12 * time.Second},
		{1, 17 * time.Second, 17 * time.Second},
		{3, 17 * time.Second, 27 * time.Second},
	}
	for _, tt := range tests {
		par, seq := upgradeModel(p, tt.groups)
		if par != tt.parallel || seq != tt.sequential {
			t.Errorf("%d groups: %s, %s; want %s, %s", tt.groups, par, seq, tt.parallel, tt.sequential)
		}
	}
}

// TestUpgradeLimits: node group steps weigh the profile's group update
// (capped by what they measured); with the groups one after another the
// path's group is replaced by all of them in turn.
func TestUpgradeLimits(t *testing.T) {
	g := threeStages(t)
	g.kinds = map[string]awsproxy.Kind{"b/p": awsproxy.EKSNodegroup, "c/r": awsproxy.EKSNodegroup}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tl := &timeline{stepStart: map[string]time.Time{}, stepEnd: map[string]time.Time{}, stageEnd: map[string]time.Time{}}
	for id, d := range map[string]time.Duration{"a/x": time.Second, "a/y": 2 * time.Second, "b/p": 9 * time.Second, "b/q": time.Second, "c/r": 2 * time.Second} {
		tl.stepStart[id], tl.stepEnd[id] = t0, t0.Add(d)
	}
	tests := []struct {
		name       string
		group      time.Duration
		bound, seq time.Duration
		onPath     string
	}{
		// a/x 1 + b/p 4 (profile, not its 9 measured) + b/q 1; in sequence b/p and c/r: 1+4+2+1.
		{"profile below measured", 4 * time.Second, 6 * time.Second, 8 * time.Second, "b/p"},
		// c/r's 2 s measured caps it; b/p 9 s measured, profile 20 s: 9 counts.
		{"measured below profile", 20 * time.Second, 11 * time.Second, 13 * time.Second, "b/p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := awsproxy.Profile{Create: map[awsproxy.Kind]time.Duration{awsproxy.EKSNodegroupUpdate: tt.group}}
			bound, path, seq := upgradeLimits(g, tl, p)
			if bound != tt.bound || seq != tt.seq || !slices.Contains(path, tt.onPath) {
				t.Errorf("bound %s via %v, in sequence %s; want %s via %s, %s", bound, path, seq, tt.bound, tt.onPath, tt.seq)
			}
		})
	}
}
