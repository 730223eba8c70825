package storage_test

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is one test's cluster: the shared control plane, emptied of
// StorageClasses and of the node plugin's DaemonSet, with the storage stage
// wired to it as the CLI would.
type world struct {
	kc    kubernetes.Interface
	stage engine.Stage
}

func newWorld(t *testing.T) *world {
	t.Helper()
	g := kubeground.Require(t)
	env := stagetest.New(t, nil)
	rc := g.RESTConfig()
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) { return kc, rc, nil }
	ctx := context.Background()
	if err := kc.StorageV1().StorageClasses().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	err = kc.AppsV1().DaemonSets(storage.NodePluginNamespace).Delete(ctx, storage.NodePluginDaemonSet, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return &world{kc: kc, stage: storage.New(env.Deps)}
}

func (w *world) step() engine.Step { return w.stage.Steps[0] }

func (w *world) apply(t *testing.T) *enginetest.Recorder {
	t.Helper()
	r := &enginetest.Recorder{}
	if err := w.step().Apply(context.Background(), r); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return r
}

func (w *world) plan(t *testing.T) []engine.Action {
	t.Helper()
	acts, err := w.step().Plan(context.Background())
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return acts
}

func (w *world) check(t *testing.T, name string) engine.Check {
	t.Helper()
	for _, c := range w.stage.Verify(context.Background()) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s", name)
	return engine.Check{}
}

func (w *world) class(t *testing.T, name string) *storagev1.StorageClass {
	t.Helper()
	c, err := w.kc.StorageV1().StorageClasses().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// gp2 is the class EKS made default before 1.30 (in-tree provisioner name
// as EKS creates it).
func gp2(isDefault bool) *storagev1.StorageClass {
	c := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "gp2"}, Provisioner: "kubernetes.io/aws-ebs",
		Parameters: map[string]string{"type": "gp2", "fsType": "ext4"}}
	if isDefault {
		c.Annotations = map[string]string{storage.AnnotationDefault: "true"}
	}
	return c
}

func kinds(acts []engine.Action) string {
	var out []string
	for _, a := range acts {
		out = append(out, string(a.Kind)+" "+a.Resource)
	}
	return strings.Join(out, ", ")
}

