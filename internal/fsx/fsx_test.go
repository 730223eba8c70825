package fsx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 101)), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		path    string
		want    string
		wantErr error
		msg     string
	}{
		{"regular file", small, "hello", nil, ""},
		{"symlink to a regular file", link, "hello", nil, ""},
		{"missing", filepath.Join(dir, "none"), "", fs.ErrNotExist, "file not found"},
		{"directory", dir, "", ErrNotRegular, "a directory"},
		{"fifo does not block", fifo, "", ErrNotRegular, "a named pipe"},
		{"device", "/dev/zero", "", ErrNotRegular, "a character device"},
		{"over the bound", big, "", ErrTooLarge, "at most 100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadRegular(c.path, 100)
			if c.wantErr == nil {
				if err != nil || string(got) != c.want {
					t.Fatalf("ReadRegular = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("error %v, want %v", err, c.wantErr)
			}
			if msg, hint := Describe(err); !strings.Contains(msg, c.msg) || hint == "" {
				t.Fatalf("Describe = %q, %q; want it to mention %q with a hint", msg, hint, c.msg)
			}
		})
	}
}
