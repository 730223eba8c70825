// Package e2e runs the coderctl binary end to end on the proving ground:
// every stage from an empty moto and an empty cluster, verify, an idempotent
// second run, and down — the checkpoint a CI job trusts, proven.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/inventory"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/ground"
	secretsstage "github.com/coderctl/coderctl/stages/secrets"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coderctl-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "coderctl")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	build := exec.Command("go", "build", "-o", binary, "./cmd/coderctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building coderctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is one deployment's directory and ground.
type world struct {
	t      *testing.T
	g      *ground.Ground
	dir    string
	output bytes.Buffer // everything every command printed, for the secret scan
}

type result struct {
	code           int
	stdout, stderr string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, awsproxy.Instant())
}

// newWorldWith starts a ground whose AWS goes through the proxy profile p.
func newWorldWith(t *testing.T, p awsproxy.Profile) *world {
	t.Helper()
	g, err := ground.Start(context.Background(), ground.Options{
		WorkDir: t.TempDir(), Profile: &p, Cluster: "coder-prod", Region: "us-west-2", CoderVersion: "2.36.1",
	})
	if err != nil {
		t.Fatalf("proving ground: %v", err)
	}
	t.Cleanup(g.Stop)
	w := &world{t: t, g: g, dir: t.TempDir()}
	if r := w.run(append([]string{"init", "CODER_DOMAIN=coder.e2e.example", "USERS=50"}, g.InitArgs()...)...); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	// The shipped cluster-config.yaml, unedited: its provisioner group
	// starts at 2 nodes (14 provisioners) and the autoscaler grows it for
	// the 20 that 50 users need.
	return w
}

func (w *world) run(args ...string) result {
	w.t.Helper()
	return w.runWith(nil, args...)
}

// runWith runs coderctl with env added to (and overriding) the world's
// environment: another identity's credentials, for instance.
func (w *world) runWith(env []string, args ...string) result {
	w.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = w.dir
	cmd.Env = append(w.environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("run %v: %v", args, err)
	}
	w.output.Write(out.Bytes())
	w.output.Write(errOut.Bytes())
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// oauthSecret is the GitHub OAuth client secret every run is given, so the
// secret scan has a third secret to look for.
const oauthSecret = "e2e-github-oauth-secret-7f3c9a1d"

// environ is a coderctl process's environment on this world's ground, with
// GitHub OAuth configured.
func (w *world) environ() []string {
	return append(append(filteredEnviron(), w.g.Environ()...),
		"CODER_OAUTH2_GITHUB_CLIENT_ID=e2e-client-id", "CODER_OAUTH2_GITHUB_CLIENT_SECRET="+oauthSecret)
}

// filteredEnviron drops what would aim coderctl elsewhere.
func filteredEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "CODER") || k == "KUBECONFIG" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "CI=true")
}

// summary parses the last JSON line of a -o json run.
func summary(t *testing.T, stdout string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last["type"] != "summary" {
		t.Fatalf("last line is not a summary: %q", lines[len(lines)-1])
	}
	return last
}

func stageStatuses(sum map[string]any) map[string]string {
	out := map[string]string{}
	for _, s := range sum["stages"].([]any) {
		m := s.(map[string]any)
		out[m["stage"].(string)] = m["status"].(string)
	}
	return out
}

func TestFullDeploymentLifecycle(t *testing.T) {
	w := newWorld(t)
	w.useFidelityConfig()
	start := time.Now()
	r := w.run("up", "--yes", "-o", "json")
	if r.code != 0 {
		t.Fatalf("up: exit %d\nstderr: %s\nstdout tail: %s", r.code, r.stderr, tail(r.stdout, 15))
	}
	t.Logf("up took %s", time.Since(start).Round(time.Millisecond))
	statuses := stageStatuses(summary(t, r.stdout))
	for _, name := range registered(t, w) {
		if statuses[name] != "done" {
			t.Errorf("stage %s = %q after up, want done", name, statuses[name])
		}
	}

	r = w.run("verify", "-o", "json")
	if r.code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", r.code, r.stderr, tail(r.stdout, 20))
	}

	w.assertConfigFidelity(r.stdout)
	w.assertNoSecretsLeaked()
	w.assertRealChartObjects()

	w.g.Proxy.ResetCounts()
	r = w.run("up", "--yes", "-o", "json", "-v")
	if r.code != 0 {
		t.Fatalf("second up: exit %d: %s", r.code, r.stderr)
	}
	if c := w.g.Proxy.Counts(); c.TotalMutations() != 0 {
		t.Errorf("second up made mutating AWS calls: %v", c.MutationNames())
	}

	w.assertLostStateRediscovered()
	w.assertRoomForWorkspaces()

	r = w.run("down", "--yes", "--delete-database", "--skip-final-snapshot", "--force-delete-secrets", "-o", "json")
	if r.code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", r.code, r.stderr, tail(r.stdout, 200))
	}
	if left := w.taggedLeftovers(); len(left) > 0 {
		t.Errorf("resources still tagged for the deployment after down: %v", left)
	}
}

