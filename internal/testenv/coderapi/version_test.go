package coderapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/coderctl/coderctl/internal/testenv/kubeground"
)

// TestBuildInfoFollowsCoderdPods: the double reports the version of the
// image its Ready coderd pods run, not Options.Version: before any pod,
// Options.Version; with pods of one image, that image's tag (with the build
// suffix); during a rollout (two images Ready) each in turn, as the load
// balancer would; a provisioner pod's image never counts.
func TestBuildInfoFollowsCoderdPods(t *testing.T) {
	g := kubeground.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := g.Client()
	if err := g.AddNode(ctx, kubeground.NodeSpec{Name: "coderapi-coderd-0"}); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(ctx, t, kube, "coderapi-version")
	s := Require(t, Options{Kube: kube, Namespace: ns, Version: "v2.35.2+abcdef0"})

	versions := func(n int) map[string]bool {
		out := map[string]bool{}
		for range n {
			var bi buildInfo
			expect(t, s, "GET", "/api/v2/buildinfo", "", nil, http.StatusOK, &bi)
			out[bi.Version] = true
		}
		return out
	}
	runPod := func(name, image string, labels map[string]string) {
		t.Helper()
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "coder", Image: image}}}}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && podReady(p), nil
		}); err != nil {
			t.Fatalf("pod %s not Ready: %v", name, err)
		}
	}
	coderd := map[string]string{"app.kubernetes.io/name": "coder", "app.kubernetes.io/instance": "coder"}

	steps := []struct {
		what string
		do   func()
		want []string
	}{
		{"no coderd pod", func() {}, []string{"v2.35.2+abcdef0"}},
		{"a provisioner pod of another image does not count",
			func() {
				runPod("prov", "ghcr.io/coder/coder:v2.99.0", map[string]string{"app.kubernetes.io/name": "coder-provisioner"})
			}, []string{"v2.35.2+abcdef0"}},
		{"coderd on the new image", func() { runPod("coder-new", "ghcr.io/coder/coder:v2.36.1", coderd) }, []string{"v2.36.1+abcdef0"}},
		{"mid-rollout: old and new Ready", func() { runPod("coder-old", "ghcr.io/coder/coder:v2.35.2", coderd) },
			[]string{"v2.35.2+abcdef0", "v2.36.1+abcdef0"}},
	}
	for _, st := range steps {
		st.do()
		got := versions(6)
		if len(got) != len(st.want) {
			t.Errorf("%s: versions %v, want %v", st.what, got, st.want)
			continue
		}
		for _, v := range st.want {
			if !got[v] {
				t.Errorf("%s: versions %v, want %v", st.what, got, st.want)
			}
		}
	}
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"ghcr.io/coder/coder:v2.36.1":         "v2.36.1",
		"localhost:5000/coder":                "",
		"localhost:5000/coder:2.35.2":         "2.35.2",
		"ghcr.io/coder/coder@sha256:0123abcd": "",
		"coder":                               "",
	} {
		if got := imageTag(image); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", image, got, want)
		}
	}
}
