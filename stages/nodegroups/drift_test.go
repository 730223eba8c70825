package nodegroups

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
)

var coderd = config.NodeGroupSpec{
	Name: "coder-coderd", InstanceType: "m7i.xlarge", Min: 2, Max: 4, Desired: 2, VolumeSize: 50,
	Labels: map[string]string{"coder/node-type": "coderd"},
	Taints: []config.Taint{{Key: "coder/node-type", Value: "coderd", Effect: "NoSchedule"}},
}

func ekstaint(key, value string, effect ekstypes.TaintEffect) ekstypes.Taint {
	return ekstypes.Taint{Key: aws.String(key), Value: aws.String(value), Effect: effect}
}

// asCreated is the group as EKS reports it right after creation.
func asCreated() *ekstypes.Nodegroup {
	return &ekstypes.Nodegroup{
		NodegroupName: aws.String("coder-coderd"),
		InstanceTypes: []string{"m7i.xlarge"},
		AmiType:       ekstypes.AMITypesAl2023X8664Standard,
		ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(2), MaxSize: aws.Int32(4), DesiredSize: aws.Int32(2)},
		Labels:        map[string]string{"coder/node-type": "coderd"},
		Taints:        []ekstypes.Taint{ekstaint("coder/node-type", "coderd", ekstypes.TaintEffectNoSchedule)},
		NodeRole:      aws.String("arn:aws:iam::1:role/x-node"),
		Subnets:       []string{"subnet-b", "subnet-a"},
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name        string
		change      func(ng *ekstypes.Nodegroup)
		wantScaling []int32 // min, max, desired; nil = no scaling update
		wantAdd     map[string]string
		wantRemove  []string
		wantTaintAd []string
		wantTaintRm []string
		wantFixed   string
	}{
		{name: "as created", change: func(*ekstypes.Nodegroup) {}},
		{name: "label value changed", change: func(ng *ekstypes.Nodegroup) { ng.Labels["coder/node-type"] = "general" },
			wantAdd: map[string]string{"coder/node-type": "coderd"}},
		{name: "label added and configured one removed", change: func(ng *ekstypes.Nodegroup) {
			ng.Labels = map[string]string{"team": "a"}
		}, wantAdd: map[string]string{"coder/node-type": "coderd"}, wantRemove: []string{"team"}},
		{name: "taint removed", change: func(ng *ekstypes.Nodegroup) { ng.Taints = nil },
			wantTaintAd: []string{"coder/node-type=coderd:NO_SCHEDULE"}},
		{name: "taint value changed", change: func(ng *ekstypes.Nodegroup) {
			ng.Taints = []ekstypes.Taint{ekstaint("coder/node-type", "workspace", ekstypes.TaintEffectNoSchedule)}
		}, wantTaintAd: []string{"coder/node-type=coderd:NO_SCHEDULE"}},
		{name: "extra taint", change: func(ng *ekstypes.Nodegroup) {
			ng.Taints = append(ng.Taints, ekstaint("dedicated", "gpu", ekstypes.TaintEffectNoExecute))
		}, wantTaintRm: []string{"dedicated=gpu:NO_EXECUTE"}},
		{name: "max lowered, desired kept inside", change: func(ng *ekstypes.Nodegroup) { ng.ScalingConfig.MaxSize = aws.Int32(3) },
			wantScaling: []int32{2, 4, 2}},
		{name: "min and max moved, desired clamped into range", change: func(ng *ekstypes.Nodegroup) {
			ng.ScalingConfig = &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(5), MaxSize: aws.Int32(9), DesiredSize: aws.Int32(8)}
		}, wantScaling: []int32{2, 4, 4}},
		{name: "desired moved by the autoscaler within range", change: func(ng *ekstypes.Nodegroup) { ng.ScalingConfig.DesiredSize = aws.Int32(3) }},
		{name: "no scaling reported", change: func(ng *ekstypes.Nodegroup) { ng.ScalingConfig = nil },
			wantScaling: []int32{2, 4, 2}},
		{name: "instance type differs", change: func(ng *ekstypes.Nodegroup) { ng.InstanceTypes = []string{"m5.large"} },
			wantFixed: "instance type is m5.large, configured m7i.xlarge"},
		// The disk is in the launch template now (launchtemplate_test.go).
		{name: "AMI type differs", change: func(ng *ekstypes.Nodegroup) { ng.AmiType = ekstypes.AMITypesAl2023Arm64Standard },
			wantFixed: "AMI type is AL2023_ARM_64_STANDARD, amiFamily and instanceType ask for AL2023_x86_64_STANDARD"},
		{name: "subnets in another order are the same", change: func(ng *ekstypes.Nodegroup) { ng.Subnets = []string{"subnet-a", "subnet-b"} }},
		{name: "other subnets", change: func(ng *ekstypes.Nodegroup) { ng.Subnets = []string{"subnet-z"} },
			wantFixed: "subnets are subnet-z"},
	}
	w, err := wantOf(coderd)
	if err != nil {
		t.Fatal(err)
	}
	w.amiType = ekstypes.AMITypesAl2023X8664Standard // eksctl's for AmazonLinux2023 and m7i.xlarge
	p := placement{roleARN: "arn:aws:iam::1:role/x-node", subnets: []string{"subnet-a", "subnet-b"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ng := asCreated()
			tc.change(ng)
			d := diff(w, ng, p)

			var scaling []int32
			if d.scaling != nil {
				scaling = []int32{aws.ToInt32(d.scaling.MinSize), aws.ToInt32(d.scaling.MaxSize), aws.ToInt32(d.scaling.DesiredSize)}
			}
			if !slices.Equal(scaling, tc.wantScaling) {
				t.Errorf("scaling = %v, want %v", scaling, tc.wantScaling)
			}
			var add map[string]string
			var remove []string
			if d.labels != nil {
				add, remove = d.labels.AddOrUpdateLabels, d.labels.RemoveLabels
			}
			if !maps.Equal(add, tc.wantAdd) || !slices.Equal(remove, tc.wantRemove) {
				t.Errorf("labels add %v remove %v, want add %v remove %v", add, remove, tc.wantAdd, tc.wantRemove)
			}
			var tAdd, tRm []string
			if d.taints != nil {
				tAdd, tRm = taintList(d.taints.AddOrUpdateTaints), taintList(d.taints.RemoveTaints)
			}
			if !slices.Equal(tAdd, tc.wantTaintAd) || !slices.Equal(tRm, tc.wantTaintRm) {
				t.Errorf("taints add %v remove %v, want add %v remove %v", tAdd, tRm, tc.wantTaintAd, tc.wantTaintRm)
			}
			if d.any() != (tc.wantScaling != nil || tc.wantAdd != nil || tc.wantRemove != nil || tc.wantTaintAd != nil || tc.wantTaintRm != nil) {
				t.Errorf("any() = %v", d.any())
			}
			if d.any() && len(d.changes) == 0 {
				t.Error("drift without a readable change")
			}
			fixed := strings.Join(d.fixed, "; ")
			if (tc.wantFixed == "") != (fixed == "") || !strings.Contains(fixed, tc.wantFixed) {
				t.Errorf("fixed = %q, want %q", fixed, tc.wantFixed)
			}
		})
	}
}

