package state

import (
	"os"
	"path/filepath"
	"time"
)

// removeStaleTemps deletes the temporary files WriteAtomic left beside
// target when a run was killed between creating one and renaming it. The
// caller holds the run lock, so no locked writer is using them; a file
// modified after the lock was taken (a lockless writer such as `init`,
// mid-write) is left alone. Failures are ignored: a leftover is untidy,
// never wrong.
func removeStaleTemps(target string, lockedAt time.Time) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(lockedAt) {
			_ = os.Remove(m)
		}
	}
}
