package autoscalesim_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/autoscalesim"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is moto with a VPC and an EKS cluster, the shared kubeground with
// eksnodes keeping nodes and Auto Scaling groups, and a namespace.
type world struct {
	t       *testing.T
	eks     *eks.Client
	asg     *autoscaling.Client
	kube    kubernetes.Interface
	nodes   *eksnodes.Syncer
	cluster string
	subnets []string
	ns      string
	prefix  string // of this world's node group names and node-type labels
}

var worlds int

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	cfg, err := moto.Require(t).AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	worlds++
	w := &world{
		t: t, eks: eks.NewFromConfig(cfg), asg: autoscaling.NewFromConfig(cfg), kube: kubeground.Require(t).Client(),
		cluster: "coder", prefix: fmt.Sprintf("w%d-", worlds),
	}
	ec2c := ec2.NewFromConfig(cfg)
	w.nodes = &eksnodes.Syncer{EKS: w.eks, EC2: ec2c, AutoScaling: w.asg, Kube: w.kube, Cluster: w.cluster}
	vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	for i, zone := range []string{"us-west-2a", "us-west-2b"} {
		sn, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(zone), CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i))})
		if err != nil {
			t.Fatal(err)
		}
		w.subnets = append(w.subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	if _, err := w.eks.CreateCluster(ctx, &eks.CreateClusterInput{
		Name: aws.String(w.cluster), RoleArn: aws.String("arn:aws:iam::123456789012:role/cluster"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: w.subnets},
	}); err != nil {
		t.Fatal(err)
	}
	ns, err := w.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "autoscalesim-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.ns = ns.Name
	t.Cleanup(func() {
		ctx := context.Background()
		_ = w.kube.CoreV1().Namespaces().Delete(ctx, w.ns, metav1.DeleteOptions{})
		list, _ := w.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: eksnodes.LabelFake})
		for _, n := range list.Items {
			if strings.HasPrefix(n.Name, w.prefix) {
				_ = w.kube.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
			}
		}
	})
	// A fixed system group for the autoscaler itself.
	w.group("system", "t3.medium", 1, 1, 1, false)
	return w
}

// group creates a node group; tainted groups taint their nodes with their
// node type, as the shipped cluster-config does for workspaces.
func (w *world) group(name, instanceType string, minSize, desired, maxSize int32, tainted bool) {
	w.t.Helper()
	in := &eks.CreateNodegroupInput{
		ClusterName: aws.String(w.cluster), NodegroupName: aws.String(w.prefix + name),
		NodeRole: aws.String("arn:aws:iam::123456789012:role/node"), Subnets: w.subnets,
		InstanceTypes: []string{instanceType},
		ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(minSize), MaxSize: aws.Int32(maxSize), DesiredSize: aws.Int32(desired)},
		Labels:        map[string]string{"coder/node-type": w.nodeType(name)},
	}
	if tainted {
		in.Taints = []ekstypes.Taint{{Key: aws.String("coder/node-type"), Value: aws.String(w.nodeType(name)), Effect: ekstypes.TaintEffectNoSchedule}}
	}
	if _, err := w.eks.CreateNodegroup(context.Background(), in); err != nil {
		w.t.Fatal(err)
	}
}

// nodeType is the coder/node-type label of a group: the group name without
// a -a/-b suffix, so similar groups share it.
func (w *world) nodeType(group string) string {
	return w.prefix + strings.TrimSuffix(strings.TrimSuffix(group, "-a"), "-b")
}

func (w *world) desired(group string) int32 {
	w.t.Helper()
	d, err := w.eks.DescribeNodegroup(context.Background(), &eks.DescribeNodegroupInput{ClusterName: aws.String(w.cluster), NodegroupName: aws.String(w.prefix + group)})
	if err != nil {
		w.t.Fatal(err)
	}
	return aws.ToInt32(d.Nodegroup.ScalingConfig.DesiredSize)
}

