// Package fault classifies errors by what the user must do about them, so the
// CLI can map them to exit codes without knowing where they came from.
package fault

import (
	"errors"
	"fmt"
	"strings"
)

// InputError is bad input: a file, key, field or flag the user must fix.
// Nothing has been changed when one is returned. Exit code 2.
type InputError struct {
	Source string // file path, "flag --x", "environment", ...
	Field  string // key or field name, may be empty
	Msg    string // what is wrong
	Hint   string // what to do, may be empty
}

func (e *InputError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Field != "" {
			b.WriteString(": ")
			b.WriteString(e.Field)
		}
		b.WriteString(": ")
	} else if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Input builds an InputError.
func Input(source, field, hint, format string, args ...any) error {
	return &InputError{Source: source, Field: field, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// IsInput reports whether err is (or wraps) bad input.
func IsInput(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// LockedError says another run holds the state lock. Exit code 3.
type LockedError struct {
	Path   string
	Holder string // "pid 123 on host, command 'coderctl up', since 2026-..."
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked by another coderctl run (%s); wait for it to finish or stop it", e.Path, e.Holder)
}

// IsLocked reports whether err is (or wraps) a LockedError.
func IsLocked(err error) bool {
	var le *LockedError
	return errors.As(err, &le)
}

// Exit codes, as the CLI contract fixes them.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitInput  = 2
	ExitLocked = 3
)

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case IsLocked(err):
		return ExitLocked
	case IsInput(err):
		return ExitInput
	default:
		return ExitFailed
	}
}

// FirstLine is the first line of a message, trimmed: a library's detail
// (a stack, a response body) stays out of a one-line report.
func FirstLine(msg string) string {
	msg = strings.TrimSpace(msg)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return msg[:i]
	}
	return msg
}
