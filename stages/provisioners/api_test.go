package provisioners_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	double "github.com/coderctl/coderctl/internal/testenv/coderapi"
	"github.com/coderctl/coderctl/stages/coder/codertest"
	"github.com/coderctl/coderctl/stages/provisioners"
)

// verifyChecks runs the stage's checkpoint as `coderctl verify` would.
func verifyChecks(t *testing.T, w *codertest.World) map[string]engine.Check {
	t.Helper()
	st := provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(w.Coder.Token())}))
	out := map[string]engine.Check{}
	for _, c := range st.Verify(context.Background()) {
		out[c.Name] = c
	}
	return out
}

// listedUnderKey is how many daemons coderd's key-daemons route lists under
// the stage's key: what a count without liveness would have counted.
func listedUnderKey(t *testing.T, w *codertest.World) int {
	t.Helper()
	list, err := apiClient(t, w).DaemonsForKey(context.Background(), w.Coder.OrganizationID(), provisioners.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Daemons)
}

// roll changes the provisioner Deployment's pod template and waits until
// the rollout is complete: every replica updated and ready, no old pod left.
func roll(t *testing.T, w *codertest.World, change func(*corev1.PodSpec)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	deps := w.Kube.AppsV1().Deployments(names.CoderNamespace)
	dep, err := deps.Get(ctx, provisioners.ChartName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(&dep.Spec.Template.Spec)
	if dep.Spec.Template.Annotations == nil {
		dep.Spec.Template.Annotations = map[string]string{}
	}
	dep.Spec.Template.Annotations["test/rolled-at"] = time.Now().Format(time.RFC3339Nano)
	if dep, err = deps.Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return rolledOut(ctx, w, dep.Generation, *dep.Spec.Replicas)
	})
	if err != nil {
		t.Fatalf("rollout of %s did not finish: %v", provisioners.ChartName, err)
	}
}

func rolledOut(ctx context.Context, w *codertest.World, generation int64, replicas int32) (bool, error) {
	dep, err := w.Kube.AppsV1().Deployments(names.CoderNamespace).Get(ctx, provisioners.ChartName, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	st := dep.Status
	if st.ObservedGeneration < generation || st.UpdatedReplicas != replicas || st.ReadyReplicas != replicas || st.Replicas != replicas {
		return false, nil
	}
	pods, err := w.Kube.CoreV1().Pods(names.CoderNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + provisioners.ChartName})
	if err != nil {
		return false, err
	}
	return len(pods.Items) == int(replicas), nil
}

// TestRolloutDoesNotCountReplacedDaemons: coderd keeps listing the daemons
// of replaced pods for three minutes. After a rollout whose new pods
// connect, verify counts the replicas, not the replicas plus the replaced
// ones; after a rollout whose new pods cannot connect (a wrong key), the
// old daemons still listed do not make verify pass — neither while coderd
// still calls them recent nor once they are past StaleInterval.
func TestRolloutDoesNotCountReplacedDaemons(t *testing.T) {
	w := newWorld(t, true)
	sum, _ := apply(t, w, w.Coder.Token())
	if c := checksOf(sum)[provisioners.CheckDaemons]; c.Status != engine.Pass || !strings.Contains(c.Reason, "20 provisioner daemons connected") {
		t.Fatalf("daemons after apply = %+v, want 20 connected", c)
	}

	roll(t, w, func(*corev1.PodSpec) {})
	c := verifyChecks(t, w)[provisioners.CheckDaemons]
	if listed := listedUnderKey(t, w); listed != 40 {
		t.Fatalf("coderd lists %d daemons under the key after a rollout, want 40 (20 replaced, 20 new)", listed)
	}
	if c.Status != engine.Pass || !strings.Contains(c.Reason, "20 provisioner daemons connected") || !strings.Contains(c.Reason, "its pod is gone") {
		t.Errorf("daemons after a good rollout = %+v, want exactly 20 counted and the replaced ones named", c)
	}

	roll(t, w, func(pod *corev1.PodSpec) {
		pod.Containers[0].Env = withEnv(pod.Containers[0].Env, corev1.EnvVar{Name: "CODER_PROVISIONER_DAEMON_KEY", Value: "not-the-key"})
	})
	cases := []struct {
		name    string
		advance time.Duration
		why     string
	}{
		{"replaced daemons still recent", 0, "its pod is gone"},
		{"replaced daemons past StaleInterval", 2 * time.Minute, "not seen for 2m"},
	}
	for _, tc := range cases {
		w.Coder.Advance(tc.advance)
		if listed := listedUnderKey(t, w); listed < 20 {
			t.Fatalf("%s: coderd lists %d daemons under the key, want the replaced ones still listed", tc.name, listed)
		}
		c := verifyChecks(t, w)[provisioners.CheckDaemons]
		if c.Status != engine.Fail || !strings.Contains(c.Reason, "0 of 20 provisioner daemons connected") || !strings.Contains(c.Reason, tc.why) {
			t.Errorf("%s: daemons = %+v, want a failure: 0 of 20, not counted because %q", tc.name, c, tc.why)
		}
	}
}

