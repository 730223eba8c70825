package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderctl/coderctl/internal/fault"
)

// Lock is an exclusive hold on a state file, so that two coderctl runs never
// apply against the same deployment at once. It is an flock(2) on the sibling
// file <state>.lock: the kernel drops it when the holder exits, however it
// exits, so a lock file left behind is never stale in a way that blocks
// anyone. The holder writes who it is into the lock file for the next run to
// report.
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

// LockPath is the lock file guarding statePath.
func LockPath(statePath string) string { return statePath + ".lock" }

// AcquireLock takes the lock on statePath without waiting. When another
// process (or another AcquireLock in this process) holds it, the error is a
// *fault.LockedError saying who. command is recorded for that message, e.g.
// "coderctl up".
func AcquireLock(statePath, command string) (*Lock, error) {
	path := LockPath(statePath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		// The state file's directory is missing or not writable: a bad
		// --env-file, not a failed run.
		return nil, fault.Input(path, "", "check the --env-file path and its directory's permissions", "cannot create the lock file: %v", unwrapPathError(err))
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &fault.LockedError{Path: statePath, Holder: readHolder(path)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := writeHolder(f, command); err != nil {
		_ = f.Close() // closing the only descriptor drops the flock
		return nil, fmt.Errorf("write lock file %s: %w", path, err)
	}
	return &Lock{path: path, file: f}, nil
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

// writeHolder replaces the lock file's content with this process's details.
func writeHolder(f *os.File, command string) error {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	h := holder{PID: os.Getpid(), Host: host, Command: command, Since: time.Now().UTC().Format(time.RFC3339)}
	data, err := json.Marshal(h)
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

// readHolder describes the holder from the lock file. The holder writes its
// details just after taking the lock, so an empty file is read again briefly.
func readHolder(path string) string {
	const attempts = 5
	var data []byte
	for i := 0; i < attempts; i++ {
		var err error
		data, err = os.ReadFile(path)
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

// Release gives the lock up. The lock file is emptied but not removed:
// removing it would let a run that opened the old file and a run that
// creates a new one both hold "the" lock. Releasing twice is harmless.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	f := l.file
	l.file = nil
	truncErr := f.Truncate(0)
	unlockErr := flock(f, unix.LOCK_UN)
	closeErr := f.Close()
	if err := errors.Join(unlockErr, closeErr); err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	if truncErr != nil {
		return fmt.Errorf("release lock %s: %w", l.path, truncErr)
	}
	return nil
}
