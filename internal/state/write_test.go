package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
)

func TestWriteAtomicFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.env")
	link := filepath.Join(dir, "coder-infra.env")
	if err := os.WriteFile(real, []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.env", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(link, []byte("A=2\n")); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", info, err)
	}
	if got, _ := os.ReadFile(real); string(got) != "A=2\n" {
		t.Errorf("target holds %q", got)
	}
	if mode := fileModeOf(t, real); mode != 0o600 {
		t.Errorf("target mode %o", mode)
	}
	if names := dirEntries(t, dir); !reflect.DeepEqual(names, []string{"coder-infra.env", "real.env"}) {
		t.Errorf("directory holds %q", names)
	}
}

func TestWriteAtomicFailsCleanly(t *testing.T) {
	err := WriteAtomic(filepath.Join(t.TempDir(), "missing-dir", "coder-infra.env"), []byte("A=1\n"))
	if err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Errorf("WriteAtomic into a missing directory: %v", err)
	}
}

// TestWriteAtomicRefuses: a file the user made read-only, or a path that is
// not a regular file, is never replaced (even by root, whom mode bits do not
// stop), and no temporary file is left behind.
func TestWriteAtomicRefuses(t *testing.T) {
	cases := []struct {
		name    string
		make    func(t *testing.T, dir string) string // returns the path to write
		wantErr error
	}{
		{"mode 0400", regularWithMode(0o400), ErrReadOnly},
		{"mode 0444", regularWithMode(0o444), ErrReadOnly},
		{"mode 0555", regularWithMode(0o555), ErrReadOnly},
		{"symlink to a read-only file", linkTo(regularWithMode(0o444)), ErrReadOnly},
		{"directory", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "coder-infra.env")
			mustDo(t, os.Mkdir(path, 0o700))
			return path
		}, fsx.ErrNotRegular},
		{"FIFO", fifoAt, fsx.ErrNotRegular},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := c.make(t, dir)
			before := describeFile(t, path)
			entries := dirEntries(t, dir)
			err := WriteAtomic(path, []byte("A=2\n"))
			if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("WriteAtomic = %v, want %v naming %s", err, c.wantErr, path)
			}
			if after := describeFile(t, path); after != before {
				t.Errorf("the file changed from %s to %s", before, after)
			}
			if got := dirEntries(t, dir); !reflect.DeepEqual(got, entries) {
				t.Errorf("directory holds %q, want %q", got, entries)
			}
		})
	}
}

// regularWithMode makes coder-infra.env with mode perm.
func regularWithMode(perm fs.FileMode) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		path := filepath.Join(dir, "coder-infra.env")
		mustDo(t, os.WriteFile(path, []byte("A=1\n"), 0o600))
		mustDo(t, os.Chmod(path, perm))
		return path
	}
}

// linkTo makes what target makes under another name, and a symlink to it.
func linkTo(target func(t *testing.T, dir string) string) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		real := filepath.Join(dir, "real")
		mustDo(t, os.Mkdir(real, 0o700))
		link := filepath.Join(dir, "link.env")
		mustDo(t, os.Symlink(target(t, real), link))
		return link
	}
}

func fifoAt(t *testing.T, dir string) string {
	path := filepath.Join(dir, "coder-infra.env")
	mustDo(t, syscall.Mkfifo(path, 0o600))
	return path
}

