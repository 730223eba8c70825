package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

func TestReleaseEmptiesButKeepsLockFile(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "coder-infra.env")
	l, err := AcquireLock(statePath, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.Path())
	if err != nil || len(data) != 0 {
		t.Errorf("after Release the lock file holds %q (%v), want it empty and present", data, err)
	}
}

func TestLockInMissingDirectoryIsBadInput(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "no-such-dir", "coder-infra.env")
	_, err := AcquireLock(statePath, "coderctl up")
	wantInputError(t, err, LockPath(statePath), "no such file")
}
