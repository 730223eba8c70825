package engine

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// graph200 builds 10 stages of 20 steps each, shaped like coderctl's own
// graph but wider: every stage needs the one before it; inside a stage a
// step needs the two before it; every fifth step also needs a step of the
// previous stage (a cross-stage step edge, like rds/ingress-rule needing
// eks/cluster); the first step of a stage waits for the previous stage's
// checkpoint.
func graph200() []Stage {
	const stages, steps = 10, 20
	noop := func(context.Context, Reporter) error { return nil }
	var out []Stage
	for i := range stages {
		name := fmt.Sprintf("s%02d", i)
		var needs []string
		if i > 0 {
			needs = []string{fmt.Sprintf("s%02d", i-1)}
		}
		def := Stage{Name: name, Needs: needs}
		for j := range steps {
			st := Step{Name: fmt.Sprintf("t%02d", j), Typical: time.Duration(1+(i*steps+j)%7) * time.Minute, Apply: noop}
			for k := max(0, j-2); k < j; k++ {
				st.Needs = append(st.Needs, StepID(name, fmt.Sprintf("t%02d", k)))
			}
			if i > 0 && j%5 == 0 {
				st.Needs = append(st.Needs, StepID(needs[0], fmt.Sprintf("t%02d", j)))
			}
			def.Steps = append(def.Steps, st)
		}
		out = append(out, def)
	}
	return out
}

func TestGraph200Shape(t *testing.T) {
	g, err := NewGraph(graph200())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(g.StepIDs()); n != 200 {
		t.Fatalf("graph200 has %d steps, want 200", n)
	}
	cp, path := g.CriticalPath(nil)
	if cp <= 0 || len(path) < 10 {
		t.Fatalf("critical path %s over %d steps: the benchmark graph is too flat to measure", cp, len(path))
	}
}

// BenchmarkNewGraph200 is building, validating and ordering a 200-step graph.
func BenchmarkNewGraph200(b *testing.B) {
	stages := graph200()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewGraph(stages); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCriticalPath200 is the longest path `plan` and `up` print.
func BenchmarkCriticalPath200(b *testing.B) {
	g, err := NewGraph(graph200())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if cp, _ := g.CriticalPath(nil); cp <= 0 {
			b.Fatal("no critical path")
		}
	}
}

// BenchmarkRun200 is the scheduler's own cost: a full apply of 200 steps
// that do nothing, with the default concurrency and a sink that drops the
// events.
func BenchmarkRun200(b *testing.B) {
	g, err := NewGraph(graph200())
	if err != nil {
		b.Fatal(err)
	}
	sink := SinkFunc(func(Event) {})
	b.ReportAllocs()
	for b.Loop() {
		sum, err := g.Run(context.Background(), sink, Options{Mode: ModeApply})
		if err != nil || !sum.OK {
			b.Fatalf("run: %v", err)
		}
	}
}
