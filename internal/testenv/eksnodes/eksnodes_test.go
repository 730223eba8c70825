package eksnodes_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is moto with a VPC, three subnets and an EKS cluster, and the
// shared kubeground.
type fixture struct {
	cfg     aws.Config
	eks     *eks.Client
	ec2     *ec2.Client
	kube    kubernetes.Interface
	cluster string
	subnets []string
}

func newFixture(t *testing.T, cluster string) *fixture {
	t.Helper()
	ctx := context.Background()
	srv := moto.Require(t)
	cfg, err := srv.AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cfg: cfg, eks: eks.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg), kube: kubeground.Require(t).Client(), cluster: cluster}
	vpc, err := f.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	// Created out of zone order: the nodes must still go a, b, c.
	for i, zone := range []string{"us-west-2c", "us-west-2a", "us-west-2b"} {
		sn, err := f.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(zone), CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i))})
		if err != nil {
			t.Fatal(err)
		}
		f.subnets = append(f.subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	if _, err := f.eks.CreateCluster(ctx, &eks.CreateClusterInput{
		Name: aws.String(cluster), RoleArn: aws.String("arn:aws:iam::123456789012:role/cluster"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: f.subnets},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.deleteFakeNodes(t) })
	return f
}

func (f *fixture) syncer() *eksnodes.Syncer {
	return &eksnodes.Syncer{EKS: f.eks, EC2: f.ec2, Kube: f.kube, Cluster: f.cluster}
}

