package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	coderctl "github.com/coderctl/coderctl"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/stages"
)

// remote is one test's S3 state in moto: a bucket, the URL of the state
// object in it, and a client to look behind coderctl's back.
type remote struct {
	t      *testing.T
	client *s3.Client
	bucket string
	url    string
}

func newRemote(t *testing.T, server *moto.Server, bucket string, versioned bool) *remote {
	t.Helper()
	cfg, err := server.AWSConfig(context.Background(), "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	r := &remote{t: t, client: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle, o.Logger = true, logging.Nop{} }), bucket: bucket,
		url: "s3://" + bucket + "/prod/coder-infra.env"}
	ctx := context.Background()
	if _, err := r.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintUsWest2}}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if _, err := r.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// object reads key ("" = the state object); ok is false when it is absent.
func (r *remote) object(key string) (string, bool) {
	r.t.Helper()
	if key == "" {
		key = "prod/coder-infra.env"
	}
	out, err := r.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
	if err != nil {
		return "", false
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b), true
}

// runIn runs coderctl in-process with fake streams, with --config and the
// environment given but no --env-file: the state is wherever args say.
func runIn(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{
		IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		Registry: stages.Registry,
		Build:    BuildInfo{Version: "v0.0.0-test", Commit: "abc123"},
		Now:      time.Now,
	}
	code := Main(f, append([]string{"--config", filepath.Join(dir, "cluster-config.yaml")}, args...))
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// TestRemoteStateCommands: the state commands on an S3 object, from the
// first push of a local file to pull, source, and a refused push.
func TestRemoteStateCommands(t *testing.T) {
	server := moto.Require(t)
	r := newRemote(t, server, "coderctl-cli-state", true)
	h := newHarness(t, goodEnv+"NOTE='it is \"odd\" $HOME'\n")
	env := map[string]string{}
	run := func(args ...string) result { return runIn(t, h.dir, env, args...) }
	must := func(want int, args ...string) result {
		t.Helper()
		res := run(args...)
		if res.code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout %s\nstderr %s", args, res.code, want, res.stdout, res.stderr)
		}
		return res
	}

	// Before the first push there is nothing to read.
	res := must(2, "--state", r.url, "state", "show")
	if !strings.Contains(res.stderr, r.url+": state object not found") || !strings.Contains(res.stderr, "state push") {
		t.Errorf("show before any push: %q", res.stderr)
	}
	// The first push of a local file (never pulled) creates the object.
	must(0, "--state", r.url, "state", "push", h.envFile)
	if got, _ := r.object(""); got != string(h.stateBytes()) {
		t.Fatalf("object after the first push = %q, want the file %q", got, h.stateBytes())
	}

	// show, list and get read the object; CODERCTL_STATE names it too.
	res = must(0, "--state", r.url, "state", "show", "-o", "json")
	var shown struct{ Values map[string]string }
	if err := json.Unmarshal([]byte(res.stdout), &shown); err != nil || shown.Values["CODER_DOMAIN"] != "coder.example.com" {
		t.Fatalf("state show -o json: %q (%v)", res.stdout, err)
	}
	env["CODERCTL_STATE"] = r.url
	if res = must(0, "state", "list"); !strings.Contains(res.stdout, "USERS=500\n") {
		t.Errorf("state list: %q", res.stdout)
	}
	if res = must(0, "state", "get", "NOTE"); res.stdout != "it is \"odd\" $HOME\n" {
		t.Errorf("state get NOTE: %q", res.stdout)
	}
	delete(env, "CODERCTL_STATE")

	// set writes the object under the lock, and leaves no lock behind.
	must(0, "--state", r.url, "state", "set", "VPC_ID=vpc-0abc", "USERS=300")
	if got, _ := r.object(""); !strings.Contains(got, "VPC_ID=vpc-0abc\n") || !strings.Contains(got, "USERS=300\n") || !strings.HasPrefix(got, "# my deployment\n") {
		t.Errorf("object after set = %q", got)
	}
	if _, locked := r.object("prod/coder-infra.env.lock"); locked {
		t.Error("state set left its lock object")
	}

	// pull writes a copy bash sources to the values coderctl shows.
	pulled := filepath.Join(t.TempDir(), "pulled.env")
	must(0, "--state", r.url, "state", "pull", pulled)
	res = must(0, "--state", r.url, "state", "show", "-o", "json")
	if err := json.Unmarshal([]byte(res.stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if got := sourceInBash(t, pulled, sortedKeys(shown.Values)); fmt.Sprint(got) != fmt.Sprint(shown.Values) {
		t.Errorf("bash sourced the pulled copy as %v, want %v", got, shown.Values)
	}
	if res = must(0, "--state", r.url, "state", "pull"); !strings.HasPrefix(res.stdout, "# coderctl state pull: "+r.url+" etag ") {
		t.Errorf("pull to stdout does not start with its record line: %q", res.stdout)
	}

	// The remote changes; pushing the older copy is refused, nothing changes.
	must(0, "--state", r.url, "state", "set", "USERS=400")
	before, _ := r.object("")
	edited, _ := os.ReadFile(pulled)
	h.write(pulled, string(edited)+"HOSTED_ZONE_ID=Z0123456789ABCDEFGHIJ\n")
	res = must(2, "--state", r.url, "state", "push", pulled)
	if !strings.Contains(res.stderr, pulled+": the remote state "+r.url+" changed since this copy was pulled") || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
		t.Errorf("push over a changed remote: %q", res.stderr)
	}
	if after, _ := r.object(""); after != before {
		t.Errorf("a refused push changed the object:\n%s", after)
	}
	// A fresh pull, edited, pushes.
	must(0, "--state", r.url, "state", "pull", pulled)
	fresh, _ := os.ReadFile(pulled)
	h.write(pulled, string(fresh)+"HOSTED_ZONE_ID=Z0123456789ABCDEFGHIJ\n")
	must(0, "--state", r.url, "state", "push", pulled)
	if after, _ := r.object(""); !strings.HasSuffix(after, "HOSTED_ZONE_ID=Z0123456789ABCDEFGHIJ\n") || strings.Contains(after, "# coderctl state pull") {
		t.Errorf("object after a good push = %q", after)
	}
}

// TestRemoteStateRefusals: each refusal exits 2 in one line naming what to
// fix, before anything changes.
func TestRemoteStateRefusals(t *testing.T) {
	server := moto.Require(t)
	proxy, err := awsproxy.Start(server.URL, awsproxy.Instant())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	t.Setenv("AWS_ENDPOINT_URL", proxy.URL)
	r := newRemote(t, server, "coderctl-refusals", true)
	h := newHarness(t, goodEnv)
	if res := runIn(t, h.dir, nil, "--state", r.url, "state", "push", h.envFile); res.code != 0 {
		t.Fatalf("push: %d %s", res.code, res.stderr)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"a bucket that does not exist", nil, []string{"--state", "s3://no-such-coderctl-bucket/prod.env", "up", "--yes"},
			[]string{"s3://no-such-coderctl-bucket/prod.env", "bucket no-such-coderctl-bucket does not exist"}},
		{"a bucket that does not exist, from the environment", map[string]string{"CODERCTL_STATE": "s3://no-such-coderctl-bucket/prod.env"}, []string{"state", "set", "USERS=5"},
			[]string{"bucket no-such-coderctl-bucket does not exist"}},
		{"a URL without a key from the environment", map[string]string{"CODERCTL_STATE": "s3://coderctl-refusals"}, []string{"plan"},
			[]string{"environment CODERCTL_STATE", "no object key"}},
		{"two variables naming the state", map[string]string{"CODERCTL_STATE": r.url, "CODERCTL_ENV_FILE": h.envFile}, []string{"state", "show"},
			[]string{"CODERCTL_STATE and CODERCTL_ENV_FILE both name the state"}},
		{"pull of local state", nil, []string{"--env-file", h.envFile, "state", "pull"}, []string{"state pull works on remote state"}},
		{"unlock when not locked", nil, []string{"--state", r.url, "state", "unlock", "0b8f2c3e-0000-4000-8000-000000000000", "--yes"},
			[]string{r.url, "is not locked"}},
		{"push of a file with a secret", nil, []string{"--state", r.url, "state", "push", writeTo(t, "DB_PASSWORD=hunter2\n")}, []string{"DB_PASSWORD", "secret"}},
		{"push of a bad input value", nil, []string{"--state", r.url, "state", "push", writeTo(t, "USERS=lots\n")}, []string{"USERS"}},
		{"push of a copy never pulled over an existing object", nil, []string{"--state", r.url, "state", "push", writeTo(t, "USERS=5\n")},
			[]string{"already exists and this file was not pulled from it"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := r.object("")
			proxy.ResetCounts()
			res := runIn(t, h.dir, tc.env, tc.args...)
			if res.code != 2 || strings.Count(strings.TrimRight(res.stderr, "\n"), "\n") != 0 {
				t.Fatalf("exit %d, want 2 with one line; stderr %q", res.code, res.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr %q does not say %q", res.stderr, want)
				}
			}
			if after, _ := r.object(""); after != before {
				t.Errorf("the state object changed: %q", after)
			}
			if _, locked := r.object("prod/coder-infra.env.lock"); locked {
				t.Error("a lock object was left behind")
			}
			if m := writes(proxy.Counts()); len(m) != 0 {
				t.Errorf("AWS writes: %v", m)
			}
		})
	}
}

