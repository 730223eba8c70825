package kubeground

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { Main(m) }

const (
	coderdTaintKey   = "coder/node-type"
	coderdTaintValue = "coderd"
)

// TestControlPlane drives the shared ground the way the deploy stages will:
// tainted and untainted node groups, a Deployment pinned to its node group,
// a pod that must not land there, and a DaemonSet on every node.
func TestControlPlane(t *testing.T) {
	g := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := g.Client()

	version, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if version.GitVersion != KubeVersion {
		t.Fatalf("server version = %q, want %q (built without the version ldflags?)", version.GitVersion, KubeVersion)
	}

	coderdNode, generalNode := "coderd-node-0", "general-node-0"
	if err := g.AddNode(ctx, NodeSpec{
		Name:   coderdNode,
		Labels: map[string]string{coderdTaintKey: coderdTaintValue},
		Taints: []corev1.Taint{{Key: coderdTaintKey, Value: coderdTaintValue, Effect: corev1.TaintEffectNoSchedule}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := g.AddNode(ctx, NodeSpec{Name: generalNode, CPU: "2", Memory: "8Gi"}); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(ctx, t, client, "control-plane")

	t.Run("node capacity", func(t *testing.T) {
		n, err := client.CoreV1().Nodes().Get(ctx, generalNode, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Status.Allocatable.Cpu().String(); got != "2" {
			t.Errorf("allocatable cpu = %s, want 2", got)
		}
		if got := n.Status.Allocatable.Memory().String(); got != "8Gi" {
			t.Errorf("allocatable memory = %s, want 8Gi", got)
		}
		if got := n.Annotations[kwokNodeAnnotation]; got != "fake" {
			t.Errorf("annotation %s = %q, want fake", kwokNodeAnnotation, got)
		}
	})

	t.Run("tolerating deployment runs on the tainted node", func(t *testing.T) {
		dep := deployment("coderd", map[string]string{coderdTaintKey: coderdTaintValue},
			[]corev1.Toleration{{Key: coderdTaintKey, Operator: corev1.TolerationOpEqual, Value: coderdTaintValue, Effect: corev1.TaintEffectNoSchedule}})
		if _, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := waitForPod(ctx, t, client, ns, "app=coderd", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodRunning && podReady(p)
		})
		if pod.Spec.NodeName != coderdNode {
			t.Errorf("pod %s runs on %q, want %q", pod.Name, pod.Spec.NodeName, coderdNode)
		}
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			d, err := client.AppsV1().Deployments(ns).Get(ctx, "coderd", metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == 1, nil
		})
		if err != nil {
			t.Errorf("deployment never reported 1 ready replica: %v", err)
		}
	})

	t.Run("untolerating pod stays pending", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "no-toleration", Labels: map[string]string{"app": "no-toleration"}},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{coderdTaintKey: coderdTaintValue},
				Containers:   []corev1.Container{{Name: "main", Image: "example.invalid/app:1"}},
			},
		}
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got := waitForPod(ctx, t, client, ns, "app=no-toleration", func(p *corev1.Pod) bool {
			return scheduledCondition(p) != nil
		})
		cond := scheduledCondition(got)
		if cond.Status != corev1.ConditionFalse || cond.Reason != corev1.PodReasonUnschedulable {
			t.Errorf("PodScheduled = %s/%s, want False/Unschedulable", cond.Status, cond.Reason)
		}
		if !strings.Contains(cond.Message, "untolerated taint") {
			t.Errorf("scheduling message %q does not mention the untolerated taint", cond.Message)
		}
		if got.Status.Phase != corev1.PodPending || got.Spec.NodeName != "" {
			t.Errorf("pod is %s on %q, want Pending on no node", got.Status.Phase, got.Spec.NodeName)
		}
	})

	t.Run("daemonset ready on every node", func(t *testing.T) {
		labels := map[string]string{"app": "agent"}
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "agent"},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
						Containers: []corev1.Container{{
							Name: "agent", Image: "example.invalid/agent:1",
							SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)},
						}},
					},
				},
			},
		}
		if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var last appsv1.DaemonSetStatus
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := client.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // retried until the timeout
			}
			last = got.Status
			return last.DesiredNumberScheduled == 2 && last.NumberReady == 2, nil
		})
		if err != nil {
			t.Fatalf("daemonset status desired=%d ready=%d, want 2/2: %v", last.DesiredNumberScheduled, last.NumberReady, err)
		}
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			t.Fatal(err)
		}
		nodes := map[string]bool{}
		for _, p := range pods.Items {
			nodes[p.Spec.NodeName] = true
		}
		if !nodes[coderdNode] || !nodes[generalNode] || len(nodes) != 2 {
			t.Errorf("daemonset pods on %v, want exactly %s and %s", nodes, coderdNode, generalNode)
		}
	})

	t.Run("kubeconfig file reaches the apiserver", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", g.Kubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Errorf("get namespace %s through %s: %v", ns, g.Kubeconfig(), err)
		}
	})
}

