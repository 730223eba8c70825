package junit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fsx"
)

// TestFromCheck: each check status becomes the JUnit outcome a CI reader
// shows for it, the reason as message and the hint in the body.
func TestFromCheck(t *testing.T) {
	tests := []struct {
		check   engine.Check
		outcome Outcome
		message string
		detail  string
	}{
		{engine.Check{Stage: "network", Name: "vpc", Status: engine.Pass, Reason: "vpc-1 (10.0.0.0/16)"}, Passed, "", "vpc-1 (10.0.0.0/16)"},
		{engine.Check{Stage: "network", Name: "nat", Status: engine.Warn, Reason: "NAT disabled", Hint: "add endpoints"}, Passed, "", "warning: NAT disabled\nhint: add endpoints"},
		{engine.Check{Stage: "eks", Name: "cluster", Status: engine.Fail, Reason: "CLUSTER_NAME missing", Hint: "run up"}, Failed, "CLUSTER_NAME missing", "CLUSTER_NAME missing\nhint: run up"},
		{engine.Check{Stage: "eks", Name: "nodes", Status: engine.Fail, Reason: "0 ready"}, Failed, "0 ready", "0 ready"},
	}
	for _, tt := range tests {
		t.Run(string(tt.check.Status)+"/"+tt.check.Name, func(t *testing.T) {
			c := FromCheck(tt.check)
			want := Case{Class: tt.check.Stage, Name: tt.check.Name, Outcome: tt.outcome, Message: tt.message, Detail: tt.detail}
			if c != want {
				t.Errorf("FromCheck = %+v, want %+v", c, want)
			}
		})
	}
}

// TestMarshalRoundTrip: a report with every outcome passes the schema
// rules, groups cases by stage in first-seen order, and reads back with
// the same cases, counts and duration; text that XML cannot carry as is
// (markup, quotes, control characters) survives or is replaced, never
// breaks the document.
func TestMarshalRoundTrip(t *testing.T) {
	cases := []Case{
		{Class: "prereqs", Name: "credentials", Detail: "account 123456789012"},
		{Class: "network", Name: "vpc", Outcome: Failed, Message: `VPC_ID is not in "coder-infra.env" <&>`, Detail: "VPC_ID missing\nhint: run 'coderctl stage network apply'"},
		{Class: "prereqs", Name: "quotas", Detail: "warning: cannot read\x01 quotas"},
		{Class: "smoke", Name: "build", Outcome: Skipped, Message: "not run: the checkpoints failed"},
		{Class: "coderctl", Name: "verify", Outcome: Errored, Message: "state locked", Detail: "state locked", Time: 1500 * time.Millisecond},
	}
	r := Report{Name: "coderctl verify", Timestamp: time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC), Duration: 2345 * time.Millisecond, Cases: cases}
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	if want := (Totals{Tests: 5, Failures: 1, Errors: 1, Skipped: 1}); p.Totals != want || p.Time != "2.345" || p.Name != "coderctl verify" {
		t.Errorf("totals %+v time %q name %q, want %+v, 2.345, coderctl verify", p.Totals, p.Time, p.Name, want)
	}
	var order []string
	got := map[string]Case{}
	for _, s := range p.Suites {
		order = append(order, s.Name)
		for _, c := range s.Cases {
			got[c.Class+"/"+c.Name] = c
		}
	}
	if strings.Join(order, ",") != "prereqs,network,smoke,coderctl" {
		t.Errorf("suites %v, want prereqs,network,smoke,coderctl", order)
	}
	for _, want := range cases {
		c := got[want.Class+"/"+want.Name]
		want.Time = 0 // read back without its duration
		want.Detail = strings.ReplaceAll(want.Detail, "\x01", "\uFFFD")
		if c != want {
			t.Errorf("read back %+v, want %+v", c, want)
		}
	}
	if !strings.Contains(string(data), `timestamp="2026-12-05T08:00:00"`) || !strings.Contains(string(data), `time="1.500"`) {
		t.Errorf("timestamp or case time missing:\n%s", data)
	}
}

// TestParseRefusesWhatTheSchemaDoes: the checker is a real one; each
// document breaks one rule of junit-10.xsd or the counts.
func TestParseRefusesWhatTheSchemaDoes(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"root is not testsuites", `<testsuite name="a" tests="0" failures="0" errors="0"/>`, "want <testsuites>"},
		{"suite without name", `<testsuites><testsuite tests="0" failures="0" errors="0"/></testsuites>`, `required attribute "name"`},
		{"unknown attribute", `<testsuites><testsuite name="a" tests="1" failures="0" errors="0"><testcase name="x" status="ok"/></testsuite></testsuites>`, `attribute "status"`},
		{"case outside a suite", `<testsuites><testcase name="x"/></testsuites>`, "inside <testsuites>"},
		{"bad time", `<testsuites time="1s"/>`, "SUREFIRE_TIME"},
		{"counts that lie", `<testsuites tests="1" failures="0" errors="0"><testsuite name="a" tests="1" failures="0" errors="0"><testcase name="x"><failure message="m"/></testcase></testsuite></testsuites>`, "its cases are"},
		{"text in a case", `<testsuites><testsuite name="a" tests="1" failures="0" errors="0"><testcase name="x">boom</testcase></testsuite></testsuites>`, "holds text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestCheckPath: where a report cannot be written is known before the run.
func TestCheckPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "report.xml")
	if err := os.WriteFile(file, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(dir, "ro.xml")
	if err := os.WriteFile(readOnly, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       error  // errors.Is target, or nil
		text       string // in the message, when want is nil and an error is expected
	}{
		{name: "new file", path: filepath.Join(dir, "new.xml")},
		{name: "existing file", path: file},
		{name: "empty", path: "", want: ErrEmpty},
		{name: "directory missing", path: filepath.Join(dir, "nope", "r.xml"), want: ErrNoDirectory},
		{name: "a directory", path: dir, want: fsx.ErrNotRegular, text: "a directory"},
		{name: "a fifo", path: fifo, want: fsx.ErrNotRegular, text: "named pipe"},
		{name: "read-only file", path: readOnly, want: ErrReadOnly},
		{name: "parent is a file", path: filepath.Join(file, "r.xml"), text: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPath(tt.path)
			switch {
			case tt.want == nil && tt.text == "" && err != nil:
				t.Errorf("CheckPath(%s) = %v, want nil", tt.path, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("CheckPath(%s) = %v, want %v", tt.path, err, tt.want)
			case tt.text != "" && (err == nil || !strings.Contains(err.Error(), tt.text)):
				t.Errorf("CheckPath(%s) = %v, want one mentioning %q", tt.path, err, tt.text)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".coderctl-junit-probe-") {
					t.Errorf("probe file %s left behind", e.Name())
				}
			}
		})
	}
}

// TestWriteReplacesAtomically: Write replaces an old report whole and
// leaves no temporary file.
func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "verify.xml")
	if err := os.WriteFile(path, []byte("<old/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := Report{Name: "coderctl verify", Cases: []Case{{Class: "prereqs", Name: "credentials"}}}
	if err := Write(path, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil || p.Totals.Tests != 1 {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries after Write, want only the report", len(entries))
	}
}
