package stagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/engine"
)

// What every stage test needs around a run: stand-ins for the stages the
// stage under test needs, a run of that stage alone, and the events and
// checks in a form a failure message or an assertion can use.

// Noop is a step that does nothing: a stub's steps count as done.
func Noop(context.Context, engine.Reporter) error { return nil }

// Stub is a stand-in for an upstream stage: its name, needs and step names
// (steps given as "name" or "name<need1,need2"), no work. Tests seed the
// stage's outputs in the state file instead.
func Stub(name string, needs []string, steps ...string) engine.Stage {
	s := engine.Stage{Name: name, Needs: needs}
	for _, st := range steps {
		stepName, stepNeeds, _ := strings.Cut(st, "<")
		step := engine.Step{Name: stepName, Apply: Noop}
		if stepNeeds != "" {
			step.Needs = strings.Split(stepNeeds, ",")
		}
		s.Steps = append(s.Steps, step)
	}
	return s
}

// RunOnly runs the graph of stages with only the named stage selected (the
// others' steps count as done).
func (e *Env) RunOnly(t testing.TB, stages []engine.Stage, mode engine.Mode, name string) (*engine.Summary, []engine.Event, error) {
	t.Helper()
	return e.Run(t, stages, engine.Options{Mode: mode, Only: []string{name}})
}

// EventLog renders events for failure messages: one line per step, notice
// and check event.
func EventLog(events []engine.Event) string {
	var b strings.Builder
	for _, e := range events {
		switch {
		case e.Check != nil:
			fmt.Fprintf(&b, "  check %s/%s %s: %s (%s)\n", e.Stage, e.Check.Name, e.Check.Status, e.Check.Reason, e.Check.Hint)
		case e.Type == engine.EventStep || e.Type == engine.EventNotice || e.Type == engine.EventProgress:
			fmt.Fprintf(&b, "  %s %s/%s %s %s %s\n", e.Type, e.Stage, e.Step, e.Status, e.Message, e.Error)
		}
	}
	return b.String()
}

// EventsOf keeps the events of one type.
func EventsOf(events []engine.Event, typ engine.EventType) []engine.Event {
	var out []engine.Event
	for _, e := range events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// ChecksByName indexes checks by name.
func ChecksByName(checks []engine.Check) map[string]engine.Check {
	out := make(map[string]engine.Check, len(checks))
	for _, c := range checks {
		out[c.Name] = c
	}
	return out
}

// Failed lists the failed checks as "name: reason".
func Failed(checks []engine.Check) []string {
	var out []string
	for _, c := range checks {
		if c.Status == engine.Fail {
			out = append(out, c.Name+": "+c.Reason)
		}
	}
	return out
}

// Failures lists, for a failure message, the failed checks of the summary
// (sum may be nil) and the step errors among the events.
func Failures(sum *engine.Summary, events []engine.Event) string {
	var b strings.Builder
	if sum != nil {
		for _, st := range sum.Stages {
			for _, c := range st.Checks {
				if c.Status == engine.Fail {
					fmt.Fprintf(&b, "  check %s/%s: %s\n", st.Stage, c.Name, c.Reason)
				}
			}
		}
	}
	for _, ev := range events {
		if ev.Error != "" {
			fmt.Fprintf(&b, "  %s/%s: %s\n", ev.Stage, ev.Step, ev.Error)
		}
	}
	return b.String()
}
