// Package engine runs stages: it knows their steps, the dependencies between
// steps, and how to run them concurrently and in order. It knows nothing about
// AWS, Kubernetes or Coder.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Stage is one step of the deployment guide: a named group of steps with a
// checkpoint (Verify) that runs after all its steps are applied. It is a
// plain value, as kubeadm's workflow.Phase is: a stage package declares what
// the stage is and does in one literal, and the registry, the CLI and tests
// read the same fields.
type Stage struct {
	// Name is the stage's registry name, e.g. "rds".
	Name string
	// Summary is the one line `coderctl stage --help` prints for the stage.
	Summary string
	// Needs lists the stages this stage depends on. Step-level needs may only
	// name steps of these stages (or of the stage itself).
	Needs []string
	// DestroyAlongside names stages among Needs that destroy may take down
	// while this stage is still going: only the step edges order the two.
	// By default a needed stage's destroy waits for this whole stage to be
	// gone, since a step edge says what a resource was made from, not all
	// that holds on to it; a stage lists a need here when nothing of its
	// own holds on to that stage's resources beyond its step edges.
	DestroyAlongside []string
	// Reads and Writes name the state keys the stage consumes and records.
	// Reads is checked by NewGraph with WithInputKeys.
	Reads  []string
	Writes []string
	// Steps are the stage's units of work.
	Steps []Step
	// Verify runs the stage's read-only checkpoint checks; nil means none.
	Verify func(ctx context.Context) []Check
	// Validate, when set, is a read-only check of the stage's inputs that
	// runs, for every selected stage, before any step of any stage changes
	// anything. Its errors are bad input (exit 2).
	Validate func(ctx context.Context) error
	// CheckDestroy, when set, is Validate's counterpart for destroy, which
	// runs no Validate (an input that matters only for creating must not
	// block a teardown): a read-only check, before anything is deleted, of
	// what the stage's destroy would refuse halfway through.
	CheckDestroy func(ctx context.Context) error
}

// checks runs the stage's checkpoint, if it has one.
func (s Stage) checks(ctx context.Context) []Check {
	if s.Verify == nil {
		return nil
	}
	return s.Verify(ctx)
}

// Step is one unit of work inside a stage.
type Step struct {
	// Name is unique within the stage; its ID is "<stage>/<name>".
	Name string
	// Needs lists step IDs ("network/subnets") or stage names ("eks"). A stage
	// name means that stage's checkpoint: all its steps applied and verified.
	Needs []string
	// Typical is how long the step usually takes on real AWS; it is shown
	// while waiting and is the step's weight on the critical path.
	Typical time.Duration
	// Plan is read-only: what Apply would do.
	Plan func(ctx context.Context) ([]Action, error)
	// Apply is idempotent: it creates what is missing, adopts what exists and
	// records outputs as soon as each resource exists.
	Apply func(ctx context.Context, r Reporter) error
	// Destroy undoes Apply and tolerates what is already gone. May be nil.
	Destroy func(ctx context.Context, r Reporter) error
}

// Reporter receives a running step's progress and notices.
type Reporter interface {
	// Progress says what the step is doing or waiting for right now.
	Progress(msg string)
	// Notice is something the user must read or act on (for instance DNS
	// records to create by hand); data is emitted with it in JSON output.
	Notice(msg string, data map[string]any)
}

// Discard is a Reporter that drops what it is told, for callers that have
// no run to report to.
var Discard Reporter = discard{}

type discard struct{}

func (discard) Progress(string)               {}
func (discard) Notice(string, map[string]any) {}

// ActionKind is what a planned action does.
type ActionKind string

// The kinds of planned action.
const (
	Create  ActionKind = "create"
	Update  ActionKind = "update"
	Delete  ActionKind = "delete"
	Nothing ActionKind = "nothing"
)

// Action is one change a step's plan says apply would make.
type Action struct {
	Kind     ActionKind `json:"kind"`
	Resource string     `json:"resource"`
	Reason   string     `json:"reason"`
}

// CheckStatus is a checkpoint check's result.
type CheckStatus string

// Check results.
const (
	Pass CheckStatus = "pass"
	Warn CheckStatus = "warn"
	Fail CheckStatus = "fail"
)

// Check is one named checkpoint result.
type Check struct {
	Stage  string      `json:"stage,omitempty"`
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Reason string      `json:"reason"`
	Hint   string      `json:"hint,omitempty"`
}

// Passf, Warnf and Failf build checks.
func Passf(name, format string, args ...any) Check {
	return Check{Name: name, Status: Pass, Reason: fmt.Sprintf(format, args...)}
}

// Warnf builds a warning check.
func Warnf(name, hint, format string, args ...any) Check {
	return Check{Name: name, Status: Warn, Reason: fmt.Sprintf(format, args...), Hint: hint}
}

// Failf builds a failed check.
func Failf(name, hint, format string, args ...any) Check {
	return Check{Name: name, Status: Fail, Reason: fmt.Sprintf(format, args...), Hint: hint}
}

// PendingError says a step cannot finish yet for a reason outside coderctl
// (for instance a certificate waiting for DNS records a human must create).
// The step is left pending, its dependents are not run, and a later run
// resumes it. It is not a failure.
type PendingError struct{ Reason string }

func (e *PendingError) Error() string { return "pending: " + e.Reason }

// Pending builds a PendingError.
func Pending(format string, args ...any) error {
	return &PendingError{Reason: fmt.Sprintf(format, args...)}
}

// IsPending reports whether err says the step is pending.
func IsPending(err error) bool {
	var pe *PendingError
	return errors.As(err, &pe)
}

// StepID joins a stage and step name.
func StepID(stage, step string) string { return stage + "/" + step }
