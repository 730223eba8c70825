package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderctl/coderctl/internal/fault"
)

// holderPattern is the shape of LockedError.Holder.
var holderPattern = regexp.MustCompile(`^pid (\d+) on (\S+) running '([^']*)' since (\S+)$`)

func checkHolder(t *testing.T, err error, statePath string, pid int, command string) {
	t.Helper()
	var le *fault.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("got %v (%T), want a LockedError", err, err)
	}
	if fault.ExitCode(err) != fault.ExitLocked {
		t.Errorf("exit code %d, want %d", fault.ExitCode(err), fault.ExitLocked)
	}
	if le.Path != statePath {
		t.Errorf("LockedError.Path = %q, want %q", le.Path, statePath)
	}
	m := holderPattern.FindStringSubmatch(le.Holder)
	if m == nil {
		t.Fatalf("Holder %q is not \"pid N on HOST running 'CMD' since TIME\"", le.Holder)
	}
	host, _ := os.Hostname()
	if m[1] != itoa(pid) || m[2] != host || m[3] != command {
		t.Errorf("Holder %q, want pid %d on %s running %q", le.Holder, pid, host, command)
	}
	since, perr := time.Parse(time.RFC3339, m[4])
	if perr != nil || time.Since(since) > time.Minute || time.Since(since) < -time.Second {
		t.Errorf("Holder since %q is not a recent RFC3339 time: %v", m[4], perr)
	}
}

