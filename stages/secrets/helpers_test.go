package secrets_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/secrets"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The shipped cluster-config.yaml's deployment.
const (
	cluster = "coder-prod"
	region  = "us-west-2"
)

// The database the rds stage would have recorded. The password holds every
// character that means something in a URL.
const (
	dbPassword = `p@ss:w/rd?#%&=+ $!'"x`
	dbHost     = "coder-prod.abc123xyz.us-west-2.rds.amazonaws.com"
	oidcHost   = "oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
)

// wantDatabaseURL is coder/coder-prod/database-url's value, written out by hand.
const wantDatabaseURL = "postgres://coder:p%40ss%3Aw%2Frd%3F%23%25%26%3D%2B%20%24%21%27%22x@" + dbHost + ":5432/coder?sslmode=require"

// world is one test's deployment: moto with the rds and eks outputs the
// secrets stage builds on, the shared control plane with nodes like the
// shipped node groups', and a loopback chart repository.
type world struct {
	env    *stagetest.Env
	ground *kubeground.Ground
	repo   *chartrepo.Repo
	helm   *helmx.Client
	dc     dynamic.Interface
	// environ is the process environment the stage reads OAuth settings from.
	environ  map[string]string
	helmDir  string
	masterID string
}

// nodes are the fake nodes of the shipped node groups: one per group, all
// but system tainted coder/node-type=<type>:NoSchedule.
var nodes = []kubeground.NodeSpec{
	{Name: "system-0", Labels: map[string]string{"coder/node-type": "system"}},
	tainted("coderd-0", "coderd"),
	tainted("provisioner-0", "provisioner"),
	tainted("workspace-0", "workspace"),
}

func tainted(name, kind string) kubeground.NodeSpec {
	return kubeground.NodeSpec{Name: name, Labels: map[string]string{"coder/node-type": kind},
		Taints: []corev1.Taint{{Key: "coder/node-type", Value: kind, Effect: corev1.TaintEffectNoSchedule}}}
}

var nodesOnce struct {
	sync.Once
	err error
}

func newWorld(t *testing.T, extraInputs map[string]string) *world {
	t.Helper()
	ctx := context.Background()
	g := kubeground.Require(t)
	nodesOnce.Do(func() {
		for _, n := range nodes {
			if nodesOnce.err = g.AddNode(ctx, n); nodesOnce.err != nil {
				return
			}
		}
	})
	if nodesOnce.err != nil {
		t.Fatal(nodesOnce.err)
	}
	repo := chartrepo.Require(t)
	inputs := stagetest.DefaultInputs()
	inputs["CSI_DRIVER_CHART_REPO"] = repo.URL
	inputs["CSI_AWS_PROVIDER_CHART_REPO"] = repo.URL
	maps.Copy(inputs, extraInputs)
	w := &world{env: stagetest.New(t, inputs), ground: g, repo: repo, environ: map[string]string{}, helmDir: t.TempDir()}
	var err error
	if w.helm, err = helmx.New(g.RESTConfig(), helmx.Options{CacheDir: w.helmDir}); err != nil {
		t.Fatal(err)
	}
	if w.dc, err = dynamic.NewForConfig(g.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	w.wireKube()
	w.cleanCluster(t)
	w.seedRDS(t)
	w.seedOIDC(t)
	w.env.Calls.Reset()
	return w
}

// wireKube points Deps at the control plane, as the CLI's factory would.
func (w *world) wireKube() {
	rc := w.ground.RESTConfig()
	w.env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) {
		kc, err := kubernetes.NewForConfig(rc)
		return kc, rc, err
	}
}

// reload rebuilds Deps from the state file, as a new process would.
func (w *world) reload(t *testing.T) {
	t.Helper()
	w.env.Reload(t)
	w.wireKube()
}

