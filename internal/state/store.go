package state

import (
	"sort"
	"sync"
)

// Store is the state file shared by stages running concurrently. Every change
// is written to disk (atomically) before the call returns, so each output is
// recorded as soon as its resource exists and a run killed at any point leaves
// a file that parses. A change that cannot be written is not kept in memory
// either: memory and disk never disagree.
//
// Store does not take the lock; the command that runs the stages does
// (AcquireLock), once, around the whole run.
type Store struct {
	mu   sync.Mutex
	path string
	file *File
}

// Open loads the state file at path (missing is empty) into a Store.
func Open(path string) (*Store, error) {
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	return NewStore(path, f), nil
}

// NewStore wraps f, to be saved at path. The Store owns f from now on.
func NewStore(path string, f *File) *Store {
	if f == nil {
		f = &File{name: path, last: map[string]int{}}
	}
	return &Store{path: path, file: f}
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
// refused, nothing changes.
func (s *Store) SetMany(kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.file.Clone()
	changed := false
	for _, k := range keys {
		if old, ok := next.Get(k); ok && old == kv[k] {
			continue
		}
		if err := next.Set(k, kv[k]); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return s.commit(next)
}

// Unset removes keys with one write, if any of them was set.
func (s *Store) Unset(keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.file.Clone()
	changed := false
	for _, k := range keys {
		if next.Unset(k) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.commit(next)
}

// commit writes next and, once it is on disk, makes it current. Called with
// s.mu held.
func (s *Store) commit(next *File) error {
	if err := WriteAtomic(s.path, next.Bytes()); err != nil {
		return err
	}
	s.file = next
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
