package engine

import "context"

// Definition is a Stage built from plain values, so stage packages declare
// their steps instead of writing boilerplate methods.
type Definition struct {
	StageName string
	Requires  []string
	ReadKeys  []string
	WriteKeys []string
	StepList  []Step
	// Checks is the checkpoint; nil means no checks.
	Checks func(ctx context.Context) []Check
	// Validator, when set, checks the stage's inputs before anything changes.
	Validator func(ctx context.Context) error
}

// Name implements Stage.
func (d *Definition) Name() string { return d.StageName }

// Needs implements Stage.
func (d *Definition) Needs() []string { return d.Requires }

// Reads implements Stage.
func (d *Definition) Reads() []string { return d.ReadKeys }

// Writes implements Stage.
func (d *Definition) Writes() []string { return d.WriteKeys }

// Steps implements Stage.
func (d *Definition) Steps() []Step { return d.StepList }

// Verify implements Stage.
func (d *Definition) Verify(ctx context.Context) []Check {
	if d.Checks == nil {
		return nil
	}
	return d.Checks(ctx)
}

// Validate implements Validator.
func (d *Definition) Validate(ctx context.Context) error {
	if d.Validator == nil {
		return nil
	}
	return d.Validator(ctx)
}

// Validator is an optional Stage capability: a read-only check of the
// stage's inputs that runs, for every selected stage, before any step of any
// stage changes anything. Its errors are bad input (exit 2).
type Validator interface {
	Validate(ctx context.Context) error
}

// ValidateAll runs every selected stage's Validator; the first error wins.
func (g *Graph) ValidateAll(ctx context.Context, only, skip []string) error {
	sel, err := g.Selected(only, skip)
	if err != nil {
		return err
	}
	for _, s := range g.Stages() {
		if v, ok := s.(Validator); ok && sel[s.Name()] {
			if err := v.Validate(ctx); err != nil {
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
			results[i] = s.Verify(ctx)
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