func TestResolveLink(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	mustDo(t, os.Mkdir(sub, 0o700))
	mustDo(t, os.Symlink(sub, filepath.Join(dir, "subln")))
	mustDo(t, os.WriteFile(filepath.Join(dir, "real.env"), nil, 0o600))
	links := map[string]string{ // name in dir -> link target
		"rel.env":      "real.env",
		"abs.env":      filepath.Join(dir, "real.env"),
		"dangling.env": "later.env",
		"chain.env":    "rel.env",
		"chaindng.env": "dangling.env",
		"loop1.env":    "loop2.env",
		"loop2.env":    "loop1.env",
		"sub/up.env":   "../real.env", // read from the real dir, not from subln
	}
	for name, target := range links {
		mustDo(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	cases := []struct{ path, want string }{
		{"real.env", "real.env"},
		{"missing.env", "missing.env"},
		{"rel.env", "real.env"},
		{"abs.env", "real.env"},
		{"dangling.env", "later.env"},
		{"chain.env", "real.env"},
		{"chaindng.env", "later.env"},
		{"subln/up.env", "real.env"},
	}
	for _, c := range cases {
		got, err := resolveLink(filepath.Join(dir, c.path))
		if err != nil || got != filepath.Join(dir, c.want) {
			t.Errorf("resolveLink(%s) = %q, %v; want %s", c.path, got, err, c.want)
		}
	}
	if _, err := resolveLink(filepath.Join(dir, "loop1.env")); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("resolveLink of a loop: %v", err)
	}
}

func TestCheckWritable(t *testing.T) {
	cases := []struct {
		name  string
		make  func(t *testing.T, dir string) string
		wants []string // fragments of the InputError; nil means writable
	}{
		{"missing file in a writable directory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "coder-infra.env")
		}, nil},
		{"mode 0600", regularWithMode(0o600), nil},
		{"mode 0644", regularWithMode(0o644), nil},
		{"dangling symlink", func(t *testing.T, dir string) string {
			link := filepath.Join(dir, "link.env")
			mustDo(t, os.Symlink("later.env", link))
			return link
		}, nil},
		{"mode 0400", regularWithMode(0o400), []string{"is read-only; coderctl will not replace it", "chmod u+w it or pass another --env-file"}},
		{"mode 0444", regularWithMode(0o444), []string{"is read-only", "chmod u+w"}},
		{"symlink to a read-only file", linkTo(regularWithMode(0o444)), []string{"is a symlink to", "which is read-only"}},
		{"FIFO", fifoAt, []string{"not a regular file (a named pipe)"}},
		{"device", func(t *testing.T, dir string) string { return "/dev/null" }, []string{"not a regular file (a character device)"}},
		{"directory", func(t *testing.T, dir string) string { return dir }, []string{"not a regular file (a directory)"}},
		{"missing directory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "gone", "coder-infra.env")
		}, []string{"gone", "does not exist"}},
		{"read-only directory", func(t *testing.T, dir string) string {
			ro := filepath.Join(dir, "ro")
			mustDo(t, os.Mkdir(ro, 0o500))
			return filepath.Join(ro, "coder-infra.env")
		}, []string{"ro is read-only", "chmod u+w"}},
		{"directory path through a file", func(t *testing.T, dir string) string {
			return filepath.Join(regularWithMode(0o600)(t, dir), "coder-infra.env")
		}, []string{"cannot", "not a directory"}},
		{"symlink loop", func(t *testing.T, dir string) string {
			a := filepath.Join(dir, "a.env")
			mustDo(t, os.Symlink("a.env", a))
			return a
		}, []string{"too many levels of symbolic links"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := c.make(t, dir)
			entries := dirEntries(t, dir)
			err := CheckWritable(path)
			if c.wants == nil {
				if err != nil {
					t.Fatalf("CheckWritable = %v, want nil", err)
				}
			} else {
				wantInputError(t, err, append(c.wants, path)...)
				if fault.ExitCode(err) != fault.ExitInput {
					t.Errorf("exit code %d, want %d", fault.ExitCode(err), fault.ExitInput)
				}
			}
			if got := dirEntries(t, dir); !reflect.DeepEqual(got, entries) {
				t.Errorf("the probe left %q, want %q", got, entries)
			}
		})
	}
}

func TestTightenMode(t *testing.T) {
	cases := []struct{ from, want fs.FileMode }{
		{0o600, 0o600},
		{0o644, 0o600},
		{0o666, 0o600},
		{0o700, 0o600},
		{0o400, 0o400}, // read-only stays read-only
		{0o444, 0o400},
	}
	for _, c := range cases {
		path := regularWithMode(c.from)(t, t.TempDir())
		if err := tightenMode(path); err != nil {
			t.Fatal(err)
		}
		if got := fileModeOf(t, path); got != c.want {
			t.Errorf("tightenMode(%o) left %o, want %o", c.from, got, c.want)
		}
	}
}
