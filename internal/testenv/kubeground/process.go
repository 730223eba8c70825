package kubeground

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// component is one control-plane process. It runs in its own process group
// so that Stop can signal it and anything it spawned, and its output goes to
// <workdir>/<name>.log so a failed start can quote it.
type component struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once Wait returned
	waitErr error         // valid after exited is closed
}

func startComponent(name, binary, workDir string, args, env []string) (*component, error) {
	logPath := filepath.Join(workDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = workDir
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &component{name: name, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(c.exited)
	}()
	return c, nil
}

func (c *component) pid() int { return c.cmd.Process.Pid }

func (c *component) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// exitError describes an unexpected exit with the end of the log, which is
// where every component explains why it gave up.
func (c *component) exitError() error {
	return fmt.Errorf("%s exited early (%v); last lines of %s:\n%s", c.name, c.waitErr, c.logPath, c.tail(25))
}

// signal sends sig to the component's whole process group.
func (c *component) signal(sig syscall.Signal) {
	if c.hasExited() {
		return
	}
	// A negative pid addresses the group; the child leads it (Setpgid).
	if err := syscall.Kill(-c.pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = c.cmd.Process.Signal(sig)
	}
}

// waitExit waits up to grace for the component to exit, then kills its group.
func (c *component) waitExit(grace time.Duration) error {
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
	}
	c.signal(syscall.SIGKILL)
	select {
	case <-c.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", c.name, c.pid())
	}
}

// tail returns the last n lines of the component's log.
func (c *component) tail(n int) string {
	const window = 16 << 10
	f, err := os.Open(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > window {
		_, _ = f.Seek(st.Size()-window, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return lastLines(data, n)
}

func lastLines(data []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(data, nil)), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
