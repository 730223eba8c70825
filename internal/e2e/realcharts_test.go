package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/stages/coder"
	"github.com/coderctl/coderctl/stages/provisioners"
	"github.com/coderctl/coderctl/stages/secrets"
)

// assertRealChartObjects checks, after up, that the objects on the control
// plane come from the real charts' templates: each release carries the
// templates the ground's repository packaged from the charts' Go modules,
// and the objects have what only the real templates render.
func (w *world) assertRealChartObjects() {
	w.t.Helper()
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Run("releases from the real charts", w.assertReleaseTemplates)
	w.t.Run("coderd deployment", func(t *testing.T) { assertCoderd(t, kc, w.stateValues()["SECRETS_ROLE_ARN"]) })
	w.t.Run("provisioner deployment and its RBAC", func(t *testing.T) { assertProvisionerRBAC(t, kc) })
	w.t.Run("CSI driver on every node", func(t *testing.T) { assertDriverOnEveryNode(t, kc) })
}

// assertReleaseTemplates compares each release's stored templates with the
// real chart's files in its Go module: no release is a stand-in.
func (w *world) assertReleaseTemplates(t *testing.T) {
	h, err := helmx.New(w.g.Kube.RESTConfig(), helmx.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ release, namespace, chart string }{
		{coder.ReleaseName, names.CoderNamespace, coder.ChartName},
		{provisioners.ReleaseName, names.CoderNamespace, provisioners.ChartName},
		{secrets.DriverRelease, secrets.ReleaseNamespace, secrets.DriverChart},
	} {
		rel, err := h.Status(context.Background(), r.release, r.namespace)
		if err != nil || rel == nil {
			t.Fatalf("release %s/%s: %v", r.namespace, r.release, err)
		}
		dir, err := chartrepo.RealChartDir(context.Background(), r.chart, rel.Chart.Metadata.Version)
		if err != nil {
			t.Fatalf("release %s: %v", r.release, err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "templates", "*"))
		if len(files) == 0 || len(rel.Chart.Templates) != len(files) {
			t.Errorf("release %s has %d templates, the real chart in %s %d", r.release, len(rel.Chart.Templates), dir, len(files))
		}
		for _, tpl := range rel.Chart.Templates {
			if want, err := os.ReadFile(filepath.Join(dir, tpl.Name)); err != nil || !bytes.Equal(tpl.Data, want) {
				t.Errorf("release %s template %s differs from the real chart's (%v)", r.release, tpl.Name, err)
			}
		}
	}
}

// assertCoderd: the readiness probe on /healthz, the CSI volume, the IRSA
// annotation and the metrics port, with every replica ready.
func assertCoderd(t *testing.T, kc kubernetes.Interface, roleARN string) {
	ctx := context.Background()
	dep, err := kc.AppsV1().Deployments(names.CoderNamespace).Get(ctx, coder.ChartName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("readiness probe %+v, want GET /healthz", p)
	}
	if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
		return v.CSI != nil && v.CSI.Driver == "secrets-store.csi.k8s.io" && v.CSI.VolumeAttributes["secretProviderClass"] == names.SecretProviderClass
	}) {
		t.Errorf("volumes %+v, want the CSI volume of class %s", pod.Volumes, names.SecretProviderClass)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "prometheus-http" && p.ContainerPort == 2112 }) {
		t.Errorf("ports %+v, want prometheus-http 2112", c.Ports)
	}
	if dep.Status.ReadyReplicas != *dep.Spec.Replicas {
		t.Errorf("%d of %d replicas ready", dep.Status.ReadyReplicas, *dep.Spec.Replicas)
	}
	sa, err := kc.CoreV1().ServiceAccounts(names.CoderNamespace).Get(ctx, pod.ServiceAccountName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sa.Annotations["eks.amazonaws.com/role-arn"]; roleARN == "" || got != roleARN {
		t.Errorf("service account %s role annotation %q, want SECRETS_ROLE_ARN %q", sa.Name, got, roleARN)
	}
}

// assertProvisionerRBAC: the real provisioner chart binds its service
// account to a Role for workspaces in the namespace.
func assertProvisionerRBAC(t *testing.T, kc kubernetes.Interface) {
	ctx := context.Background()
	dep, err := kc.AppsV1().Deployments(names.CoderNamespace).Get(ctx, provisioners.ChartName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa := dep.Spec.Template.Spec.ServiceAccountName
	if dep.Status.ReadyReplicas != *dep.Spec.Replicas {
		t.Errorf("%d of %d provisioner replicas ready", dep.Status.ReadyReplicas, *dep.Spec.Replicas)
	}
	role, err := kc.RbacV1().Roles(names.CoderNamespace).Get(ctx, sa+"-workspace-perms", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the provisioner's Role: %v", err)
	}
	if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "pods") }) {
		t.Errorf("Role %s rules %+v, want workspace pods", role.Name, role.Rules)
	}
	rb, err := kc.RbacV1().RoleBindings(names.CoderNamespace).Get(ctx, sa, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the provisioner's RoleBinding: %v", err)
	}
	if rb.RoleRef.Name != role.Name || !slices.ContainsFunc(rb.Subjects, func(s rbacv1.Subject) bool {
		return s.Kind == "ServiceAccount" && s.Name == sa
	}) {
		t.Errorf("RoleBinding %s binds %v to %s, want %s to %s", rb.Name, rb.Subjects, rb.RoleRef.Name, sa, role.Name)
	}
}

// assertDriverOnEveryNode: a ready driver pod on every node, tainted or
// not, and the cluster has tainted nodes (else the check proves nothing).
func assertDriverOnEveryNode(t *testing.T, kc kubernetes.Interface) {
	ctx := context.Background()
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(nodes.Items, func(n corev1.Node) bool { return len(n.Spec.Taints) > 0 }) {
		t.Fatalf("no tainted node among %d", len(nodes.Items))
	}
	ds := driverDaemonSet(t, kc)
	ready := readyNodes(t, kc, ds)
	for _, n := range nodes.Items {
		if !ready[n.Name] {
			t.Errorf("no ready %s pod on node %s (taints %v)", ds.Name, n.Name, n.Spec.Taints)
		}
	}
}

func driverDaemonSet(t *testing.T, kc kubernetes.Interface) *appsv1.DaemonSet {
	t.Helper()
	list, err := kc.AppsV1().DaemonSets(secrets.ReleaseNamespace).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + secrets.DriverRelease})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("driver DaemonSets: %v (found %d, want 1)", err, len(list.Items))
	}
	return &list.Items[0]
}

func readyNodes(t *testing.T, kc kubernetes.Interface, ds *appsv1.DaemonSet) map[string]bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kc.CoreV1().Pods(ds.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range pods.Items {
		if slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
			return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		}) {
			out[p.Spec.NodeName] = true
		}
	}
	return out
}
