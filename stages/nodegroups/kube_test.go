package nodegroups_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
)

// requestRecorder notes the mutating requests a client sends.
type requestRecorder struct {
	mu   sync.Mutex
	reqs []string
}

func (rr *requestRecorder) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			rr.mu.Lock()
			rr.reqs = append(rr.reqs, req.Method+" "+req.URL.Path)
			rr.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

func (rr *requestRecorder) take() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	out := rr.reqs
	rr.reqs = nil
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// useKube gives the stage a client for the ground that records what the
// stage changes in Kubernetes.
func useKube(t *testing.T, w *world, ground *kubeground.Ground) *requestRecorder {
	t.Helper()
	rec := &requestRecorder{}
	cfg := ground.RESTConfig()
	cfg.Wrap(rec.wrap)
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) { return kc, cfg, nil }
	return rec
}

// startNodes runs the fake-node syncer in the background, as `make demo`
// does while `coderctl up` runs, with its own (uncounted) AWS client.
func startNodes(t *testing.T, w *world, ground *kubeground.Ground) {
	t.Helper()
	cfg, err := w.env.Moto.AWSConfig(context.Background(), w.env.Deps.Region())
	if err != nil {
		t.Fatal(err)
	}
	syncer := &eksnodes.Syncer{EKS: eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(w.emu.URL) }), Kube: ground.Client(), Cluster: w.env.Deps.Deployment(),
		OnError: func(err error) { t.Logf("eksnodes: %v", err) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		syncer.Watch(ctx, 100*time.Millisecond)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		deleteFakeNodes(t, ground.Client(), w.env.Deps.Deployment())
	})
}

