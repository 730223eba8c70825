package csisync_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/csisync"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// ground is one test's world: moto, the control plane with the
// SecretProviderClass CRD and one schedulable node, and a namespace.
type ground struct {
	opts csisync.Options
	ns   string
}

// setup is the cluster-wide part every test shares: the CRD and a node.
var setup struct {
	once sync.Once
	err  error
}

func newGround(t *testing.T) *ground {
	t.Helper()
	ctx := context.Background()
	srv := moto.Require(t)
	cfg, err := srv.AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	g := kubeground.Require(t)
	dc, err := dynamic.NewForConfig(g.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	setup.once.Do(func() {
		setup.err = installCRD(t, dc)
		if setup.err == nil {
			setup.err = g.AddNode(ctx, kubeground.NodeSpec{Name: "csisync-node"})
		}
	})
	if setup.err != nil {
		t.Fatal(setup.err)
	}
	ns, err := g.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "csisync-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = g.Client().CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return &ground{
		// Other tests' namespaces may still be terminating, their pods naming
		// classes and secrets already gone: each test syncs its own.
		opts: csisync.Options{Kube: g.Client(), Dynamic: dc, SecretsManager: secretsmanager.NewFromConfig(cfg), Namespace: ns.Name},
		ns:   ns.Name,
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRD creates the real driver chart's SecretProviderClass CRD
// (the same file the chart installs) and waits until it is served.
func installCRD(t *testing.T, dc dynamic.Interface) error {
	ctx := context.Background()
	path := chartrepo.Require(t).SecretProviderClassCRD()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &crd.Object); err != nil {
		return err
	}
	if _, err := dc.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dc.Resource(csisync.GVR).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("SecretProviderClass CRD not served: %w", err)
	}
	return nil
}

func (g *ground) putSecret(t *testing.T, name, value string) string {
	t.Helper()
	out, err := g.opts.SecretsManager.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// createClass makes a SecretProviderClass syncing the objects (name or ARN
// -> alias) into secret "synced" under the same keys as the aliases.
func (g *ground) createClass(t *testing.T, name string, objects map[string]string) {
	t.Helper()
	var lines []string
	var data []any
	for objectName, alias := range objects {
		lines = append(lines, fmt.Sprintf("- objectName: %q\n  objectAlias: %q", objectName, alias))
		data = append(data, map[string]any{"objectName": alias, "key": alias})
	}
	spc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "secrets-store.csi.x-k8s.io/v1",
		"kind":       "SecretProviderClass",
		"metadata":   map[string]any{"name": name, "namespace": g.ns},
		"spec": map[string]any{
			"provider":   "aws",
			"parameters": map[string]any{"objects": strings.Join(lines, "\n")},
			"secretObjects": []any{map[string]any{
				"secretName": "synced", "type": "Opaque",
				"labels": map[string]any{"app": "demo"},
				"data":   data,
			}},
		},
	}}
	if _, err := g.opts.Dynamic.Resource(csisync.GVR).Namespace(g.ns).Create(context.Background(), spc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createPod makes a pod mounting class; an empty node leaves it unscheduled
// (its nodeSelector matches no node).
func (g *ground) createPod(t *testing.T, name, class string, schedulable bool) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: g.ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox",
				VolumeMounts: []corev1.VolumeMount{{Name: "secrets", MountPath: "/mnt/secrets", ReadOnly: true}}}},
			Volumes: []corev1.Volume{{Name: "secrets", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
				Driver: csisync.Driver, ReadOnly: aws.Bool(true),
				VolumeAttributes: map[string]string{csisync.AttrClass: class},
			}}}},
		},
	}
	if !schedulable {
		pod.Spec.NodeSelector = map[string]string{"no-such-label": "x"}
	}
	out, err := g.opts.Kube.CoreV1().Pods(g.ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if schedulable {
		g.waitScheduled(t, name)
	}
	return out
}

func (g *ground) waitScheduled(t *testing.T, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := g.opts.Kube.CoreV1().Pods(g.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Spec.NodeName != "", nil
	})
	if err != nil {
		t.Fatalf("pod %s not scheduled: %v", name, err)
	}
}

