package provisioners

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/coderctl/coderctl/internal/sizing"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func provisionerNode(name, cpu, mem string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{sizing.NodeTypeLabel: sizing.RoleProvisioner}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}},
	}
}

// TestMustFit: with nothing to grow the shipped group (AUTOSCALER=none: its
// desiredCapacity, 2 × c7i.2xlarge, 14 pods) and 500 users (40
// provisioners), the release fails at once unless the nodes in the cluster
// already hold them; a group that can grow enough is fine.
func TestMustFit(t *testing.T) {
	env := stagetest.New(t, map[string]string{"CODER_DOMAIN": "coder.example.com", "USERS": "500", "AUTOSCALER": "none"})
	s := &stage{d: env.Deps}
	tests := []struct {
		name    string
		nodes   []*corev1.Node
		wantErr string
	}{
		{"one small node: can never fit", []*corev1.Node{provisionerNode("p-1", "8", "16Gi")}, "holds 14 provisioner pods"},
		{"no provisioner nodes at all", nil, "the provisioner nodes in the cluster hold 0"},
		{"big nodes already hold them", []*corev1.Node{provisionerNode("p-1", "32", "64Gi"), provisionerNode("p-2", "32", "64Gi")}, ""},
		{"memory is the bound", []*corev1.Node{provisionerNode("p-1", "64", "8Gi")}, "hold 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc := fake.NewSimpleClientset()
			for _, n := range tt.nodes {
				if _, err := kc.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			err := s.mustFit(context.Background(), kc)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("mustFit = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("mustFit = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