func taintList(ts []ekstypes.Taint) []string {
	var out []string
	for _, t := range ts {
		out = append(out, taintString(t))
	}
	return out
}

func TestWantOfConvertsEffects(t *testing.T) {
	spec := coderd
	spec.Taints = []config.Taint{{Key: "a", Value: "1", Effect: "NoSchedule"}, {Key: "b", Value: "2", Effect: "PreferNoSchedule"}, {Key: "c", Value: "3", Effect: "NoExecute"}}
	w, err := wantOf(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := taintList(w.taints), []string{"a=1:NO_SCHEDULE", "b=2:PREFER_NO_SCHEDULE", "c=3:NO_EXECUTE"}; !slices.Equal(got, want) {
		t.Errorf("taints = %v, want %v", got, want)
	}
	spec.Taints = []config.Taint{{Key: "a", Value: "1", Effect: "NoScheduel"}}
	if _, err := wantOf(spec); err == nil {
		t.Error("a misspelt effect was accepted")
	}
}

func node(name string, labels map[string]string, taints ...corev1.Taint) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

func TestNodeCheck(t *testing.T) {
	labels := map[string]string{"coder/node-type": "coderd", LabelNodeGroup: "coder-coderd"}
	taint := corev1.Taint{Key: "coder/node-type", Value: "coderd", Effect: corev1.TaintEffectNoSchedule}
	system := config.NodeGroupSpec{Name: "system", Labels: map[string]string{"coder/node-type": "system"}}
	tests := []struct {
		name    string
		spec    config.NodeGroupSpec
		nodes   []corev1.Node
		desired int32
		status  engine.CheckStatus
		reason  []string
		hint    string
	}{
		{"all good", coderd, []corev1.Node{node("a", labels, taint), node("b", labels, taint)}, 2, engine.Pass,
			[]string{"2 nodes registered (2 Ready)", "coder/node-type=coderd:NoSchedule"}, ""},
		{"too few", coderd, []corev1.Node{node("a", labels, taint)}, 2, engine.Fail, []string{"1 of 2 nodes registered"}, "kubectl get nodes -l eks.amazonaws.com/nodegroup=coder-coderd"},
		{"taint lost", coderd, []corev1.Node{node("a", labels, taint), node("b", labels)}, 2, engine.Fail,
			[]string{"node b lacks taint coder/node-type=coderd:NoSchedule"}, "kubectl taint nodes b --overwrite coder/node-type=coderd:NoSchedule"},
		{"taint with another value", coderd, []corev1.Node{node("a", labels, corev1.Taint{Key: "coder/node-type", Value: "x", Effect: corev1.TaintEffectNoSchedule})}, 1, engine.Fail,
			[]string{"node a lacks taint"}, "coderctl stage nodegroups apply"},
		{"label lost", coderd, []corev1.Node{node("a", map[string]string{LabelNodeGroup: "coder-coderd"}, taint)}, 1, engine.Fail,
			[]string{"node a lacks label coder/node-type=coderd"}, "kubectl label node a --overwrite coder/node-type=coderd"},
		{"untainted group", system, []corev1.Node{node("s", map[string]string{"coder/node-type": "system"})}, 1, engine.Pass,
			[]string{"1 nodes registered", "coder/node-type=system"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := nodeCheck(tc.spec, tc.nodes, tc.desired)
			if c.Name != "nodes/"+tc.spec.Name || c.Status != tc.status {
				t.Fatalf("check = %+v, want %s %s", c, "nodes/"+tc.spec.Name, tc.status)
			}
			for _, r := range tc.reason {
				if !strings.Contains(c.Reason, r) {
					t.Errorf("reason %q lacks %q", c.Reason, r)
				}
			}
			if !strings.Contains(c.Hint, tc.hint) {
				t.Errorf("hint %q lacks %q", c.Hint, tc.hint)
			}
		})
	}
}
