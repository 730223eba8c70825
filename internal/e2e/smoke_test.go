package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/ground"
	"github.com/coderctl/coderctl/internal/wstemplate"
)

// firstUserEmail is the e-mail the unattended first `up` is given.
const firstUserEmail = "platform-admin@e2e.example"

// newFreshCoderWorld is a world whose Coder double has no user at all and
// whose environment has no session token: only CODER_FIRST_USER_EMAIL
// (in coder-infra.env) lets `up` finish.
func newFreshCoderWorld(t *testing.T) *world {
	t.Helper()
	p := awsproxy.Instant()
	g, err := ground.Start(context.Background(), ground.Options{
		WorkDir: t.TempDir(), Profile: &p, Cluster: "coder-prod", Region: "us-west-2", CoderVersion: "2.36.1", NoUsers: true,
	})
	if err != nil {
		t.Fatalf("proving ground: %v", err)
	}
	t.Cleanup(g.Stop)
	w := &world{t: t, g: g, dir: t.TempDir()}
	args := append([]string{"init", "CODER_DOMAIN=coder.e2e.example", "USERS=50", "CODER_FIRST_USER_EMAIL=" + firstUserEmail}, g.InitArgs()...)
	if r := w.run(args...); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	return w
}

// TestUnattendedFirstUpAndSmoke: a first `up` on a Coder without users,
// given only CODER_FIRST_USER_EMAIL, creates the first owner, finishes the
// provisioners and the template in the same run, and `smoke` builds a
// workspace, sees its agent connect and deletes it; a template without the
// workspace toleration, and a cluster without a default StorageClass, fail
// the smoke test at the agent-connected phase.
func TestUnattendedFirstUpAndSmoke(t *testing.T) {
	w := newFreshCoderWorld(t)
	r := w.run("up", "--yes", "-o", "json")
	if r.code != 0 {
		t.Fatalf("up: exit %d\nstderr: %s\nstdout tail: %s", r.code, r.stderr, tail(r.stdout, 20))
	}
	statuses := stageStatuses(summary(t, r.stdout))
	for _, name := range registered(t, w) {
		if statuses[name] != "done" {
			t.Errorf("stage %s = %q after the first up, want done (no pending)", name, statuses[name])
		}
	}
	if statuses["template"] != "done" {
		t.Fatalf("the template stage did not run: %v", statuses)
	}
	password := w.firstUserPassword()

	r = w.run("smoke", "-o", "json")
	if r.code != 0 {
		t.Fatalf("smoke: exit %d\nstderr: %s\nstdout: %s", r.code, r.stderr, tail(r.stdout, 20))
	}
	w.assertSmokePhases(r.stdout, map[string]string{"template-import": "pass", "build": "pass", "agent-connected": "pass", "delete": "pass"})

	// A later run logs in with the stored secret: verify and a second up
	// need no token and change nothing in Coder.
	if r = w.run("up", "--yes", "-o", "json"); r.code != 0 {
		t.Fatalf("second up: exit %d: %s\n%s", r.code, r.stderr, tail(r.stdout, 20))
	}
	if r = w.run("verify", "template", "-o", "json"); r.code != 0 {
		t.Fatalf("verify template: exit %d: %s\n%s", r.code, r.stderr, tail(r.stdout, 10))
	}

	t.Run("a template without the workspace toleration fails at agent-connected", func(t *testing.T) {
		w.t = t
		w.pushWithoutToleration(password)
		r := w.run("smoke", "--timeout", "30s", "-o", "json")
		if r.code != 1 {
			t.Fatalf("smoke: exit %d, want 1\n%s\n%s", r.code, r.stderr, tail(r.stdout, 20))
		}
		w.assertSmokePhases(r.stdout, map[string]string{"template-import": "pass", "build": "pass", "agent-connected": "fail", "delete": "pass"})
		if !strings.Contains(r.stderr, "smoke/agent-connected") {
			t.Errorf("stderr does not name the phase: %q", r.stderr)
		}
		// up pushes this cluster's template again (the hash differs).
		if r := w.run("stage", "template", "apply", "--yes"); r.code != 0 {
			t.Fatalf("stage template apply: exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("a cluster without a default StorageClass fails at agent-connected", func(t *testing.T) {
		w.t = t
		w.removeDefaultClasses()
		r := w.run("smoke", "--timeout", "30s", "-o", "json")
		if r.code != 1 {
			t.Fatalf("smoke: exit %d, want 1\n%s\n%s", r.code, r.stderr, tail(r.stdout, 20))
		}
		w.assertSmokePhases(r.stdout, map[string]string{"template-import": "pass", "build": "pass", "agent-connected": "fail", "delete": "pass"})
	})
	w.t = t
	w.assertFirstUserSecretsNotLeaked(password)

	r = w.run("down", "--yes", "--delete-database", "--skip-final-snapshot", "--force-delete-secrets", "-o", "json")
	if r.code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", r.code, r.stderr, tail(r.stdout, 30))
	}
	if _, err := w.secretsManager().DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(coderapi.FirstUserSecretName("coder-prod"))}); !awsx.IsNotFound(err) {
		t.Errorf("the first-user secret is still there after down --force-delete-secrets: %v", err)
	}
}

