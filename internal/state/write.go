package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
)

// fileMode is the state file's mode: it names the user's infrastructure and
// is nobody else's business.
const fileMode fs.FileMode = 0o600

// ownerWrite is the bit by which a user says "do not change this". coderctl
// often runs as root, whom mode bits do not stop, so it checks the bit itself.
const ownerWrite fs.FileMode = 0o200

// maxLinks bounds a chain of symlinks, as the kernel's ELOOP limit does.
const maxLinks = 40

// ErrReadOnly says the file to be replaced has no owner write bit.
var ErrReadOnly = errors.New("read-only (no owner write bit); coderctl will not replace it")

// errDirReadOnly says the directory that would hold the temporary file has
// no owner write bit.
var errDirReadOnly = errors.New("directory is read-only (no owner write bit)")

// WriteAtomic replaces path with data so that a reader, or a run killed at any
// moment, sees either the old content or the new, never a mix: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory. The result has mode 0600. A symlink at path is
// followed, so the link stays a link. An existing file that is read-only
// (ErrReadOnly) or not a regular file is left alone and reported.
func WriteAtomic(path string, data []byte) error {
	target, err := resolveLink(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := replaceable(target); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeAndSync(tmp, data); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// resolveLink returns where a write to path lands: the file at the end of a
// chain of symlinks at path, or path itself when it is not a symlink. A
// dangling link resolves to the path it names, so that the first write
// creates the target and the link stays a link. Only the last component is
// followed; the directories name the same directory either way. WriteAtomic,
// CheckWritable and AcquireLock share it so that they act on the same file.
func resolveLink(path string) (string, error) {
	current := path
	for range maxLinks {
		info, err := os.Lstat(current)
		if err != nil || info.Mode()&fs.ModeSymlink == 0 {
			return current, nil // a missing path is created; other errors surface on use
		}
		target, err := os.Readlink(current)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(realDir(current), target)
		}
		current = target
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// realDir is path's directory with symlinks resolved: the kernel reads a
// relative link target such as "../x" from the real directory, not the
// spelling of the path.
func realDir(path string) string {
	dir := filepath.Dir(path)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return real
	}
	return dir
}

// replaceable refuses to replace an existing target (symlinks already
// resolved) that is not a regular file or whose owner made it read-only.
func replaceable(target string) error {
	info, err := os.Stat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !info.Mode().IsRegular():
		return fmt.Errorf("%w (%s)", fsx.ErrNotRegular, fsx.Kind(info.Mode()))
	case info.Mode().Perm()&ownerWrite == 0:
		return ErrReadOnly
	}
	return nil
}

// CheckWritable reports, before anything is changed, whether the state file
// at path can be written the way WriteAtomic writes it. The CLI calls it
// before its first AWS call so that a state file the run could not record
// into stops the run while nothing exists yet. Each refusal is a
// *fault.InputError: the file (symlinks followed) is read-only or not a
// regular file, or its directory is missing, read-only (no owner write bit,
// honoured even for root) or not writable (a probe file cannot be created
// there, as on a read-only mount).
func CheckWritable(path string) error {
	target, err := resolveLink(path)
	if err != nil {
		return fault.Input(path, "", "fix the symlink or pass another --env-file", "%v", err)
	}
	if err := replaceable(target); err != nil {
		return notWritable(path, target, err)
	}
	dir := filepath.Dir(target)
	if err := probeDir(dir); err != nil {
		return dirNotWritable(path, dir, err)
	}
	return nil
}

// notWritable words a replaceable error for the user.
func notWritable(path, target string, err error) error {
	what := "is"
	if target != path {
		what = "is a symlink to " + target + ", which is"
	}
	switch {
	case errors.Is(err, ErrReadOnly):
		return fault.Input(path, "", "chmod u+w it or pass another --env-file",
			"%s read-only; coderctl will not replace it", what)
	case errors.Is(err, fsx.ErrNotRegular):
		return fault.Input(path, "", "pass a regular file as --env-file", "%s %v", what, err)
	default:
		return fault.Input(path, "", "check the --env-file path and its permissions",
			"cannot check the state file: %v", unwrapPathError(err))
	}
}

// dirNotWritable words a probeDir error for the user.
func dirNotWritable(path, dir string, err error) error {
	const hint = "make the directory writable (chmod u+w) or pass another --env-file"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fault.Input(path, "", "create the directory or pass another --env-file", "directory %s does not exist", dir)
	case errors.Is(err, errDirReadOnly):
		return fault.Input(path, "", hint, "directory %s is read-only; the state file is replaced through a temporary file beside it", dir)
	default:
		return fault.Input(path, "", hint, "cannot write in directory %s: %v", dir, unwrapPathError(err))
	}
}

// probeDir checks that dir takes a new file, as WriteAtomic's temporary
// file. Creating one is the only test that also catches a read-only mount
// (EROFS) and, for non-root users, permissions.
func probeDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if info.IsDir() && info.Mode().Perm()&ownerWrite == 0 {
		return errDirReadOnly
	}
	f, err := os.CreateTemp(dir, ".coderctl-probe-*")
	if err != nil {
		return err
	}
	_ = f.Close()
	return os.Remove(f.Name())
}

// writeAndSync fills a fresh temporary file (CreateTemp makes it 0600) and
// flushes it to disk before it is renamed into place.
func writeAndSync(f *os.File, data []byte) error {
	if err := f.Chmod(fileMode); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes the rename itself durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tightenMode drops group and other permissions (and the owner's execute
// bit) from an existing file. It only removes bits: a file the user made
// read-only stays read-only.
func tightenMode(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	want := info.Mode().Perm() & fileMode
	if info.Mode().Perm() == want {
		return nil
	}
	if err := os.Chmod(path, want); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}
