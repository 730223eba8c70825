// Package enginetest is test support for code that reports through an
// engine.Reporter: one recorder instead of one per test package. It
// imports only the engine, so the packages below deploy (awsx, eksupdate)
// can use it in their own tests.
package enginetest

import (
	"strings"
	"sync"
)

// Recorder is an engine.Reporter that keeps what it is told. Steps report
// from several goroutines, so it locks; read its fields once the code under
// test has returned.
type Recorder struct {
	mu sync.Mutex
	// Progressed holds the progress messages, Notices the notices and
	// NoticeData their data, each in order; Lines holds both kinds in the
	// order they came.
	Progressed []string
	Notices    []string
	NoticeData []map[string]any
	Lines      []string
	// OnProgress, when set, runs on each progress message, outside the
	// lock (a test lets time pass on a double's side with it).
	OnProgress func(msg string)
}

// Progress records a progress message.
func (r *Recorder) Progress(msg string) {
	r.mu.Lock()
	r.Progressed = append(r.Progressed, msg)
	r.Lines = append(r.Lines, msg)
	on := r.OnProgress
	r.mu.Unlock()
	if on != nil {
		on(msg)
	}
}

// Notice records a notice and its data.
func (r *Recorder) Notice(msg string, data map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notices = append(r.Notices, msg)
	r.NoticeData = append(r.NoticeData, data)
	r.Lines = append(r.Lines, msg)
}

// Said reports whether any message so far contains part.
func (r *Recorder) Said(part string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.Lines {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}
