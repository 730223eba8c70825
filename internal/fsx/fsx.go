// Package fsx reads the files a user names (state file, cluster config,
// values files, kubeconfig) safely: only regular files, and only up to a
// size bound. A FIFO would block a plain read forever (deaf to SIGINT, since
// the read never returns), and /dev/zero or a huge file would exhaust memory.
package fsx

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxInputFile bounds every input file coderctl reads. The largest real one,
// a cluster config with a dozen node groups or a values file, is a few KiB.
const MaxInputFile = 1 << 20

// ErrNotRegular says the path names a FIFO, device, socket or directory.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge says the file is larger than the bound.
var ErrTooLarge = errors.New("file too large")

// ReadRegular reads path (symlinks followed) when it is a regular file of at
// most limit bytes. Errors wrap fs.ErrNotExist, ErrNotRegular or ErrTooLarge
// so callers can word them for the user; Describe does that.
func ReadRegular(path string, limit int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (%s)", ErrNotRegular, Kind(info.Mode()))
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, info.Size(), limit)
	}
	// O_NONBLOCK: should the path be swapped for a FIFO between Stat and
	// Open, opening it must not block either.
	f, err := os.OpenFile(path, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (%s)", ErrNotRegular, Kind(info.Mode()))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

// Describe words a ReadRegular error for a one-line message: what is wrong
// and, as the hint, what to do.
func Describe(err error) (msg, hint string) {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "file not found", "check the path"
	case errors.Is(err, ErrNotRegular):
		return err.Error(), "name a regular file; coderctl does not read pipes, devices or directories"
	case errors.Is(err, ErrTooLarge):
		return err.Error(), "name the right file; input files are small text files"
	case errors.As(err, &pe):
		return fmt.Sprintf("cannot read: %v", pe.Err), "check the path and its permissions"
	default:
		return fmt.Sprintf("cannot read: %v", err), "check the path and its permissions"
	}
}

// Kind names a file type that is not regular, for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "not regular: " + m.Type().String()
	}
}