// The stage makes its class the only default, keeps it on re-run, and
// repairs what drifts; verify names the class check when the cluster has
// zero or two defaults.
func TestDefaultClassLifecycle(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.kc.StorageV1().StorageClasses().Create(ctx, gp2(true), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(w.plan(t)), "create storageclass/gp3-encrypted, update storageclass/gp2"; got != want {
		t.Fatalf("first plan = %s, want %s", got, want)
	}
	if c := w.check(t, storage.CheckDefaultClass); c.Status != engine.Fail || !strings.Contains(c.Reason, "default StorageClass is gp2") {
		t.Errorf("before apply: %+v, want a failure naming gp2", c)
	}
	w.apply(t)
	ours := w.class(t, storage.ClassName)
	if ours.Provisioner != storage.Provisioner || ours.Parameters["type"] != "gp3" || ours.Parameters["encrypted"] != "true" ||
		*ours.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer || !*ours.AllowVolumeExpansion ||
		ours.Annotations[storage.AnnotationDefault] != "true" {
		t.Errorf("class = %+v, want the encrypted gp3 WaitForFirstConsumer expandable default", ours)
	}
	if v := w.class(t, "gp2").Annotations[storage.AnnotationDefault]; v != "false" {
		t.Errorf("gp2 default annotation = %q, want false", v)
	}
	if c := w.check(t, storage.CheckDefaultClass); c.Status != engine.Pass || !strings.Contains(c.Reason, storage.ClassName) {
		t.Errorf("after apply: %+v, want a pass naming %s", c, storage.ClassName)
	}
	if got, want := kinds(w.plan(t)), "nothing storageclass/gp3-encrypted"; got != want {
		t.Errorf("second plan = %s, want %s", got, want)
	}
	if r := w.apply(t); len(r.Progressed) != 0 {
		t.Errorf("second apply changed something: %v", r.Progressed)
	}

	// Someone removes the default mark: verify fails naming the check, the
	// next apply repairs it in place.
	patch := []byte(`{"metadata":{"annotations":{"` + storage.AnnotationDefault + `":null}}}`)
	if _, err := w.kc.StorageV1().StorageClasses().Patch(ctx, storage.ClassName, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := w.check(t, storage.CheckDefaultClass); c.Status != engine.Fail || !strings.Contains(c.Reason, "no StorageClass is marked default") {
		t.Errorf("unmarked: %+v, want a failure saying no class is default", c)
	}
	w.apply(t)
	if c := w.check(t, storage.CheckDefaultClass); c.Status != engine.Pass {
		t.Errorf("after repair: %+v", c)
	}

	// A second default class: verify names both.
	other := gp2(true)
	other.Name = "fast"
	if _, err := w.kc.StorageV1().StorageClasses().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := w.check(t, storage.CheckDefaultClass); c.Status != engine.Fail || !strings.Contains(c.Reason, "gp3-encrypted, fast") {
		t.Errorf("two defaults: %+v, want a failure naming both", c)
	}
	w.apply(t)
	if c := w.check(t, storage.CheckDefaultClass); c.Status != engine.Pass {
		t.Errorf("after unmarking fast: %+v", c)
	}
}

// A class of ours whose immutable fields drifted is replaced; destroy
// removes only a class coderctl made for this deployment.
func TestReplaceAndDestroy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	stale := gp2(true)
	stale.Name = storage.ClassName
	stale.Labels = map[string]string{"app.kubernetes.io/managed-by": "coderctl", "coderctl/deployment": "coder-prod"}
	if _, err := w.kc.StorageV1().StorageClasses().Create(ctx, stale, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	acts := w.plan(t)
	if len(acts) != 1 || acts[0].Kind != engine.Update || !strings.Contains(acts[0].Reason, "replace: provisioner kubernetes.io/aws-ebs") {
		t.Fatalf("plan = %+v, want a replacement naming the provisioner", acts)
	}
	w.apply(t)
	if c := w.class(t, storage.ClassName); c.Provisioner != storage.Provisioner || c.Parameters["type"] != "gp3" {
		t.Errorf("replaced class = %+v", c)
	}
	if err := w.step().Destroy(ctx, &enginetest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.kc.StorageV1().StorageClasses().Get(ctx, storage.ClassName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("class after destroy: err = %v, want not found", err)
	}

	// Someone else's class of that name is left in place, with a notice.
	foreign := gp2(false)
	foreign.Name = storage.ClassName
	if _, err := w.kc.StorageV1().StorageClasses().Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := &enginetest.Recorder{}
	if err := w.step().Destroy(ctx, r); err != nil {
		t.Fatal(err)
	}
	if len(r.Notices) != 1 || !strings.Contains(r.Notices[0], "left in place") {
		t.Errorf("notices = %v, want one saying the class is left in place", r.Notices)
	}
	w.class(t, storage.ClassName)
}

// The node plugin check fails when the add-on's DaemonSet is missing or
// cannot run on tainted nodes, and passes once it is ready on every node.
func TestNodePluginOnEveryNode(t *testing.T) {
	w := newWorld(t)
	g := kubeground.Require(t)
	ctx := context.Background()
	for _, n := range []kubeground.NodeSpec{
		{Name: "storage-system-0", Labels: map[string]string{"coder/node-type": "system"}},
		{Name: "storage-workspace-0", Labels: map[string]string{"coder/node-type": "workspace"},
			Taints: []corev1.Taint{{Key: "coder/node-type", Value: "workspace", Effect: corev1.TaintEffectNoSchedule}}},
	} {
		if err := g.AddNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if c := w.check(t, storage.CheckNodePlugin); c.Status != engine.Fail || !strings.Contains(c.Reason, "not installed") {
		t.Errorf("no DaemonSet: %+v, want a failure saying the add-on is not installed", c)
	}
	wait := w.stage.Steps[1]
	if err := wait.Apply(ctx, &enginetest.Recorder{}); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("waiting with no DaemonSet: %v, want an immediate failure saying the add-on is not installed", err)
	}
	ds := nodePlugin(nil)
	if _, err := w.kc.AppsV1().DaemonSets(storage.NodePluginNamespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := w.check(t, storage.CheckNodePlugin); c.Status != engine.Fail || !strings.Contains(c.Reason, "storage-workspace-0 (coder/node-type=workspace:NoSchedule)") {
		t.Errorf("without tolerations: %+v, want a failure naming the tainted node", c)
	}
	if err := wait.Apply(ctx, &enginetest.Recorder{}); err == nil || !strings.Contains(err.Error(), "does not tolerate") {
		t.Errorf("waiting for a plugin kept off tainted nodes: %v, want an immediate failure", err)
	}
	// The add-on's default: tolerate every taint.
	patch := []byte(`{"spec":{"template":{"spec":{"tolerations":[{"operator":"Exists"}]}}}}`)
	if _, err := w.kc.AppsV1().DaemonSets(storage.NodePluginNamespace).Patch(ctx, storage.NodePluginDaemonSet,
		"application/strategic-merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The step waits while the plugin starts on the nodes.
	r := &enginetest.Recorder{}
	if err := wait.Apply(ctx, r); err != nil {
		t.Fatalf("waiting for the node plugin: %v (said %v)", err, r.Progressed)
	}
	if c := w.check(t, storage.CheckNodePlugin); c.Status != engine.Pass || !strings.Contains(c.Reason, "tainted ones included") {
		t.Errorf("after the wait: %+v", c)
	}
}

// nodePlugin is a DaemonSet shaped like the add-on's ebs-csi-node.
func nodePlugin(tols []corev1.Toleration) *appsv1.DaemonSet {
	labels := map[string]string{"app": "ebs-csi-node"}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: storage.NodePluginDaemonSet, Namespace: storage.NodePluginNamespace},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Tolerations: tols,
					Containers:  []corev1.Container{{Name: "ebs-plugin", Image: "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:v1.37.0"}},
				},
			},
		},
	}
}
