package secrets_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/secrets"
)

// planKinds runs plan and returns each resource's planned kind.
func planKinds(t *testing.T, w *world) map[string]engine.ActionKind {
	t.Helper()
	sum, _ := w.run(t, engine.ModePlan)
	out := map[string]engine.ActionKind{}
	for _, st := range sum.Stages {
		for _, a := range st.Actions {
			out[a.Resource] = a.Kind
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	w := newWorld(t, nil)
	w.environ[secrets.EnvGitHubClientID] = "client-id"
	w.environ[secrets.EnvGitHubClientSecret] = "client-secret"
	resources := []string{
		"secret coder/coder-prod/database-url", "secret coder/coder-prod/github-client-id", "secret coder/coder-prod/github-client-secret",
		"iam-role/coder-prod-coder-secrets",
		"helm-release/kube-system/csi-secrets-store", "helm-release/kube-system/secrets-provider-aws",
		"secretproviderclass/coder/coder-secrets",
	}
	before := planKinds(t, w)
	if m := w.env.Calls.Mutations(); len(m) > 0 {
		t.Fatalf("plan made mutating calls: %v", m)
	}
	for _, r := range resources {
		if before[r] != engine.Create {
			t.Errorf("plan on empty: %s is %q, want create", r, before[r])
		}
	}
	if before["secret coder/coder-prod/github-allowed-orgs"] != engine.Nothing {
		t.Errorf("allowed orgs unset: want nothing, got %q", before["secret coder/coder-prod/github-allowed-orgs"])
	}

	w.run(t, engine.ModeApply)
	after := planKinds(t, w)
	for r, k := range after {
		if k != engine.Nothing {
			t.Errorf("plan after apply: %s is %q, want nothing", r, k)
		}
	}
	if len(after) < len(resources) {
		t.Errorf("plan after apply covers %d resources, want at least %d: %v", len(after), len(resources), after)
	}

	w.environ[secrets.EnvGitHubClientSecret] = "rotated"
	if k := planKinds(t, w)["secret coder/coder-prod/github-client-secret"]; k != engine.Update {
		t.Errorf("after the client secret changed: %q, want update", k)
	}
}

func TestOAuthSecrets(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	w.environ[secrets.EnvGitHubClientID] = "Iv1.0123456789abcdef"
	w.environ[secrets.EnvGitHubClientSecret] = "  0123456789abcdef0123456789abcdef01234567\n"
	w.environ[secrets.EnvGitHubAllowedOrgs] = "coder,my-org"
	_, events := w.run(t, engine.ModeApply)

	want := map[string]string{
		"coder/coder-prod/github-client-id":     "Iv1.0123456789abcdef",
		"coder/coder-prod/github-client-secret": "0123456789abcdef0123456789abcdef01234567",
		"coder/coder-prod/github-allowed-orgs":  "coder,my-org",
	}
	objects := map[string]string{"database-url": w.env.Deps.State.Get(names.KeyDatabaseURLSecretARN)}
	for name, value := range want {
		if got := w.secretValue(t, name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
		d, err := w.env.Deps.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		objects[strings.TrimPrefix(name, "coder/coder-prod/")] = aws.ToString(d.ARN)
	}
	checkSPC(t, w, objects)
	for _, ev := range events {
		if strings.Contains(ev.Message+ev.Error, "0123456789abcdef0123") {
			t.Errorf("event shows the client secret: %+v", ev)
		}
	}
	if state, _ := os.ReadFile(w.env.EnvFile); strings.Contains(string(state), "0123456789abcdef0123") {
		t.Error("state file holds the client secret")
	}

	t.Run("a changed value is put once", func(t *testing.T) {
		w.environ[secrets.EnvGitHubClientSecret] = "rotated-secret"
		w.env.Calls.Reset()
		w.run(t, engine.ModeApply)
		if m := w.env.Calls.Mutations(); !slices.Equal(m, []string{"Secrets Manager.PutSecretValue"}) {
			t.Errorf("mutations %v, want one PutSecretValue", m)
		}
		if got := w.secretValue(t, "coder/coder-prod/github-client-secret"); got != "rotated-secret" {
			t.Errorf("client secret = %q", got)
		}
	})

	t.Run("unset variables keep the secrets", func(t *testing.T) {
		clear(w.environ)
		w.env.Calls.Reset()
		w.run(t, engine.ModeApply)
		if m := w.env.Calls.Mutations(); len(m) > 0 {
			t.Errorf("mutations %v, want none", m)
		}
		checkSPC(t, w, objects)
	})
}

// TestVerifyNamesDrift breaks one thing at a time behind coderctl's back:
// verify fails naming the check, and apply repairs it.
func TestVerifyNamesDrift(t *testing.T) {
	w := newWorld(t, nil)
	w.run(t, engine.ModeApply)
	ctx := context.Background()
	role := aws.String("coder-prod-coder-secrets")
	cases := []struct {
		name  string
		check string
		// reason is a fragment the failed check's reason must contain.
		reason string
		brk    func(t *testing.T)
	}{
		{"trust widened to any service account", secrets.CheckRoleTrust, "trust policy", func(t *testing.T) {
			doc := strings.ReplaceAll(wantTrust(w.env.Deps.State.Get(names.KeyOIDCProviderARN)), "system:serviceaccount:coder:coder", "system:serviceaccount:*")
			doc = strings.ReplaceAll(doc, "StringEquals", "StringLike")
			if _, err := w.env.Deps.AWS.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: role, PolicyDocument: aws.String(doc)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"extra inline policy", secrets.CheckRolePolicy, "extra inline policies admin", func(t *testing.T) {
			doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
			if _, err := w.env.Deps.AWS.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("admin"), PolicyDocument: aws.String(doc)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"policy widened to every secret", secrets.CheckRolePolicy, "inline policy coder-secrets-read", func(t *testing.T) {
			doc := strings.ReplaceAll(wantAccessPolicy, "secret:coder/coder-prod/*", "secret:*")
			if _, err := w.env.Deps.AWS.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String(secrets.RolePolicyName), PolicyDocument: aws.String(doc)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"database url overwritten", secrets.CheckDatabaseURL, "does not hold the URL", func(t *testing.T) {
			if _, err := w.env.Deps.AWS.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
				SecretId: aws.String("coder/coder-prod/database-url"), SecretString: aws.String("postgres://old")}); err != nil {
				t.Fatal(err)
			}
		}},
		{"class lists another secret", secrets.CheckSPC, "does not list", func(t *testing.T) {
			spc := w.dc.Resource(secrets.SecretProviderClassGVR).Namespace(names.CoderNamespace)
			u, err := spc.Get(ctx, names.SecretProviderClass, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := unstructured.SetNestedField(u.Object, "- objectName: coder/other\n  objectAlias: database-url\n", "spec", "parameters", "objects"); err != nil {
				t.Fatal(err)
			}
			if _, err := spc.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.brk(t)
			checks := w.verify(t)
			c := checks[tc.check]
			if c.Status != engine.Fail || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("check %s: %s %q; want fail containing %q", tc.check, c.Status, c.Reason, tc.reason)
			}
			for name, other := range checks {
				if name != tc.check && other.Status == engine.Fail && !(tc.check == secrets.CheckRoleTrust && name == secrets.CheckRolePolicy) {
					t.Errorf("check %s failed too: %s", name, other.Reason)
				}
			}
			w.run(t, engine.ModeApply) // apply repairs, then its checkpoint passes
			allPass(t, w.verify(t))
		})
	}

	// coderctl's DaemonSets tolerate every taint; one narrowed by hand (a
	// kubectl edit) misses a node with a taint of its own, and verify says
	// which node and taint.
	t.Run("a node a hand-narrowed DaemonSet does not tolerate", func(t *testing.T) {
		narrowDriverTolerations(t, w)
		node := kubeground.NodeSpec{Name: "gpu-0", Taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}}
		if err := w.ground.AddNode(ctx, node); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = w.ground.Client().CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
		})
		// The DaemonSet controller sees the node at once; the check reads its
		// status, so wait until the node counts as not scheduled.
		var c engine.Check
		waitFor(t, "the driver check to fail", func() bool {
			c = w.verify(t)[secrets.CheckDriverDaemonSets]
			return c.Status == engine.Fail
		})
		if !strings.Contains(c.Reason, "gpu-0 (taints dedicated=gpu:NoSchedule") {
			t.Errorf("reason %q does not name the node and its taint", c.Reason)
		}
	})
}

// narrowDriverTolerations edits the driver DaemonSet's tolerations down to
// the coder/node-type taints, as a hand edit would.
func narrowDriverTolerations(t *testing.T, w *world) {
	t.Helper()
	dsets := w.ground.Client().AppsV1().DaemonSets(secrets.ReleaseNamespace)
	list, err := dsets.List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + secrets.DriverRelease})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("driver DaemonSets: %v (found %d)", err, len(list.Items))
	}
	ds := &list.Items[0]
	ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "coder/node-type", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := dsets.Update(context.Background(), ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestDestroy(t *testing.T) {
	cases := []struct {
		name  string
		force bool
	}{{"recovery window", false}, {"force", true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil)
			ctx := context.Background()
			w.environ[secrets.EnvGitHubClientID] = "id"
			w.environ[secrets.EnvGitHubClientSecret] = "secret"
			w.run(t, engine.ModeApply)
			dbARN := w.env.Deps.State.Get(names.KeyDatabaseURLSecretARN)
			w.env.Deps.Opts.ForceDeleteSecrets = tc.force
			w.run(t, engine.ModeDestroy)

			for _, rel := range []string{secrets.DriverRelease, secrets.ProviderRelease} {
				if r, err := w.helm.Status(ctx, rel, secrets.ReleaseNamespace); err != nil || r != nil {
					t.Errorf("release %s still there (%v)", rel, err)
				}
			}
			_, err := w.dc.Resource(secrets.SecretProviderClassGVR).Namespace(names.CoderNamespace).Get(ctx, names.SecretProviderClass, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("SecretProviderClass: %v, want not found", err)
			}
			if _, err := w.env.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("coder-prod-coder-secrets")}); !awsx.IsNotFound(err) {
				t.Errorf("role: %v, want NoSuchEntity", err)
			}
			for _, name := range []string{"coder/coder-prod/database-url", "coder/coder-prod/github-client-id", "coder/coder-prod/github-client-secret"} {
				d, err := w.env.Deps.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
				switch {
				case tc.force && !awsx.IsNotFound(err):
					t.Errorf("%s: %v, want gone", name, err)
				case !tc.force && (err != nil || d.DeletedDate == nil):
					t.Errorf("%s: %v, want scheduled for deletion", name, err)
				}
			}
			for _, k := range []string{names.KeyDatabaseURLSecretARN, names.KeySecretsRoleARN} {
				if v := w.env.Deps.State.Get(k); v != "" {
					t.Errorf("%s still in state: %s", k, v)
				}
			}
			if _, err := w.env.Deps.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("coder/coder-prod/db-master")}); err != nil {
				t.Errorf("the rds stage's master secret was touched: %v", err)
			}

			w.env.Calls.Reset()
			w.run(t, engine.ModeDestroy)
			if m := w.env.Calls.Mutations(); len(m) > 0 {
				t.Errorf("second destroy made mutating calls: %v", m)
			}

			// Apply after destroy: a secret in its recovery window is
			// restored, not recreated under a new ARN.
			w.run(t, engine.ModeApply)
			got := w.env.Deps.State.Get(names.KeyDatabaseURLSecretARN)
			if !tc.force && got != dbARN {
				t.Errorf("re-apply: ARN %s, want the restored %s", got, dbARN)
			}
			if w.secretValue(t, got) != wantDatabaseURL {
				t.Error("re-apply: wrong database URL")
			}
		})
	}
}

