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
	"github.com/coderctl/coderctl/internal/iampolicy"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/stages"
)

// iamRun runs `coderctl iam-policy` through Main in a directory holding
// the shipped cluster-config.yaml and a coder-infra.env.
func iamRun(t *testing.T, env string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string][]byte{"cluster-config.yaml": coderctl.DefaultClusterConfig, "coder-infra.env": []byte(env)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	f := &Factory{
		IO:        IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		LookupEnv: func(string) (string, bool) { return "", false },
		Registry:  stages.Registry, Build: BuildInfo{Version: "v0.0.0-test"}, Now: time.Now,
	}
	base := []string{"--env-file", filepath.Join(dir, "coder-infra.env"), "--config", filepath.Join(dir, "cluster-config.yaml"), "iam-policy"}
	code = Main(f, append(base, args...))
	return code, out.String(), errOut.String()
}

func parsePolicy(t *testing.T, stdout string) iampolicy.Policy {
	t.Helper()
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("not a policy: %v\n%s", err, stdout)
	}
	return p
}

// TestIAMPolicyCommand: with --account no AWS call is made (the endpoint
// is unreachable); without it the account comes from STS (moto's). The
// hosted zone in the env file scopes Route53.
func TestIAMPolicyCommand(t *testing.T) {
	env := "CODER_DOMAIN=coder.example.com\nHOSTED_ZONE_ID=Z0123456789ABC\n"
	t.Run("--account, offline", func(t *testing.T) {
		staticCredentials(t)
		t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // nothing listens: any call would fail
		code, stdout, stderr := iamRun(t, env, "--account", "210987654321", "--for", "verify")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		p := parsePolicy(t, stdout)
		if !strings.Contains(stdout, "arn:aws:eks:us-west-2:210987654321:cluster/coder-prod") {
			t.Errorf("the cluster is not scoped to the account and region:\n%s", stdout)
		}
		if !strings.Contains(stdout, "arn:aws:route53:::hostedzone/Z0123456789ABC") {
			t.Errorf("Route53 is not scoped to HOSTED_ZONE_ID")
		}
		for _, a := range p.Actions() {
			if !isReadAction(a) {
				t.Errorf("--for verify grants %s", a)
			}
		}
	})
	t.Run("account from STS", func(t *testing.T) {
		moto.Require(t)
		code, stdout, stderr := iamRun(t, env, "--stage", "eks,nodegroups", "--for", "up")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		p := parsePolicy(t, stdout)
		if !strings.Contains(stdout, "arn:aws:iam::123456789012:role/coder-prod-node") {
			t.Errorf("PassRole is not scoped to moto's account:\n%s", stdout)
		}
		acts := p.Actions()
		for _, a := range []string{"eks:CreateCluster", "eks:CreateNodegroup", "iam:PassRole"} {
			if !slices.Contains(acts, a) {
				t.Errorf("lacks %s", a)
			}
		}
		if slices.Contains(acts, "rds:CreateDBInstance") || slices.Contains(acts, "eks:DeleteCluster") {
			t.Errorf("--stage eks,nodegroups --for up grants other stages' or runs' actions: %v", acts)
		}
	})
}

// isReadAction: Describe*, List* and Get* change nothing.
func isReadAction(a string) bool {
	_, op, _ := strings.Cut(a, ":")
	return strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "List") || strings.HasPrefix(op, "Get")
}

// TestIAMPolicyBadInput: each exits 2 with one line naming the flag, before
// anything is read or called.
func TestIAMPolicyBadInput(t *testing.T) {
	staticCredentials(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--for", "x"}, []string{"--for", `"x"`, "up, verify or down"}},
		{[]string{"--for", ""}, []string{"--for is empty"}},
		{[]string{"--for", "up,up"}, []string{"--for", "twice"}},
		{[]string{"--stage", "nosuch"}, []string{"--stage", `unknown stage "nosuch"`}},
		{[]string{"--stage", "rds,,eks"}, []string{"--stage", "empty stage name"}},
		{[]string{"--account", "12345"}, []string{"flag --account", `"12345"`}},
		{[]string{"--for", "up", "--for", "down"}, []string{"--for given twice"}},
	} {
		code, stdout, stderr := iamRun(t, "CODER_DOMAIN=coder.example.com\n", tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stdout %q)", tc.args, code, stdout)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: more than one line: %q", tc.args, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: %q does not say %q", tc.args, stderr, w)
			}
		}
		if stdout != "" {
			t.Errorf("%v: printed %q", tc.args, stdout)
		}
	}
}

// TestIAMPolicySplit: the whole policy does not fit in one managed policy;
// --split writes parts that each do and together grant the same actions,
// and the single document says so on stderr.
func TestIAMPolicySplit(t *testing.T) {
	staticCredentials(t)
	env := "CODER_DOMAIN=coder.example.com\n"
	code, whole, stderr := iamRun(t, env, "--account", "123456789012")
	if code != 0 || !strings.Contains(stderr, "--split DIR") {
		t.Fatalf("exit %d, stderr %q: want the size note", code, stderr)
	}
	dir := t.TempDir()
	code, stdout, stderr := iamRun(t, env, "--account", "123456789012", "--split", dir)
	if code != 0 {
		t.Fatalf("--split: exit %d: %s", code, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "iam-policy-*.json"))
	if len(files) < 2 || strings.Count(stdout, "\n") != len(files) {
		t.Fatalf("--split wrote %v and said %q", files, stdout)
	}
	var got []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p := parsePolicy(t, string(b))
		if p.Size() > iampolicy.ManagedPolicyMax {
			t.Errorf("%s is %d characters", file, p.Size())
		}
		got = append(got, p.Actions()...)
	}
	slices.Sort(got)
	if want := parsePolicy(t, whole).Actions(); !slices.Equal(slices.Compact(got), want) {
		t.Errorf("the parts grant %v, the whole %v", slices.Compact(got), want)
	}
	if code, _, stderr := iamRun(t, env, "--account", "123456789012", "--split", filepath.Join(dir, "missing")); code != 2 || !strings.Contains(stderr, "flag --split") {
		t.Errorf("--split to a missing directory: exit %d, %q", code, stderr)
	}
}
