// Package state reads and writes coder-infra.env, the dotenv file that holds
// coderctl's inputs and outputs. The file stays the user's: comments, blank
// lines, order, `export` prefixes and keys coderctl does not know are kept;
// new keys go under a marked section at the end. Every value written reads
// back identically through bash (`set -a; source`) and godotenv (see
// syntax.go for the rule). Secrets are never stored. The file is read only
// when it is a regular file of bounded size. Writes are atomic, never replace
// a file the user made read-only (write.go), and happen under a lock that
// keeps a second run out (lock.go). Store (store.go) persists each output as
// soon as a stage records it, keeping edits the user makes to the file
// meanwhile.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
)

// OutputsMarker heads the section where keys new to the file are appended.
const OutputsMarker = "# --- coderctl outputs (managed by coderctl; safe to edit inputs above) ---"

const (
	secretHint    = "remove it: secrets belong in Secrets Manager or the process environment, never in the state file"
	secretSetHint = "secrets belong in Secrets Manager or the process environment; record the secret's ARN or name instead"
	syntaxHint    = "edit the line so that bash and godotenv read it the same; single quotes are safest"
)

// line is one line of the file, without its newline. For an assignment, key
// is set and text is rebuilt from head, key, the quoted value and tail.
type line struct {
	text       string
	key        string
	value      string
	head, tail string
}

// File is a parsed coder-infra.env that can be edited and written back with
// everything the user wrote kept in place. It is not safe for concurrent use;
// Store is.
type File struct {
	name  string
	lines []line
	// last maps each key to the index of its last assignment, the one that
	// bash and godotenv both let win.
	last map[string]int
}

// Parse reads a state file's content. name (the file's path) is used in
// error messages, which are *fault.InputError naming the file and line.
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name, last: map[string]int{}}
	text := string(data)
	if text == "" {
		return f, nil
	}
	text = strings.TrimSuffix(text, "\n")
	for i, raw := range strings.Split(text, "\n") {
		ln, err := parseLine(raw)
		if err != nil {
			return nil, f.lineError(i+1, err)
		}
		if ln.key != "" {
			f.last[ln.key] = len(f.lines)
		}
		f.lines = append(f.lines, ln)
	}
	return f, nil
}

// lineError names file:line in a problem found on line n.
func (f *File) lineError(n int, err error) error {
	source := f.name + ":" + strconv.Itoa(n)
	var ie *fault.InputError
	if errors.As(err, &ie) {
		ie.Source = source
		return ie
	}
	return fault.Input(source, "", syntaxHint, "%v", err)
}

// parseLine classifies one line and, for an assignment, checks that bash and
// godotenv read the same value and that it is not a secret.
func parseLine(raw string) (line, error) {
	if strings.Contains(raw, "\x00") {
		return line{}, errors.New("NUL byte in the line (is this a binary file? coder-infra.env is plain text)")
	}
	if strings.Contains(raw, "\r") {
		return line{}, errors.New("carriage return in the line (Windows line endings? convert with dos2unix)")
	}
	trimmed := strings.TrimLeft(raw, " \t")
	if trimmed == "" || trimmed[0] == '#' {
		return line{text: raw}, nil
	}
	a, err := parseAssignment(raw)
	var badKey badKeyError
	switch {
	case errors.As(err, &badKey):
		return line{}, fault.Input("", "", "rename the key: state keys are upper-case shell names", "%v", err)
	case err != nil:
		return line{}, fault.Input("", a.key, syntaxHint, "%v", err)
	}
	if IsSecretKey(a.key) && a.value != "" {
		return line{}, fault.Input("", a.key, secretHint, "holds a secret value")
	}
	if err := crossCheck(raw, a.key, a.value); err != nil {
		return line{}, fault.Input("", a.key, syntaxHint, "%v", err)
	}
	return line{text: raw, key: a.key, value: a.value, head: a.head, tail: a.tail}, nil
}

// Load reads the state file at path. A missing file is an empty File, since
// `up` creates it (the CLI decides when a missing file is an error). Only a
// regular file of at most fsx.MaxInputFile bytes is read: a FIFO given as
// --env-file would block the read forever, a device could exhaust memory.
// Any other failure to read is an InputError naming the path.
func Load(path string) (*File, error) {
	f, _, err := load(path)
	return f, err
}

// load is Load that also returns the bytes read (nil for a missing file),
// which a Store keeps to notice hand edits.
func load(path string) (*File, []byte, error) {
	data, err := readState(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &File{name: path, last: map[string]int{}}, nil, nil
	case err != nil:
		msg, hint := fsx.Describe(err)
		return nil, nil, fault.Input(path, "", hint, "state file: %s", msg)
	}
	f, err := Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return f, data, nil
}

// readState reads the state file the only safe way: regular and bounded.
func readState(path string) ([]byte, error) {
	return fsx.ReadRegular(path, fsx.MaxInputFile)
}

// unwrapPathError drops the path from an *fs.PathError, which the message
// already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Name is the path the file was loaded from (or the name given to Parse).
func (f *File) Name() string { return f.name }

// Get returns the value bash and godotenv see for key: its last assignment.
func (f *File) Get(key string) (string, bool) {
	i, ok := f.last[key]
	if !ok {
		return "", false
	}
	return f.lines[i].value, true
}

