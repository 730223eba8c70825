package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	coderctl "github.com/coderctl/coderctl"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/stages"
)

func TestMain(m *testing.M) { moto.Main(m) }

// harness runs coderctl in-process with fake streams in a temp directory
// holding a state file and the shipped cluster config.
type harness struct {
	t       *testing.T
	dir     string
	envFile string
	cfgFile string
	env     map[string]string
}

type result struct {
	code           int
	stdout, stderr string
}

func newHarness(t *testing.T, envFile string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, envFile: filepath.Join(dir, "coder-infra.env"), cfgFile: filepath.Join(dir, "cluster-config.yaml"), env: map[string]string{}}
	h.write(h.cfgFile, string(coderctl.DefaultClusterConfig))
	h.write(h.envFile, envFile)
	return h
}

func (h *harness) write(path, data string) {
	h.t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{
		IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		LookupEnv: func(k string) (string, bool) {
			v, ok := h.env[k]
			return v, ok
		},
		Registry: stages.Registry,
		Build:    BuildInfo{Version: "v0.0.0-test", Commit: "abc123"},
		Now:      time.Now,
	}
	// A case that passes --env-file or --config itself (an empty one, a
	// FIFO) gets only its own: a second occurrence is refused.
	var full []string
	for _, fl := range []struct{ name, path string }{{"--env-file", h.envFile}, {"--config", h.cfgFile}} {
		if !slices.Contains(args, fl.name) {
			full = append(full, fl.name, fl.path)
		}
	}
	full = append(full, args...)
	code := Main(f, full)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func (h *harness) stateBytes() []byte {
	b, _ := os.ReadFile(h.envFile)
	return b
}

const goodEnv = "# my deployment\nCODER_DOMAIN=coder.example.com\nUSERS=500\n"

func TestVersion(t *testing.T) {
	h := newHarness(t, goodEnv)
	r := h.run("version")
	if r.code != 0 || !strings.Contains(r.stdout, "coderctl v0.0.0-test (commit abc123, go1.") {
		t.Fatalf("version: code %d, stdout %q", r.code, r.stdout)
	}
}

// TestBadInput: every case exits 2 with a one-line message naming the
// file, key, field or flag, and leaves the state file byte-for-byte as it was.
func TestBadInput(t *testing.T) {
	moto.Require(t)
	tests := []struct {
		name    string
		env     string
		config  func(string) string // edits the shipped cluster config
		args    []string
		setup   func(h *harness)
		code    int
		message []string
	}{
		{name: "malformed env line", env: goodEnv + "THIS IS NOT AN ASSIGNMENT\n", args: []string{"plan"},
			code: 2, message: []string{"coder-infra.env:4"}},
		{name: "unknown stage", env: goodEnv, args: []string{"stage", "rdss", "apply"},
			code: 2, message: []string{`unknown command "rdss"`}},
		{name: "unknown stage in --only", env: goodEnv, args: []string{"up", "--only", "prereqs,rdss"},
			code: 2, message: []string{`unknown stage "rdss"`}},
		{name: "unknown flag", env: goodEnv, args: []string{"up", "--frobnicate"},
			code: 2, message: []string{"unknown flag: --frobnicate"}},
		{name: "bad -o", env: goodEnv, args: []string{"verify", "-o", "yaml"},
			code: 2, message: []string{"flag -o", `"yaml"`}},
		{name: "invalid cluster-config field", env: goodEnv, config: func(c string) string {
			return strings.Replace(c, "metadata:", "metadata:\n  colour: blue", 1)
		}, args: []string{"plan"}, code: 2, message: []string{"cluster-config.yaml", "colour"}},
		{name: "taint effect typo", env: goodEnv, config: func(c string) string {
			return strings.Replace(c, "effect: NoSchedule", "effect: NoSchedul", 1)
		}, args: []string{"plan"}, code: 2, message: []string{"cluster-config.yaml", "taints", "NoSchedul"}},
		{name: "maxSize below desired", env: goodEnv, config: func(c string) string {
			return replaceNodeGroupField(c, "coder-workspace", "maxSize: 20", "maxSize: 1")
		}, args: []string{"plan"}, code: 2, message: []string{"cluster-config.yaml", "maxSize"}},
		{name: "region mismatch", env: goodEnv + "AWS_REGION=eu-west-1\n", args: []string{"plan"},
			code: 2, message: []string{"AWS_REGION", "eu-west-1", "us-west-2"}},
		{name: "missing required key", env: "USERS=500\n", args: []string{"up", "--yes"},
			code: 2, message: []string{"CODER_DOMAIN"}},
		{name: "unreadable env file", env: goodEnv, setup: func(h *harness) {
			os.Remove(h.envFile)
			if err := os.Mkdir(h.envFile, 0o700); err != nil {
				h.t.Fatal(err)
			}
		}, args: []string{"plan"}, code: 2, message: []string{"coder-infra.env"}},
		{name: "locked state", env: goodEnv, setup: func(h *harness) {
			lock, err := state.AcquireLock(h.envFile, "coderctl up")
			if err != nil {
				h.t.Fatal(err)
			}
			h.t.Cleanup(func() { lock.Release() })
		}, args: []string{"up", "--yes"}, code: 3, message: []string{"locked by another coderctl run", "pid", "coderctl up"}},
		{name: "secret-looking key in file", env: goodEnv + "DB_PASSWORD=hunter2\n", args: []string{"plan"},
			code: 2, message: []string{"DB_PASSWORD"}},
		{name: "secret-looking key via state set", env: goodEnv, args: []string{"state", "set", "GITHUB_CLIENT_SECRET=abc"},
			code: 2, message: []string{"GITHUB_CLIENT_SECRET"}},
		{name: "domain that is not a domain", env: "CODER_DOMAIN=https://coder.example.com\n", args: []string{"plan"},
			code: 2, message: []string{"CODER_DOMAIN"}},
		{name: "users not a number", env: goodEnv + "USERS=lots\n", args: []string{"plan"},
			code: 2, message: []string{"USERS"}},
		{name: "missing cluster config", env: goodEnv, setup: func(h *harness) { os.Remove(h.cfgFile) },
			args: []string{"plan"}, code: 2, message: []string{"cluster-config.yaml", "coderctl init"}},
		{name: "down without --yes in a pipe", env: goodEnv, args: []string{"down"},
			code: 2, message: []string{"--yes"}},
		{name: "state get of an unset key", env: goodEnv, args: []string{"state", "get", "VPC_ID"},
			code: 2, message: []string{"VPC_ID", "not set"}},
		{name: "bad poll interval", env: goodEnv, setup: func(h *harness) { h.env["CODERCTL_POLL_INTERVAL"] = "soon" },
			args: []string{"plan"}, code: 2, message: []string{"CODERCTL_POLL_INTERVAL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.env)
			if tt.config != nil {
				h.write(h.cfgFile, tt.config(string(coderctl.DefaultClusterConfig)))
			}
			if tt.setup != nil {
				tt.setup(h)
			}
			before := h.stateBytes()
			r := h.run(tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("error is not one line: %q", r.stderr)
			}
			for _, m := range tt.message {
				if !strings.Contains(r.stderr, m) {
					t.Errorf("stderr %q does not mention %q", r.stderr, m)
				}
			}
			if strings.Contains(r.stderr, "Usage:") || strings.Contains(r.stdout, "Usage:") {
				t.Errorf("flag help dumped after an error")
			}
			if after := h.stateBytes(); !bytes.Equal(before, after) {
				t.Errorf("state file changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// replaceNodeGroupField edits one field inside the named node group's block.
func replaceNodeGroupField(cfg, group, old, new string) string {
	i := strings.Index(cfg, "name: "+group)
	if i < 0 {
		return cfg
	}
	j := strings.Index(cfg[i:], old)
	if j < 0 {
		return cfg
	}
	return cfg[:i+j] + new + cfg[i+j+len(old):]
}

func TestUpPrereqsJSON(t *testing.T) {
	moto.Require(t)
	h := newHarness(t, goodEnv)
	r := h.run("up", "--yes", "-o", "json", "--only", "prereqs")
	if r.code != 0 {
		t.Fatalf("up: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last map[string]any
	types := map[string]int{}
	for _, l := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if ev["type"] == nil || ev["time"] == nil {
			t.Errorf("event without type/time: %q", l)
		}
		types[ev["type"].(string)]++
		last = ev
	}
	if last["type"] != "summary" || last["ok"] != true {
		t.Fatalf("last line is not an ok summary: %v", last)
	}
	if types["check"] < 5 {
		t.Errorf("want the prereqs checks as events, got %v", types)
	}
	got, _ := state.Load(h.envFile)
	for _, k := range []string{"AWS_REGION", "CLUSTER_NAME", "STAGE_PREREQS_APPLIED_AT"} {
		if v, ok := got.Get(k); !ok || v == "" {
			t.Errorf("state lacks %s after up", k)
		}
	}
	if v, _ := got.Get("CODER_DOMAIN"); v != "coder.example.com" {
		t.Errorf("user input lost: CODER_DOMAIN=%q", v)
	}
	if !strings.HasPrefix(string(h.stateBytes()), "# my deployment\n") {
		t.Errorf("user comment lost: %q", h.stateBytes())
	}
}

func TestVerifyTextChecklist(t *testing.T) {
	moto.Require(t)
	h := newHarness(t, goodEnv)
	r := h.run("verify", "prereqs")
	if r.code != 0 {
		t.Fatalf("verify: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"PASS  prereqs", "credentials", "instance-types", "verify ok"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestMissingCredentialsIsBadInput(t *testing.T) {
	moto.Require(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	h := newHarness(t, goodEnv)
	before := h.stateBytes()
	r := h.run("up", "--yes")
	if r.code != 2 || !strings.Contains(r.stderr, "AWS credentials") {
		t.Fatalf("code %d stderr %q, want exit 2 naming AWS credentials", r.code, r.stderr)
	}
	if !bytes.Equal(before, h.stateBytes()) {
		t.Error("state changed")
	}
}

func TestStateSetGetUnset(t *testing.T) {
	h := newHarness(t, goodEnv)
	if r := h.run("state", "set", "HOSTED_ZONE_ID=Z0123456789ABC", "NOTE=two words $x"); r.code != 0 {
		t.Fatalf("set: %d %s", r.code, r.stderr)
	}
	if r := h.run("state", "get", "NOTE"); strings.TrimSpace(r.stdout) != "two words $x" {
		t.Fatalf("get NOTE = %q", r.stdout)
	}
	if r := h.run("state", "unset", "NOTE"); r.code != 0 {
		t.Fatalf("unset: %d %s", r.code, r.stderr)
	}
	if r := h.run("state", "get", "NOTE"); r.code != 2 {
		t.Fatalf("get after unset: code %d", r.code)
	}
	info, _ := os.Stat(h.envFile)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
}

func TestStageCommandsComeFromRegistry(t *testing.T) {
	h := newHarness(t, goodEnv)
	for _, sf := range stages.Registry() {
		r := h.run("stage", sf.Name, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "apply") || !strings.Contains(r.stdout, "destroy") {
			t.Errorf("stage %s --help: code %d, out %q", sf.Name, r.code, r.stdout)
		}
	}
}

func TestInitWritesDefaultsAndNeverOverwrites(t *testing.T) {
	h := newHarness(t, "")
	os.Remove(h.envFile)
	os.Remove(h.cfgFile)
	r := h.run("init", "CODER_DOMAIN=coder.acme.dev", "HOSTED_ZONE_ID=Z0123456789ABC")
	if r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	got, err := state.Load(h.envFile)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Get("CODER_DOMAIN"); v != "coder.acme.dev" {
		t.Errorf("CODER_DOMAIN = %q", v)
	}
	cfg, _ := os.ReadFile(h.cfgFile)
	if !bytes.Equal(cfg, coderctl.DefaultClusterConfig) {
		t.Error("cluster-config.yaml is not the shipped default")
	}
	before := h.stateBytes()
	r = h.run("init", "CODER_DOMAIN=other.example.com")
	if r.code != 0 || !strings.Contains(r.stderr, "exists, left as it is") || !bytes.Equal(before, h.stateBytes()) {
		t.Errorf("second init overwrote or failed: %d %q", r.code, r.stderr)
	}
}

// TestUpOnTerminalAsksFirst: without --yes on a terminal, up shows the plan
// and changes nothing unless the answer is yes.
func TestUpOnTerminalAsksFirst(t *testing.T) {
	moto.Require(t)
	h := newHarness(t, goodEnv)
	before := h.stateBytes()
	var out, errOut bytes.Buffer
	f := &Factory{IO: IOStreams{In: strings.NewReader("no\n"), Out: &out, ErrOut: &errOut, IsTerminal: true},
		LookupEnv: func(k string) (string, bool) { return "", false }, Registry: stages.Registry, Now: time.Now}
	code := Main(f, []string{"--env-file", h.envFile, "--config", h.cfgFile, "--no-color", "up"})
	if !strings.Contains(out.String(), "+ create") {
		t.Errorf("the plan was not shown before asking:\n%s", out.String())
	}
	if code != 2 || !strings.Contains(errOut.String(), "not confirmed") {
		t.Fatalf("code %d stderr %q, want 2 and 'not confirmed'", code, errOut.String())
	}
	if !bytes.Equal(before, h.stateBytes()) {
		t.Error("state changed without confirmation")
	}
}

// TestUpThenDownLeavesNothing: the network stage through the real CLI, then
// down, whose closing inventory finds nothing tagged for the deployment.
func TestUpThenDownLeavesNothing(t *testing.T) {
	moto.Require(t)
	h := newHarness(t, goodEnv)
	if r := h.run("up", "--yes", "--only", "prereqs,network"); r.code != 0 {
		t.Fatalf("up: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	got, _ := state.Load(h.envFile)
	if v, _ := got.Get("VPC_ID"); !strings.HasPrefix(v, "vpc-") {
		t.Fatalf("VPC_ID = %q after up", v)
	}
	r := h.run("down", "--yes")
	if r.code != 0 {
		t.Fatalf("down: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "nothing tagged coderctl/deployment=coder-prod is left in AWS") {
		t.Errorf("down did not prove it left nothing:\n%s", r.stdout)
	}
	got, _ = state.Load(h.envFile)
	if v, ok := got.Get("VPC_ID"); ok && v != "" {
		t.Errorf("VPC_ID still recorded after down: %q", v)
	}
}
