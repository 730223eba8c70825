// Command kubeground runs the Kubernetes part of the local proving ground
// alone (no moto, no stand-ins; cmd/ground runs the whole ground) for people
// and scripts: `kubeground up` starts etcd, kube-apiserver,
// controller-manager, scheduler and kwok on loopback (see
// internal/testenv/kubeground) and writes `export KUBECONFIG=...` to
// <state-dir>/env; `kubeground down` stops it.
//
//	kubeground up [--state-dir .kubeground] [--detach] [--node NAME[,label:K=V][,taint:K=V:EFFECT]]...
//	kubeground down [--state-dir .kubeground]
//
// Without --detach, up stays in the foreground until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/internal/testenv/kubeground"
)

const usage = `usage:
  kubeground up [--state-dir DIR] [--detach] [--node NAME[,label:K=V][,taint:K=V:EFFECT]]...
  kubeground down [--state-dir DIR]`

// usageError makes main exit 2, like coderctl's bad-input errors.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + "\n" + usage }

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "kubeground:", err)
	var ue usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"missing command"}
	}
	fs := flag.NewFlagSet("kubeground "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", ".kubeground", "directory for the pid file, env file, logs and etcd data")
	switch args[0] {
	case "up":
		detach := fs.Bool("detach", false, "start in the background and return once the ground is ready")
		var nodes nodeFlags
		fs.Var(&nodes, "node", "add a kwok node: NAME[,label:K=V][,taint:K=V:EFFECT] (repeatable)")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		if *detach {
			return upDetached(*stateDir, args[1:], stdout)
		}
		return up(*stateDir, nodes, stdout, stderr)
	case "down":
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		return down(*stateDir, stdout)
	default:
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}

type paths struct{ dir, pid, env, log, work string }

func statePaths(dir string) (paths, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return paths{}, err
	}
	return paths{
		dir:  abs,
		pid:  filepath.Join(abs, "kubeground.pid"),
		env:  filepath.Join(abs, "env"),
		log:  filepath.Join(abs, "kubeground.log"),
		work: filepath.Join(abs, "kube"),
	}, nil
}

// claimStateDir refuses a state directory a running kubeground uses, makes
// it, and removes a stale env file: left by a killed run, it would tell
// scripts a ground is ready.
func claimStateDir(stateDir string) (paths, error) {
	p, err := statePaths(stateDir)
	if err != nil {
		return p, err
	}
	if pid, alive := runningPID(p.pid); alive {
		return p, fmt.Errorf("a kubeground already runs from %s (pid %d): run `kubeground down --state-dir %s` first", p.dir, pid, stateDir)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return p, err
	}
	_ = os.Remove(p.env)
	return p, nil
}