func registered(t *testing.T, w *world) []string {
	t.Helper()
	r := w.run("status", "-o", "json")
	var st struct {
		Stages []struct{ Stage string } `json:"stages"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &st); err != nil {
		t.Fatalf("status -o json: %v: %q", err, r.stdout)
	}
	var names []string
	for _, s := range st.Stages {
		names = append(names, s.Stage)
	}
	return names
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// taggedLeftovers lists what still carries the deployment tag in moto.
func (w *world) taggedLeftovers() []string {
	w.t.Helper()
	cfg, err := w.g.AWSConfig(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	left, err := inventory.Tagged(context.Background(), awsx.NewClients(cfg), "coder-prod")
	if err != nil {
		w.t.Fatalf("inventory: %v", err)
	}
	return left
}

// assertNoSecretsLeaked reads the secrets coderctl made (the database master
// password from Secrets Manager, the provisioner key from Kubernetes) and the
// Coder session token it was given, and proves none of them appears in the
// state file or in anything any command printed, including with -v.
func (w *world) assertNoSecretsLeaked() {
	w.t.Helper()
	w.run("verify", "-v")
	w.run("status", "-o", "json")
	secrets := map[string]string{"coder session token": w.g.Coder.Token()}
	cfg, err := w.g.AWSConfig(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	sm := awsx.NewClients(cfg).SecretsManager
	if out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(names.MasterSecretName("coder-prod"))}); err == nil {
		var master struct{ Password string }
		if json.Unmarshal([]byte(aws.ToString(out.SecretString)), &master) == nil && master.Password != "" {
			secrets["database master password"] = master.Password
		}
	}
	if _, ok := secrets["database master password"]; !ok {
		w.t.Fatal("could not read the database master password back from Secrets Manager")
	}
	if key := w.kubeSecret("coder", "coder-provisioner-key", "key"); key != "" {
		secrets["provisioner key"] = key
	} else {
		w.t.Fatal("the provisioner key secret is missing: the scan would miss it")
	}
	ghName := names.SecretName("coder-prod", secretsstage.GitHubClientSecretLeaf)
	gh, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(ghName)})
	if err != nil || aws.ToString(gh.SecretString) != oauthSecret {
		w.t.Fatalf("%s was not stored from the environment: %v", ghName, err)
	}
	secrets["GitHub OAuth client secret"] = oauthSecret
	state, _ := os.ReadFile(filepath.Join(w.dir, "coder-infra.env"))
	for what, value := range secrets {
		if strings.Contains(w.output.String(), value) {
			w.t.Errorf("the %s appears in coderctl's output", what)
		}
		if strings.Contains(string(state), value) {
			w.t.Errorf("the %s appears in the state file", what)
		}
	}
}

// kubeSecret reads one key of a Kubernetes secret ("" when absent).
func (w *world) kubeSecret(ns, name, key string) string {
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	sec, err := kc.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return string(sec.Data[key])
}

// assertLostStateRediscovered removes every output from coder-infra.env and
// runs up again: everything is found by tags, nothing is created, and the
// same values are written back.
func (w *world) assertLostStateRediscovered() {
	w.t.Helper()
	before := w.stateValues()
	var outputs []string
	for k := range before {
		if !isInput(k) {
			outputs = append(outputs, k)
		}
	}
	if r := w.run(append([]string{"state", "unset"}, outputs...)...); r.code != 0 {
		w.t.Fatalf("state unset: %d %s", r.code, r.stderr)
	}
	w.g.Proxy.ResetCounts()
	if r := w.run("up", "--yes", "-o", "json"); r.code != 0 {
		w.t.Fatalf("up after losing the outputs: exit %d: %s", r.code, r.stderr)
	}
	if c := w.g.Proxy.Counts(); c.TotalMutations() != 0 {
		w.t.Errorf("up after losing the outputs created or changed things: %v", c.MutationNames())
	}
	after := w.stateValues()
	for _, k := range outputs {
		if strings.HasPrefix(k, "STAGE_") {
			continue // timestamps are rewritten with the new run's time
		}
		if after[k] != before[k] {
			w.t.Errorf("%s rediscovered as %q, was %q", k, after[k], before[k])
		}
	}
}

// stateValues reads coder-infra.env through coderctl.
func (w *world) stateValues() map[string]string {
	w.t.Helper()
	r := w.run("state", "show", "-o", "json")
	var st struct{ Values map[string]string }
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &st); err != nil {
		w.t.Fatalf("state show -o json: %v: %q", err, r.stdout)
	}
	return st.Values
}

// isInput says whether a state key is one the user (or init) set.
func isInput(key string) bool {
	for _, doc := range config.InputKeys() {
		if doc.Key == key {
			return true
		}
	}
	return false
}