// writes lists the mutating calls the proxy saw (S3's HEAD requests are
// reads to it, as GET is).
func writes(c awsproxy.Counts) []string { return c.MutationNames() }

// TestRemoteStateVersioningWarning: a bucket without versioning is said
// once on stderr, and the command still works.
func TestRemoteStateVersioningWarning(t *testing.T) {
	server := moto.Require(t)
	r := newRemote(t, server, "coderctl-unversioned", false)
	h := newHarness(t, goodEnv)
	if res := runIn(t, h.dir, nil, "--state", r.url, "state", "push", h.envFile); res.code != 0 {
		t.Fatalf("push: %d %s", res.code, res.stderr)
	}
	res := runIn(t, h.dir, nil, "--state", r.url, "state", "set", "USERS=10")
	if res.code != 0 || strings.Count(res.stderr, "versioning off") != 1 || !strings.Contains(res.stderr, "warning: bucket coderctl-unversioned has versioning off: S3 keeps no history of the state") {
		t.Errorf("exit %d, stderr %q: want one versioning warning", res.code, res.stderr)
	}
}

func writeTo(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.env")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sourceInBash sources path with `set -a` in a clean bash and returns the
// values of keys.
func sourceInBash(t *testing.T, path string, keys []string) map[string]string {
	t.Helper()
	script := `set -a; source "$1" || exit 9; shift; for k; do printf '%s\0' "${!k}"; done`
	cmd := exec.Command("bash", append([]string{"-c", script, "bash", path}, keys...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C.UTF-8"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash could not source %s: %v", path, err)
	}
	fields := strings.Split(string(out), "\x00")
	got := map[string]string{}
	for i, k := range keys {
		got[k] = fields[i]
	}
	return got
}

// Child processes: the test binary runs coderctl's Main when this variable
// holds its arguments (JSON), as two separate coderctl processes would.
const (
	childArgsEnv     = "CODERCTL_TEST_CHILD_ARGS"
	childTerminalEnv = "CODERCTL_TEST_CHILD_TERMINAL"
)

// TestCoderctlChildProcess is not a test: it is the entry point of the
// child processes below, and skips when run as a test.
func TestCoderctlChildProcess(t *testing.T) {
	raw, ok := os.LookupEnv(childArgsEnv)
	if !ok {
		t.Skip("the entry point of TestRemoteStateTwoProcesses's coderctl processes")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, "bad child args:", err)
		os.Exit(99)
	}
	f := NewFactory(BuildInfo{Version: "v0.0.0-test", Commit: "child"})
	// A terminal makes `up` without --yes show its plan and ask, holding
	// the lock until its stdin answers: a run that holds the lock exactly
	// as long as the test needs, with no timing involved.
	f.IO.IsTerminal = os.Getenv(childTerminalEnv) == "1"
	os.Exit(Main(f, args))
}

