package secrets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/csisync"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/stages/secrets"
)

// wantTrust is the role's trust policy, written out by hand.
func wantTrust(providerARN string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
	  "Principal":{"Federated":"` + providerARN + `"},
	  "Action":"sts:AssumeRoleWithWebIdentity",
	  "Condition":{"StringEquals":{
	    "` + oidcHost + `:sub":"system:serviceaccount:coder:coder",
	    "` + oidcHost + `:aud":"sts.amazonaws.com"}}}]}`
}

const wantAccessPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],
  "Resource":"arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-prod/*"}]}`

func TestApplyVerifyReapply(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	_, events := w.run(t, engine.ModeApply)

	st := w.env.Deps.State
	dbARN, roleARN := st.Get(names.KeyDatabaseURLSecretARN), st.Get(names.KeySecretsRoleARN)
	if !strings.Contains(dbARN, ":secret:coder/coder-prod/database-url-") {
		t.Errorf("DATABASE_URL_SECRET_ARN = %q", dbARN)
	}
	if roleARN != "arn:aws:iam::123456789012:role/coder-prod-coder-secrets" {
		t.Errorf("SECRETS_ROLE_ARN = %q", roleARN)
	}
	t.Run("database url", func(t *testing.T) { checkDatabaseURL(t, w, dbARN) })
	t.Run("role", func(t *testing.T) { checkRole(t, w) })
	revisions := map[string]int{}
	t.Run("releases", func(t *testing.T) { revisions = checkReleases(t, w) })
	t.Run("secret provider class", func(t *testing.T) {
		checkSPC(t, w, map[string]string{"database-url": dbARN})
	})
	t.Run("verify", func(t *testing.T) { allPass(t, w.verify(t)) })
	t.Run("no password in state or events", func(t *testing.T) { noPassword(t, w, events) })

	t.Run("reapply changes nothing", func(t *testing.T) {
		before, _ := os.ReadFile(w.env.EnvFile)
		spcVersion := spcResourceVersion(t, w)
		w.env.Calls.Reset()
		w.reload(t)
		w.run(t, engine.ModeApply)
		if m := w.env.Calls.Mutations(); len(m) > 0 {
			t.Errorf("second apply made mutating AWS calls: %v", m)
		}
		for rel, rev := range revisions {
			if got := releaseRevision(t, w, rel); got != rev {
				t.Errorf("release %s: revision %d after re-apply, want %d", rel, got, rev)
			}
		}
		if v := spcResourceVersion(t, w); v != spcVersion {
			t.Errorf("SecretProviderClass was rewritten (resourceVersion %s -> %s)", spcVersion, v)
		}
		if after, _ := os.ReadFile(w.env.EnvFile); string(after) != string(before) {
			t.Errorf("state file changed:\n%s\n---\n%s", before, after)
		}
	})

	t.Run("coderd's mount syncs coder-secrets", func(t *testing.T) {
		pod := coderdPod()
		kc := w.ground.Client()
		if _, err := kc.CoreV1().Pods(names.CoderNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = kc.CoreV1().Pods(names.CoderNamespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: aws.Int64(0)})
		})
		waitFor(t, "coderd pod scheduled", func() bool {
			p, err := kc.CoreV1().Pods(names.CoderNamespace).Get(ctx, pod.Name, metav1.GetOptions{})
			return err == nil && p.Spec.NodeName == "coderd-0"
		})
		opts := csisync.Options{Kube: kc, Dynamic: w.dc, SecretsManager: w.env.Deps.AWS.SecretsManager, Namespace: names.CoderNamespace}
		if _, err := csisync.Sync(ctx, opts); err != nil {
			t.Fatal(err)
		}
		sec, err := kc.CoreV1().Secrets(names.CoderNamespace).Get(ctx, names.CoderSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(sec.Data[names.SecretKeyDatabaseURL]); got != wantDatabaseURL {
			t.Errorf("coder-secrets database-url = %q, want %q", got, wantDatabaseURL)
		}
	})
}

func checkDatabaseURL(t *testing.T, w *world, arn string) {
	got := w.secretValue(t, arn)
	if got != wantDatabaseURL {
		t.Fatalf("coder/database-url = %q\nwant %q", got, wantDatabaseURL)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); pw != dbPassword || u.User.Username() != "coder" {
		t.Errorf("URL does not read back the credentials: user %q", u.User.Username())
	}
	if u.Query().Get("sslmode") != "require" || u.Path != "/coder" || u.Port() != "5432" {
		t.Errorf("URL %q: want database /coder on 5432 with sslmode=require", u.Redacted())
	}
	out, err := w.env.Deps.AWS.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range out.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	want := map[string]string{"coderctl/deployment": cluster, "coderctl/stage": "secrets", "Name": "coder/coder-prod/database-url"}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}
}

