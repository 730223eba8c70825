package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"github.com/coderctl/coderctl/internal/fsx"
)

// Store is the state file shared by stages running concurrently. Every change
// is written to disk (atomically) before the call returns, so each output is
// recorded as soon as its resource exists and a run killed at any point leaves
// a file that parses. A change that cannot be written is not kept in memory
// either: memory and disk never disagree.
//
// The file stays the user's during a run: before each write the Store reads
// it again, and when someone edited it since the Store last read or wrote it,
// the call's own keys are applied to the edited file instead of to the
// Store's copy (see refresh). Lookups see the merged file from then on.
//
// Remote state (OpenRemote, remote_store.go) is the same Store writing to
// an S3 object instead, each write conditional on the version last read;
// stages cannot tell the two apart.
//
// Store does not take the lock; the command that runs the stages does
// (AcquireLock, or Remote.Lock), once, around the whole run. The lock keeps other coderctl
// runs out, not editors.
type Store struct {
	mu   sync.Mutex
	path string
	file *File
	// disk is the file's content when the Store last read or wrote it (nil
	// when there was no file): content that differs is a hand edit.
	disk []byte
	// remote, when set, holds the state instead of the file at path (which
	// is then its URL), and etag is the object's version last read or
	// written ("" = no object yet). See remote_store.go.
	remote *Remote
	etag   string
}

// Open loads the state file at path (missing is empty) into a Store.
func Open(path string) (*Store, error) {
	f, data, err := load(path)
	if err != nil {
		return nil, err
	}
	return &Store{path: path, file: f, disk: data}, nil
}

// NewStore wraps f, to be saved at path. The Store owns f from now on and
// takes it for the file's current content: should the file at path differ,
// the first write treats the difference as a hand edit and keeps it.
func NewStore(path string, f *File) *Store {
	if f == nil {
		f = &File{name: path, last: map[string]int{}}
	}
	return &Store{path: path, file: f, disk: f.Bytes()}
}

// Path is where the Store writes.
func (s *Store) Path() string { return s.path }

// Get returns key's value, or "" when it is not set.
func (s *Store) Get(key string) string {
	v, _ := s.Lookup(key)
	return v
}

// Lookup returns key's value and whether it is set.
func (s *Store) Lookup(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.Get(key)
}

// Set records key=value and writes the file, unless key already has value.
func (s *Store) Set(key, value string) error {
	return s.SetMany(map[string]string{key: value})
}

// SetMany records several keys with one write, applied in sorted key order
// (so new keys are appended in a stable order). When any key or value is
// refused, nothing is written.
func (s *Store) SetMany(kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return s.update(func(f *File) (bool, error) {
		changed := false
		for _, k := range keys {
			if old, ok := f.Get(k); ok && old == kv[k] {
				continue
			}
			if err := f.Set(k, kv[k]); err != nil {
				return false, err
			}
			changed = true
		}
		return changed, nil
	})
}

// Unset removes keys with one write, if any of them was set.
func (s *Store) Unset(keys ...string) error {
	return s.update(func(f *File) (bool, error) {
		changed := false
		for _, k := range keys {
			if f.Unset(k) {
				changed = true
			}
		}
		return changed, nil
	})
}

// update applies edit, a call's own changes, to a copy of the file as it is
// on disk now and writes the copy if edit changed it. Once on disk, the copy
// becomes current.
func (s *Store) update(edit func(*File) (bool, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(); err != nil {
		return err
	}
	next := s.file.Clone()
	changed, err := edit(next)
	if err != nil || !changed {
		return err
	}
	data := next.Bytes()
	if err := s.save(data); err != nil {
		return err
	}
	s.file, s.disk = next, data
	return nil
}

// save writes data to the file, or to the remote object (remote_store.go).
func (s *Store) save(data []byte) error {
	if s.remote != nil {
		return s.saveRemote(data)
	}
	return WriteAtomic(s.path, data)
}

// refresh reads the file again and, when its content is not what the Store
// last read or wrote, adopts it: the merge rule is "the keys a call sets or
// unsets get the call's values; everything else is as the user left it",
// including keys the user added, changed or removed, comments and order.
// Called with s.mu held.
//
// A deleted file is not adopted: the write recreates it from the Store's
// copy, so the inputs the run started with and the outputs it recorded
// survive an accidental rm (a deleted file would otherwise lose every input,
// failing the next run). An edit that no longer parses (the user saved
// half-way) stops the write, leaving the file as the user saved it; the
// error is the run's, not bad input, since resources may exist by now.
//
// An edit saved between this read and the rename is still lost; that window
// is one write's length, where the old one was the whole run.
func (s *Store) refresh() error {
	if s.remote != nil {
		return nil // the conditional put refuses a changed object instead
	}
	data, err := readState(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		msg, _ := fsx.Describe(err)
		return fmt.Errorf("%s: cannot read the state file again before writing it (%s); nothing was overwritten", s.path, msg)
	case bytes.Equal(data, s.disk):
		return nil
	}
	f, err := Parse(s.path, data)
	if err != nil {
		// %v, not %w: the InputError inside would make this exit code 2.
		return fmt.Errorf("the state file was edited during this run and no longer parses, so nothing was overwritten: %v; fix the file, then run the command again", err)
	}
	s.file, s.disk = f, data
	return nil
}

// Snapshot returns every key's current value.
func (s *Store) Snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.Map()
}

// File returns a copy of the current file, safe to read while stages write.
func (s *Store) File() *File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.Clone()
}