// process is a coderctl child process in its own working directory.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	stderr bytes.Buffer
	prompt chan struct{}
}

// coderctlIn returns a command running coderctl in dir with args.
func coderctlIn(t *testing.T, dir string, terminal bool, args ...string) *exec.Cmd {
	t.Helper()
	raw, _ := json.Marshal(append([]string{"--config", filepath.Join(dir, "cluster-config.yaml")}, args...))
	cmd := exec.Command(os.Args[0], "-test.run=^TestCoderctlChildProcess$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(raw), "CODERCTL_POLL_INTERVAL=100ms")
	if terminal {
		cmd.Env = append(cmd.Env, childTerminalEnv+"=1")
	}
	return cmd
}

// startAsking starts `up` on a "terminal" and returns once it asks to
// apply, holding the lock.
func startAsking(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	p := &process{cmd: coderctlIn(t, dir, true, args...), prompt: make(chan struct{})}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	go p.watch(errPipe)
	select {
	case <-p.prompt:
	case <-time.After(5 * time.Minute):
		t.Fatalf("coderctl up never asked to apply; stderr: %s", p.errText())
	}
	return p
}

// watch copies stderr and closes prompt once the confirmation is asked.
func (p *process) watch(r io.Reader) {
	br := bufio.NewReader(r)
	asked := false
	for {
		b, err := br.ReadByte()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.stderr.WriteByte(b)
		if !asked && strings.HasSuffix(p.stderr.String(), "Type 'yes' to continue: ") {
			asked = true
			close(p.prompt)
		}
		p.mu.Unlock()
	}
}

func (p *process) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// runChild runs coderctl to completion in dir.
func runChild(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := coderctlIn(t, dir, false, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

var lockIDPattern = regexp.MustCompile(`lock ID ([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})`)

// TestRemoteStateTwoProcesses: two coderctl processes in separate working
// directories share one S3 state. A run that ends in an error releases the
// lock; while one run holds it, `up` in the other exits 3 naming it; a run
// killed outright leaves its lock, which refuses `up` until `state unlock`
// removes it, after which `up` converges and records into the object.
func TestRemoteStateTwoProcesses(t *testing.T) {
	server := moto.Require(t)
	r := newRemote(t, server, "coderctl-two-procs", true)
	dirA, dirB := t.TempDir(), t.TempDir()
	for _, dir := range []string{dirA, dirB} {
		if err := os.WriteFile(filepath.Join(dir, "cluster-config.yaml"), coderctl.DefaultClusterConfig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	seed := writeTo(t, goodEnv)
	if res := runChild(t, dirA, "--state", r.url, "state", "push", seed); res.code != 0 {
		t.Fatalf("push: %d %s", res.code, res.stderr)
	}
	up := []string{"--state", r.url, "up", "--only", "prereqs,network"}

	// A run that ends in an error (not confirmed) releases its lock.
	a := startAsking(t, dirA, up...)
	if _, locked := r.object("prod/coder-infra.env.lock"); !locked {
		t.Fatal("up asking to apply holds no lock object")
	}
	_ = a.stdin.Close()
	if err := a.cmd.Wait(); err == nil || a.cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("unconfirmed up: %v, want exit 2; stderr %s", err, a.errText())
	}
	if _, locked := r.object("prod/coder-infra.env.lock"); locked {
		t.Fatal("an up that ended in an error left its lock")
	}

	// While A holds the lock, up in B exits 3 naming A.
	a = startAsking(t, dirA, up...)
	res := runChild(t, dirB, append(up, "--yes")...)
	if res.code != 3 {
		t.Fatalf("concurrent up: exit %d, want 3; stderr %s", res.code, res.stderr)
	}
	for _, want := range []string{r.url + " is locked by another coderctl run", fmt.Sprintf("pid %d on ", a.cmd.Process.Pid), "running 'coderctl up'", "state unlock "} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("refusal %q does not say %q", res.stderr, want)
		}
	}
	before, _ := r.object("")

	// A is killed outright: its lock stays and still refuses B.
	_ = a.cmd.Process.Kill()
	_ = a.cmd.Wait()
	res = runChild(t, dirB, append(up, "--yes")...)
	m := lockIDPattern.FindStringSubmatch(res.stderr)
	if res.code != 3 || m == nil || !strings.Contains(res.stderr, fmt.Sprintf("pid %d on ", a.cmd.Process.Pid)) {
		t.Fatalf("up after the holder was killed: exit %d, stderr %q; want 3 naming the dead holder and its lock ID", res.code, res.stderr)
	}
	if after, _ := r.object(""); after != before {
		t.Fatalf("refused runs changed the state:\n%s", after)
	}
	if res := runChild(t, dirB, "--state", r.url, "state", "unlock", "00000000-0000-4000-8000-000000000000", "--yes"); res.code != 2 || !strings.Contains(res.stderr, "is not the current lock") {
		t.Errorf("unlock with the wrong ID: exit %d, %q", res.code, res.stderr)
	}
	if res := runChild(t, dirB, "--state", r.url, "state", "unlock", m[1]); res.code != 2 || !strings.Contains(res.stderr, "pass --yes") {
		t.Errorf("unlock without --yes and no terminal: exit %d, %q", res.code, res.stderr)
	}
	if _, locked := r.object("prod/coder-infra.env.lock"); !locked {
		t.Fatal("an unconfirmed unlock removed the lock")
	}
	if res := runChild(t, dirB, "--state", r.url, "state", "unlock", m[1], "--yes"); res.code != 0 || !strings.Contains(res.stderr, "removed lock "+m[1]) {
		t.Fatalf("unlock: exit %d, %q", res.code, res.stderr)
	}

	// Now B's up converges, recording into the object, and releases.
	if res := runChild(t, dirB, append(up, "--yes")...); res.code != 0 {
		t.Fatalf("up after unlock: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	got, _ := r.object("")
	file, err := state.Parse("object", []byte(got))
	if err != nil {
		t.Fatalf("object after up does not parse: %v", err)
	}
	if v, _ := file.Get("VPC_ID"); !strings.HasPrefix(v, "vpc-") {
		t.Errorf("VPC_ID in the object = %q after up", v)
	}
	if _, locked := r.object("prod/coder-infra.env.lock"); locked {
		t.Error("up left its lock object")
	}
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "coder-infra.env")); err == nil {
			t.Errorf("a local state file appeared in %s", dir)
		}
	}
}