func checkRole(t *testing.T, w *world) {
	ctx := context.Background()
	name := aws.String("coder-prod-coder-secrets")
	role, err := w.env.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: name})
	if err != nil {
		t.Fatal(err)
	}
	provider := w.env.Deps.State.Get(names.KeyOIDCProviderARN)
	if got, want := policyDoc(t, aws.ToString(role.Role.AssumeRolePolicyDocument)), mustJSON(t, wantTrust(provider)); !jsonEqual(got, want) {
		t.Errorf("trust policy = %v\nwant %v", got, want)
	}
	inline, err := w.env.Deps.AWS.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: name})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inline.PolicyNames, []string{secrets.RolePolicyName}) {
		t.Fatalf("inline policies %v, want only %s", inline.PolicyNames, secrets.RolePolicyName)
	}
	pol, err := w.env.Deps.AWS.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: name, PolicyName: aws.String(secrets.RolePolicyName)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := policyDoc(t, aws.ToString(pol.PolicyDocument)), mustJSON(t, wantAccessPolicy); !jsonEqual(got, want) {
		t.Errorf("inline policy = %v\nwant %v", got, want)
	}
	attached, err := w.env.Deps.AWS.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(attached.AttachedPolicies) != 0 {
		t.Errorf("managed policies attached: %v", attached.AttachedPolicies)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) // Marshal sorts map keys
}

// checkReleases: both releases deployed at the pinned versions, their
// DaemonSets tolerating every taint, with a ready pod on every node.
func checkReleases(t *testing.T, w *world) map[string]int {
	revisions := map[string]int{}
	for _, c := range []struct{ release, version string }{
		{secrets.DriverRelease, "1.5.5"}, {secrets.ProviderRelease, "2.2.0"},
	} {
		rel, err := w.helm.Status(context.Background(), c.release, secrets.ReleaseNamespace)
		if err != nil || rel == nil {
			t.Fatalf("release %s: %v", c.release, err)
		}
		if rel.Info.Status != "deployed" || rel.Chart.Metadata.Version != c.version {
			t.Errorf("release %s: %s, chart %s; want deployed %s", c.release, rel.Info.Status, rel.Chart.Metadata.Version, c.version)
		}
		revisions[c.release] = rel.Version
		ds := releaseDaemonSet(t, w, c.release)
		if !toleratesAll(ds.Spec.Template.Spec.Tolerations) {
			t.Errorf("DaemonSet %s does not tolerate every taint: %v", ds.Name, ds.Spec.Template.Spec.Tolerations)
		}
		onNodes := readyPodNodes(t, w, ds)
		for _, n := range nodes {
			if !onNodes[n.Name] {
				t.Errorf("DaemonSet %s has no ready pod on node %s (taints %v)", ds.Name, n.Name, n.Taints)
			}
		}
	}
	return revisions
}

// TestLaterNodeGroupWithItsOwnTaintGetsTheDriver: a node group added after
// the stage ran, with a taint of its own that cluster-config.yaml never
// listed, still gets a ready pod of the driver and of the AWS provider, and
// verify counts it.
func TestLaterNodeGroupWithItsOwnTaintGetsTheDriver(t *testing.T) {
	w := newWorld(t, nil)
	w.run(t, engine.ModeApply)
	node := kubeground.NodeSpec{Name: "gpu-later-0", Labels: map[string]string{"coder/node-type": "gpu"},
		Taints: []corev1.Taint{
			{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoExecute},
			{Key: "coder/node-type", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
		}}
	addNode(t, w, node)
	for _, release := range []string{secrets.DriverRelease, secrets.ProviderRelease} {
		ds := releaseDaemonSet(t, w, release)
		err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true,
			func(context.Context) (bool, error) { return readyPodNodes(t, w, ds)[node.Name], nil })
		if err != nil {
			t.Errorf("DaemonSet %s has no ready pod on %s (taints %v): %v", ds.Name, node.Name, node.Taints, err)
		}
	}
	checks := w.verify(t)
	allPass(t, checks)
	for _, name := range []string{secrets.CheckDriverDaemonSets, secrets.CheckProviderDaemonSets} {
		if want := fmt.Sprintf("ready on all %d nodes", len(nodes)+1); !strings.Contains(checks[name].Reason, want) {
			t.Errorf("check %s = %q, want %q: the new node counted too", name, checks[name].Reason, want)
		}
	}
}

// addNode adds a node for one test and removes it afterwards: the control
// plane is shared by the package's tests, whose checks count every node.
func addNode(t *testing.T, w *world, node kubeground.NodeSpec) {
	t.Helper()
	if err := w.ground.AddNode(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		kc := w.ground.Client()
		_ = kc.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{})
		pods, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node.Name})
		if err != nil {
			return
		}
		zero := int64(0)
		for _, p := range pods.Items {
			_ = kc.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
	})
}

