package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/junit"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// checkEvent is a check line of `-o json`.
type checkEvent struct {
	Type, Stage, Name, Status, Reason, Hint string
}

func checkEvents(t *testing.T, stdout string) []checkEvent {
	t.Helper()
	var out []checkEvent
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var ev checkEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if ev.Type == "check" {
			out = append(out, ev)
		}
	}
	return out
}

func readReport(t *testing.T, path string) *junit.Parsed {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	p, err := junit.Parse(data)
	if err != nil {
		t.Fatalf("report does not pass the JUnit schema rules: %v\n%s", err, data)
	}
	return p
}

func casesOf(p *junit.Parsed) []junit.Case {
	var out []junit.Case
	for _, s := range p.Suites {
		out = append(out, s.Cases...)
	}
	return out
}

// TestVerifyJUnitMatchesChecks runs verify on a deployment whose prereqs
// pass and whose network was never applied (its vpc check fails): the exit
// code is verify's own, and the report holds one case per check the JSON
// stream shows — classname the stage, failure message the reason, hint in
// the body — plus the smoke phases as skipped when --smoke could not run.
func TestVerifyJUnitMatchesChecks(t *testing.T) {
	moto.Require(t)
	tests := []struct {
		name  string
		extra []string
		smoke bool
	}{
		{name: "json", extra: []string{"-o", "json"}},
		{name: "json with smoke", extra: []string{"-o", "json", "--smoke"}, smoke: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, goodEnv)
			report := filepath.Join(h.dir, "reports", "verify.xml")
			if err := os.Mkdir(filepath.Dir(report), 0o700); err != nil {
				t.Fatal(err)
			}
			h.write(report, "<stale/>")
			args := append([]string{"verify", "prereqs", "network", "--junit", report}, tt.extra...)
			r := h.run(args...)
			if r.code != 1 {
				t.Fatalf("verify --junit: code %d, want 1 (network fails)\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			p := readReport(t, report)
			events := checkEvents(t, r.stdout)
			cases := casesOf(p)
			var smokeCases []junit.Case
			cases = slices.DeleteFunc(cases, func(c junit.Case) bool {
				if c.Class == smokeStage {
					smokeCases = append(smokeCases, c)
					return true
				}
				return false
			})
			if len(cases) != len(events) || len(events) < 6 {
				t.Fatalf("%d cases for %d checks (want one per check, at least 6):\ncases %+v\nchecks %+v", len(cases), len(events), cases, events)
			}
			failures := 0
			for i, ev := range events {
				checkCase(t, cases[i], ev)
				if ev.Status == "fail" {
					failures++
				}
			}
			if failures == 0 || p.Totals.Failures != failures {
				t.Errorf("report counts %d failures, the checks %d (want at least one)", p.Totals.Failures, failures)
			}
			if !slices.ContainsFunc(cases, func(c junit.Case) bool {
				return c.Class == "network" && c.Name == "vpc" && c.Outcome == junit.Failed
			}) {
				t.Errorf("no failed network/vpc case: %+v", cases)
			}
			checkSmokeCases(t, smokeCases, tt.smoke)
			if entries, _ := os.ReadDir(filepath.Dir(report)); len(entries) != 1 {
				t.Errorf("report directory holds %d entries, want only the report (no temporary files)", len(entries))
			}
		})
	}
}

// checkCase asserts one case against the check event it reports.
func checkCase(t *testing.T, c junit.Case, ev checkEvent) {
	t.Helper()
	if c.Class != ev.Stage || c.Name != ev.Name {
		t.Errorf("case %s/%s, want %s/%s (check order)", c.Class, c.Name, ev.Stage, ev.Name)
		return
	}
	switch ev.Status {
	case "fail":
		if c.Outcome != junit.Failed || c.Message != ev.Reason || !strings.Contains(c.Detail, ev.Hint) {
			t.Errorf("failed check %s/%s as %+v, want a failure with message %q and hint %q", ev.Stage, ev.Name, c, ev.Reason, ev.Hint)
		}
	default:
		if c.Outcome != junit.Passed || !strings.Contains(c.Detail, ev.Reason) {
			t.Errorf("%s check %s/%s as %+v, want passed with its reason in system-out", ev.Status, ev.Stage, ev.Name, c)
		}
	}
}

