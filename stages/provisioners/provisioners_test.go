package provisioners_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/stages/coder"
	"github.com/coderctl/coderctl/stages/coder/codertest"
	"github.com/coderctl/coderctl/stages/provisioners"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stages are the provisioners stage and what its graph needs (coder, whose
// steps count as done when only provisioners runs).
func stages(w *codertest.World, token string) []engine.Stage {
	env := w.LookupEnv(token)
	return []engine.Stage{
		coder.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: env})),
		provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: env})),
	}
}

func newWorld(t *testing.T, licensed bool) *codertest.World {
	// 50 users: 20 provisioners, which the fake provisioner nodes hold.
	return codertest.New(t, codertest.Options{Licensed: licensed, Inputs: map[string]string{"USERS": "50"}})
}

func apiClient(t *testing.T, w *codertest.World) *coderapi.Client {
	t.Helper()
	c, err := coderapi.New(w.Coder.URL(), coderapi.Options{Token: w.Coder.Token(), CAFile: w.Coder.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keyState is the secret's key and Coder's key ID.
func keyState(t *testing.T, w *codertest.World) (secret, id string) {
	t.Helper()
	sec, err := w.Kube.CoreV1().Secrets(names.CoderNamespace).Get(context.Background(), provisioners.KeySecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("key secret: %v", err)
	}
	k, err := apiClient(t, w).FindProvisionerKey(context.Background(), w.Coder.OrganizationID(), provisioners.KeyName)
	if err != nil || k == nil {
		t.Fatalf("key %s in Coder: %v, %v", provisioners.KeyName, k, err)
	}
	if k.Tags["scope"] != "organization" {
		t.Errorf("key tags %v, want scope=organization", k.Tags)
	}
	return string(sec.Data[provisioners.KeySecretKey]), k.ID
}

func revision(t *testing.T, w *codertest.World) int {
	t.Helper()
	c, err := helmx.New(w.Ground.RESTConfig(), helmx.Options{CacheDir: w.HelmDir})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := c.Status(context.Background(), provisioners.ReleaseName, names.CoderNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if rel == nil {
		return 0
	}
	return rel.Version
}

func checksOf(sum *engine.Summary) map[string]engine.Check {
	out := map[string]engine.Check{}
	for _, s := range sum.Stages {
		if s.Stage == provisioners.Name {
			for _, c := range s.Checks {
				out[c.Name] = c
			}
		}
	}
	return out
}

func apply(t *testing.T, w *codertest.World, token string) (*engine.Summary, []engine.Event) {
	t.Helper()
	start := time.Now()
	sum, events, err := w.Run(t, stages(w, token), engine.ModeApply, provisioners.Name)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, eventLog(events))
	}
	t.Logf("apply took %s", time.Since(start).Round(time.Millisecond))
	return sum, events
}

func eventLog(events []engine.Event) string {
	var b bytes.Buffer
	for _, e := range events {
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// assertKeyNeverShown: the key appears in no event and not in the state file.
func assertKeyNeverShown(t *testing.T, w *codertest.World, key string, events []engine.Event) {
	t.Helper()
	if len(key) < 16 {
		t.Fatalf("key of %d characters is not a real key", len(key))
	}
	if strings.Contains(eventLog(events), key) {
		t.Error("the provisioner key appears in the run's events")
	}
	state, err := os.ReadFile(w.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(state, []byte(key)) {
		t.Error("the provisioner key appears in the state file")
	}
}

func TestLifecycle(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	token := w.Coder.Token()

	sum, events := apply(t, w, token)
	key, id := keyState(t, w)
	assertKeyNeverShown(t, w, key, events)
	if r := revision(t, w); r != 1 {
		t.Errorf("release revision %d, want 1", r)
	}
	checks := checksOf(sum)
	for _, name := range []string{provisioners.CheckPods, provisioners.CheckKeySecret, provisioners.CheckDaemons} {
		if checks[name].Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, checks[name])
		}
	}
	if !strings.Contains(checks[provisioners.CheckDaemons].Reason, "20 provisioner daemons connected") {
		t.Errorf("daemons check %q, want 20 connected", checks[provisioners.CheckDaemons].Reason)
	}
	// The shipped provisioner group grows to 6 × c7i.2xlarge (42 pods).
	if c := checks[provisioners.CheckCapacity]; c.Status != engine.Pass || !strings.Contains(c.Reason, "20 provisioners") {
		t.Errorf("capacity check = %+v, want a pass for 20 provisioners", c)
	}
	t.Run("deployment", func(t *testing.T) { assertDeployment(t, w, 20) })

	// Re-apply as a new process: no rotation, no new revision, no AWS calls.
	w.Reload(t)
	w.Calls.Reset()
	_, events = apply(t, w, token)
	if k2, id2 := keyState(t, w); k2 != key || id2 != id {
		t.Error("re-apply rotated the key")
	}
	if r := revision(t, w); r != 1 {
		t.Errorf("re-apply made revision %d, want 1", r)
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("re-apply made mutating AWS calls: %v", m)
	}
	for _, e := range events {
		if strings.Contains(e.Message, "rotate") || strings.Contains(e.Message, "create provisioner key") {
			t.Errorf("re-apply event %q", e.Message)
		}
	}

	// Losing the secret rotates the key, and the pods roll onto it.
	if err := w.Kube.CoreV1().Secrets(names.CoderNamespace).Delete(ctx, provisioners.KeySecretName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sum, events = apply(t, w, token)
	key3, id3 := keyState(t, w)
	if key3 == key || id3 == id {
		t.Error("deleting the secret did not rotate the key")
	}
	assertKeyNeverShown(t, w, key3, events)
	if r := revision(t, w); r != 2 {
		t.Errorf("after rotation release revision %d, want 2 (pods roll onto the new key)", r)
	}
	if c := checksOf(sum)[provisioners.CheckDaemons]; c.Status != engine.Pass {
		t.Errorf("daemons after rotation = %+v, want pass", c)
	}

	start := time.Now()
	if _, events, err := w.Run(t, stages(w, token), engine.ModeDestroy, provisioners.Name); err != nil {
		t.Fatalf("destroy: %v\n%s", err, eventLog(events))
	}
	t.Logf("destroy took %s", time.Since(start).Round(time.Millisecond))
	if r := revision(t, w); r != 0 {
		t.Errorf("release still at revision %d after destroy", r)
	}
	if _, err := w.Kube.CoreV1().Secrets(names.CoderNamespace).Get(ctx, provisioners.KeySecretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("key secret after destroy: %v, want not found", err)
	}
	if k, err := apiClient(t, w).FindProvisionerKey(ctx, w.Coder.OrganizationID(), provisioners.KeyName); err != nil || k != nil {
		t.Errorf("key in Coder after destroy: %+v, %v; want none", k, err)
	}
}

func assertDeployment(t *testing.T, w *codertest.World, replicas int32) {
	dep, err := w.Kube.AppsV1().Deployments(names.CoderNamespace).Get(context.Background(), provisioners.ChartName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != replicas || dep.Status.ReadyReplicas != replicas {
		t.Errorf("deployment replicas %d ready %d, want %d", *dep.Spec.Replicas, dep.Status.ReadyReplicas, replicas)
	}
	pod := dep.Spec.Template.Spec
	if pod.NodeSelector["coder/node-type"] != "provisioner" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Value != "provisioner" {
		t.Errorf("placement %v %+v, want the provisioner nodes", pod.NodeSelector, pod.Tolerations)
	}
	c := pod.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["CODER_URL"].Value != "http://coder.coder.svc.cluster.local" {
		t.Errorf("CODER_URL = %q, want coderd's in-cluster URL", env["CODER_URL"].Value)
	}
	if _, ok := env["CODER_PROVISIONERD_TAGS"]; ok {
		t.Error("CODER_PROVISIONERD_TAGS is set: tags must come from the key")
	}
	ref := env["CODER_PROVISIONER_DAEMON_KEY"].ValueFrom
	if ref == nil || ref.SecretKeyRef.Name != provisioners.KeySecretName || ref.SecretKeyRef.Key != "key" {
		t.Errorf("key env = %+v, want secret %s key key", env["CODER_PROVISIONER_DAEMON_KEY"], provisioners.KeySecretName)
	}
	if c.Resources.Requests.Cpu().String() != "1" || c.Resources.Requests.Memory().String() != "1Gi" {
		t.Errorf("requests %v, want 1 vCPU / 1Gi", c.Resources.Requests)
	}
	pods, err := w.Kube.CoreV1().Pods(names.CoderNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=coder-provisioner"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Spec.NodeName, "provisioner-") {
			t.Errorf("pod %s on node %q, want a provisioner node", p.Name, p.Spec.NodeName)
		}
	}
}

// TestBadInput: each case is bad input (exit 2) before anything changes:
// no AWS call, no key in Coder, no secret.
func TestBadInput(t *testing.T) {
	w := newWorld(t, true)
	notYAML := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(notYAML, []byte("provisionerDaemon: {keySecretName: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []refusal{
		// Once Coder is deployed, the user can get a token: its absence is bad input.
		{"missing session token", "", map[string]string{"STAGE_CODER_APPLIED_AT": "2026-11-30T00:00:00Z"}, []string{"CODER_SESSION_TOKEN", "coder login", "coder tokens create"}},
		{"token coderd refuses", "AAAAAAAAAA-refusedrefusedrefusedre", nil, []string{"CODER_SESSION_TOKEN", "refuses"}},
		{"values file not YAML", w.Coder.Token(), map[string]string{"PROVISIONER_VALUES_FILE": notYAML}, []string{"PROVISIONER_VALUES_FILE", notYAML}},
		{"chart version not in the repository", w.Coder.Token(), map[string]string{"PROVISIONER_CHART_VERSION": "2.17.0"}, []string{"PROVISIONER_CHART_VERSION", "2.17.0", "2.35.2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { assertValidateRefuses(t, w, tc) })
	}
	t.Run("on a first up the key step waits for a token", func(t *testing.T) {
		st := provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv("")}))
		if err := st.Validate(context.Background()); err != nil {
			t.Fatalf("Validate() before Coder exists = %v, want nil (nobody can have a token yet)", err)
		}
		err := st.Steps[0].Apply(context.Background(), engine.Discard)
		if !engine.IsPending(err) || !strings.Contains(err.Error(), "CODER_SESSION_TOKEN") || !strings.Contains(err.Error(), "coder tokens create") {
			t.Errorf("key step without a token = %v, want pending with the instructions", err)
		}
	})
}

// TestUnlicensed: external provisioners need Premium; both the key step and
// verify say so plainly.
func TestUnlicensed(t *testing.T) {
	w := newWorld(t, false)
	st := provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(w.Coder.Token())}))
	err := st.Steps[0].Apply(context.Background(), engine.Discard)
	if err == nil || !strings.Contains(err.Error(), "Coder Premium feature") || !strings.Contains(err.Error(), "coder licenses add") {
		t.Errorf("key step unlicensed = %v, want the Premium explanation", err)
	}
	checks := map[string]engine.Check{}
	for _, c := range st.Verify(context.Background()) {
		checks[c.Name] = c
	}
	if c := checks[provisioners.CheckDaemons]; c.Status != engine.Fail || c.Reason != provisioners.PremiumProvisionersMessage {
		t.Errorf("daemons check unlicensed = %+v", c)
	}
}