func (g *ground) secret(t *testing.T) (*corev1.Secret, bool) {
	t.Helper()
	s, err := g.opts.Kube.CoreV1().Secrets(g.ns).Get(context.Background(), "synced", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, true
}

func TestSyncWhileMounted(t *testing.T) {
	g := newGround(t)
	ctx := context.Background()
	urlARN := g.putSecret(t, "csisync/database-url", "postgres://coder:p%40ss@db:5432/coder?sslmode=require")
	g.putSecret(t, "csisync/client-id", "abc123")
	g.createClass(t, "coder-secrets", map[string]string{urlARN: "database-url", "csisync/client-id": "client-id"})
	pod := g.createPod(t, "coderd", "coder-secrets", true)

	res, err := csisync.Sync(ctx, g.opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{g.ns + "/synced"}; fmt.Sprint(res.Created) != fmt.Sprint(want) {
		t.Fatalf("created %v, want %v", res.Created, want)
	}
	s, ok := g.secret(t)
	if !ok {
		t.Fatal("secret synced was not created")
	}
	wantData := map[string]string{"database-url": "postgres://coder:p%40ss@db:5432/coder?sslmode=require", "client-id": "abc123"}
	for k, v := range wantData {
		if string(s.Data[k]) != v {
			t.Errorf("data[%s] = %q, want %q", k, s.Data[k], v)
		}
	}
	if len(s.Data) != len(wantData) {
		t.Errorf("data keys %d, want %d", len(s.Data), len(wantData))
	}
	if s.Type != corev1.SecretTypeOpaque || s.Labels[csisync.LabelManaged] != "true" || s.Labels["app"] != "demo" {
		t.Errorf("type %s labels %v", s.Type, s.Labels)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != pod.UID {
		t.Errorf("owners %v, want the pod %s", s.OwnerReferences, pod.UID)
	}

	// Unchanged: nothing written. Rotated: the new value is synced.
	if res, err := csisync.Sync(ctx, g.opts); err != nil || len(res.Created)+len(res.Updated) != 0 {
		t.Fatalf("second sync: %+v, %v; want no change", res, err)
	}
	if _, err := g.opts.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("csisync/client-id"), SecretString: aws.String("rotated")}); err != nil {
		t.Fatal(err)
	}
	if res, err := csisync.Sync(ctx, g.opts); err != nil || len(res.Updated) != 1 {
		t.Fatalf("sync after rotation: %+v, %v; want one update", res, err)
	}
	if s, _ := g.secret(t); string(s.Data["client-id"]) != "rotated" {
		t.Errorf("client-id = %q after rotation", s.Data["client-id"])
	}
}

func TestNoMountNoSecret(t *testing.T) {
	cases := []struct {
		name string
		pod  func(g *ground, t *testing.T)
	}{
		{"no pod", func(*ground, *testing.T) {}},
		{"pod not scheduled", func(g *ground, t *testing.T) { g.createPod(t, "pending", "coder-secrets", false) }},
		{"pod mounts another class", func(g *ground, t *testing.T) {
			g.createClass(t, "other", map[string]string{"csisync/other": "other"})
			g.createPod(t, "other", "other", true)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGround(t)
			g.putSecret(t, "csisync/value", "v")
			g.putSecret(t, "csisync/other", "o")
			g.createClass(t, "coder-secrets", map[string]string{"csisync/value": "value"})
			tc.pod(g, t)
			if _, err := csisync.Sync(context.Background(), g.opts); err != nil {
				t.Fatal(err)
			}
			if s, ok := g.secret(t); ok && s.Labels["app"] == "demo" && string(s.Data["value"]) == "v" {
				t.Fatalf("secret synced exists with coder-secrets' data, though no scheduled pod mounts coder-secrets")
			}
		})
	}
}

func TestSecretGoneWithLastPod(t *testing.T) {
	g := newGround(t)
	ctx := context.Background()
	g.putSecret(t, "csisync/value", "v")
	g.createClass(t, "coder-secrets", map[string]string{"csisync/value": "value"})
	g.createPod(t, "a", "coder-secrets", true)
	g.createPod(t, "b", "coder-secrets", true)
	if _, err := csisync.Sync(ctx, g.opts); err != nil {
		t.Fatal(err)
	}
	if s, ok := g.secret(t); !ok || len(s.OwnerReferences) != 2 {
		t.Fatalf("secret: present=%v, want owned by both pods", ok)
	}
	for _, name := range []string{"a", "b"} {
		if err := g.opts.Kube.CoreV1().Pods(g.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: aws.Int64(0)}); err != nil {
			t.Fatal(err)
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		_, ok := g.secret(t)
		return !ok, nil
	})
	if err != nil {
		t.Fatal("secret still exists a minute after its last pod was deleted")
	}
}

func TestMissingClassIsNamed(t *testing.T) {
	g := newGround(t)
	g.createPod(t, "orphan", "no-such-class", true)
	_, err := csisync.Sync(context.Background(), g.opts)
	if err == nil || !strings.Contains(err.Error(), g.ns+"/no-such-class") {
		t.Fatalf("err = %v, want one naming %s/no-such-class", err, g.ns)
	}
}

func TestStartSyncsInBackground(t *testing.T) {
	g := newGround(t)
	g.putSecret(t, "csisync/value", "v")
	g.createClass(t, "coder-secrets", map[string]string{"csisync/value": "value"})
	opts := g.opts
	opts.Interval = 50 * time.Millisecond
	var errs atomic.Int32
	opts.OnError = func(error) { errs.Add(1) }
	stop := csisync.Start(context.Background(), opts)
	defer stop()
	g.createPod(t, "late", "coder-secrets", true)
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		s, ok := g.secret(t)
		return ok && string(s.Data["value"]) == "v", nil
	})
	if err != nil {
		t.Fatal("background sync never created the secret")
	}
	stop()
	if n := errs.Load(); n != 0 {
		t.Errorf("%d sync errors reported", n)
	}
}