func checkSmokeCases(t *testing.T, cases []junit.Case, smoke bool) {
	t.Helper()
	if !smoke {
		if len(cases) != 0 {
			t.Errorf("smoke cases without --smoke: %+v", cases)
		}
		return
	}
	var names []string
	for _, c := range cases {
		names = append(names, c.Name)
		if c.Outcome != junit.Skipped || !strings.Contains(c.Message, "checkpoints did not pass") {
			t.Errorf("smoke case %+v, want skipped because the checkpoints did not pass", c)
		}
	}
	if !slices.Equal(names, smokePhases) {
		t.Errorf("smoke cases %v, want %v", names, smokePhases)
	}
}

// TestVerifyJUnitTextOutputSameExitCode: with the text checklist, --junit
// changes neither the exit code nor the output, and a passing verify
// writes a report without failures.
func TestVerifyJUnitTextOutputSameExitCode(t *testing.T) {
	moto.Require(t)
	h := newHarness(t, goodEnv)
	plain := h.run("verify", "prereqs")
	report := filepath.Join(h.dir, "verify.xml")
	r := h.run("verify", "prereqs", "--junit", report)
	if r.code != plain.code || r.code != 0 {
		t.Fatalf("verify --junit: code %d, without the flag %d; want both 0\n%s", r.code, plain.code, r.stderr)
	}
	if countLines(r.stdout) != countLines(plain.stdout) {
		t.Errorf("--junit changed the checklist:\n%s\nvs\n%s", r.stdout, plain.stdout)
	}
	p := readReport(t, report)
	if p.Totals.Failures != 0 || p.Totals.Errors != 0 || p.Totals.Tests < 5 || len(p.Suites) != 1 || p.Suites[0].Name != "prereqs" {
		t.Errorf("report %+v, want one prereqs suite of at least 5 passing cases", p)
	}
}

func countLines(s string) int { return strings.Count(s, "\n") }

// TestVerifyJUnitBadPath: a report that could not be written is bad input
// naming the flag, before any check runs, and nothing is written.
func TestVerifyJUnitBadPath(t *testing.T) {
	tests := []struct {
		name string
		path func(h *harness) string
		want string
	}{
		{"directory missing", func(h *harness) string { return filepath.Join(h.dir, "no-such-dir", "r.xml") }, "does not exist"},
		{"a directory", func(h *harness) string { return h.dir }, "a directory"},
		{"empty", func(h *harness) string { return "" }, "is empty"},
		{"the state file", func(h *harness) string { return h.envFile }, "is the state file"},
		{"the cluster config", func(h *harness) string { return h.cfgFile }, "is the cluster config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, goodEnv)
			stateBefore := h.stateBytes()
			cfgBefore, _ := os.ReadFile(h.cfgFile)
			before, _ := os.ReadDir(h.dir)
			r := h.run("verify", "--junit", tt.path(h))
			if r.code != 2 || !strings.Contains(r.stderr, "--junit") || !strings.Contains(r.stderr, tt.want) || countLines(strings.TrimSpace(r.stderr)) != 0 {
				t.Errorf("code %d stderr %q, want 2 and one line naming --junit and %q", r.code, r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("checks ran before the path was refused:\n%s", r.stdout)
			}
			after, _ := os.ReadDir(h.dir)
			cfgAfter, _ := os.ReadFile(h.cfgFile)
			if len(after) != len(before) || string(h.stateBytes()) != string(stateBefore) || string(cfgAfter) != string(cfgBefore) {
				t.Errorf("files changed: %d entries before, %d after", len(before), len(after))
			}
		})
	}
}
