package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A run killed between creating WriteAtomic's temporary file and renaming
// it leaves the file behind; the next run to take the lock removes such
// leftovers, and only those.
func TestLockRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "coder-infra.env")
	if err := os.WriteFile(path, []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	files := map[string]time.Time{
		".coder-infra.env.tmp-111": old,                       // a killed run's: removed
		".coder-infra.env.tmp-222": old,                       // another: removed
		".coder-infra.env.tmp-333": time.Now().Add(time.Hour), // written after the lock: kept
		".other.env.tmp-444":       old,                       // another file's: kept
		"notes.tmp-555":            old,                       // not a temp of ours: kept
	}
	for name, mtime := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	l, err := AcquireLock(path, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for name, want := range map[string]bool{
		".coder-infra.env.tmp-111": false, ".coder-infra.env.tmp-222": false,
		".coder-infra.env.tmp-333": true, ".other.env.tmp-444": true, "notes.tmp-555": true,
	} {
		_, err := os.Stat(filepath.Join(dir, name))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v after taking the lock, want %v", name, got, want)
		}
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "A=1\n" {
		t.Errorf("state file = %q, %v; want it untouched", b, err)
	}
}
