package output

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coderctl/coderctl/internal/engine"
)

// Text renders events for people. With Live set (a terminal) it keeps a
// redrawn block at the bottom listing each running step with its elapsed
// time; otherwise every event is a plain timestamped line.
type Text struct {
	mu      sync.Mutex
	w       io.Writer
	live    bool
	color   bool
	verbose bool
	now     func() time.Time

	running map[string]*liveStep
	drawn   int    // lines of the live block on screen
	mode    string // the run's mode, from its first event

	stopTick chan struct{}
}

type liveStep struct {
	id      string
	start   time.Time
	typical time.Duration
	status  string
}

// TextOptions configure the text renderer.
type TextOptions struct {
	Live    bool // a terminal: redraw running steps in place
	Color   bool
	Verbose bool // show every progress message in plain mode
	Now     func() time.Time
}

// NewText returns a text renderer; call Close when the run ends.
func NewText(w io.Writer, o TextOptions) *Text {
	t := &Text{w: w, live: o.Live, color: o.Color, verbose: o.Verbose, now: o.Now, running: map[string]*liveStep{}}
	if t.now == nil {
		t.now = time.Now
	}
	if t.live {
		t.stopTick = make(chan struct{})
		go t.tick()
	}
	return t
}

func (t *Text) tick() {
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-t.stopTick:
			return
		case <-tk.C:
			t.mu.Lock()
			t.redraw()
			t.mu.Unlock()
		}
	}
}