func (f *fixture) createGroup(t *testing.T, name, instanceType string, desired int32, labels map[string]string, taints ...ekstypes.Taint) {
	t.Helper()
	if _, err := f.eks.CreateNodegroup(context.Background(), &eks.CreateNodegroupInput{
		ClusterName: aws.String(f.cluster), NodegroupName: aws.String(name),
		NodeRole: aws.String("arn:aws:iam::123456789012:role/node"), Subnets: f.subnets,
		InstanceTypes: []string{instanceType}, DiskSize: aws.Int32(50),
		ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(0), MaxSize: aws.Int32(10), DesiredSize: aws.Int32(desired)},
		Labels:        labels, Taints: taints,
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) scale(t *testing.T, group string, desired int32) {
	t.Helper()
	if _, err := f.eks.UpdateNodegroupConfig(context.Background(), &eks.UpdateNodegroupConfigInput{
		ClusterName: aws.String(f.cluster), NodegroupName: aws.String(group),
		ScalingConfig: &ekstypes.NodegroupScalingConfig{DesiredSize: aws.Int32(desired)},
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) deleteGroup(t *testing.T, group string) {
	t.Helper()
	if _, err := f.eks.DeleteNodegroup(context.Background(), &eks.DeleteNodegroupInput{ClusterName: aws.String(f.cluster), NodegroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
}

// nodes lists the cluster's fake nodes by name.
func (f *fixture) nodes(t *testing.T) map[string]corev1.Node {
	t.Helper()
	list, err := f.kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: eksnodes.LabelFake})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Node{}
	for _, n := range list.Items {
		if n.Annotations[eksnodes.AnnotationCluster] == f.cluster {
			out[n.Name] = n
		}
	}
	return out
}

func (f *fixture) deleteFakeNodes(t *testing.T) {
	for name := range f.nodes(t) {
		if err := f.kube.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: %v", err)
		}
	}
}

func names(m map[string]corev1.Node) []string { return slices.Sorted(maps.Keys(m)) }

var coderdTaint = ekstypes.Taint{Key: aws.String("coder/node-type"), Value: aws.String("coderd"), Effect: ekstypes.TaintEffectNoSchedule}

// TestSync: nodes per group with EKS's labels, the group's labels and
// taints, the instance type's size, spread over the subnets' zones; a
// second sync changes nothing; nodes follow scaling and deletion; nodes
// that are not this cluster's fakes are never touched.
func TestSync(t *testing.T) {
	f := newFixture(t, "sync-test")
	ctx := context.Background()
	f.createGroup(t, "system", "t3.medium", 3, map[string]string{"coder/node-type": "system"})
	f.createGroup(t, "coder-coderd", "m7i.xlarge", 2, map[string]string{"coder/node-type": "coderd"}, coderdTaint)
	bystanders := []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "sync-test-real", Annotations: map[string]string{eksnodes.AnnotationKwok: "fake"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system-0-other", Labels: map[string]string{eksnodes.LabelFake: "true"},
			Annotations: map[string]string{eksnodes.AnnotationKwok: "fake", eksnodes.AnnotationCluster: "another-cluster"}}},
	}
	for _, n := range bystanders {
		if _, err := f.kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.kube.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}) })
	}

	res, err := f.syncer().Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"coder-coderd-0", "coder-coderd-1", "system-0", "system-1", "system-2"}
	if !slices.Equal(res.Created, want) || len(res.Deleted) != 0 {
		t.Fatalf("first sync = %+v, want created %v", res, want)
	}
	nodes := f.nodes(t)
	if got := names(nodes); !slices.Equal(got, want) {
		t.Fatalf("nodes = %v, want %v", got, want)
	}

	t.Run("labels taints capacity zones", func(t *testing.T) {
		tests := []struct {
			// cpu is capacity, memory allocatable (TestResources works it out).
			node, group, instanceType, zone, nodeType, cpu, memory string
			tainted                                                bool
		}{
			{"system-0", "system", "t3.medium", "us-west-2a", "system", "2", "3554Mi", false},
			{"system-1", "system", "t3.medium", "us-west-2b", "system", "2", "3554Mi", false},
			{"system-2", "system", "t3.medium", "us-west-2c", "system", "2", "3554Mi", false},
			{"coder-coderd-0", "coder-coderd", "m7i.xlarge", "us-west-2a", "coderd", "4", "15391Mi", true},
			{"coder-coderd-1", "coder-coderd", "m7i.xlarge", "us-west-2b", "coderd", "4", "15391Mi", true},
		}
		for _, tc := range tests {
			n := nodes[tc.node]
			wantLabels := map[string]string{
				"eks.amazonaws.com/nodegroup":      tc.group,
				"eks.amazonaws.com/capacityType":   "ON_DEMAND",
				"node.kubernetes.io/instance-type": tc.instanceType,
				"topology.kubernetes.io/zone":      tc.zone,
				"topology.kubernetes.io/region":    "us-west-2",
				"coder/node-type":                  tc.nodeType,
				"kubernetes.io/hostname":           tc.node,
			}
			for k, v := range wantLabels {
				if n.Labels[k] != v {
					t.Errorf("%s label %s = %q, want %q", tc.node, k, n.Labels[k], v)
				}
			}
			var wantTaints []corev1.Taint
			if tc.tainted {
				wantTaints = []corev1.Taint{{Key: "coder/node-type", Value: "coderd", Effect: corev1.TaintEffectNoSchedule}}
			}
			// The node lifecycle controller's own taints (not-ready,
			// unreachable) come and go with kwok's heartbeats.
			taints := slices.DeleteFunc(slices.Clone(n.Spec.Taints), func(t corev1.Taint) bool { return strings.HasPrefix(t.Key, "node.kubernetes.io/") })
			if !slices.EqualFunc(taints, wantTaints, func(a, b corev1.Taint) bool { return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect }) {
				t.Errorf("%s taints = %v, want %v", tc.node, n.Spec.Taints, wantTaints)
			}
			if q := n.Status.Capacity[corev1.ResourceCPU]; q.Cmp(resource.MustParse(tc.cpu)) != 0 {
				t.Errorf("%s cpu = %s, want %s", tc.node, q.String(), tc.cpu)
			}
			if q := n.Status.Allocatable[corev1.ResourceMemory]; q.Cmp(resource.MustParse(tc.memory)) != 0 {
				t.Errorf("%s memory = %s, want %s", tc.node, q.String(), tc.memory)
			}
			if n.Annotations[eksnodes.AnnotationKwok] != "fake" || !readyNode(&n) {
				t.Errorf("%s: not a Ready kwok node (annotations %v)", tc.node, n.Annotations)
			}
		}
	})

	t.Run("idempotent and leaves existing nodes alone", func(t *testing.T) {
		n := nodes["coder-coderd-0"]
		n.Spec.Taints = nil
		if _, err := f.kube.CoreV1().Nodes().Update(ctx, &n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := f.syncer().Sync(ctx)
		if err != nil || len(res.Created)+len(res.Deleted) != 0 {
			t.Fatalf("second sync = %+v, %v; want no change", res, err)
		}
		if got := f.nodes(t)["coder-coderd-0"].Spec.Taints; len(got) != 0 {
			t.Errorf("sync re-added a taint someone removed: %v", got)
		}
	})

	t.Run("follows scaling", func(t *testing.T) {
		f.scale(t, "coder-coderd", 3)
		if res, err := f.syncer().Sync(ctx); err != nil || !slices.Equal(res.Created, []string{"coder-coderd-2"}) {
			t.Fatalf("scale up = %+v, %v", res, err)
		}
		f.scale(t, "coder-coderd", 1)
		if res, err := f.syncer().Sync(ctx); err != nil || !slices.Equal(res.Deleted, []string{"coder-coderd-1", "coder-coderd-2"}) {
			t.Fatalf("scale down = %+v, %v", res, err)
		}
	})

	t.Run("group and cluster deleted", func(t *testing.T) {
		f.deleteGroup(t, "system")
		if res, err := f.syncer().Sync(ctx); err != nil || !slices.Equal(res.Deleted, []string{"system-0", "system-1", "system-2"}) {
			t.Fatalf("after group deletion = %+v, %v", res, err)
		}
		f.deleteGroup(t, "coder-coderd")
		if _, err := f.eks.DeleteCluster(ctx, &eks.DeleteClusterInput{Name: aws.String(f.cluster)}); err != nil {
			t.Fatal(err)
		}
		if res, err := f.syncer().Sync(ctx); err != nil || !slices.Equal(res.Deleted, []string{"coder-coderd-0"}) {
			t.Fatalf("after cluster deletion = %+v, %v", res, err)
		}
		if got := f.nodes(t); len(got) != 0 {
			t.Errorf("fake nodes left: %v", names(got))
		}
		for _, n := range bystanders {
			if _, err := f.kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err != nil {
				t.Errorf("bystander node %s: %v", n.Name, err)
			}
		}
	})
}