func withEnv(env []corev1.EnvVar, v corev1.EnvVar) []corev1.EnvVar {
	for i := range env {
		if env[i].Name == v.Name {
			env[i] = v
			return env
		}
	}
	return append(env, v)
}

// TestConcurrentKeyCreate: another run creates the key between this run's
// look-up and its create, so coderd answers 409. The key is adopted when
// the other run has already stored its secret; otherwise the run stops
// with an explanation, not coderd's raw answer, and writes nothing.
func TestConcurrentKeyCreate(t *testing.T) {
	cases := []struct {
		name        string
		otherStores bool
		wantErr     string
	}{
		{"other run stored its secret", true, ""},
		{"other run has not stored it yet", false, "created by another coderctl run at the same time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, true)
			var otherKey string
			var hookErr error
			w.Coder.BeforeNextKeyCreate(func(string) { otherKey, hookErr = otherRun(w, tc.otherStores) })
			st := provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(w.Coder.Token())}))
			err := st.Steps[0].Apply(context.Background(), engine.Discard)
			if hookErr != nil {
				t.Fatalf("the other run: %v", hookErr)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("key step = %v, want the key adopted", err)
				}
				if secret, _ := keyState(t, w); secret != otherKey {
					t.Error("the secret no longer holds the other run's key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "already exists in organization") {
				t.Errorf("key step = %v, want %q and not coderd's raw message", err, tc.wantErr)
			}
			_, err = w.Kube.CoreV1().Secrets(names.CoderNamespace).Get(context.Background(), provisioners.KeySecretName, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("key secret after the refused create: %v, want none written", err)
			}
		})
	}
}

// otherRun plays a concurrent coderctl run: it creates the key and, when
// stores is set, writes it to the secret the way the key step does.
func otherRun(w *codertest.World, stores bool) (string, error) {
	ctx := context.Background()
	c := w.Coder
	client, err := coderapiClient(w)
	if err != nil {
		return "", err
	}
	secret, err := client.CreateProvisionerKey(ctx, c.OrganizationID(), provisioners.KeyName, provisioners.KeyTags())
	if err != nil || !stores {
		return secret.Reveal(), err
	}
	key, err := client.FindProvisionerKey(ctx, c.OrganizationID(), provisioners.KeyName)
	if err != nil || key == nil {
		return "", fmt.Errorf("key after create: %v, %v", key, err)
	}
	_, err = w.Kube.CoreV1().Secrets(names.CoderNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: provisioners.KeySecretName, Namespace: names.CoderNamespace,
			Annotations: map[string]string{"coderctl.dev/provisioner-key-id": key.ID}},
		Data: map[string][]byte{provisioners.KeySecretKey: []byte(secret.Reveal())},
	}, metav1.CreateOptions{})
	return secret.Reveal(), err
}

func coderapiClient(w *codertest.World) (*coderapi.Client, error) {
	return coderapi.New(w.Coder.URL(), coderapi.Options{Token: w.Coder.Token(), CAFile: w.Coder.CAFile()})
}

