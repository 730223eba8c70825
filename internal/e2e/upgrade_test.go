package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/ground"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/stages/coder"
	"github.com/coderctl/coderctl/stages/provisioners"
)

// TestCoderUpgrade deploys Coder 2.35.2 with the real charts on the shipped
// cluster-config.yaml (coderd: two m7i.xlarge, their allocatable as the EKS
// AMI leaves it, so a third coderd pod fits nowhere), then raises
// CODER_VERSION to 2.36.1: plan names the version change and the rollout,
// up rolls coderd and the provisioners to completion while a sampler reads
// the coderd Deployment's ready replicas every 200ms (never zero), and
// verify finds the API double reporting the version the pods now run.
func TestCoderUpgrade(t *testing.T) {
	w := newWorldAt(t, "2.35.2")
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if r := w.run("up", "--yes", "-o", "json"); r.code != 0 {
		t.Fatalf("up 2.35.2: exit %d\n%s\n%s", r.code, r.stderr, tail(r.stdout, 15))
	}
	assertImages(t, kc, "v2.35.2")
	if r := w.run("verify"); r.code != 0 || !strings.Contains(r.stdout, "coderd reports v2.35.2") {
		t.Fatalf("verify at 2.35.2: exit %d\n%s", r.code, tail(r.stdout, 30))
	}

	if r := w.run("state", "set", "CODER_VERSION=2.36.1"); r.code != 0 {
		t.Fatalf("state set: %d %s", r.code, r.stderr)
	}
	r := w.run("plan")
	if r.code != 0 {
		t.Fatalf("plan: exit %d: %s", r.code, r.stderr)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "helm release") {
			t.Logf("plan: %s", strings.TrimSpace(line))
		}
	}
	for _, want := range []string{"Coder v2.35.2 -> v2.36.1", "maxSurge 0, maxUnavailable 1", "at least 1 Ready throughout",
		"each replaced daemon finishes its running build first"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not say %q:\n%s", want, r.stdout)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := kubeground.SampleReadyReplicas(ctx, kc, names.CoderNamespace, coder.DeploymentName)
	start := time.Now()
	r = w.run("up", "--yes", "-o", "json")
	samples := stop()
	t.Logf("upgrade up took %s; ready coderd replicas every 200ms: %s", time.Since(start).Round(time.Millisecond), runs(samples))
	if r.code != 0 {
		t.Fatalf("up 2.36.1: exit %d\n%s\n%s", r.code, r.stderr, tail(r.stdout, 20))
	}
	if len(samples) < 5 {
		t.Errorf("only %d readiness samples: the sampler did not watch the rollout", len(samples))
	}
	for i, n := range samples {
		if n == 0 {
			t.Errorf("sample %d of %d: no coderd replica Ready (samples %v)", i, len(samples), samples)
			break
		}
	}
	for _, name := range []string{coder.DeploymentName, provisioners.ChartName} {
		dep, err := kc.AppsV1().Deployments(names.CoderNamespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if done, status := helmx.RolledOut(dep); !done {
			t.Errorf("after up: %s", status)
		}
	}
	assertImages(t, kc, "v2.36.1")
	if r := w.run("verify"); r.code != 0 || !strings.Contains(r.stdout, "coderd reports v2.36.1") {
		t.Errorf("verify at 2.36.1: exit %d\n%s", r.code, tail(r.stdout, 30))
	}

	// Going back is refused before anything changes: Coder's migrations
	// only go forward.
	if r := w.run("state", "set", "CODER_VERSION=2.35.2"); r.code != 0 {
		t.Fatalf("state set: %d %s", r.code, r.stderr)
	}
	before := w.stateValues()
	for _, args := range [][]string{{"plan"}, {"up", "--yes"}} {
		r := w.run(args...)
		if r.code != 2 || !strings.Contains(r.stderr, "CODER_VERSION") || !strings.Contains(r.stderr, "2.35.2 is lower than") ||
			!strings.Contains(r.stderr, "--allow-downgrade") {
			t.Errorf("%v with a lower CODER_VERSION: exit %d, want 2 naming CODER_VERSION\n%s", args, r.code, r.stderr)
		}
	}
	if after := w.stateValues(); after["STAGE_CODER_APPLIED_AT"] != before["STAGE_CODER_APPLIED_AT"] {
		t.Error("the refused downgrade changed the state file")
	}
	assertImages(t, kc, "v2.36.1")
}

// newWorldAt is newWorld with the ground (its chart repository's default
// and the API double's fallback) at Coder version.
func newWorldAt(t *testing.T, version string) *world {
	t.Helper()
	p := awsproxy.Instant()
	g, err := ground.Start(context.Background(), ground.Options{
		WorkDir: t.TempDir(), Profile: &p, Cluster: "coder-prod", Region: "us-west-2", CoderVersion: version,
	})
	if err != nil {
		t.Fatalf("proving ground: %v", err)
	}
	t.Cleanup(g.Stop)
	w := &world{t: t, g: g, dir: t.TempDir()}
	if r := w.run(append([]string{"init", "CODER_DOMAIN=coder.e2e.example", "USERS=50"}, g.InitArgs()...)...); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	return w
}

// assertImages: every live coderd and provisioner pod runs Coder tag.
func assertImages(t *testing.T, kc kubernetes.Interface, tag string) {
	t.Helper()
	for _, selector := range []string{"app.kubernetes.io/name=coder", "app.kubernetes.io/name=coder-provisioner"} {
		pods, err := kc.CoreV1().Pods(names.CoderNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			t.Errorf("no pods %s", selector)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && !strings.HasSuffix(p.Spec.Containers[0].Image, ":"+tag) {
				t.Errorf("pod %s runs %s, want tag %s", p.Name, p.Spec.Containers[0].Image, tag)
			}
		}
	}
}

// runs writes samples run-length encoded: "2×10 1×3 2×31".
func runs(samples []int32) string {
	var out []string
	for i := 0; i < len(samples); {
		j := i
		for j < len(samples) && samples[j] == samples[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%d×%d", samples[i], j-i))
		i = j
	}
	return strings.Join(out, " ")
}