// TestWatch: nodes appear while Watch runs in the background, as node
// groups are created, and Watch returns when its context ends.
func TestWatch(t *testing.T) {
	f := newFixture(t, "watch-test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	errs := make(chan error, 100)
	go func() {
		defer close(done)
		eksnodes.Watch(ctx, f.eks, f.ec2, f.cluster, f.kube, 50*time.Millisecond, func(err error) {
			select {
			case errs <- err:
			default:
			}
		})
	}()
	defer func() {
		cancel()
		<-done
	}()

	f.createGroup(t, "coder-provisioner", "c7i.2xlarge", 2, map[string]string{"coder/node-type": "provisioner"})
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return len(f.nodes(t)) == 2, nil
	})
	if err != nil {
		t.Fatalf("nodes did not appear: have %v", names(f.nodes(t)))
	}
	if n := f.nodes(t)["coder-provisioner-1"]; n.Status.Capacity.Cpu().Value() != 8 {
		t.Errorf("coder-provisioner-1 cpu = %v, want 8", n.Status.Capacity.Cpu())
	}

	cancel()
	select {
	case <-done:
	case <-time.After(35 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
	select {
	case err := <-errs:
		t.Errorf("Watch reported %v", err)
	default:
	}
}

func readyNode(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestAutoScalingGroups: with an Auto Scaling client, each node group gets
// the Auto Scaling group moto names in resources.autoScalingGroups, readable
// through the autoscaling API with EKS's discovery tags and the group's
// sizes; resizing and deleting the node group follow; another cluster's
// groups are not touched.
func TestAutoScalingGroups(t *testing.T) {
	f := newFixture(t, "asg-test")
	ctx := context.Background()
	asc := autoscaling.NewFromConfig(f.cfg)
	s := f.syncer()
	s.AutoScaling = asc
	f.createGroup(t, "workspaces", "m7i.xlarge", 2, map[string]string{"coder/node-type": "workspace"})
	f.createGroup(t, "fixed", "t3.medium", 1, nil)
	res, err := s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	asgName := func(group string) string {
		d, err := f.eks.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(f.cluster), NodegroupName: aws.String(group)})
		if err != nil {
			t.Fatal(err)
		}
		return eksnodes.ASGName(d.Nodegroup)
	}
	ws, fixed := asgName("workspaces"), asgName("fixed")
	if ws == "" || fixed == "" {
		t.Fatalf("moto reports no auto scaling group names (%q, %q)", ws, fixed)
	}
	if want := []string{ws, fixed}; !slices.Equal(slices.Sorted(slices.Values(res.ASGCreated)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("created ASGs %v, want %v", res.ASGCreated, want)
	}
	describe := func(filters ...astypes.Filter) map[string]astypes.AutoScalingGroup {
		out, err := asc.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]astypes.AutoScalingGroup{}
		for _, g := range out.AutoScalingGroups {
			m[aws.ToString(g.AutoScalingGroupName)] = g
		}
		return m
	}
	// Found by the discovery tags, as the autoscaler and coderctl's verify look them up.
	byTags := describe(
		astypes.Filter{Name: aws.String("tag-key"), Values: []string{"k8s.io/cluster-autoscaler/enabled"}},
		astypes.Filter{Name: aws.String("tag-key"), Values: []string{"k8s.io/cluster-autoscaler/asg-test"}},
	)
	g, ok := byTags[ws]
	if !ok || len(byTags) != 2 {
		t.Fatalf("groups found by discovery tags: %v, want %s and %s", slices.Collect(maps.Keys(byTags)), ws, fixed)
	}
	wantTags := map[string]string{
		"k8s.io/cluster-autoscaler/enabled": "true", "k8s.io/cluster-autoscaler/asg-test": "owned",
		"eks:cluster-name": "asg-test", "eks:nodegroup-name": "workspaces",
	}
	for k, v := range wantTags {
		found := false
		for _, tag := range g.Tags {
			found = found || (aws.ToString(tag.Key) == k && aws.ToString(tag.Value) == v)
		}
		if !found {
			t.Errorf("ASG %s lacks tag %s=%s (tags %v)", ws, k, v, g.Tags)
		}
	}
	if aws.ToInt32(g.MinSize) != 0 || aws.ToInt32(g.MaxSize) != 10 || aws.ToInt32(g.DesiredCapacity) != 2 {
		t.Errorf("ASG sizes %d/%d/%d, want 0/10/2", aws.ToInt32(g.MinSize), aws.ToInt32(g.MaxSize), aws.ToInt32(g.DesiredCapacity))
	}
	if other := describe(astypes.Filter{Name: aws.String("tag-key"), Values: []string{"k8s.io/cluster-autoscaler/another"}}); len(other) != 0 {
		t.Errorf("another cluster's discovery tag finds %v", slices.Collect(maps.Keys(other)))
	}

	f.scale(t, "workspaces", 4)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if g := describe()[ws]; aws.ToInt32(g.DesiredCapacity) != 4 {
		t.Errorf("after scaling the node group to 4, ASG desired = %d", aws.ToInt32(g.DesiredCapacity))
	}

	f.deleteGroup(t, "workspaces")
	res, err = s.Sync(ctx)
	if err != nil || !slices.Equal(res.ASGDeleted, []string{ws}) {
		t.Fatalf("after deleting the node group: %+v, %v; want %s deleted", res, err, ws)
	}
	left := describe()
	if _, ok := left[ws]; ok {
		t.Errorf("ASG %s still exists", ws)
	}
	if _, ok := left[fixed]; !ok {
		t.Errorf("ASG %s of the remaining node group was deleted", fixed)
	}
	f.deleteGroup(t, "fixed")
	if res, err := s.Sync(ctx); err != nil || !slices.Equal(res.ASGDeleted, []string{fixed}) {
		t.Fatalf("after deleting the last node group: %+v, %v", res, err)
	}
}

// TestAutoScalingGroupWithUnknownSubnets: a node group whose subnets moto
// does not know (tests that make them up) still gets its Auto Scaling
// group, placed by zone.
func TestAutoScalingGroupWithUnknownSubnets(t *testing.T) {
	f := newFixture(t, "asg-subnets")
	ctx := context.Background()
	if _, err := f.eks.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String(f.cluster), NodegroupName: aws.String("made-up"),
		NodeRole: aws.String("arn:aws:iam::123456789012:role/node"), Subnets: []string{"subnet-made-up"},
		ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredSize: aws.Int32(1)},
	}); err != nil {
		t.Fatal(err)
	}
	s := f.syncer()
	s.AutoScaling = autoscaling.NewFromConfig(f.cfg)
	res, err := s.Sync(ctx)
	if err != nil || len(res.ASGCreated) != 1 {
		t.Fatalf("sync = %+v, %v; want one ASG created", res, err)
	}
	out, err := s.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: res.ASGCreated})
	if err != nil || len(out.AutoScalingGroups) != 1 || len(out.AutoScalingGroups[0].AvailabilityZones) == 0 {
		t.Fatalf("ASG %v, %v; want one placed by zone", out, err)
	}
}