func releaseRevision(t *testing.T, w *world, name string) int {
	t.Helper()
	rel, err := w.helm.Status(context.Background(), name, secrets.ReleaseNamespace)
	if err != nil || rel == nil {
		t.Fatalf("release %s: %v", name, err)
	}
	return rel.Version
}

func releaseDaemonSet(t *testing.T, w *world, release string) *appsv1.DaemonSet {
	t.Helper()
	list, err := w.ground.Client().AppsV1().DaemonSets(secrets.ReleaseNamespace).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("DaemonSets of release %s: %v (found %d, want 1)", release, err, len(list.Items))
	}
	return &list.Items[0]
}

// toleratesAll: the empty-key Exists toleration matches every taint.
func toleratesAll(tols []corev1.Toleration) bool {
	return slices.ContainsFunc(tols, func(tl corev1.Toleration) bool {
		return tl.Key == "" && tl.Operator == corev1.TolerationOpExists && tl.Effect == ""
	})
}

func readyPodNodes(t *testing.T, w *world, ds *appsv1.DaemonSet) map[string]bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := w.ground.Client().CoreV1().Pods(ds.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				out[p.Spec.NodeName] = true
			}
		}
	}
	return out
}

// checkSPC compares the class with the objects (alias -> ARN) it must list.
func checkSPC(t *testing.T, w *world, want map[string]string) {
	t.Helper()
	u, err := w.dc.Resource(secrets.SecretProviderClassGVR).Namespace(names.CoderNamespace).
		Get(context.Background(), names.SecretProviderClass, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	provider, _, _ := unstructured.NestedString(u.Object, "spec", "provider")
	if provider != "aws" {
		t.Errorf("provider %q, want aws", provider)
	}
	text, _, _ := unstructured.NestedString(u.Object, "spec", "parameters", "objects")
	var objects []struct{ ObjectName, ObjectAlias string }
	if err := yaml.Unmarshal([]byte(text), &objects); err != nil {
		t.Fatalf("parameters.objects: %v", err)
	}
	got := map[string]string{}
	for _, o := range objects {
		got[o.ObjectAlias] = o.ObjectName
	}
	if !jsonEqual(got, want) {
		t.Errorf("objects alias->ARN %v, want %v", got, want)
	}
	sos, _, _ := unstructured.NestedSlice(u.Object, "spec", "secretObjects")
	if len(sos) != 1 {
		t.Fatalf("secretObjects %v, want one", sos)
	}
	so := sos[0].(map[string]any)
	if so["secretName"] != names.CoderSecret {
		t.Errorf("secretName %v", so["secretName"])
	}
	keys := map[string]string{}
	for _, d := range so["data"].([]any) {
		m := d.(map[string]any)
		keys[m["key"].(string)] = m["objectName"].(string)
	}
	for alias := range want {
		if keys[alias] != alias {
			t.Errorf("secretObjects key %s maps from %q, want the alias %q", alias, keys[alias], alias)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("secretObjects keys %v, want %d", keys, len(want))
	}
}

// noPassword: the password appears in neither the state file nor any event,
// raw or URL-escaped.
func noPassword(t *testing.T, w *world, events []engine.Event) {
	t.Helper()
	state, err := os.ReadFile(w.env.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := json.Marshal(events)
	for _, needle := range []string{dbPassword, "p%40ss%3Aw", "p@ss:w/rd"} {
		if strings.Contains(string(state), needle) {
			t.Errorf("state file contains the database password (%q)", needle)
		}
		if strings.Contains(string(evs), needle) {
			t.Errorf("events contain the database password (%q)", needle)
		}
	}
}

// coderdPod is a stand-in for coderd: on a coderd node, mounting the class.
func coderdPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "coderd-standin", Namespace: names.CoderNamespace},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"coder/node-type": "coderd"},
			Tolerations:  []corev1.Toleration{{Key: "coder/node-type", Operator: corev1.TolerationOpEqual, Value: "coderd", Effect: corev1.TaintEffectNoSchedule}},
			Containers: []corev1.Container{{Name: "coderd", Image: "ghcr.io/coder/coder",
				VolumeMounts: []corev1.VolumeMount{{Name: "secrets", MountPath: "/mnt/secrets", ReadOnly: true}}}},
			Volumes: []corev1.Volume{{Name: "secrets", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
				Driver: names.CSIDriver, ReadOnly: aws.Bool(true),
				VolumeAttributes: map[string]string{"secretProviderClass": names.SecretProviderClass},
			}}}},
		},
	}
}

func spcResourceVersion(t *testing.T, w *world) string {
	t.Helper()
	u, err := w.dc.Resource(secrets.SecretProviderClassGVR).Namespace(names.CoderNamespace).
		Get(context.Background(), names.SecretProviderClass, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u.GetResourceVersion()
}