// Set assigns value to key. An existing assignment is rewritten in place,
// keeping its indentation, `export` prefix and trailing comment; a new key is
// appended under OutputsMarker. Bad keys, secret keys and values that cannot
// be written identically for bash and godotenv are InputErrors.
func (f *File) Set(key, value string) error {
	if err := checkSettable(f.name, key, value); err != nil {
		return err
	}
	i, exists := f.last[key]
	ln := line{key: key, value: value}
	if exists {
		ln.head, ln.tail = f.lines[i].head, f.lines[i].tail
	}
	text, err := renderAssignment(f.name, ln)
	if err != nil {
		return err
	}
	ln.text = text
	if exists {
		f.lines[i] = ln
		return nil
	}
	f.appendOutput(ln)
	return nil
}

// checkSettable refuses a key or value before anything changes.
func checkSettable(source, key, value string) error {
	if err := ValidateKey(key); err != nil {
		return fault.Input(source, key, "state keys are upper-case shell names", "%v", err)
	}
	if IsSecretKey(key) && value != "" {
		return fault.Input(source, key, secretSetHint, "refusing to store a secret value in the state file")
	}
	return nil
}

// renderAssignment quotes ln.value and rebuilds the line, then checks the
// result with both parsers: a mismatch here is a bug in the quoting rule,
// reported as such rather than written.
func renderAssignment(source string, ln line) (string, error) {
	commented := strings.TrimLeft(ln.tail, " \t") != ""
	quoted, err := encodeValue(ln.value, commented)
	if err != nil {
		return "", fault.Input(source, ln.key, "store a different value", "%v", err)
	}
	text := ln.head + ln.key + "=" + quoted + ln.tail
	a, err := parseAssignment(text)
	if err != nil || a.value != ln.value {
		return "", fmt.Errorf("internal error: the quoting of %s does not read back (%q): %v", ln.key, text, err)
	}
	if err := crossCheck(text, ln.key, ln.value); err != nil {
		return "", fmt.Errorf("internal error: the quoting of %s does not read back: %w", ln.key, err)
	}
	return text, nil
}

// appendOutput adds a new key at the end of the file, under the outputs
// marker, which is created (once) when the file does not have it yet.
func (f *File) appendOutput(ln line) {
	if f.last == nil { // a zero File is an empty file
		f.last = map[string]int{}
	}
	if !f.hasMarker() {
		if n := len(f.lines); n > 0 && strings.TrimSpace(f.lines[n-1].text) != "" {
			f.lines = append(f.lines, line{})
		}
		f.lines = append(f.lines, line{text: OutputsMarker})
	}
	f.last[ln.key] = len(f.lines)
	f.lines = append(f.lines, ln)
}

func (f *File) hasMarker() bool {
	for _, ln := range f.lines {
		if ln.key == "" && strings.TrimSpace(ln.text) == OutputsMarker {
			return true
		}
	}
	return false
}

// Unset removes every assignment of key and reports whether there was one.
func (f *File) Unset(key string) bool {
	if _, ok := f.last[key]; !ok {
		return false
	}
	kept := f.lines[:0]
	for _, ln := range f.lines {
		if ln.key != key {
			kept = append(kept, ln)
		}
	}
	f.lines = kept
	f.reindex()
	return true
}

func (f *File) reindex() {
	f.last = make(map[string]int, len(f.last))
	for i, ln := range f.lines {
		if ln.key != "" {
			f.last[ln.key] = i
		}
	}
}

// Keys lists the keys in the order they first appear in the file.
func (f *File) Keys() []string {
	keys := make([]string, 0, len(f.last))
	seen := make(map[string]bool, len(f.last))
	for _, ln := range f.lines {
		if ln.key != "" && !seen[ln.key] {
			seen[ln.key] = true
			keys = append(keys, ln.key)
		}
	}
	return keys
}

// Map returns every key with the value bash and godotenv see.
func (f *File) Map() map[string]string {
	m := make(map[string]string, len(f.last))
	for key, i := range f.last {
		m[key] = f.lines[i].value
	}
	return m
}

// Bytes renders the file: every line as read or rewritten, each ending in a
// newline (a missing final newline is added).
func (f *File) Bytes() []byte {
	n := 0
	for _, ln := range f.lines {
		n += len(ln.text) + 1
	}
	b := make([]byte, 0, n)
	for _, ln := range f.lines {
		b = append(b, ln.text...)
		b = append(b, '\n')
	}
	return b
}

// Clone returns a deep copy of f.
func (f *File) Clone() *File {
	c := &File{name: f.name, lines: append([]line(nil), f.lines...), last: make(map[string]int, len(f.last))}
	for k, v := range f.last {
		c.last[k] = v
	}
	return c
}

// Save writes the file to path atomically with mode 0600, but only when the
// content differs from what is on disk; an unchanged file with a looser mode
// is just tightened (see tightenMode).
func (f *File) Save(path string) error {
	data := f.Bytes()
	current, err := readState(path)
	if err == nil && string(current) == string(data) {
		return tightenMode(path)
	}
	return WriteAtomic(path, data)
}
