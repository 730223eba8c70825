// Package junit writes verify's checks as a JUnit XML report, the format
// Jenkins, GitHub Actions test reporters and GitLab's unit test reports all
// read. The shape follows the common JUnit schema (Jenkins xUnit's
// junit-10.xsd): one <testsuites> holding one <testsuite> per stage, one
// <testcase> per check with classname = stage and name = check, <failure>
// for a failed check, <skipped> for one that did not run, <error> when the
// run itself broke before it could check.
package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fsx"
	"github.com/coderctl/coderctl/internal/state"
)

// Outcome is what a test case says happened.
type Outcome int

// Outcomes, as JUnit tells them apart.
const (
	Passed  Outcome = iota
	Failed          // <failure>: the check ran and failed
	Skipped         // <skipped>: the check did not run
	Errored         // <error>: the run broke before it could check
)

// Case is one test case: one check.
type Case struct {
	Class   string // the stage
	Name    string // the check
	Outcome Outcome
	Message string        // the failure, skip or error message (the check's reason)
	Detail  string        // the failure or error body, or a passed case's output
	Time    time.Duration // 0 when not measured: the attribute is left out
}

// FromCheck turns one checkpoint check into a case: a failure carries the
// reason as its message and the reason and hint as its body; a pass or a
// warning (which does not fail verify) passes, its reason and hint in
// system-out so the report still shows them.
func FromCheck(c engine.Check) Case {
	out := Case{Class: c.Stage, Name: c.Name, Detail: c.Reason}
	if c.Hint != "" {
		out.Detail += "\nhint: " + c.Hint
	}
	switch c.Status {
	case engine.Fail:
		out.Outcome, out.Message = Failed, c.Reason
	case engine.Warn:
		out.Detail = "warning: " + out.Detail
	}
	return out
}

// Report is a whole verify run.
type Report struct {
	Name      string    // "coderctl verify"
	Timestamp time.Time // when the run started
	Duration  time.Duration
	Cases     []Case
}

// Totals counts a report's cases by outcome.
type Totals struct{ Tests, Failures, Errors, Skipped int }

func totalsOf(cases []Case) Totals {
	t := Totals{Tests: len(cases)}
	for _, c := range cases {
		switch c.Outcome {
		case Failed:
			t.Failures++
		case Errored:
			t.Errors++
		case Skipped:
			t.Skipped++
		}
	}
	return t
}

// The XML shapes, attribute for attribute as junit-10.xsd names them.
type xmlSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name      string    `xml:"name,attr"`
	Tests     int       `xml:"tests,attr"`
	Failures  int       `xml:"failures,attr"`
	Errors    int       `xml:"errors,attr"`
	Skipped   int       `xml:"skipped,attr"`
	Time      string    `xml:"time,attr,omitempty"`
	Timestamp string    `xml:"timestamp,attr"`
	Cases     []xmlCase `xml:"testcase"`
}

type xmlCase struct {
	Name      string     `xml:"name,attr"`
	Classname string     `xml:"classname,attr"`
	Time      string     `xml:"time,attr,omitempty"`
	Failure   *xmlResult `xml:"failure"`
	Error     *xmlResult `xml:"error"`
	Skipped   *xmlResult `xml:"skipped"`
	SystemOut string     `xml:"system-out,omitempty"`
}

type xmlResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// seconds is JUnit's time: seconds with a decimal fraction.
func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// Marshal renders the report: suites in the order their stages first
// appear, cases in the order given, totals on every suite and on the whole.
func (r Report) Marshal() ([]byte, error) {
	all := totalsOf(r.Cases)
	doc := xmlSuites{Name: r.Name, Tests: all.Tests, Failures: all.Failures, Errors: all.Errors, Time: seconds(r.Duration)}
	// Surefire's timestamp: ISO 8601 without a zone, in UTC.
	stamp := r.Timestamp.UTC().Format("2006-01-02T15:04:05")
	index := map[string]int{}
	var groups [][]Case
	for _, c := range r.Cases {
		i, ok := index[c.Class]
		if !ok {
			i = len(groups)
			index[c.Class] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	for _, cases := range groups {
		doc.Suites = append(doc.Suites, suiteOf(cases, stamp))
	}
	body, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(append([]byte(xml.Header), body...), '\n'), nil
}

func suiteOf(cases []Case, stamp string) xmlSuite {
	t := totalsOf(cases)
	s := xmlSuite{Name: cases[0].Class, Tests: t.Tests, Failures: t.Failures, Errors: t.Errors, Skipped: t.Skipped, Timestamp: stamp}
	var total time.Duration
	for _, c := range cases {
		total += c.Time
		s.Cases = append(s.Cases, caseOf(c))
	}
	if total > 0 {
		s.Time = seconds(total)
	}
	return s
}

func caseOf(c Case) xmlCase {
	x := xmlCase{Name: c.Name, Classname: c.Class}
	if c.Time > 0 {
		x.Time = seconds(c.Time)
	}
	switch c.Outcome {
	case Failed:
		x.Failure = &xmlResult{Message: c.Message, Type: "CheckFailed", Body: c.Detail}
	case Errored:
		x.Error = &xmlResult{Message: c.Message, Type: "RunError", Body: c.Detail}
	case Skipped:
		x.Skipped = &xmlResult{Message: c.Message}
	default:
		x.SystemOut = c.Detail
	}
	return x
}

// Write renders the report and replaces path with it atomically: a CI job
// that reads the file while coderctl writes it, or after a killed run,
// sees a whole report or the previous one, never half of one.
func Write(path string, r Report) error {
	data, err := r.Marshal()
	if err != nil {
		return fmt.Errorf("render JUnit report: %w", err)
	}
	return state.WriteAtomic(path, data)
}

// Problems CheckPath reports.
var (
	ErrEmpty       = errors.New("is empty")
	ErrNoDirectory = errors.New("does not exist")
	ErrReadOnly    = errors.New("is read-only (no owner write bit)")
)

// CheckPath says, before anything runs, whether a report can be written to
// path the way Write writes it: path is new or a regular, writable file,
// and its directory exists and takes a new file (probed with a temporary
// file, removed at once, which also catches a read-only mount). Errors read
// after the path: "is empty", "directory /x does not exist".
func CheckPath(path string) error {
	if strings.TrimSpace(path) == "" {
		return ErrEmpty
	}
	info, err := os.Stat(path)
	switch {
	case err == nil && !info.Mode().IsRegular():
		return fmt.Errorf("is %s, %w", fsx.Kind(info.Mode()), fsx.ErrNotRegular)
	case err == nil && info.Mode().Perm()&0o200 == 0:
		return ErrReadOnly
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	dir := filepath.Dir(path)
	dinfo, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s %w", dir, ErrNoDirectory)
	case err != nil:
		return err
	case !dinfo.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".coderctl-junit-probe-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	_ = probe.Close()
	return os.Remove(probe.Name())
}
