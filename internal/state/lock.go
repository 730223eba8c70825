package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderctl/coderctl/internal/fault"
)

// Lock is an exclusive hold on a state file, so that two coderctl runs never
// apply against the same deployment at once. It is an flock(2) on the file
// <state>.lock beside the real state file (a symlink at the state path is
// followed, so runs reaching the file by different names still exclude each
// other). The kernel drops the flock when the holder exits, however it exits,
// so a lock file a killed run leaves behind blocks nobody. The holder writes
// who it is into the lock file for the next run to report, and removes the
// file when it releases it.
//
// Removing a lock file is safe only with this protocol: Release unlinks the
// file while it still holds the flock, and AcquireLock, once it has the
// flock, checks that the file it locked is still the one at the path. A run
// that opened the file just before its holder removed it thus finds, once it
// gets the flock, that it holds a file nobody else will ever open, and tries
// again with a fresh one.
type Lock struct {
	mu   sync.Mutex
	path string // the lock file
	file *os.File
}

// holder is what the lock file says about the run that holds it.
type holder struct {
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	Command string `json:"command"`
	Since   string `json:"since"`
}

func (h holder) String() string {
	return fmt.Sprintf("pid %d on %s running '%s' since %s", h.PID, h.Host, h.Command, h.Since)
}

const lockSuffix = ".lock"

// lockAttempts bounds AcquireLock's retries when the file it locked was
// removed by its releasing holder. Each retry means another run took and
// released the lock meanwhile, so running out means heavy contention.
const lockAttempts = 10

// maxHolderBytes bounds what is read of a lock file: a holder's details are
// one short JSON line, and a foreign file must not be read whole.
const maxHolderBytes = 4096

// errLockFileGone says the file AcquireLock locked is no longer the lock file.
var errLockFileGone = errors.New("lock file removed while locking it")

// testHookLockOpened, when set by a test, runs between opening the lock file
// and locking it: the moment a releasing holder can remove the file.
var testHookLockOpened func()

// LockPath is the lock file guarding statePath: beside the file a symlink at
// statePath leads to. When the link cannot be read it is beside statePath
// itself (and AcquireLock reports the link).
func LockPath(statePath string) string {
	if target, err := resolveLink(statePath); err == nil {
		statePath = target
	}
	return statePath + lockSuffix
}

// AcquireLock takes the lock on statePath without waiting. When another
// process (or another AcquireLock in this process) holds it, the error is a
// *fault.LockedError saying who, and the holder's lock file is left as it
// is. command is recorded for that message, e.g. "coderctl up".
func AcquireLock(statePath, command string) (*Lock, error) {
	target, err := resolveLink(statePath)
	if err != nil {
		return nil, fault.Input(statePath, "", "fix the symlink or pass another --env-file", "%v", err)
	}
	path := target + lockSuffix
	for range lockAttempts {
		lockedAt := time.Now()
		l, err := tryLock(statePath, path, command)
		if err == nil {
			removeStaleTemps(target, lockedAt)
		}
		if !errors.Is(err, errLockFileGone) {
			return l, err
		}
	}
	return nil, fmt.Errorf("lock %s: other runs kept taking and releasing the lock; try again", path)
}

// tryLock makes one attempt at the lock file path; errLockFileGone means the
// file it opened was removed meanwhile and a new attempt may succeed.
func tryLock(statePath, path, command string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		// The state file's directory is missing or not writable: a bad
		// --env-file, not a failed run.
		return nil, fault.Input(path, "", "check the --env-file path and its directory's permissions", "cannot create the lock file: %v", unwrapPathError(err))
	}
	if testHookLockOpened != nil {
		testHookLockOpened()
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		return nil, refused(f, statePath, path, err)
	}
	if !isLockFile(f, path) {
		_ = f.Close() // the only descriptor: closing drops the flock
		return nil, errLockFileGone
	}
	l := &Lock{path: path, file: f}
	if err := writeHolder(f, command); err != nil {
		_ = l.Release()
		return nil, fmt.Errorf("write lock file %s: %w", path, err)
	}
	return l, nil
}

// refused explains a failed flock on f. When the holder released (and
// removed) the file while its details were read, the lock may be free now.
func refused(f *os.File, statePath, path string, err error) error {
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	who := readHolder(f, path)
	if !isLockFile(f, path) {
		return errLockFileGone
	}
	return &fault.LockedError{Path: statePath, Holder: who}
}

// isLockFile reports whether the open file f is still the file at path.
func isLockFile(f *os.File, path string) bool {
	held, err := f.Stat()
	if err != nil {
		return false
	}
	current, err := os.Stat(path)
	return err == nil && os.SameFile(held, current)
}

// flock retries when a signal interrupts the call.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// thisRun describes this process, running command, as a lock's holder
// (the local lock file's and the remote lock object's).
func thisRun(command string) holder {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return holder{PID: os.Getpid(), Host: host, Command: command, Since: time.Now().UTC().Format(time.RFC3339)}
}

// writeHolder replaces the lock file's content with this process's details.
func writeHolder(f *os.File, command string) error {
	data, err := json.Marshal(thisRun(command))
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}

// readHolder describes the holder from the lock file f, the very file whose
// flock is held (the path may name a newer one by now). The holder writes its
// details just after taking the lock, so an empty file is read again briefly.
func readHolder(f *os.File, path string) string {
	const attempts = 5
	var data []byte
	for i := 0; i < attempts; i++ {
		var err error
		data, err = io.ReadAll(io.NewSectionReader(f, 0, maxHolderBytes))
		if err == nil && len(strings.TrimSpace(string(data))) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var h holder
	if err := json.Unmarshal(data, &h); err != nil || h.PID == 0 {
		return fmt.Sprintf("holder unknown: %s says %q", path, abbreviate(strings.TrimSpace(string(data))))
	}
	return h.String()
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// Release gives the lock up and removes the lock file, so a finished or
// refused run leaves nothing behind. The file is emptied and unlinked while
// the flock is still held (see Lock for why that order is safe), then
// unlocked and closed. Releasing twice is harmless.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	f := l.file
	l.file = nil
	removeErr := removeLockFile(f, l.path)
	unlockErr := flock(f, unix.LOCK_UN)
	closeErr := f.Close()
	if err := errors.Join(removeErr, unlockErr, closeErr); err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	return nil
}

// removeLockFile empties the held lock file and unlinks it, unless someone
// removed it by hand and another run has created a new one at the path since:
// that file is the other run's, and removing it would let a third run in.
func removeLockFile(f *os.File, path string) error {
	truncErr := f.Truncate(0)
	if !isLockFile(f, path) {
		return truncErr
	}
	removeErr := os.Remove(path)
	if errors.Is(removeErr, fs.ErrNotExist) {
		removeErr = nil
	}
	return errors.Join(truncErr, removeErr)
}
