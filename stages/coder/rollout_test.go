package coder

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
)

// TestUpgradeRollsOnAFullCoderdGroup upgrades the real coder chart from
// 2.35.2 to 2.36.1 on nodes shaped as the shipped coderd group (two
// m7i.xlarge, allocatable as the EKS AMI leaves it: 3920m CPU, so two
// 2-vCPU coderd pods never share a node), sampling the Deployment's ready
// replicas every 200ms.
//
//   - Without the post-renderer (Kubernetes' default strategy, maxSurge 1,
//     maxUnavailable 0 for two replicas) the surge pod stays Pending with
//     "Insufficient cpu" and helm's wait runs out: the stall `up` hit.
//   - With Strategies() the pods are replaced one at a time, the rollout
//     completes (every replica on the new image) and at least one replica
//     is Ready at every sample, also for a release an older coderctl
//     installed without a strategy (the upgrade's patch brings the
//     strategy and the new image together).
func TestUpgradeRollsOnAFullCoderdGroup(t *testing.T) {
	repo := chartrepo.Require(t)
	g := kubeground.Require(t)
	kc := g.Client()
	for _, tc := range []struct {
		name           string
		pool           string
		installedFixed bool // the 2.35.2 release was installed with Strategies()
		fixed          bool // the upgrade runs with Strategies()
		timeout        time.Duration
	}{
		{"default strategy stalls", "rollout-stall", false, false, 20 * time.Second},
		{"no surge rolls to completion", "rollout-fix", true, true, 2 * time.Minute},
		{"installed without a strategy, upgraded with it", "rollout-late", false, true, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			pool := tc.pool
			addCoderdGroup(ctx, t, kc, pool)
			helm, err := helmx.New(g.RESTConfig(), helmx.Options{CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			release := func(version string, timeout time.Duration, fixed bool) helmx.Release {
				values, _, err := unitStage(t).values("arn:aws:iam::123456789012:role/coder-prod-coder-secrets")
				if err != nil {
					t.Fatal(err)
				}
				coder := values["coder"].(map[string]any)
				coder["image"] = map[string]any{"tag": "v" + version}
				// This test's own nodes, so other tests' nodes give no room.
				coder["nodeSelector"] = map[string]any{"rollout-pool": pool}
				rel := helmx.Release{Name: ReleaseName, Namespace: pool, Values: values, Wait: true, Timeout: timeout,
					Chart: helmx.Chart{Name: ChartName, Repo: repo.ChartArchive(ChartName, version), Version: version}}
				if fixed {
					rel.Strategies, rel.RolledOut = Strategies(), []string{DeploymentName}
				}
				return rel
			}
			t.Cleanup(func() { _ = helm.Uninstall(context.Background(), ReleaseName, pool, false) })
			if _, _, err := helm.Apply(ctx, release("2.35.2", time.Minute, tc.installedFixed), nil); err != nil {
				t.Fatalf("install 2.35.2: %v", err)
			}

			stop := kubeground.SampleReadyReplicas(ctx, kc, pool, DeploymentName)
			_, _, err = helm.Apply(ctx, release("2.36.1", tc.timeout, tc.fixed), nil)
			ready := stop()
			samples, minReady := len(ready), int32(0)
			if samples > 0 {
				minReady = slices.Min(ready)
			}
			t.Logf("upgrade: %v; %d samples, fewest ready %d", err, samples, minReady)

			if !tc.fixed {
				if err == nil {
					t.Fatal("the upgrade with Kubernetes' default strategy completed; want helm's wait to run out on the unschedulable surge pod")
				}
				if why := unschedulable(ctx, t, kc, pool); !strings.Contains(why, "Insufficient cpu") {
					t.Errorf("pending pods: %q, want a coderd pod Pending for Insufficient cpu", why)
				}
				return
			}
			if err != nil {
				t.Fatalf("upgrade with the no-surge strategy: %v", err)
			}
			if samples < 5 || minReady < 1 {
				t.Errorf("ready replicas fell to %d over %d samples, want at least 1 throughout", minReady, samples)
			}
			dep, err := kc.AppsV1().Deployments(pool).Get(ctx, DeploymentName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if done, status := helmx.RolledOut(dep); !done {
				t.Errorf("after Apply: %s", status)
			}
			if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge.IntValue() != 0 || ru.MaxUnavailable.IntValue() != 1 {
				t.Errorf("strategy %+v, want maxSurge 0, maxUnavailable 1", dep.Spec.Strategy)
			}
			pods, err := kc.CoreV1().Pods(pool).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=coder"})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil && !strings.HasSuffix(p.Spec.Containers[0].Image, ":v2.36.1") {
					t.Errorf("pod %s runs %s after the rollout", p.Name, p.Spec.Containers[0].Image)
				}
			}
		})
	}
}

// addCoderdGroup adds the shipped coderd group's two nodes, built as
// eksnodes builds a managed group's (m7i.xlarge, 50 GiB, the coderd taint),
// labelled rollout-pool=pool, and removes them when the test ends.
func addCoderdGroup(ctx context.Context, t *testing.T, kc kubernetes.Interface, pool string) {
	t.Helper()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pool}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kc.CoreV1().Namespaces().Delete(context.Background(), pool, metav1.DeleteOptions{}) })
	group := &ekstypes.Nodegroup{NodegroupName: aws.String(pool), InstanceTypes: []string{"m7i.xlarge"}, DiskSize: aws.Int32(50),
		Labels: map[string]string{"coder/node-type": "coderd", "rollout-pool": pool},
		Taints: []ekstypes.Taint{{Key: aws.String("coder/node-type"), Value: aws.String("coderd"), Effect: ekstypes.TaintEffectNoSchedule}}}
	for i := range 2 {
		n, err := eksnodes.NodeTemplate(group, "us-west-2", fmt.Sprintf("us-west-2%c", 'a'+i))
		if err != nil {
			t.Fatal(err)
		}
		n.Name = fmt.Sprintf("%s-%d", pool, i)
		n.Labels[corev1.LabelHostname] = n.Name
		if _, err := kc.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kc.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}) })
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for i := range 2 {
			n, err := kc.CoreV1().Nodes().Get(ctx, fmt.Sprintf("%s-%d", pool, i), metav1.GetOptions{})
			if err != nil || !nodeSchedulable(n) {
				return false, nil //nolint:nilerr // not yet
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("coderd nodes of %s not Ready: %v", pool, err)
	}
}

func nodeSchedulable(n *corev1.Node) bool {
	for _, taint := range n.Spec.Taints {
		if taint.Key == corev1.TaintNodeNotReady {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// unschedulable is the scheduler's reason for each Pending pod in ns.
func unschedulable(ctx context.Context, t *testing.T, kc kubernetes.Interface, ns string) string {
	t.Helper()
	pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				out = append(out, p.Name+": "+c.Message)
			}
		}
	}
	return strings.Join(out, "; ")
}
