package engine

import (
	"context"
	"sync"
)

// ValidateAll runs every selected stage's Validate; the first error wins.
func (g *Graph) ValidateAll(ctx context.Context, only, skip []string) error {
	return g.checkSelected(ctx, only, skip, func(s Stage) func(context.Context) error { return s.Validate })
}

// CheckDestroyAll runs every selected stage's CheckDestroy; the first error
// wins.
func (g *Graph) CheckDestroyAll(ctx context.Context, only, skip []string) error {
	return g.checkSelected(ctx, only, skip, func(s Stage) func(context.Context) error { return s.CheckDestroy })
}

// checkSelected runs the check pick gives of each selected stage, in
// registry order.
func (g *Graph) checkSelected(ctx context.Context, only, skip []string, pick func(Stage) func(context.Context) error) error {
	sel, err := g.Selected(only, skip)
	if err != nil {
		return err
	}
	for _, s := range g.Stages() {
		if check := pick(s); check != nil && sel[s.Name] {
			if err := check(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// VerifyStages runs the checkpoints of the named stages (all when empty)
// concurrently and returns their checks in registry order, each tagged with
// its stage; it emits one check event per check.
func (g *Graph) VerifyStages(ctx context.Context, names []string, sink Sink) ([]Check, error) {
	sel, err := g.Selected(names, nil)
	if err != nil {
		return nil, err
	}
	results := make([][]Check, len(g.names))
	done := make(chan int)
	for i, name := range g.names {
		if !sel[name] {
			continue
		}
		go func(i int, s Stage) {
			defer func() { done <- i }()
			results[i] = s.checks(ctx)
		}(i, g.stages[name])
	}
	for range selectedCount(sel) {
		<-done
	}
	var all []Check
	for i, name := range g.names {
		for _, c := range results[i] {
			c.Stage = name
			all = append(all, c)
			if sink != nil {
				cc := c
				sink.Emit(Event{Type: EventCheck, Time: nowUTC(), Stage: name, Status: string(c.Status), Check: &cc})
			}
		}
	}
	return all, nil
}

func selectedCount(sel map[string]bool) int {
	n := 0
	for _, v := range sel {
		if v {
			n++
		}
	}
	return n
}

// Concurrently runs a checkpoint's independent groups of checks at once
// (each group's calls wait on AWS or the cluster, not on each other) and
// returns their checks in the groups' order, so the checklist reads the
// same on every run.
func Concurrently(ctx context.Context, groups ...func(context.Context) []Check) []Check {
	results := make([][]Check, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = g(ctx)
		}()
	}
	wg.Wait()
	var out []Check
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

// One adapts a single check to Concurrently.
func One(check func(context.Context) Check) func(context.Context) []Check {
	return func(ctx context.Context) []Check { return []Check{check(ctx)} }
}