// cleanCluster removes what an earlier test of this binary left in the
// shared control plane.
func (w *world) cleanCluster(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, rel := range []string{secrets.ProviderRelease, secrets.DriverRelease} {
		if err := w.helm.Uninstall(ctx, rel, secrets.ReleaseNamespace, true); err != nil {
			t.Fatal(err)
		}
	}
	err := w.dc.Resource(secrets.SecretProviderClassGVR).Namespace(names.CoderNamespace).
		Delete(ctx, names.SecretProviderClass, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// seedRDS stores the master secret the rds stage writes and records its
// outputs.
func (w *world) seedRDS(t *testing.T) {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{
		"username": "coder", "password": dbPassword, "host": dbHost, "port": 5432, "dbname": "coder",
	})
	out, err := w.env.Deps.AWS.SecretsManager.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("coder/coder-prod/db-master"), SecretString: aws.String(string(doc))})
	if err != nil {
		t.Fatal(err)
	}
	w.masterID = aws.ToString(out.ARN)
	w.record(t, map[string]string{"DB_MASTER_SECRET_ARN": w.masterID, "RDS_ENDPOINT": dbHost, "RDS_PORT": "5432"})
}

// seedOIDC creates the cluster's IAM OIDC provider, as the eks stage does.
func (w *world) seedOIDC(t *testing.T) {
	t.Helper()
	out, err := w.env.Deps.AWS.IAM.CreateOpenIDConnectProvider(context.Background(), &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://" + oidcHost), ClientIDList: []string{"sts.amazonaws.com"},
		ThumbprintList: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.record(t, map[string]string{"OIDC_PROVIDER_ARN": aws.ToString(out.OpenIDConnectProviderArn)})
}

func (w *world) record(t *testing.T, kv map[string]string) {
	t.Helper()
	if err := w.env.Deps.State.SetMany(kv); err != nil {
		t.Fatal(err)
	}
}

func (w *world) lookupEnv(key string) (string, bool) {
	v, ok := w.environ[key]
	return v, ok
}

func (w *world) stage() engine.Stage {
	return secrets.New(w.env.Deps.With(deploy.StageOptions{LookupEnv: w.lookupEnv, HelmCacheDir: w.helmDir}))
}

func (w *world) graph() []engine.Stage { return stubGraph(w.stage()) }

// stubGraph is the secrets stage with stubs for the stages it needs.
func stubGraph(secretsStage engine.Stage) []engine.Stage {
	return []engine.Stage{
		stagetest.Stub(names.StagePrereqs, nil, "inputs"),
		stagetest.Stub(names.StageRDS, nil, "master-secret", "instance"),
		stagetest.Stub(names.StageEKS, nil, "cluster", "oidc-provider"),
		stagetest.Stub(names.StageNodeGroups, nil, "node-role"),
		secretsStage,
	}
}

// run runs the secrets stage in mode and fails the test unless it succeeds.
func (w *world) run(t *testing.T, mode engine.Mode) (*engine.Summary, []engine.Event) {
	t.Helper()
	sum, events, err := w.tryRun(t, mode)
	if err != nil || !sum.OK {
		t.Fatalf("%s: err=%v\n%s", mode, err, stagetest.Failures(sum, events))
	}
	return sum, events
}

func (w *world) tryRun(t *testing.T, mode engine.Mode) (*engine.Summary, []engine.Event, error) {
	t.Helper()
	return w.env.Run(t, w.graph(), engine.Options{Mode: mode, Only: []string{secrets.Name}, Concurrency: 4})
}

// verify runs the stage's checks and returns them by name.
func (w *world) verify(t *testing.T) map[string]engine.Check {
	t.Helper()
	out := map[string]engine.Check{}
	for _, c := range w.stage().Verify(context.Background()) {
		out[c.Name] = c
	}
	return out
}

// allPass fails the test naming every check that did not pass.
func allPass(t *testing.T, checks map[string]engine.Check) {
	t.Helper()
	for _, c := range checks {
		if c.Status != engine.Pass {
			t.Errorf("check %s: %s: %s", c.Name, c.Status, c.Reason)
		}
	}
}

// secretValue reads a secret's current value from moto.
func (w *world) secretValue(t *testing.T, id string) string {
	t.Helper()
	out, err := w.env.Deps.AWS.SecretsManager.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("read secret %s: %v", id, err)
	}
	return aws.ToString(out.SecretString)
}

// policyDoc decodes an IAM policy document as IAM returns it.
func policyDoc(t *testing.T, doc string) any {
	t.Helper()
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		var err error
		if doc, err = url.QueryUnescape(doc); err != nil {
			t.Fatal(err)
		}
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("policy document is not JSON: %v", err)
	}
	return v
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
