package autoscalesim

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want config
	}{
		{"chart defaults", []string{"./cluster-autoscaler", "--cloud-provider=aws", "--namespace=kube-system",
			"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/coder", "--v=4"},
			config{cloudProvider: "aws", discovery: [][]tagSpec{{{key: "k8s.io/cluster-autoscaler/enabled"}, {key: "k8s.io/cluster-autoscaler/coder"}}}}},
		{"tag values, explicit groups, balancing", []string{"/cluster-autoscaler", "--cloud-provider=aws",
			"--node-group-auto-discovery=asg:tag=team=platform", "--nodes=1:10:eks-abc", "--balance-similar-node-groups",
			"--balancing-ignore-label=a", "--balancing-ignore-label=b", "--max-nodes-total=50"},
			config{cloudProvider: "aws", discovery: [][]tagSpec{{{key: "team", value: "platform"}}},
				explicit: []explicitGroup{{name: "eks-abc", min: 1, max: 10}}, balance: true, ignoreLabels: []string{"a", "b"}, maxNodesTotal: 50}},
		{"balance off, other discovery kinds ignored, default provider", []string{"cluster-autoscaler", "--balance-similar-node-groups=false",
			"--node-group-auto-discovery=mig:namePrefix=x", "--nodes=bad"},
			config{cloudProvider: "gce"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parse(tc.argv)
			if got.cloudProvider != tc.want.cloudProvider || got.balance != tc.want.balance || got.maxNodesTotal != tc.want.maxNodesTotal ||
				!slices.Equal(got.ignoreLabels, tc.want.ignoreLabels) || !slices.Equal(got.explicit, tc.want.explicit) ||
				!slices.EqualFunc(got.discovery, tc.want.discovery, slices.Equal) {
				t.Errorf("parse = %+v, want %+v", *got, tc.want)
			}
		})
	}
}