// TestValidateRefusesBeforeAnythingChanges: a token whose user may not
// manage provisioner keys, and a CODER_VERSION older than the key routes,
// are bad input (exit 2) naming what is wrong, with nothing changed: no
// AWS call, no key in Coder, no key secret.
func TestValidateRefusesBeforeAnythingChanges(t *testing.T) {
	w := newWorld(t, true)
	cases := []refusal{
		{"member token", w.Coder.MemberToken(), nil,
			[]string{"CODER_SESSION_TOKEN", `user "member"`, "may not create or delete provisioner keys", "owner"}},
		{"CODER_VERSION too old", w.Coder.Token(), map[string]string{"CODER_VERSION": "2.15.0"},
			[]string{"CODER_VERSION", "2.15.0", "older than 2.16.0"}},
		{"CODER_VERSION too old, no token yet", "", map[string]string{"CODER_VERSION": "2.15.2"},
			[]string{"CODER_VERSION", "2.16.0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { assertValidateRefuses(t, w, tc) })
	}
	t.Run("an owner's token passes", func(t *testing.T) {
		st := provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(w.Coder.Token())}))
		if err := st.Validate(context.Background()); err != nil {
			t.Errorf("Validate() with the owner's token = %v, want nil", err)
		}
	})
}

// refusal is an input that the provisioners stage's Validate must refuse.
type refusal struct {
	name    string
	token   string
	inputs  map[string]string
	mention []string
}

// assertValidateRefuses sets the refusal's inputs, validates with its
// token, and wants one line of bad input (exit 2) naming every mention,
// with nothing changed; the inputs are removed again afterwards.
func assertValidateRefuses(t *testing.T, w *codertest.World, tc refusal) {
	t.Helper()
	for k, v := range tc.inputs {
		if err := w.Deps.State.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for k := range tc.inputs {
			_ = w.Deps.State.Unset(k)
		}
		w.Reload(t)
	}()
	w.Reload(t)
	w.Calls.Reset()
	st := provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(tc.token)}))
	err := st.Validate(context.Background())
	if !fault.IsInput(err) || fault.ExitCode(err) != fault.ExitInput {
		t.Fatalf("Validate() = %v, want bad input (exit 2)", err)
	}
	t.Logf("refused: %v", err)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is more than one line", err)
	}
	for _, m := range tc.mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
	assertNothingChanged(t, w)
}

func assertNothingChanged(t *testing.T, w *codertest.World) {
	t.Helper()
	if calls := slices.Concat(w.Calls.Mutations(), w.Calls.Reads()); len(calls) != 0 {
		t.Errorf("validation called AWS: %v", calls)
	}
	keys, err := apiClient(t, w).ProvisionerKeys(context.Background(), w.Coder.OrganizationID())
	if err != nil || len(keys) != 0 {
		t.Errorf("keys in Coder after refused input: %v, %v", keys, err)
	}
	_, err = w.Kube.CoreV1().Secrets(names.CoderNamespace).Get(context.Background(), provisioners.KeySecretName, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("key secret after refused input: %v, want none", err)
	}
}

// TestKeyStepExplainsRefusals: when Validate could not ask coderd (it was
// not deployed yet) the key step still turns coderd's refusals into what
// to do, and creates nothing: a member's token (coderd answers the create
// with a 500 "unauthorized") and a coderd older than the key routes.
func TestKeyStepExplainsRefusals(t *testing.T) {
	w := newWorld(t, true)
	old := double.Require(t, double.Options{Version: "v2.15.0+abcdef0", Licensed: true, Token: w.Coder.Token()})
	cases := []struct {
		name    string
		server  *double.Server
		token   string
		input   bool // bad input (exit 2)
		mention []string
	}{
		{"member token", w.Coder, w.Coder.MemberToken(), true, []string{"CODER_SESSION_TOKEN", "manage provisioner keys"}},
		{"coderd older than the key routes", old, old.Token(), false, []string{"runs v2.15.0+abcdef0", "older than 2.16.0", "CODER_VERSION"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inputs := map[string]string{"CODER_URL": tc.server.URL(), "CODER_CA_FILE": tc.server.CAFile()}
			for k, v := range inputs {
				if err := w.Deps.State.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			w.Reload(t)
			st := provisioners.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(tc.token)}))
			err := st.Steps[0].Apply(context.Background(), engine.Discard)
			if err == nil || fault.IsInput(err) != tc.input {
				t.Fatalf("key step = %v, want an error (bad input: %v)", err, tc.input)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			for _, s := range []*double.Server{w.Coder, old} {
				c, cerr := coderapi.New(s.URL(), coderapi.Options{Token: s.Token(), CAFile: s.CAFile()})
				if cerr != nil {
					t.Fatal(cerr)
				}
				if keys, err := c.ProvisionerKeys(context.Background(), "default"); err != nil || len(keys) != 0 {
					t.Errorf("keys in %s after the refusal: %v, %v", s.URL(), keys, err)
				}
			}
		})
	}
}
