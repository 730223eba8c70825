package helmx

import (
	"context"

	"github.com/coderctl/coderctl/internal/engine"
)

// What a stage that installs a chart shows in its plan and while it
// applies: helm's change as the step's action, and the values merge's notes
// as warnings about the user's values file.

// ActionFor turns helm's planned change into the step's action.
func ActionFor(resource string, c Change) engine.Action {
	kind := engine.Nothing
	switch c.Action {
	case ActionInstall:
		kind = engine.Create
	case ActionUpgrade:
		kind = engine.Update
	}
	return engine.Action{Kind: kind, Resource: resource, Reason: c.Reason}
}

// PlanAction is the step's action for installing or upgrading rel, called
// resource in the plan: helm's planned change, read without changing
// anything.
func (c *Client) PlanAction(ctx context.Context, resource string, rel Release) (engine.Action, error) {
	change, err := c.Plan(ctx, rel)
	if err != nil {
		return engine.Action{}, err
	}
	return ActionFor(resource, change), nil
}

// NoteActions turns a values merge's notes into plan lines about the
// values file named by key.
func NoteActions(key string, notes []string) []engine.Action {
	out := make([]engine.Action, 0, len(notes))
	for _, n := range notes {
		out = append(out, engine.Action{Kind: engine.Nothing, Resource: key, Reason: "warning: " + n})
	}
	return out
}

// ReportNotes tells the user, while applying, where coderctl kept its own
// entries over the values file's.
func ReportNotes(r engine.Reporter, key string, notes []string) {
	for _, n := range notes {
		r.Notice(n, map[string]any{"input": key})
	}
}
