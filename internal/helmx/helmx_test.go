package helmx

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
)

func TestMain(m *testing.M) { kubeground.Main(m) }

const (
	nodeTypeKey = "coder/node-type"
	coderdNode  = "coderd-0"
	systemNode  = "system-0"
)

var nodes struct {
	once sync.Once
	err  error
}

// ground is the shared control plane with a tainted coderd node and an
// untainted system node, as the node groups stage leaves them.
func ground(t *testing.T) *kubeground.Ground {
	t.Helper()
	g := kubeground.Require(t)
	nodes.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		nodes.err = g.AddNode(ctx, kubeground.NodeSpec{
			Name: coderdNode, CPU: "8", Memory: "32Gi",
			Labels: map[string]string{nodeTypeKey: "coderd"},
			Taints: []corev1.Taint{{Key: nodeTypeKey, Value: "coderd", Effect: corev1.TaintEffectNoSchedule}},
		})
		if nodes.err == nil {
			nodes.err = g.AddNode(ctx, kubeground.NodeSpec{Name: systemNode, Labels: map[string]string{nodeTypeKey: "system"}})
		}
	})
	if nodes.err != nil {
		t.Fatal(nodes.err)
	}
	return g
}

func newClient(t *testing.T, rc *rest.Config) *Client {
	t.Helper()
	c, err := New(rc, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// coderValues are shaped like the coder stage's: pinned to the coderd node
// group, the CSI volume mounted, the IRSA annotation on the service account.
// The Service is ClusterIP because nothing here assigns load balancers, and
// helm's wait would block on a LoadBalancer Service without an ingress.
func coderValues(replicas int) map[string]any {
	return map[string]any{"coder": map[string]any{
		"replicaCount": replicas,
		"env": []any{
			map[string]any{"name": "CODER_ACCESS_URL", "value": "https://coder.example.com"},
			map[string]any{"name": "CODER_PROVISIONER_DAEMONS", "value": "0"},
			map[string]any{"name": "CODER_PG_CONNECTION_URL", "valueFrom": map[string]any{
				"secretKeyRef": map[string]any{"name": "coder-secrets", "key": "database-url"}}},
		},
		"nodeSelector": map[string]any{nodeTypeKey: "coderd"},
		"tolerations":  []corev1.Toleration{{Key: nodeTypeKey, Operator: corev1.TolerationOpEqual, Value: "coderd", Effect: corev1.TaintEffectNoSchedule}},
		"serviceAccount": map[string]any{"annotations": map[string]any{
			"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/coder-secrets"}},
		"resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}},
		"service":   map[string]any{"type": "ClusterIP"},
		"volumes": []any{map[string]any{"name": "secrets-store", "csi": map[string]any{
			"driver": "secrets-store.csi.k8s.io", "readOnly": true,
			"volumeAttributes": map[string]any{"secretProviderClass": "coder-secrets"}}}},
		"volumeMounts": []any{map[string]any{"name": "secrets-store", "mountPath": "/mnt/secrets-store", "readOnly": true}},
	}}
}

type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, s)
}