// Close stops the live redraw and clears the live block.
func (t *Text) Close() {
	if t.stopTick != nil {
		close(t.stopTick)
		t.stopTick = nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clearLive()
}

// Emit implements engine.Sink.
func (t *Text) Emit(e engine.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.track(e)
	line := t.format(e)
	if t.live {
		t.clearLive()
	}
	if line != "" {
		fmt.Fprintln(t.w, line)
	}
	if t.live {
		t.redraw()
	}
}

// track keeps the set of running steps for the live block.
func (t *Text) track(e engine.Event) {
	id := e.Stage + "/" + e.Step
	switch {
	case e.Type == engine.EventStep && e.Status == engine.StatusStarted:
		t.running[id] = &liveStep{id: id, start: e.Time, typical: e.Typical}
	case e.Type == engine.EventStep:
		delete(t.running, id)
	case e.Type == engine.EventProgress:
		if s, ok := t.running[id]; ok {
			s.status = e.Message
		}
	}
}

func (t *Text) format(e engine.Event) string {
	ts := e.Time.Local().Format("15:04:05")
	id := e.Stage
	if e.Step != "" {
		id += "/" + e.Step
	}
	// A plan is a list of actions; progress lines would only hide them.
	quiet := t.mode == string(engine.ModePlan)
	switch e.Type {
	case engine.EventRunStarted:
		t.mode = e.Status
		return fmt.Sprintf("%s %s", ts, e.Message)
	case engine.EventStage:
		if quiet && e.Status != engine.StatusFailed {
			return ""
		}
		return t.stageLine(ts, e)
	case engine.EventStep:
		if quiet && e.Status != engine.StatusFailed {
			return ""
		}
		return t.stepLine(ts, id, e)
	case engine.EventProgress:
		if t.live || !t.verbose && !strings.HasPrefix(e.Message, "waiting") {
			return ""
		}
		return fmt.Sprintf("%s   %s: %s", ts, id, e.Message)
	case engine.EventNotice:
		return fmt.Sprintf("%s %s %s: %s", ts, t.paint("yellow", "NOTICE"), id, e.Message)
	case engine.EventPlan:
		return fmt.Sprintf("  %-7s %-28s %s (%s)", t.actionWord(e.Action.Kind), id, e.Action.Resource, e.Action.Reason)
	case engine.EventCheck:
		return FormatCheck(*e.Check, t.paint)
	case engine.EventSummary:
		return t.summary(e.Summary)
	}
	return ""
}

func (t *Text) stageLine(ts string, e engine.Event) string {
	switch e.Status {
	case engine.StatusStarted:
		return fmt.Sprintf("%s == stage %s", ts, e.Stage)
	case engine.StatusDone:
		return fmt.Sprintf("%s == stage %s %s (%s)", ts, e.Stage, t.paint("green", "done"), round(e.Duration))
	case engine.StatusSkipped:
		if t.verbose {
			return fmt.Sprintf("%s == stage %s skipped", ts, e.Stage)
		}
		return ""
	case engine.StatusPlanned:
		return ""
	default:
		return fmt.Sprintf("%s == stage %s %s: %s", ts, e.Stage, t.paint("red", e.Status), e.Error)
	}
}

func (t *Text) stepLine(ts, id string, e engine.Event) string {
	switch e.Status {
	case engine.StatusStarted:
		if t.live {
			return ""
		}
		typical := ""
		if e.Typical >= time.Minute {
			typical = fmt.Sprintf(" (typically %s on AWS)", round(e.Typical))
		}
		return fmt.Sprintf("%s    %s started%s", ts, id, typical)
	case engine.StatusDone:
		return fmt.Sprintf("%s    %s %s (%s)", ts, id, t.paint("green", "done"), round(e.Duration))
	case engine.StatusPlanned:
		return ""
	case engine.StatusPending:
		return fmt.Sprintf("%s    %s %s: %s", ts, id, t.paint("yellow", "pending"), e.Error)
	default:
		return fmt.Sprintf("%s    %s %s (%s): %s", ts, id, t.paint("red", "FAILED"), round(e.Duration), e.Error)
	}
}

func (t *Text) summary(s *engine.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-14s %-9s %s\n", "STAGE", "STATUS", "DURATION")
	for _, r := range s.Stages {
		if r.Status == engine.StatusSkipped && !t.verbose {
			continue
		}
		fmt.Fprintf(&b, "%-14s %-9s %s\n", r.Stage, r.Status, round(r.Duration))
	}
	if len(s.FailedChecks) > 0 {
		fmt.Fprintf(&b, "failed checks: %s\n", strings.Join(s.FailedChecks, ", "))
	}
	if s.Mode == "plan" {
		changes := 0
		for _, r := range s.Stages {
			for _, a := range r.Actions {
				if a.Kind != engine.Nothing {
					changes++
				}
			}
		}
		if changes == 0 {
			b.WriteString("no changes: everything is as wanted\n")
		} else {
			fmt.Fprintf(&b, "%d change(s) planned; critical path %s\n", changes, round(s.CriticalPath))
		}
	}
	word := t.paint("green", "ok")
	if !s.OK {
		word = t.paint("red", "FAILED")
	}
	fmt.Fprintf(&b, "%s %s in %s", s.Mode, word, round(s.Duration))
	return b.String()
}

func (t *Text) actionWord(k engine.ActionKind) string {
	switch k {
	case engine.Create:
		return t.paint("green", "+ create")
	case engine.Update:
		return t.paint("yellow", "~ update")
	case engine.Delete:
		return t.paint("red", "- delete")
	}
	return "  ok"
}

// clearLive erases the live block.
func (t *Text) clearLive() {
	if t.drawn > 0 {
		fmt.Fprintf(t.w, "\x1b[%dA\x1b[J", t.drawn)
		t.drawn = 0
	}
}

// redraw prints one line per running step.
func (t *Text) redraw() {
	t.clearLive()
	ids := make([]string, 0, len(t.running))
	for id := range t.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s := t.running[id]
		line := fmt.Sprintf("  ... %-26s %6s", id, round(t.now().Sub(s.start)))
		if s.typical >= time.Minute {
			line += fmt.Sprintf(" / ~%s", round(s.typical))
		}
		if s.status != "" {
			line += "  " + s.status
		}
		fmt.Fprintln(t.w, line)
		t.drawn++
	}
}

func (t *Text) paint(color, s string) string {
	if !t.color {
		return s
	}
	codes := map[string]string{"red": "31", "green": "32", "yellow": "33"}
	return "\x1b[" + codes[color] + "m" + s + "\x1b[0m"
}

// FormatCheck renders one check as a checklist line.
func FormatCheck(c engine.Check, paint func(color, s string) string) string {
	word := map[engine.CheckStatus]string{engine.Pass: paint("green", "PASS"), engine.Warn: paint("yellow", "WARN"), engine.Fail: paint("red", "FAIL")}[c.Status]
	line := fmt.Sprintf("  %s  %-12s %-28s %s", word, c.Stage, c.Name, c.Reason)
	if c.Hint != "" && c.Status != engine.Pass {
		line += " -> " + c.Hint
	}
	return line
}

func round(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