func deleteFakeNodes(t *testing.T, kc kubernetes.Interface, cluster string) {
	list, err := kc.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: eksnodes.LabelFake})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, n := range list.Items {
		if n.Annotations[eksnodes.AnnotationCluster] == cluster {
			if err := kc.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
}

func allPass(t *testing.T, checks map[string]engine.Check, wantNames ...string) {
	t.Helper()
	for _, name := range wantNames {
		if _, ok := checks[name]; !ok {
			t.Errorf("no check %s", name)
		}
	}
	for name, c := range checks {
		if c.Status != engine.Pass {
			t.Errorf("%s = %+v, want pass", name, c)
		}
	}
}

var nodeChecks = []string{"nodes/system", "nodes/coder-coderd", "nodes/coder-provisioner", "nodes/coder-workspace"}

// TestNodesOnKubernetes runs the stage against the real control plane with
// kwok nodes standing in for the groups' instances: verify sees the nodes,
// a taint removed from one node fails verify naming that node, apply puts
// back exactly that taint, and the scheduler keeps untolerating pods off
// the tainted nodes.
func TestNodesOnKubernetes(t *testing.T) {
	ground := kubeground.Require(t)
	w := newWorld(t)
	rec := useKube(t, w, ground)
	startNodes(t, w, ground)
	ctx := context.Background()

	w.apply(t) // its checkpoint includes the node checks
	allPass(t, w.checks(t), nodeChecks...)
	if got := rec.take(); len(got) != 0 {
		t.Errorf("apply changed nodes that EKS had tainted already: %v", got)
	}

	t.Run("lost taint fails verify and apply repairs only that node", func(t *testing.T) {
		removeTaints(t, ground.Client(), "coder-coderd-1")
		checks := w.checks(t)
		c := checks["nodes/coder-coderd"]
		if c.Status != engine.Fail || !strings.Contains(c.Reason, "coder-coderd-1") || strings.Contains(c.Reason, "coder-coderd-0") ||
			!strings.Contains(c.Hint, "kubectl taint nodes coder-coderd-1") {
			t.Fatalf("nodes/coder-coderd = %+v, want a failure naming coder-coderd-1 with a hint", c)
		}
		for _, other := range []string{"nodes/system", "nodes/coder-provisioner", "nodes/coder-workspace", "nodegroup/coder-coderd"} {
			if checks[other].Status != engine.Pass {
				t.Errorf("%s = %+v, want pass", other, checks[other])
			}
		}
		var plan []engine.Action
		for _, st := range w.stage().Steps {
			if st.Name == "taints" {
				var err error
				if plan, err = st.Plan(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(plan) != 1 || plan[0].Kind != engine.Update || plan[0].Resource != "node/coder-coderd-1" {
			t.Errorf("taints plan = %+v, want one update of node/coder-coderd-1", plan)
		}
		rec.take()
		w.env.Calls.Reset()

		w.apply(t)

		changes := rec.take()
		if len(changes) == 0 || slices.ContainsFunc(changes, func(r string) bool { return r != "PUT /api/v1/nodes/coder-coderd-1" }) {
			t.Errorf("Kubernetes changes = %v, want only PUT /api/v1/nodes/coder-coderd-1", changes)
		}
		if got := w.env.Calls.Mutations(); len(got) != 0 {
			t.Errorf("repair made AWS mutations: %v", got)
		}
		n, err := ground.Client().CoreV1().Nodes().Get(ctx, "coder-coderd-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !hasTaint(n, "coder/node-type", "coderd") {
			t.Errorf("coder-coderd-1 taints after apply = %v", n.Spec.Taints)
		}
		allPass(t, w.checks(t), nodeChecks...)
	})

	t.Run("untolerating pods stay off tainted nodes", func(t *testing.T) {
		kc := ground.Client()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nodegroups-test"}}
		if _, err := kc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kc.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
		coderd := map[string]string{"coder/node-type": "coderd"}
		toleration := []corev1.Toleration{{Key: "coder/node-type", Operator: corev1.TolerationOpEqual, Value: "coderd", Effect: corev1.TaintEffectNoSchedule}}
		untolerating := createPod(t, kc, ns.Name, "untolerating", coderd, nil)
		tolerating := createPod(t, kc, ns.Name, "tolerating", coderd, toleration)
		plain := createPod(t, kc, ns.Name, "plain", nil, nil)

		if node := waitScheduled(t, kc, tolerating); !strings.HasPrefix(node, "coder-coderd-") {
			t.Errorf("tolerating pod on %q, want a coder-coderd node", node)
		}
		if node := waitScheduled(t, kc, plain); !strings.HasPrefix(node, "system-") {
			t.Errorf("pod without tolerations on %q, want a system node (all others are tainted)", node)
		}
		msg := waitUnschedulable(t, kc, untolerating)
		if !strings.Contains(msg, "untolerated taint") {
			t.Errorf("untolerating pod's scheduling message = %q, want an untolerated taint", msg)
		}
	})
}

// TestUnreachableCluster: without a reachable API server, apply still
// succeeds (the taints step says why it did nothing) and verify warns.
func TestUnreachableCluster(t *testing.T) {
	w := newWorld(t)
	w.env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) {
		return nil, nil, errors.New("endpoint private")
	}
	_, events := w.run(t, engine.ModeApply)
	var notices []string
	for _, e := range events {
		if e.Type == engine.EventNotice && e.Step == "taints" {
			notices = append(notices, e.Message)
		}
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "cluster not reachable (endpoint private)") {
		t.Errorf("taints notices = %q, want one saying the cluster is not reachable", notices)
	}
	c := w.checks(t)["nodes"]
	if c.Status != engine.Warn || !strings.Contains(c.Reason, "cluster not reachable") || !strings.Contains(c.Reason, "endpoint private") {
		t.Errorf("nodes = %+v, want a warning saying why", c)
	}
}

func removeTaints(t *testing.T, kc kubernetes.Interface, node string) {
	t.Helper()
	n, err := kc.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == "coder/node-type" })
	if _, err := kc.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func hasTaint(n *corev1.Node, key, value string) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool {
		return tn.Key == key && tn.Value == value && tn.Effect == corev1.TaintEffectNoSchedule
	})
}

func createPod(t *testing.T, kc kubernetes.Interface, ns, name string, selector map[string]string, tolerations []corev1.Toleration) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeSelector: selector, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	out, err := kc.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitScheduled(t *testing.T, kc kubernetes.Interface, pod *corev1.Pod) string {
	t.Helper()
	var node string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := kc.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = p.Spec.NodeName
		return node != "", nil
	})
	if err != nil {
		t.Fatalf("pod %s not scheduled: %v", pod.Name, err)
	}
	return node
}

// waitUnschedulable waits for the scheduler's verdict and returns its
// message; the pod must still have no node.
func waitUnschedulable(t *testing.T, kc kubernetes.Interface, pod *corev1.Pod) string {
	t.Helper()
	var msg string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := kc.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName != "" {
			return false, errors.New("scheduled on " + p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				msg = c.Message
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pod %s: %v", pod.Name, err)
	}
	if p, _ := kc.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{}); p.Status.Phase != corev1.PodPending {
		t.Errorf("pod %s phase = %s, want Pending", pod.Name, p.Status.Phase)
	}
	return msg
}
