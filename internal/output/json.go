// Package output renders engine events for people and machines: live
// progress on a terminal, plain timestamped lines in a pipe, JSON lines for
// `-o json`.
package output

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/coderctl/coderctl/internal/engine"
)

// JSON writes one JSON object per event; the last is the run's summary.
type JSON struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSON returns a JSON lines renderer.
func NewJSON(w io.Writer) *JSON { return &JSON{w: w} }

// Emit implements engine.Sink.
func (j *JSON) Emit(e engine.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	b, err := json.Marshal(jsonEvent(e))
	if err != nil {
		return
	}
	_, _ = j.w.Write(append(b, '\n'))
}

// jsonEvent flattens an event into the CLI contract's shape: every line has
// type and time; stage, step, status, duration_ms and error where relevant;
// checks carry name, status and reason.
func jsonEvent(e engine.Event) map[string]any {
	m := map[string]any{"type": string(e.Type), "time": e.Time.UTC().Format(time.RFC3339Nano)}
	put := func(k string, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("stage", e.Stage)
	put("step", e.Step)
	put("status", e.Status)
	put("message", e.Message)
	put("error", e.Error)
	if e.Duration > 0 || e.Type == engine.EventSummary || (e.Type == engine.EventStep && e.Status != engine.StatusStarted) {
		m["duration_ms"] = e.Duration.Milliseconds()
	}
	if e.Typical > 0 {
		m["typical_ms"] = e.Typical.Milliseconds()
	}
	if e.Check != nil {
		m["name"] = e.Check.Name
		m["status"] = string(e.Check.Status)
		m["reason"] = e.Check.Reason
		put("hint", e.Check.Hint)
	}
	if e.Action != nil {
		m["action"] = e.Action
	}
	for k, v := range e.Data {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	if s := e.Summary; s != nil {
		m["mode"] = s.Mode
		m["ok"] = s.OK
		m["stages"] = stageResults(s.Stages)
		if len(s.FailedChecks) > 0 {
			m["failed_checks"] = s.FailedChecks
		}
		m["critical_path_ms"] = s.CriticalPath.Milliseconds()
	}
	return m
}

func stageResults(rs []engine.StageResult) []map[string]any {
	out := make([]map[string]any, 0, len(rs))
	for _, r := range rs {
		m := map[string]any{"stage": r.Stage, "status": r.Status, "duration_ms": r.Duration.Milliseconds()}
		if r.Error != "" {
			m["error"] = r.Error
		}
		if len(r.Checks) > 0 {
			m["checks"] = r.Checks
		}
		if len(r.Actions) > 0 {
			m["actions"] = r.Actions
		}
		out = append(out, m)
	}
	return out
}
