package junit

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
)

// Schema checking. Go has no XSD validator, so the rules of the common
// JUnit schema (Jenkins xUnit's junit-10.xsd, which GitHub's and GitLab's
// readers also accept) are written out here: which element may hold which,
// which attributes each may carry and which it must, and the time format.
// On top, the counts on each suite and on the whole must match the cases,
// since renderers show the counts without recounting.

// elementRule is one element's part of junit-10.xsd.
type elementRule struct {
	children []string
	required []string
	optional []string
	text     bool // holds character data
}

var junit10 = map[string]elementRule{
	"testsuites": {children: []string{"testsuite"}, optional: []string{"name", "time", "tests", "failures", "errors"}},
	"testsuite": {children: []string{"testsuite", "properties", "testcase", "system-out", "system-err"},
		required: []string{"name", "tests", "failures", "errors"},
		optional: []string{"group", "time", "skipped", "timestamp", "hostname", "id", "package", "file", "log", "url"}},
	"properties": {children: []string{"property"}},
	"property":   {required: []string{"name", "value"}},
	"testcase": {children: []string{"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError", "system-out", "system-err"},
		required: []string{"name"}, optional: []string{"time", "classname", "group"}},
	"failure":    {optional: []string{"type", "message"}, text: true},
	"error":      {optional: []string{"type", "message"}, text: true},
	"skipped":    {optional: []string{"type", "message"}, text: true},
	"system-out": {text: true},
	"system-err": {text: true},
}

// surefireTime is junit-10.xsd's SUREFIRE_TIME pattern, anchored.
var surefireTime = regexp.MustCompile(`^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$`)

// Parsed is a report read back: its suites and cases with their outcomes.
type Parsed struct {
	Name   string
	Totals Totals
	Time   string
	Suites []ParsedSuite
}

// ParsedSuite is one testsuite read back.
type ParsedSuite struct {
	Name   string
	Totals Totals
	Cases  []Case
}

// Parse checks data against junit-10.xsd's rules and the counts, and
// returns what it holds.
func Parse(data []byte) (*Parsed, error) {
	if err := checkStructure(data); err != nil {
		return nil, err
	}
	var doc xmlSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	p := &Parsed{Name: doc.Name, Time: doc.Time, Totals: Totals{Tests: doc.Tests, Failures: doc.Failures, Errors: doc.Errors}}
	var all []Case
	for _, s := range doc.Suites {
		ps := ParsedSuite{Name: s.Name, Totals: Totals{Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped}}
		for _, c := range s.Cases {
			ps.Cases = append(ps.Cases, parsedCase(c))
		}
		if got := totalsOf(ps.Cases); got != ps.Totals {
			return nil, fmt.Errorf("testsuite %q says %+v, its cases are %+v", s.Name, ps.Totals, got)
		}
		all = append(all, ps.Cases...)
		p.Suites = append(p.Suites, ps)
	}
	got := totalsOf(all)
	got.Skipped = 0 // testsuites has no skipped attribute in junit-10.xsd
	if got != p.Totals {
		return nil, fmt.Errorf("testsuites says %+v, its cases are %+v", p.Totals, got)
	}
	p.Totals.Skipped = totalsOf(all).Skipped
	return p, nil
}

func parsedCase(c xmlCase) Case {
	out := Case{Class: c.Classname, Name: c.Name, Detail: c.SystemOut}
	for _, r := range []struct {
		res *xmlResult
		o   Outcome
	}{{c.Failure, Failed}, {c.Error, Errored}, {c.Skipped, Skipped}} {
		if r.res != nil {
			out.Outcome, out.Message, out.Detail = r.o, r.res.Message, r.res.Body
		}
	}
	return out
}

// checkStructure walks the document and applies junit10 to each element.
func checkStructure(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := checkElement(stack, t); err != nil {
				return err
			}
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && !junit10[stack[len(stack)-1]].text && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("<%s> holds text %q; junit-10.xsd allows none there", stack[len(stack)-1], t)
			}
		}
	}
	return nil
}

func checkElement(stack []string, t xml.StartElement) error {
	name := t.Name.Local
	rule, known := junit10[name]
	switch {
	case !known:
		return fmt.Errorf("<%s> is not a junit-10.xsd element", name)
	case len(stack) == 0 && name != "testsuites":
		return fmt.Errorf("root element <%s>, want <testsuites>", name)
	case len(stack) > 0 && !slices.Contains(junit10[stack[len(stack)-1]].children, name):
		return fmt.Errorf("<%s> inside <%s> is not allowed by junit-10.xsd", name, stack[len(stack)-1])
	}
	have := map[string]string{}
	for _, a := range t.Attr {
		if !slices.Contains(rule.required, a.Name.Local) && !slices.Contains(rule.optional, a.Name.Local) {
			return fmt.Errorf("<%s> has attribute %q, which junit-10.xsd does not define", name, a.Name.Local)
		}
		have[a.Name.Local] = a.Value
	}
	for _, r := range rule.required {
		if _, ok := have[r]; !ok {
			return fmt.Errorf("<%s> lacks the required attribute %q", name, r)
		}
	}
	if v, ok := have["time"]; ok && !surefireTime.MatchString(v) {
		return fmt.Errorf("<%s time=%q> is not a SUREFIRE_TIME", name, v)
	}
	for _, count := range []string{"tests", "failures", "errors", "skipped"} {
		if v, ok := have[count]; ok {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				return fmt.Errorf("<%s %s=%q> is not a count", name, count, v)
			}
		}
	}
	return nil
}