// TestStartAndStop starts a second, private ground to watch its processes
// and ports disappear, and reports the warm start time.
func TestStartAndStop(t *testing.T) {
	if _, err := checkCache(CacheDir()); err != nil {
		t.Fatal(err) // never skip: says how to build the binaries
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	began := time.Now()
	g, err := Start(ctx, Options{Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm start: %s", time.Since(began).Round(time.Millisecond))
	workDir := g.WorkDir()
	addrs := []string{g.apiserverAddr, g.etcdAddr}
	for _, addr := range addrs {
		if !listening(addr) {
			t.Fatalf("%s not listening while the ground runs", addr)
		}
	}
	if len(g.components) != len(binaries) {
		t.Fatalf("started %d components, want %d", len(g.components), len(binaries))
	}

	began = time.Now()
	if err := g.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stop: %s", time.Since(began).Round(time.Millisecond))
	for _, c := range g.components {
		if err := syscall.Kill(-c.pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group of %s (pid %d) still exists after Stop: kill(0) = %v", c.name, c.pid(), err)
		}
	}
	for _, addr := range addrs {
		if listening(addr) {
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
	if _, err := os.Stat(workDir); !os.IsNotExist(err) {
		t.Errorf("temporary work dir %s not removed: %v", workDir, err)
	}
	if err := g.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestStartFailureQuotesLog uses shell scripts as components: etcd runs,
// the apiserver dies at once, and the error must carry its last words.
func TestStartFailureQuotesLog(t *testing.T) {
	cache := t.TempDir()
	scripts := map[string]string{
		"etcd":           "exec sleep 60",
		"kube-apiserver": "echo 'Error: unknown flag: --bogus' >&2; exit 3",
	}
	for _, b := range binaries {
		body, ok := scripts[b]
		if !ok {
			body = "exec sleep 60"
		}
		writeExecutable(t, filepath.Join(cache, "bin", b), "#!/bin/sh\n"+body+"\n")
	}
	writeFile(t, filepath.Join(cache, "stages", "pod-ready.yaml"), "kind: Stage\n")
	workDir := t.TempDir()

	g, err := Start(context.Background(), Options{CacheDir: cache, WorkDir: workDir})
	if err == nil {
		_ = g.Stop()
		t.Fatal("Start succeeded with a failing apiserver")
	}
	for _, want := range []string{"kube-apiserver exited early", "unknown flag: --bogus", workDir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, statErr := os.Stat(filepath.Join(workDir, "etcd.log")); statErr != nil {
		t.Errorf("etcd log not kept: %v", statErr)
	}
}

func TestMissingBinaries(t *testing.T) {
	cache := t.TempDir()
	writeExecutable(t, filepath.Join(cache, "bin", "etcd"), "#!/bin/sh\n")
	writeFile(t, filepath.Join(cache, "bin", "kwok"), "not executable") // mode 0644

	_, err := Start(context.Background(), Options{CacheDir: cache})
	var missing *MissingBinariesError
	if !errors.As(err, &missing) {
		t.Fatalf("Start error = %v, want *MissingBinariesError", err)
	}
	want := []string{"bin/kube-apiserver", "bin/kube-controller-manager", "bin/kube-scheduler", "bin/kwok", "stages/*.yaml"}
	if strings.Join(missing.Missing, " ") != strings.Join(want, " ") {
		t.Errorf("missing = %v, want %v", missing.Missing, want)
	}
	if !strings.Contains(err.Error(), "run scripts/build-kube.sh") {
		t.Errorf("error %q does not say how to build the binaries", err)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv(CacheEnv, "/opt/kube-cache")
	if got := BinDir(); got != "/opt/kube-cache/bin" {
		t.Errorf("BinDir() = %q with %s set, want /opt/kube-cache/bin", got, CacheEnv)
	}
	if runtime.GOOS != "linux" {
		return // os.UserCacheDir ignores XDG_CACHE_HOME elsewhere
	}
	t.Setenv(CacheEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/home/u/.cache")
	if got, want := CacheDir(), "/home/u/.cache/coderctl/kube-"+KubeVersion; got != want {
		t.Errorf("CacheDir() = %q, want %q", got, want)
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"fewer lines than asked", "a\nb\n", 5, "  a\n  b"},
		{"keeps the end", "1\n2\n3\n4\n", 2, "  3\n  4"},
		{"no trailing newline", "x\ny", 1, "  y"},
		{"invalid utf-8 dropped", "ok\xff\n", 1, "  ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastLines([]byte(tt.in), tt.n); got != tt.want {
				t.Errorf("lastLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: %d is invalid or repeated", ports, p)
		}
		seen[p] = true
	}
}

func createNamespace(ctx context.Context, t *testing.T, client kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Pods are refused until the namespace's default ServiceAccount exists.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("default ServiceAccount in %s: %v", ns.Name, err)
	}
	return ns.Name
}

func deployment(name string, nodeSelector map[string]string, tolerations []corev1.Toleration) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: nodeSelector,
					Tolerations:  tolerations,
					Containers:   []corev1.Container{{Name: name, Image: "example.invalid/" + name + ":1"}},
				},
			},
		},
	}
}

// waitForPod waits until a pod matching selector satisfies done and returns it.
func waitForPod(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, selector string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	var seen []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the timeout
		}
		seen = seen[:0]
		for i := range pods.Items {
			p := &pods.Items[i]
			seen = append(seen, p.Name+"="+string(p.Status.Phase)+"@"+p.Spec.NodeName)
			if done(p) {
				found = p
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no pod %q in %s reached the wanted state (saw %v): %v", selector, ns, seen, err)
	}
	return found
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func listening(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func writeExecutable(t *testing.T, path, body string) {
	t.Helper()
	writeFile(t, path, body)
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testWriter sends Options.Log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ptr[T any](v T) *T { return &v }