func (w *world) secretsManager() *secretsmanager.Client {
	cfg, err := w.g.AWSConfig(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return awsx.NewClients(cfg).SecretsManager
}

// firstUserPassword reads the first owner's password back from Secrets
// Manager, the only place it is kept.
func (w *world) firstUserPassword() string {
	w.t.Helper()
	out, err := w.secretsManager().GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(coderapi.FirstUserSecretName("coder-prod"))})
	if err != nil {
		w.t.Fatalf("the first-user secret: %v", err)
	}
	var doc struct{ Email, Username, Password string }
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil || doc.Password == "" || doc.Email != firstUserEmail {
		w.t.Fatalf("the first-user secret does not hold the e-mail and a password: %v", err)
	}
	if doc.Username != "platform-admin" {
		w.t.Errorf("username %q, want platform-admin (the e-mail's local part)", doc.Username)
	}
	return doc.Password
}

// assertSmokePhases checks the check events of a `smoke -o json` run.
func (w *world) assertSmokePhases(stdout string, want map[string]string) {
	w.t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil || ev["type"] != "check" || ev["stage"] != "smoke" {
			continue
		}
		got[ev["name"].(string)], _ = ev["status"].(string)
		if _, ok := ev["duration_ms"]; !ok {
			w.t.Errorf("check %v has no duration_ms", ev["name"])
		}
		if ev["status"] == "fail" {
			w.t.Logf("smoke %v: %v", ev["name"], ev["reason"])
		}
	}
	for phase, status := range want {
		if got[phase] != status {
			w.t.Errorf("smoke phase %s = %q, want %q (all: %v)", phase, got[phase], status, got)
		}
	}
}

// ownerClient logs in as the first owner with the stored password.
func (w *world) ownerClient(password string) *coderapi.Client {
	w.t.Helper()
	base, err := coderapi.New(w.g.Coder.URL(), coderapi.Options{CAFile: w.g.Coder.CAFile()})
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := base.Login(context.Background(), firstUserEmail, coderapi.NewPassword(password))
	if err != nil {
		w.t.Fatalf("log in as the first owner: %v", err)
	}
	return c
}

var tolerationBlock = regexp.MustCompile(`(?s)\n\s*toleration \{.*?\n\s*\}\n`)

// pushWithoutToleration pushes kubernetes-eks again through the API with
// the toleration removed from its Terraform, and promotes it.
func (w *world) pushWithoutToleration(password string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := w.ownerClient(password)
	org, err := c.DefaultOrganization(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	tpl, err := c.TemplateByName(ctx, org.ID, "kubernetes-eks")
	if err != nil || tpl == nil {
		w.t.Fatalf("template kubernetes-eks: %v", err)
	}
	active, err := c.TemplateVersion(ctx, tpl.ActiveVersionID)
	if err != nil {
		w.t.Fatal(err)
	}
	archive, err := c.Download(ctx, active.Job.FileID)
	if err != nil {
		w.t.Fatal(err)
	}
	files := untar(w.t, archive)
	main := string(files[wstemplate.MainFile])
	stripped := tolerationBlock.ReplaceAllString(main, "\n")
	if stripped == main || strings.Contains(stripped, "toleration {") {
		w.t.Fatalf("could not remove the toleration from main.tf")
	}
	files[wstemplate.MainFile] = []byte(stripped)
	modified, err := wstemplate.Tar(files)
	if err != nil {
		w.t.Fatal(err)
	}
	fileID, err := c.Upload(ctx, coderapi.ContentTypeTar, modified)
	if err != nil {
		w.t.Fatal(err)
	}
	v, err := c.CreateTemplateVersion(ctx, org.ID, coderapi.NewVersion{TemplateID: tpl.ID, FileID: fileID, Message: "e2e: no toleration"})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := c.WaitForImport(ctx, v.ID, coderapi.Poll{Interval: 100 * time.Millisecond}); err != nil {
		w.t.Fatal(err)
	}
	if err := c.PromoteVersion(ctx, tpl.ID, v.ID); err != nil {
		w.t.Fatal(err)
	}
}

func untar(t *testing.T, archive []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = b
	}
}

// removeDefaultClasses deletes every StorageClass marked as the default.
func (w *world) removeDefaultClasses() {
	w.t.Helper()
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	ctx := context.Background()
	classes, err := kc.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	removed := 0
	for _, c := range classes.Items {
		if c.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			if err := kc.StorageV1().StorageClasses().Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil {
				w.t.Fatal(err)
			}
			removed++
		}
	}
	if removed == 0 {
		w.t.Fatal("the cluster has no default StorageClass to remove")
	}
}

// sessionTokenPattern is coderd's API key shape, "<10-char id>-<22-char
// secret>": any session token printed would match.
var sessionTokenPattern = regexp.MustCompile(`\b[A-Za-z0-9]{10}-[A-Za-z0-9]{22}\b`)

// assertFirstUserSecretsNotLeaked: the first owner's password is in no
// output and not in the state file, and no session token (coderctl's
// logins live only in memory) appears anywhere either.
func (w *world) assertFirstUserSecretsNotLeaked(password string) {
	w.t.Helper()
	w.run("verify", "-v")
	w.run("status", "-o", "json")
	state, _ := os.ReadFile(filepath.Join(w.dir, "coder-infra.env"))
	for where, text := range map[string]string{"coderctl's output": w.output.String(), "the state file": string(state)} {
		if strings.Contains(text, password) {
			w.t.Errorf("the first user's password appears in %s", where)
		}
		if m := sessionTokenPattern.FindString(text); m != "" {
			w.t.Errorf("something shaped like a session token appears in %s", where)
		}
	}
}