// installAutoscaler creates the ServiceAccount and Deployment the
// cluster-autoscaler chart stand-in renders for values, in the world's
// namespace, on the system node.
func (w *world) installAutoscaler(values map[string]any) {
	w.t.Helper()
	r := chartrepo.Require(w.t)
	m, err := chartrepo.Render(r.ChartDir("cluster-autoscaler"), "cluster-autoscaler", w.ns, values)
	if err != nil {
		w.t.Fatal(err)
	}
	var sa corev1.ServiceAccount
	if err := m.Decode("ServiceAccount/cluster-autoscaler", &sa); err != nil {
		w.t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := m.Decode("Deployment/cluster-autoscaler-aws-cluster-autoscaler", &d); err != nil {
		w.t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := w.kube.CoreV1().ServiceAccounts(w.ns).Create(ctx, &sa, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.kube.AppsV1().Deployments(w.ns).Create(ctx, &d, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// autoscalerValues are the values the autoscaler stage sets, aimed at the
// world's cluster and system nodes.
func (w *world) autoscalerValues(extraArgs map[string]any) map[string]any {
	return map[string]any{
		"awsRegion":     "us-west-2",
		"autoDiscovery": map[string]any{"clusterName": w.cluster},
		"rbac":          map[string]any{"serviceAccount": map[string]any{"name": "cluster-autoscaler"}},
		"extraArgs":     extraArgs,
		"nodeSelector":  map[string]any{"coder/node-type": w.nodeType("system")},
	}
}

// workspaces creates n pods of 1.5 CPU and 2Gi for a tainted group's nodes
// (two fit on an m7i.xlarge).
func (w *world) workspaces(group string, n int) {
	w.t.Helper()
	for i := range n {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ws-%d", i),
				Annotations: map[string]string{autoscalesim.AnnotationSafeToEvict: "false"}},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"coder/node-type": w.nodeType(group)},
				Tolerations:  []corev1.Toleration{{Key: "coder/node-type", Operator: corev1.TolerationOpEqual, Value: w.nodeType(group), Effect: corev1.TaintEffectNoSchedule}},
				Containers: []corev1.Container{{Name: "c", Image: "fake", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("2Gi")}}}},
			},
		}
		if _, err := w.kube.CoreV1().Pods(w.ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// placed counts the world's workspace pods that have a node.
func (w *world) placed() (scheduled, pending int) {
	w.t.Helper()
	list, err := w.kube.CoreV1().Pods(w.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, p := range list.Items {
		if !strings.HasPrefix(p.Name, "ws-") {
			continue
		}
		if p.Spec.NodeName != "" {
			scheduled++
		} else {
			pending++
		}
	}
	return scheduled, pending
}

// waitPlaced waits (a bounded while) until want workspace pods have a
// node, and returns the counts then.
func (w *world) waitPlaced(want int) (scheduled, pending int) {
	w.t.Helper()
	for range 100 {
		if scheduled, pending = w.placed(); scheduled >= want {
			return scheduled, pending
		}
		time.Sleep(200 * time.Millisecond)
	}
	return scheduled, pending
}

// run alternates autoscaler steps and node syncs, as the ground runs them,
// until the pods have settled (no pod is waiting for a node that is coming)
// for a few rounds in a row, and returns every scale-up made.
func (w *world) run(a *autoscalesim.Autoscaler) (ups []autoscalesim.Scale, last autoscalesim.Result) {
	w.t.Helper()
	ctx := context.Background()
	settled := 0
	for round := 0; round < 150 && settled < 5; round++ {
		res, err := a.Step(ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		ups = append(ups, res.ScaledUp...)
		last = res
		if _, err := w.nodes.Sync(ctx); err != nil {
			w.t.Fatal(err)
		}
		if len(res.ScaledUp) == 0 && len(res.Waiting) == 0 {
			settled++
		} else {
			settled = 0
		}
		time.Sleep(100 * time.Millisecond) // let the scheduler place pods on new nodes
	}
	return ups, last
}

func (w *world) autoscaler() *autoscalesim.Autoscaler {
	return autoscalesim.New(autoscalesim.Options{Kube: w.kube, EKS: w.eks, AutoScaling: w.asg, Namespace: w.ns})
}

// waitActive steps until the autoscaler Deployment is Ready.
func (w *world) waitActive(a *autoscalesim.Autoscaler) {
	w.t.Helper()
	for range 100 {
		if _, err := w.nodes.Sync(context.Background()); err != nil {
			w.t.Fatal(err)
		}
		res, err := a.Step(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		if res.Autoscaler != "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Fatal("the autoscaler Deployment never became Ready")
}

func (w *world) events(reason string) []corev1.Event {
	w.t.Helper()
	list, err := w.kube.CoreV1().Events(w.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// TestScaleUp: unschedulable workspace pods get nodes from their group up to
// its maxSize and no further; nothing happens without a Ready autoscaler or
// for groups it does not discover or may not grow.
func TestScaleUp(t *testing.T) {
	tests := []struct {
		name         string
		autoscaler   bool
		values       func(w *world) map[string]any
		min, max     int32
		pods         int
		wantDesired  int32
		wantPending  int
		wantNoScale  bool   // a NotTriggerScaleUp event is expected
		wantNoReason string // ... saying this
	}{
		{name: "grows to fit", autoscaler: true, min: 1, max: 6, pods: 6, wantDesired: 3},
		{name: "stops at max", autoscaler: true, min: 1, max: 3, pods: 9, wantDesired: 3, wantPending: 3, wantNoScale: true, wantNoReason: "max node group size reached"},
		{name: "fixed-size group is left alone", autoscaler: true, min: 1, max: 1, pods: 4, wantDesired: 1, wantPending: 2, wantNoScale: true, wantNoReason: "max node group size reached"},
		{name: "no autoscaler", autoscaler: false, min: 1, max: 6, pods: 4, wantDesired: 1, wantPending: 2},
		{name: "discovery tags of another cluster", autoscaler: true, min: 1, max: 6, pods: 4, wantDesired: 1, wantPending: 2, wantNoScale: true, wantNoReason: "no node groups discovered",
			values: func(w *world) map[string]any {
				v := w.autoscalerValues(nil)
				v["autoDiscovery"] = map[string]any{"clusterName": "another"}
				return v
			}},
		{name: "autoscaler in another region", autoscaler: true, min: 1, max: 6, pods: 4, wantDesired: 1, wantPending: 2, wantNoScale: true, wantNoReason: "no node groups discovered",
			values: func(w *world) map[string]any {
				v := w.autoscalerValues(nil)
				v["awsRegion"] = "eu-west-1"
				return v
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.group("workspace", "m7i.xlarge", tc.min, 1, tc.max, true)
			a := w.autoscaler()
			if tc.autoscaler {
				values := w.autoscalerValues(map[string]any{"balance-similar-node-groups": true})
				if tc.values != nil {
					values = tc.values(w)
				}
				w.installAutoscaler(values)
				w.waitActive(a)
			}
			if _, err := w.nodes.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			w.workspaces("workspace", tc.pods)
			ups, last := w.run(a)
			if got := w.desired("workspace"); got != tc.wantDesired {
				t.Errorf("desired size %d, want %d (scale-ups %+v)", got, tc.wantDesired, ups)
			}
			scheduled, pending := w.waitPlaced(tc.pods - tc.wantPending)
			if pending != tc.wantPending || scheduled != tc.pods-tc.wantPending {
				t.Errorf("%d pods scheduled, %d pending; want %d pending (last step %+v)", scheduled, pending, tc.wantPending, last)
			}
			for _, up := range ups {
				if up.To > tc.max || up.Nodegroup != w.prefix+"workspace" {
					t.Errorf("scale-up %+v beyond max %d or of another group", up, tc.max)
				}
			}
			noScale := w.events(autoscalesim.EventNotTriggerScaleUp)
			if tc.wantNoScale != (len(noScale) > 0) {
				t.Errorf("NotTriggerScaleUp events %v, want some: %v", noScale, tc.wantNoScale)
			}
			for _, e := range noScale {
				if !strings.Contains(e.Message, tc.wantNoReason) {
					t.Errorf("event %q does not say %q", e.Message, tc.wantNoReason)
				}
			}
			if tc.wantDesired > 1 && len(w.events(autoscalesim.EventTriggeredScaleUp)) == 0 {
				t.Error("no TriggeredScaleUp event on the pods that got nodes")
			}
		})
	}
}

// TestBalanceSimilarGroups: with --balance-similar-node-groups, new nodes
// are spread over groups that differ only by name (one per zone); without
// it, they go to one group.
func TestBalanceSimilarGroups(t *testing.T) {
	for _, balance := range []bool{true, false} {
		t.Run(fmt.Sprintf("balance=%v", balance), func(t *testing.T) {
			w := newWorld(t)
			w.group("workspace-a", "m7i.xlarge", 0, 0, 5, true)
			w.group("workspace-b", "m7i.xlarge", 0, 0, 5, true)
			a := w.autoscaler()
			w.installAutoscaler(w.autoscalerValues(map[string]any{"balance-similar-node-groups": balance}))
			w.waitActive(a)
			w.workspaces("workspace-a", 8) // four nodes' worth; the label is shared by both groups
			w.run(a)
			got := []int32{w.desired("workspace-a"), w.desired("workspace-b")}
			want := []int32{2, 2}
			if !balance {
				want = []int32{4, 0}
			}
			if !slices.Equal(got, want) {
				t.Errorf("desired sizes %v, want %v", got, want)
			}
			if scheduled, pending := w.waitPlaced(8); scheduled != 8 || pending != 0 {
				t.Errorf("%d scheduled, %d pending", scheduled, pending)
			}
		})
	}
}

// TestStartStops: Start runs steps in the background until stop.
func TestStartStops(t *testing.T) {
	w := newWorld(t)
	w.group("workspace", "m7i.xlarge", 1, 1, 4, true)
	w.installAutoscaler(w.autoscalerValues(nil))
	w.waitActive(w.autoscaler())
	var errs []error
	stop := autoscalesim.Start(context.Background(), autoscalesim.Options{Kube: w.kube, EKS: w.eks, AutoScaling: w.asg, Namespace: w.ns,
		Interval: 100 * time.Millisecond, OnError: func(err error) { errs = append(errs, err) }})
	w.workspaces("workspace", 4)
	ok := false
	for range 150 {
		if w.desired("workspace") == 2 {
			ok = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if !ok {
		t.Fatalf("background autoscaler did not grow the group (desired %d)", w.desired("workspace"))
	}
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}