// up runs the ground in the foreground until SIGINT or SIGTERM.
func up(stateDir string, nodes nodeFlags, stdout, stderr io.Writer) error {
	p, err := claimStateDir(stateDir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.pid, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(p.pid)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := kubeground.Start(ctx, kubeground.Options{WorkDir: p.work, Log: stderr})
	if err != nil {
		return err
	}
	defer func() {
		_ = os.Remove(p.env)
		if err := g.Stop(); err != nil {
			fmt.Fprintln(stderr, "kubeground: stop:", err)
		}
	}()
	for _, n := range nodes {
		if err := g.AddNode(ctx, n); err != nil {
			return err
		}
	}
	env := fmt.Sprintf("export KUBECONFIG=%s\n", g.Kubeconfig())
	if err := os.WriteFile(p.env, []byte(env), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kubeground up in %s; logs in %s\n%s", g.StartDuration().Round(time.Millisecond), p.work, env)
	<-ctx.Done()
	fmt.Fprintln(stderr, "kubeground: stopping")
	return nil
}

// upDetached re-runs `up` in a new session with output to the state dir's
// log, and returns once its env file appears (ready) or it exits (failed).
func upDetached(stateDir string, args []string, stdout io.Writer) error {
	p, err := claimStateDir(stateDir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.Create(p.log)
	if err != nil {
		return err
	}
	defer logFile.Close()
	childArgs := []string{"up"}
	for _, a := range args {
		if a != "--detach" && a != "-detach" && a != "--detach=true" && a != "-detach=true" {
			childArgs = append(childArgs, a)
		}
	}
	cmd := exec.Command(self, childArgs...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.After(3 * time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(p.log)
			return fmt.Errorf("kubeground exited during start (%v); %s:\n%s", err, p.log, log)
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("kubeground not ready after 3 minutes; see %s", p.log)
		case <-tick.C:
			if env, err := os.ReadFile(p.env); err == nil {
				fmt.Fprintf(stdout, "kubeground running (pid %d, log %s)\n%s", cmd.Process.Pid, p.log, env)
				return nil
			}
		}
	}
}

// down stops the kubeground recorded in the state dir; it is a no-op when none runs.
func down(stateDir string, stdout io.Writer) error {
	p, err := statePaths(stateDir)
	if err != nil {
		return err
	}
	pid, alive := runningPID(p.pid)
	if !alive {
		_ = os.Remove(p.pid)
		_ = os.Remove(p.env)
		fmt.Fprintf(stdout, "no kubeground running from %s\n", p.dir)
		return nil
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	_ = proc.Signal(syscall.SIGTERM)
	// up stops its components (apiserver before etcd) and then exits.
	for range 300 {
		if _, alive := runningPID(p.pid); !alive {
			fmt.Fprintf(stdout, "kubeground stopped (pid %d)\n", pid)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Its components die with it (Pdeathsig).
	_ = proc.Signal(syscall.SIGKILL)
	_ = os.Remove(p.pid)
	_ = os.Remove(p.env)
	fmt.Fprintf(stdout, "kubeground killed (pid %d) after 30 s\n", pid)
	return nil
}

// runningPID reads the pid file and reports whether that process is alive
// and still a kubeground (a stale file's pid may belong to someone else now).
func runningPID(pidFile string) (int, bool) {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return pid, false
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		return pid, strings.Contains(string(cmdline), "kubeground")
	}
	return pid, true
}

// nodeFlags parses repeated --node NAME[,label:K=V][,taint:K=V:EFFECT].
type nodeFlags []kubeground.NodeSpec

func (n *nodeFlags) String() string { return fmt.Sprint(len(*n), " nodes") }

func (n *nodeFlags) Set(value string) error {
	spec, err := parseNode(value)
	if err != nil {
		return err
	}
	*n = append(*n, spec)
	return nil
}

func parseNode(value string) (kubeground.NodeSpec, error) {
	parts := strings.Split(value, ",")
	spec := kubeground.NodeSpec{Name: parts[0], Labels: map[string]string{}}
	if spec.Name == "" {
		return spec, fmt.Errorf("node %q: name is empty", value)
	}
	for _, part := range parts[1:] {
		kind, body, _ := strings.Cut(part, ":")
		switch kind {
		case "label":
			k, v, ok := strings.Cut(body, "=")
			if !ok || k == "" {
				return spec, fmt.Errorf("node %q: label %q is not K=V", value, body)
			}
			spec.Labels[k] = v
		case "taint":
			kv, effect, _ := strings.Cut(body, ":")
			k, v, _ := strings.Cut(kv, "=")
			e := corev1.TaintEffect(effect)
			if k == "" || (e != corev1.TaintEffectNoSchedule && e != corev1.TaintEffectPreferNoSchedule && e != corev1.TaintEffectNoExecute) {
				return spec, fmt.Errorf("node %q: taint %q is not K=V:NoSchedule|PreferNoSchedule|NoExecute", value, body)
			}
			spec.Taints = append(spec.Taints, corev1.Taint{Key: k, Value: v, Effect: e})
		default:
			return spec, fmt.Errorf("node %q: %q is neither label:K=V nor taint:K=V:EFFECT", value, part)
		}
	}
	return spec, nil
}