// TestLockConflictsInProcess relies on flock(2) locking open file
// descriptions: a second open of the lock file in the same process
// conflicts with the first.
func TestLockConflictsInProcess(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	first, err := AcquireLock(statePath, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(statePath, "coderctl down")
	checkHolder(t, err, statePath, os.Getpid(), "coderctl up")
	if !strings.Contains(err.Error(), statePath) || !strings.Contains(err.Error(), "locked by another coderctl run") {
		t.Errorf("message %q", err)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	second, err := AcquireLock(statePath, "coderctl down")
	if err != nil {
		t.Fatalf("re-acquire after Release: %v", err)
	}
	defer second.Release()
	var h holder
	data, _ := os.ReadFile(LockPath(statePath))
	if err := json.Unmarshal(data, &h); err != nil || h.Command != "coderctl down" || h.PID != os.Getpid() {
		t.Errorf("lock file says %q (%v), want the new holder", data, err)
	}
	if mode := fileModeOf(t, LockPath(statePath)); mode != 0o600 {
		t.Errorf("lock file mode %o", mode)
	}
}

// TestLockHeldByAnotherProcess is the real case: another coderctl process
// holds the lock, then exits, and the lock is free without any cleanup.
func TestLockHeldByAnotherProcess(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	child, stdin := startChild(t, "hold-lock", statePath, "held")

	_, err := AcquireLock(statePath, "coderctl verify")
	checkHolder(t, err, statePath, child.Process.Pid, "coderctl up")

	// Kill the holder outright: the kernel drops its flock, and the lock
	// file it leaves behind is taken over.
	_ = stdin.Close()
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	l, err := AcquireLock(statePath, "coderctl verify")
	if err != nil {
		t.Fatalf("acquire after the holder died: %v", err)
	}
	defer l.Release()
}

func TestStaleLockFileIsTakenOver(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	stale := `{"pid":999999,"host":"gone","command":"coderctl up","since":"2020-01-01T00:00:00Z"}`
	if err := os.WriteFile(LockPath(statePath), []byte(stale+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := AcquireLock(statePath, "coderctl up")
	if err != nil {
		t.Fatalf("stale lock file not taken over: %v", err)
	}
	defer l.Release()
	data, _ := os.ReadFile(LockPath(statePath))
	if strings.Contains(string(data), "999999") || !strings.Contains(string(data), `"pid":`+itoa(os.Getpid())) {
		t.Errorf("lock file still says %q", data)
	}
}

func TestLockedWithUnreadableHolder(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	f, err := os.OpenFile(LockPath(statePath), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("some other tool\n"); err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(statePath, "coderctl up")
	var le *fault.LockedError
	if !errors.As(err, &le) || !strings.Contains(le.Holder, "holder unknown") || !strings.Contains(le.Holder, "some other tool") {
		t.Errorf("got %v, want a LockedError quoting the lock file", err)
	}
}

func TestReleaseRemovesLockFile(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	l, err := AcquireLock(statePath, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Path()); err != nil {
		t.Fatalf("no lock file while held: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, filepath.Dir(statePath)); len(names) != 0 {
		t.Errorf("after Release the directory holds %q, want nothing", names)
	}
}

// TestRefusedAcquireLeavesHoldersFile: a run refused with exit 3 must not
// touch the holder's lock file, which still names the holder afterwards.
func TestRefusedAcquireLeavesHoldersFile(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	held, err := AcquireLock(statePath, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	before := inode(t, held.Path())
	for i := 0; i < 3; i++ {
		_, err := AcquireLock(statePath, "coderctl down")
		checkHolder(t, err, statePath, os.Getpid(), "coderctl up")
	}
	if inode(t, held.Path()) != before {
		t.Error("a refused AcquireLock replaced the holder's lock file")
	}
	// The holder's file still works as the lock: a later attempt is refused
	// with the holder's details too.
	_, err = AcquireLock(statePath, "coderctl verify")
	checkHolder(t, err, statePath, os.Getpid(), "coderctl up")
}

// TestLockFollowsSymlink: the lock guards the real file, however it is named.
func TestLockFollowsSymlink(t *testing.T) {
	cases := []struct {
		name         string
		realExists   bool
		first, again string // "link" or "real"
	}{
		{"link, then real path", true, "link", "real"},
		{"real path, then link", true, "real", "link"},
		{"dangling link, then the path it names", false, "link", "real"},
		{"path a dangling link names, then the link", false, "real", "link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := map[string]string{"real": filepath.Join(dir, "real.env"), "link": filepath.Join(dir, "coder-infra.env")}
			if c.realExists {
				if err := os.WriteFile(paths["real"], []byte("A=1\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("real.env", paths["link"]); err != nil {
				t.Fatal(err)
			}
			l, err := AcquireLock(paths[c.first], "coderctl up")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			if want := paths["real"] + ".lock"; l.Path() != want || LockPath(paths["link"]) != want {
				t.Errorf("lock file %q, LockPath(link) %q; want %q", l.Path(), LockPath(paths["link"]), want)
			}
			_, err = AcquireLock(paths[c.again], "coderctl down")
			checkHolder(t, err, paths[c.again], os.Getpid(), "coderctl up")
		})
	}
}

func TestLockThroughSymlinkLoopIsBadInput(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.env"), filepath.Join(dir, "b.env")
	if err := os.Symlink("b.env", a); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.env", b); err != nil {
		t.Fatal(err)
	}
	_, err := AcquireLock(a, "coderctl up")
	wantInputError(t, err, a, "too many levels of symbolic links")
}

// TestLockRetriesWhenHolderRemovesFile plays the race the unlink protocol
// exists for, deterministically: between this run opening the lock file and
// locking it, the holder releases and removes that file. The flock then
// succeeds on a file no other run will open, so AcquireLock must notice and
// lock a fresh file at the path, which then refuses the next run.
func TestLockRetriesWhenHolderRemovesFile(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	holder, err := AcquireLock(statePath, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	opened := 0
	testHookLockOpened = func() {
		opened++
		if opened == 1 {
			if err := holder.Release(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { testHookLockOpened = nil })

	l, err := AcquireLock(statePath, "coderctl down")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	testHookLockOpened = nil
	if opened != 2 {
		t.Errorf("opened the lock file %d times, want 2 (the removed one, then a fresh one)", opened)
	}
	// Had it kept the removed file, the path would be free for this one.
	_, err = AcquireLock(statePath, "coderctl verify")
	checkHolder(t, err, statePath, os.Getpid(), "coderctl down")
}

// TestLockRace has goroutines take and release the lock as fast as they
// can, each until it has held it a number of times: at no point may two
// hold it, a holder always finds it refused to others, and nothing is left
// behind.
func TestLockRace(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	// Widen the window between opening the lock file and locking it, where
	// a releasing holder can remove the file, beyond a short hold, so that
	// the race happens often.
	testHookLockOpened = func() { time.Sleep(100 * time.Microsecond) }
	t.Cleanup(func() { testHookLockOpened = nil })
	const workers, wins, maxAttempts = 4, 25, 10000
	var holders atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			won := 0
			for i := 0; i < maxAttempts && won < wins; i++ {
				l, err := AcquireLock(statePath, "coderctl up")
				if fault.IsLocked(err) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if n := holders.Add(1); n != 1 {
					t.Errorf("%d runs hold the lock at once", n)
				}
				won++
				// Holding it, another attempt must be refused.
				if other, err := AcquireLock(statePath, "coderctl down"); !fault.IsLocked(err) {
					t.Errorf("AcquireLock while the lock is held: %v", err)
					if other != nil {
						_ = other.Release()
					}
				}
				holders.Add(-1)
				if err := l.Release(); err != nil {
					t.Error(err)
				}
			}
			if won < wins {
				t.Errorf("a worker took the lock %d times in %d attempts", won, maxAttempts)
			}
		}()
	}
	wg.Wait()
	if names := dirEntries(t, filepath.Dir(statePath)); len(names) != 0 {
		t.Errorf("after the race the directory holds %q, want nothing", names)
	}
}

func TestLockInMissingDirectoryIsBadInput(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "no-such-dir", "coder-infra.env")
	_, err := AcquireLock(statePath, "coderctl up")
	wantInputError(t, err, LockPath(statePath), "no such file")
}