func (p *progressLog) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func TestInstallNoopUpgradeUninstall(t *testing.T) {
	t.Parallel()
	g := ground(t)
	repo := chartrepo.Require(t)
	c := newClient(t, g.RESTConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := g.Client()
	const ns = "coder-http"

	rel := Release{
		Name: "coder", Namespace: ns,
		Chart:  Chart{Name: "coder", Repo: repo.URL, Version: "2.35.2"},
		Values: coderValues(1),
		Wait:   true, Timeout: 2 * time.Minute,
	}

	change, err := c.Plan(ctx, rel)
	if err != nil {
		t.Fatal(err)
	}
	if change.Action != ActionInstall {
		t.Fatalf("plan before install = %+v, want install", change)
	}

	var progress progressLog
	rev, changed, err := c.Apply(ctx, rel, progress.add)
	if err != nil {
		t.Fatal(err)
	}
	if rev != 1 || !changed {
		t.Fatalf("install = revision %d changed %v, want 1 true", rev, changed)
	}
	lines := progress.all()
	if len(lines) == 0 || !strings.Contains(lines[0], ns+"/coder") {
		t.Errorf("progress during the wait = %q, want lines naming %s/coder", lines, ns)
	}
	if last := lines[len(lines)-1]; last != "release "+ns+"/coder at revision 1" {
		t.Errorf("last progress line = %q, want the revision the release is at", last)
	}
	t.Logf("progress while waiting: %q", lines)

	t.Run("listed like helm list -A, stored as a helm secret", func(t *testing.T) {
		cfg, err := c.actionConfig("", nil)
		if err != nil {
			t.Fatal(err)
		}
		list := action.NewList(cfg)
		list.AllNamespaces = true
		list.SetStateMask()
		rels, err := list.Run()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rels {
			if r.Name == "coder" && r.Namespace == ns {
				found = true
				if r.Info.Status != release.StatusDeployed || r.Chart.Metadata.Version != "2.35.2" {
					t.Errorf("listed %s/%s is %s with chart %s, want deployed 2.35.2", ns, r.Name, r.Info.Status, r.Chart.Metadata.Version)
				}
			}
		}
		if !found {
			t.Errorf("release %s/coder not in the all-namespaces list (%d releases)", ns, len(rels))
		}
		s, err := client.CoreV1().Secrets(ns).Get(ctx, "sh.helm.release.v1.coder.v1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Labels["owner"] != "helm" || s.Labels["status"] != "deployed" {
			t.Errorf("release secret labels = %v", s.Labels)
		}
	})

	t.Run("same chart and values is a no-op", func(t *testing.T) {
		change, err := c.Plan(ctx, rel)
		if err != nil {
			t.Fatal(err)
		}
		if change.Action != ActionNone || len(change.ChangedKeys) != 0 {
			t.Errorf("plan = %+v, want none", change)
		}
		var again progressLog
		rev, changed, err := c.Apply(ctx, rel, again.add)
		if err != nil {
			t.Fatal(err)
		}
		if lines := again.all(); len(lines) != 1 || lines[0] != "release "+ns+"/coder unchanged at revision 1" {
			t.Errorf("progress of a no-op = %q, want only the unchanged revision", lines)
		}
		if rev != 1 || changed {
			t.Errorf("re-apply = revision %d changed %v, want 1 false", rev, changed)
		}
		if _, err := client.CoreV1().Secrets(ns).Get(ctx, "sh.helm.release.v1.coder.v2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("revision 2 secret exists after a no-op apply (err %v)", err)
		}
	})

	t.Run("new version and values upgrade to revision 2", func(t *testing.T) {
		up := rel
		up.Chart.Version = "2.36.1"
		up.Values = coderValues(2)
		change, err := c.Plan(ctx, up)
		if err != nil {
			t.Fatal(err)
		}
		if change.Action != ActionUpgrade || !strings.Contains(change.Reason, "2.35.2 -> 2.36.1") ||
			strings.Join(change.ChangedKeys, ",") != "coder.replicaCount" {
			t.Errorf("plan = %+v, want upgrade 2.35.2 -> 2.36.1 changing coder.replicaCount", change)
		}
		rev, changed, err := c.Apply(ctx, up, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rev != 2 || !changed {
			t.Errorf("upgrade = revision %d changed %v, want 2 true", rev, changed)
		}
		st, err := c.Status(ctx, "coder", ns)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != 2 || st.Info.Status != release.StatusDeployed || st.Chart.Metadata.Version != "2.36.1" {
			t.Errorf("status = revision %d %s chart %s, want 2 deployed 2.36.1", st.Version, st.Info.Status, st.Chart.Metadata.Version)
		}
		dep, err := client.AppsV1().Deployments(ns).Get(ctx, "coder", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dep.Status.ReadyReplicas != 2 {
			t.Errorf("ready replicas = %d after a waited upgrade, want 2", dep.Status.ReadyReplicas)
		}
		if img := dep.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/coder/coder:v2.36.1" {
			t.Errorf("image = %q", img)
		}
	})

	t.Run("coderd pods run on the tainted coderd node", func(t *testing.T) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=coder"})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue // old revision's pod going away
			}
			if p.Spec.NodeName != coderdNode {
				t.Errorf("pod %s on node %q, want %s", p.Name, p.Spec.NodeName, coderdNode)
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running != 2 {
			t.Errorf("%d coder pods Running, want 2", running)
		}
	})

	t.Run("uninstall twice", func(t *testing.T) {
		for i := range 2 {
			if err := c.Uninstall(ctx, "coder", ns, true); err != nil {
				t.Fatalf("uninstall #%d: %v", i+1, err)
			}
		}
		st, err := c.Status(ctx, "coder", ns)
		if err != nil || st != nil {
			t.Errorf("status after uninstall = %v, %v; want nil, nil", st, err)
		}
		if _, err := client.AppsV1().Deployments(ns).Get(ctx, "coder", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("deployment still there after uninstall (err %v)", err)
		}
	})
}

func TestInstallFromOCI(t *testing.T) {
	t.Parallel()
	g := ground(t)
	repo := chartrepo.Require(t)
	c := newClient(t, g.RESTConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "coder-oci"

	rel := Release{
		Name: "coder-provisioner", Namespace: ns,
		Chart: Chart{Name: "coder-provisioner", Repo: repo.OCI, Version: "2.36.1"},
		Values: map[string]any{
			"provisionerDaemon": map[string]any{"keySecretName": "coder-provisioner-key", "keySecretKey": "key"},
			"coder": map[string]any{
				"env":       []any{map[string]any{"name": "CODER_URL", "value": "https://coder.example.com"}},
				"resources": map[string]any{"requests": map[string]any{"cpu": "100m"}},
			},
		},
		Wait: true, Timeout: time.Minute,
	}
	rev, changed, err := c.Apply(ctx, rel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rev != 1 || !changed {
		t.Fatalf("install = revision %d changed %v", rev, changed)
	}
	dep, err := g.Client().AppsV1().Deployments(ns).Get(ctx, "coder-provisioner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keyFrom string
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "CODER_PROVISIONER_DAEMON_KEY" && e.ValueFrom != nil {
			keyFrom = e.ValueFrom.SecretKeyRef.Name
		}
	}
	if keyFrom != "coder-provisioner-key" || dep.Status.ReadyReplicas != 1 {
		t.Errorf("key from %q, ready %d; want coder-provisioner-key, 1", keyFrom, dep.Status.ReadyReplicas)
	}
	if _, changed, err := c.Apply(ctx, rel, nil); err != nil || changed {
		t.Errorf("re-apply from OCI: changed %v, err %v; want a no-op", changed, err)
	}
	if err := c.Uninstall(ctx, rel.Name, ns, false); err != nil {
		t.Fatal(err)
	}
}

func TestInstallFromLocalPaths(t *testing.T) {
	t.Parallel()
	g := ground(t)
	repo := chartrepo.Require(t)
	c := newClient(t, g.RESTConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tests := []struct {
		name        string
		chart       Chart
		wantVersion string
	}{
		{"chart directory", Chart{Name: "coder", Repo: repo.ChartDir("coder")}, "2.36.1"},
		{"chart archive", Chart{Name: "coder", Repo: repo.ChartArchive("coder", "2.35.2"), Version: "2.35.2"}, "2.35.2"},
		{"directory holding the chart", Chart{Name: "coder", Repo: filepath.Dir(repo.ChartDir("coder")), Version: "2.36.1"}, "2.36.1"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("coder-local-%d", i)
			rel := Release{Name: "coder", Namespace: ns, Chart: tc.chart, Values: coderValues(1)}
			if _, _, err := c.Apply(ctx, rel, nil); err != nil {
				t.Fatal(err)
			}
			st, err := c.Status(ctx, "coder", ns)
			if err != nil {
				t.Fatal(err)
			}
			if st == nil || st.Chart.Metadata.Version != tc.wantVersion || st.Info.Status != release.StatusDeployed {
				t.Errorf("status = %+v, want deployed chart %s", st, tc.wantVersion)
			}
			if err := c.Uninstall(ctx, "coder", ns, false); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBadChartIsInput needs no cluster: the chart is located before the
// cluster is contacted, so the client points at a closed port.
func TestBadChartIsInput(t *testing.T) {
	t.Parallel()
	repo := chartrepo.Require(t)
	c := newClient(t, &rest.Config{Host: "http://127.0.0.1:1"})
	ctx := context.Background()

	tests := []struct {
		name  string
		chart Chart
		want  []string // all must appear in the message
	}{
		{"http unknown version", Chart{Name: "coder", Repo: repo.URL, Version: "9.9.9"}, []string{"coder", "9.9.9", repo.URL, "2.36.1, 2.35.2"}},
		{"oci unknown version", Chart{Name: "coder", Repo: repo.OCI, Version: "9.9.9"}, []string{"coder", "9.9.9", repo.OCI, "2.36.1"}},
		{"local version mismatch", Chart{Name: "coder", Repo: repo.ChartDir("coder"), Version: "9.9.9"}, []string{"coder", "9.9.9", repo.ChartDir("coder")}},
		{"http unknown chart", Chart{Name: "nope", Repo: repo.URL}, []string{"nope", repo.URL}},
		{"oci unknown chart", Chart{Name: "nope", Repo: repo.OCI, Version: "1.0.0"}, []string{"nope", repo.OCI}},
		{"missing local path", Chart{Name: "coder", Repo: filepath.Join(t.TempDir(), "absent")}, []string{"coder", "absent"}},
		{"no repository", Chart{Name: "coder", Version: "2.36.1"}, []string{"coder", "repository"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Plan(ctx, Release{Name: "coder", Namespace: "coder", Chart: tc.chart})
			if !fault.IsInput(err) {
				t.Fatalf("err = %v, want bad input", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not mention %q", err, w)
				}
			}
		})
	}

	t.Run("unreachable repository is not bad input", func(t *testing.T) {
		_, err := c.Plan(ctx, Release{Name: "coder", Namespace: "coder", Chart: Chart{Name: "coder", Repo: "http://127.0.0.1:1"}})
		if err == nil || fault.IsInput(err) || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("err = %v, want a failure naming the repository", err)
		}
	})
}

func TestRollForwardFailedAndPending(t *testing.T) {
	t.Parallel()
	g := ground(t)
	repo := chartrepo.Require(t)
	c := newClient(t, g.RESTConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "coder-rollforward"

	bad := coderValues(1)
	bad["coder"].(map[string]any)["nodeSelector"] = map[string]any{nodeTypeKey: "no-such-node-group"}
	rel := Release{
		Name: "coder", Namespace: ns, Chart: Chart{Name: "coder", Repo: repo.URL, Version: "2.36.1"},
		Values: bad, Wait: true, Timeout: 3 * time.Second,
	}
	rev, _, err := c.Apply(ctx, rel, nil)
	if err == nil {
		t.Fatal("install with unschedulable pods and a 3s wait succeeded")
	}
	st, err := c.Status(ctx, "coder", ns)
	if err != nil {
		t.Fatal(err)
	}
	if rev != 1 || st.Info.Status != release.StatusFailed {
		t.Fatalf("after the failed wait: revision %d status %s, want 1 failed", rev, st.Info.Status)
	}

	rel.Values, rel.Timeout = coderValues(1), time.Minute
	change, err := c.Plan(ctx, rel)
	if err != nil {
		t.Fatal(err)
	}
	if change.Action != ActionUpgrade || !strings.Contains(change.Reason, "failed") {
		t.Errorf("plan over a failed revision = %+v", change)
	}
	if rev, changed, err := c.Apply(ctx, rel, nil); err != nil || rev != 2 || !changed {
		t.Fatalf("roll forward from failed = revision %d changed %v err %v, want 2 true nil", rev, changed, err)
	}

	// An interrupted run leaves the revision pending; helm alone refuses to
	// upgrade over it ("another operation is in progress").
	cfg, err := c.actionConfig(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last("coder")
	if err != nil {
		t.Fatal(err)
	}
	last.Info.Status = release.StatusPendingUpgrade
	if err := cfg.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	if change, _ := c.Plan(ctx, rel); change.Action != ActionUpgrade || !strings.Contains(change.Reason, "interrupted") {
		t.Errorf("plan over a pending revision = %+v", change)
	}
	rev, changed, err := c.Apply(ctx, rel, nil)
	if err != nil || rev != 3 || !changed {
		t.Fatalf("roll forward from pending = revision %d changed %v err %v, want 3 true nil", rev, changed, err)
	}
	if st, _ := c.Status(ctx, "coder", ns); st.Info.Status != release.StatusDeployed {
		t.Errorf("status after rolling forward = %s", st.Info.Status)
	}

	// `helm uninstall --keep-history` leaves an uninstalled revision that
	// helm's upgrade refuses; Apply installs over it.
	keep := action.NewUninstall(cfg)
	keep.KeepHistory = true
	if _, err := keep.Run("coder"); err != nil {
		t.Fatal(err)
	}
	if change, _ := c.Plan(ctx, rel); change.Action != ActionInstall {
		t.Errorf("plan over an uninstalled revision = %+v, want install", change)
	}
	rev, changed, err = c.Apply(ctx, rel, nil)
	if err != nil || rev != 4 || !changed {
		t.Fatalf("install over kept history = revision %d changed %v err %v, want 4 true nil", rev, changed, err)
	}
	if err := c.Uninstall(ctx, "coder", ns, false); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx, "coder", ns); st != nil || err != nil {
		t.Errorf("status after uninstall = %v, %v; want the history purged", st, err)
	}
}

// TestSecretsStoreDriverAndProvider installs the two charts as the secrets
// stage will: the driver with secret sync and tolerating every taint, the
// provider without its bundled copy of the driver.
func TestSecretsStoreDriverAndProvider(t *testing.T) {
	t.Parallel()
	g := ground(t)
	repo := chartrepo.Require(t)
	c := newClient(t, g.RESTConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "csi"
	tolerateAll := []any{map[string]any{"operator": "Exists"}}

	driver := Release{
		Name: "csi-secrets-store", Namespace: ns,
		Chart: Chart{Name: "secrets-store-csi-driver", Repo: repo.URL, Version: "1.5.5"},
		Values: map[string]any{
			"syncSecret": map[string]any{"enabled": true},
			"linux":      map[string]any{"tolerations": tolerateAll},
		},
		Wait: true, Timeout: 2 * time.Minute,
	}
	provider := Release{
		Name: "secrets-provider-aws", Namespace: ns,
		Chart: Chart{Name: "secrets-store-csi-driver-provider-aws", Repo: repo.URL, Version: "2.2.0"},
		Values: map[string]any{
			"tolerations":              tolerateAll,
			"secrets-store-csi-driver": map[string]any{"install": false},
		},
		Wait: true, Timeout: 2 * time.Minute,
	}
	for _, rel := range []Release{driver, provider} {
		if _, _, err := c.Apply(ctx, rel, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, rel := range []Release{provider, driver} {
			if err := c.Uninstall(context.Background(), rel.Name, ns, false); err != nil {
				t.Errorf("uninstall %s: %v", rel.Name, err)
			}
		}
	})

	for _, name := range []string{"csi-secrets-store-secrets-store-csi-driver", "secrets-provider-aws-secrets-store-csi-driver-provider-aws"} {
		ds, err := g.Client().AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Status.DesiredNumberScheduled != 2 || ds.Status.NumberReady != 2 {
			t.Errorf("DaemonSet %s desired %d ready %d, want 2/2", name, ds.Status.DesiredNumberScheduled, ds.Status.NumberReady)
		}
		selector := metav1.FormatLabelSelector(ds.Spec.Selector)
		pods, err := g.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		onNodes := map[string]bool{}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				onNodes[p.Spec.NodeName] = true
			}
		}
		if len(onNodes) != 2 || !onNodes[coderdNode] || !onNodes[systemNode] {
			t.Errorf("DaemonSet %s (%s) runs on %v, want %s (tainted) and %s", name, selector, onNodes, coderdNode, systemNode)
		}
	}

	st, err := c.Status(ctx, driver.Name, ns)
	if err != nil {
		t.Fatal(err)
	}
	hookRan := false
	for _, h := range st.Hooks {
		if h.Kind == "Job" && h.LastRun.Phase == release.HookPhaseSucceeded {
			hookRan = true
		}
	}
	if !hookRan {
		t.Errorf("the driver's CRD hook Job did not run to success (hooks %+v)", st.Hooks)
	}

	if _, err := g.Client().RbacV1().ClusterRoles().Get(ctx, "secretprovidersyncing-role", metav1.GetOptions{}); err != nil {
		t.Errorf("sync ClusterRole: %v", err)
	}

	dyn, err := dynamic.NewForConfig(g.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	spc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "secrets-store.csi.x-k8s.io/v1",
		"kind":       "SecretProviderClass",
		"metadata":   map[string]any{"name": "coder-secrets", "namespace": ns},
		"spec": map[string]any{
			"provider":   "aws",
			"parameters": map[string]any{"objects": "- objectName: coder/database-url\n  objectType: secretsmanager\n"},
			"secretObjects": []any{map[string]any{"secretName": "coder-secrets", "type": "Opaque",
				"data": []any{map[string]any{"objectName": "coder/database-url", "key": "database-url"}}}},
		},
	}}
	gvr := schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasses"}
	// The CRD was just created; its API may take a moment to be served.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, spc, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), nil
	})
	if err != nil {
		t.Fatalf("create SecretProviderClass v1: %v", err)
	}
	got, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, "coder-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if name, _, _ := unstructured.NestedString(got.Object, "spec", "provider"); name != "aws" {
		t.Errorf("stored provider = %q", name)
	}
}
