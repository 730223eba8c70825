package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/joho/godotenv"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// Child-process modes: the test binary re-executes itself to hold a lock or
// to write the state file from another process.
const (
	childModeEnv = "STATE_TEST_CHILD"
	childPathEnv = "STATE_TEST_PATH"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childModeEnv) {
	case "":
		code := m.Run()
		moto.StopShared() // started by the remote-state tests
		os.Exit(code)
	case "hold-lock":
		os.Exit(childHoldLock(os.Getenv(childPathEnv)))
	case "write-forever":
		os.Exit(childWriteForever(os.Getenv(childPathEnv)))
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode")
		os.Exit(2)
	}
}

// childHoldLock takes the lock, says "held" and keeps it until stdin closes.
func childHoldLock(path string) int {
	l, err := AcquireLock(path, "coderctl up")
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("held")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = l.Release()
	return 0
}

// childWriteForever rewrites the state file until it is killed.
func childWriteForever(path string) int {
	s, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("writing")
	for i := 0; ; i++ {
		if err := s.Set(fmt.Sprintf("KEY_%d", i%50), fmt.Sprintf("it's value #%d with \"quotes\" and $", i)); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
}

// startChild runs the test binary in a child mode and waits for its first
// line of output.
func startChild(t *testing.T, mode, path, want string) (*exec.Cmd, *os.File) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childPathEnv+"="+path)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdinR
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = stdinR.Close()
	t.Cleanup(func() {
		_ = stdinW.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	first := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		first <- strings.TrimSpace(s)
	}()
	select {
	case got := <-first:
		if got != want {
			t.Fatalf("child %s said %q, want %q", mode, got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("child %s said nothing", mode)
	}
	return cmd, stdinW
}

// bashRead sources path the way users do (`set -a; source`) in a clean
// environment and returns the value bash sees for each key ("<unset>" when
// bash has no such variable).
func bashRead(t testing.TB, path string, keys ...string) map[string]string {
	t.Helper()
	script := `set -a; source "$1" || exit 9; shift; for k; do if [ -n "${!k+x}" ]; then printf '%s\0' "${!k}"; else printf '<unset>\0'; fi; done`
	cmd := exec.Command("bash", append([]string{"-c", script, "bash", path}, keys...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("bash could not source %s: %v: %s", path, err, stderr.String())
	}
	fields := strings.Split(string(out), "\x00")
	if len(fields) != len(keys)+1 {
		t.Fatalf("bash printed %d values for %d keys: %q", len(fields)-1, len(keys), out)
	}
	got := make(map[string]string, len(keys))
	for i, k := range keys {
		got[k] = fields[i]
	}
	return got
}

// godotenvRead reads path with godotenv.Read, as other tools would.
func godotenvRead(t testing.TB, path string) map[string]string {
	t.Helper()
	m, err := godotenv.Read(path)
	if err != nil {
		t.Fatalf("godotenv cannot read %s: %v", path, err)
	}
	return m
}

// writeTemp writes data to a fresh coder-infra.env and returns its path.
func writeTemp(t testing.TB, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "coder-infra.env")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustParse parses data or fails the test.
func mustParse(t testing.TB, data string) *File {
	t.Helper()
	f, err := Parse("coder-infra.env", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

// wantInputError checks err is a *fault.InputError whose message contains
// every fragment.
func wantInputError(t testing.TB, err error, fragments ...string) {
	t.Helper()
	var ie *fault.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v (%T), want an InputError", err, err)
	}
	for _, frag := range fragments {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error %q does not mention %q", err, frag)
		}
	}
}

// dirEntries lists the names in dir.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func itoa(i int) string { return strconv.Itoa(i) }

// execBash runs a bash script with args in a clean environment.
func execBash(script string, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{"-c", script, "bash"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C.UTF-8"}
	out, err := cmd.Output()
	return string(out), err
}

// statIno is the inode number behind a FileInfo: a changed inode proves
// the file was replaced by a rename.
func statIno(info os.FileInfo) uint64 {
	return info.Sys().(*syscall.Stat_t).Ino
}
