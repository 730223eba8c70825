package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coderctl/coderctl/internal/engine"
)

var t0 = time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)

func sampleEvents() []engine.Event {
	chk := engine.Failf("multi-az", "modify the instance to Multi-AZ", "MultiAZ=false")
	chk.Stage = "rds"
	act := engine.Action{Kind: engine.Create, Resource: "db instance coder-db", Reason: "not found"}
	return []engine.Event{
		{Type: engine.EventStep, Time: t0, Stage: "rds", Step: "instance", Status: engine.StatusStarted, Typical: 20 * time.Minute},
		{Type: engine.EventProgress, Time: t0, Stage: "rds", Step: "instance", Message: "waiting for db instance: creating (1s elapsed)"},
		{Type: engine.EventPlan, Time: t0, Stage: "rds", Step: "instance", Action: &act},
		{Type: engine.EventStep, Time: t0.Add(90 * time.Second), Stage: "rds", Step: "instance", Status: engine.StatusFailed, Duration: 90 * time.Second, Error: errors.New("InsufficientDBInstanceCapacity").Error()},
		{Type: engine.EventCheck, Time: t0, Stage: "rds", Status: "fail", Check: &chk},
		{Type: engine.EventSummary, Time: t0, Status: engine.StatusFailed, Duration: 2 * time.Minute, Summary: &engine.Summary{
			Mode: "apply", OK: false, FailedChecks: []string{"rds/multi-az"},
			Stages: []engine.StageResult{{Stage: "rds", Status: engine.StatusFailed, Duration: 2 * time.Minute, Checks: []engine.Check{chk}}}}},
	}
}

func TestJSONLinesFollowTheContract(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSON(&buf)
	for _, e := range sampleEvents() {
		j.Emit(e)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6", len(lines))
	}
	var evs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line is not JSON: %q", l)
		}
		if m["type"] == nil || m["time"] == nil {
			t.Errorf("line lacks type/time: %q", l)
		}
		evs = append(evs, m)
	}
	tests := []struct {
		line int
		key  string
		want any
	}{
		{0, "typical_ms", float64(1200000)},
		{3, "duration_ms", float64(90000)},
		{3, "error", "InsufficientDBInstanceCapacity"},
		{3, "status", "failed"},
		{4, "name", "multi-az"},
		{4, "status", "fail"},
		{4, "reason", "MultiAZ=false"},
		{5, "type", "summary"},
		{5, "ok", false},
	}
	for _, tt := range tests {
		if got := evs[tt.line][tt.key]; got != tt.want {
			t.Errorf("line %d %s = %v, want %v", tt.line, tt.key, got, tt.want)
		}
	}
	stages := evs[5]["stages"].([]any)
	if st := stages[0].(map[string]any); st["stage"] != "rds" || st["status"] != "failed" {
		t.Errorf("summary stages = %v", stages)
	}
}

func TestPlainTextLines(t *testing.T) {
	var buf bytes.Buffer
	tx := NewText(&buf, TextOptions{})
	for _, e := range sampleEvents() {
		tx.Emit(e)
	}
	tx.Close()
	out := buf.String()
	for _, want := range []string{
		"rds/instance started (typically 20m0s on AWS)",
		"rds/instance: waiting for db instance: creating",
		"+ create rds/instance",
		"rds/instance FAILED (1m30s): InsufficientDBInstanceCapacity",
		"FAIL  rds          multi-az",
		"-> modify the instance to Multi-AZ",
		"failed checks: rds/multi-az",
		"apply FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("escape codes in plain output")
	}
}

func TestLiveBlockShowsRunningStepsAndClears(t *testing.T) {
	var buf bytes.Buffer
	now := t0.Add(75 * time.Second)
	tx := NewText(&buf, TextOptions{Live: true, Now: func() time.Time { return now }})
	evs := sampleEvents()
	tx.Emit(evs[0])
	tx.Emit(evs[1])
	live := buf.String()
	if !strings.Contains(live, "rds/instance") || !strings.Contains(live, "1m15s / ~20m0s") || !strings.Contains(live, "waiting for db instance") {
		t.Fatalf("live block lacks the running step with elapsed/typical/status:\n%q", live)
	}
	tx.Emit(evs[3])
	tx.Close()
	if !strings.Contains(buf.String(), "\x1b[1A\x1b[J") {
		t.Error("live block was not cleared before printing finished lines")
	}
}