// TestAdopt: with the outputs gone from the state file, apply finds
// everything by name, creates nothing and records the same ARNs.
func TestAdopt(t *testing.T) {
	w := newWorld(t, nil)
	w.run(t, engine.ModeApply)
	st := w.env.Deps.State
	want := map[string]string{names.KeyDatabaseURLSecretARN: st.Get(names.KeyDatabaseURLSecretARN), names.KeySecretsRoleARN: st.Get(names.KeySecretsRoleARN)}
	if err := st.Unset(names.KeyDatabaseURLSecretARN, names.KeySecretsRoleARN); err != nil {
		t.Fatal(err)
	}
	w.reload(t)
	w.env.Calls.Reset()
	w.run(t, engine.ModeApply)
	if m := w.env.Calls.Mutations(); len(m) > 0 {
		t.Errorf("adopting made mutating calls: %v", m)
	}
	for k, v := range want {
		if got := w.env.Deps.State.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestForeignSecret: a coder/coder-prod/database-url tagged for another deployment is
// neither adopted nor overwritten.
func TestForeignSecret(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	if _, err := w.env.Deps.AWS.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("coder/coder-prod/database-url"), SecretString: aws.String("theirs"),
		Tags: smTags(map[string]string{"coderctl/deployment": "other"})}); err != nil {
		t.Fatal(err)
	}
	sum, events, err := w.tryRun(t, engine.ModeApply)
	if err == nil && sum.OK {
		t.Fatal("apply succeeded over another deployment's secret")
	}
	if !strings.Contains(stagetest.Failures(sum, events), `belongs to deployment "other"`) {
		t.Errorf("failure does not say whose secret it is:\n%s", stagetest.Failures(sum, events))
	}
	if got := w.secretValue(t, "coder/coder-prod/database-url"); got != "theirs" {
		t.Errorf("the other deployment's secret was overwritten")
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notMapping := filepath.Join(dir, "list.yaml")
	if err := os.WriteFile(notMapping, []byte("- a\n- b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		inputs  map[string]string
		environ map[string]string
		field   string
	}{
		{"client id without secret", nil, map[string]string{secrets.EnvGitHubClientID: "id"}, secrets.EnvGitHubClientSecret},
		{"client secret without id", nil, map[string]string{secrets.EnvGitHubClientSecret: "s3cr3t-value"}, secrets.EnvGitHubClientID},
		{"orgs without oauth", nil, map[string]string{secrets.EnvGitHubAllowedOrgs: "coder"}, secrets.EnvGitHubAllowedOrgs},
		{"bad org name", nil, map[string]string{secrets.EnvGitHubClientID: "id", secrets.EnvGitHubClientSecret: "s3cr3t-value",
			secrets.EnvGitHubAllowedOrgs: "coder,not an org"}, secrets.EnvGitHubAllowedOrgs},
		{"missing driver values file", map[string]string{secrets.KeyDriverValuesFile: filepath.Join(dir, "nope.yaml")}, nil, secrets.KeyDriverValuesFile},
		{"provider values file not a mapping", map[string]string{secrets.KeyProviderValuesFile: notMapping}, nil, notMapping + ": " + secrets.KeyProviderValuesFile},
		{"values file is a directory", map[string]string{secrets.KeyProviderValuesFile: dir}, nil, secrets.KeyProviderValuesFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Validation reads only inputs and files: no cluster needed.
			inputs := stagetest.DefaultInputs()
			maps.Copy(inputs, tc.inputs)
			env := stagetest.New(t, inputs)
			lookup := func(k string) (string, bool) { v, ok := tc.environ[k]; return v, ok }
			stage := secrets.New(env.Deps.With(deploy.StageOptions{LookupEnv: lookup}))
			checkBadInput(t, stubGraph(stage), env.Calls, tc.field)
		})
	}

	t.Run("cluster name too long for the role name", func(t *testing.T) {
		long := strings.Repeat("c", 51)
		path := stagetest.WriteClusterConfig(t, t.TempDir(), "name: coder-prod", "name: "+long)
		env := stagetest.NewWithClusterConfig(t, nil, path)
		stage := secrets.New(env.Deps.With(deploy.StageOptions{LookupEnv: func(string) (string, bool) { return "", false }}))
		// The name came from cluster-config.yaml: the message points there.
		checkBadInput(t, stubGraph(stage), env.Calls, "metadata.name")
	})
}

// checkBadInput validates the graph as the CLI does before a run: bad
// input naming field, no secret quoted, nothing changed.
func checkBadInput(t *testing.T, stages []engine.Stage, calls *awsx.CallCounter, field string) {
	t.Helper()
	g, err := engine.NewGraph(stages)
	if err != nil {
		t.Fatal(err)
	}
	verr := g.ValidateAll(context.Background(), []string{secrets.Name}, nil)
	if !fault.IsInput(verr) || !strings.Contains(verr.Error(), field) {
		t.Fatalf("validate = %v; want bad input naming %s", verr, field)
	}
	if strings.Contains(verr.Error(), "s3cr3t-value") {
		t.Errorf("error quotes the secret: %v", verr)
	}
	if m := calls.Mutations(); len(m) > 0 {
		t.Errorf("mutating calls: %v", m)
	}
}

func smTags(tags map[string]string) []smtypes.Tag {
	return awsx.TagList(tags, func(k, v string) smtypes.Tag { return smtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// TestClusterUnreachable: plan still answers; destroy skips what went with
// a deleted EKS cluster, but fails while the cluster exists and cannot be
// reached (its releases would be left behind).
func TestClusterUnreachable(t *testing.T) {
	cases := []struct {
		name          string
		clusterExists bool
	}{{"cluster deleted", false}, {"cluster exists", true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil)
			ctx := context.Background()
			w.run(t, engine.ModeApply)
			if tc.clusterExists {
				if _, err := w.env.Deps.AWS.EKS.CreateCluster(ctx, &eks.CreateClusterInput{
					Name: aws.String(cluster), RoleArn: aws.String("arn:aws:iam::123456789012:role/eks"),
					ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1"}}}); err != nil {
					t.Fatal(err)
				}
			}
			w.env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) {
				return nil, nil, errors.New("dial tcp: connection refused")
			}
			kinds := planKinds(t, w)
			if k := kinds["helm-release/kube-system/csi-secrets-store"]; k != engine.Create {
				t.Errorf("plan without the cluster: release %q, want create", k)
			}
			sum, events, err := w.tryRun(t, engine.ModeDestroy)
			ok := err == nil && sum.OK
			if ok == tc.clusterExists {
				t.Fatalf("destroy ok=%v, want %v:\n%s", ok, !tc.clusterExists, stagetest.Failures(sum, events))
			}
			_, err = w.env.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("coder-prod-coder-secrets")})
			if !tc.clusterExists && !awsx.IsNotFound(err) {
				t.Errorf("role not deleted: %v", err)
			}
			if tc.clusterExists && !strings.Contains(stagetest.Failures(sum, events), "connection refused") {
				t.Errorf("failure does not say why:\n%s", stagetest.Failures(sum, events))
			}
		})
	}
}
