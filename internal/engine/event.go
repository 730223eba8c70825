package engine

import "time"

// EventType names what an Event reports.
type EventType string

// Event types. JSON output writes them verbatim in the "type" field.
const (
	EventRunStarted EventType = "run"      // a run begins: mode, stages, critical path
	EventStage      EventType = "stage"    // a stage started, finished, failed, was skipped
	EventStep       EventType = "step"     // a step started, finished, failed, was skipped
	EventProgress   EventType = "progress" // a running step says what it waits for
	EventNotice     EventType = "notice"   // something the user must read or do
	EventPlan       EventType = "plan"     // an action a plan would take
	EventCheck      EventType = "check"    // a checkpoint check result
	EventSummary    EventType = "summary"  // the last event of a run
)

// Status values carried by stage and step events.
const (
	StatusStarted = "started"
	StatusDone    = "done"
	StatusFailed  = "failed"
	StatusSkipped = "skipped" // filtered out by --only/--skip
	StatusNotRun  = "not-run" // never started because something failed first
	StatusPending = "pending" // waits for something outside coderctl
	StatusPlanned = "planned" // dry-run: plan computed
)

// Event is one thing that happened during a run. Renderers turn events into
// live progress, plain lines or JSON.
type Event struct {
	Type     EventType      `json:"type"`
	Time     time.Time      `json:"time"`
	Stage    string         `json:"stage,omitempty"`
	Step     string         `json:"step,omitempty"`
	Status   string         `json:"status,omitempty"`
	Duration time.Duration  `json:"-"`
	Message  string         `json:"message,omitempty"`
	Error    string         `json:"error,omitempty"`
	Typical  time.Duration  `json:"-"`
	Action   *Action        `json:"action,omitempty"`
	Check    *Check         `json:"check,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
	Summary  *Summary       `json:"summary,omitempty"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f.
func (f SinkFunc) Emit(e Event) { f(e) }

// StageResult is the outcome of one stage in a run.
type StageResult struct {
	Stage    string        `json:"stage"`
	Status   string        `json:"status"`
	Duration time.Duration `json:"-"`
	Error    string        `json:"error,omitempty"`
	Checks   []Check       `json:"checks,omitempty"`
	Actions  []Action      `json:"actions,omitempty"`
}

// Summary is the outcome of a run.
type Summary struct {
	Mode     string        `json:"mode"`
	OK       bool          `json:"ok"`
	Duration time.Duration `json:"-"`
	Stages   []StageResult `json:"stages"`
	// FailedChecks names "stage/check" of every failed check.
	FailedChecks []string `json:"failed_checks,omitempty"`
	// CriticalPath is the graph's lower bound for the run, from Typical.
	CriticalPath time.Duration `json:"-"`
}

func nowUTC() time.Time { return time.Now().UTC() }
