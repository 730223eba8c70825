package kubeground

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNodeObject(t *testing.T) {
	taint := corev1.Taint{Key: "coder/node-type", Value: "coderd", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name             string
		spec             NodeSpec
		wantCPU, wantMem string
		wantLabels       map[string]string
		wantErr          string
	}{
		{
			name:       "defaults",
			spec:       NodeSpec{Name: "n1"},
			wantCPU:    "4",
			wantMem:    "16Gi",
			wantLabels: map[string]string{"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "type": "kwok"},
		},
		{
			name:       "caller labels win and taints are kept",
			spec:       NodeSpec{Name: "n2", CPU: "3500m", Memory: "7Gi", Labels: map[string]string{"coder/node-type": "coderd", "type": "mine"}, Taints: []corev1.Taint{taint}},
			wantCPU:    "3500m",
			wantMem:    "7Gi",
			wantLabels: map[string]string{"coder/node-type": "coderd", "type": "mine", "kubernetes.io/hostname": "n2"},
		},
		{name: "no name", spec: NodeSpec{}, wantErr: "Name is empty"},
		{name: "bad memory", spec: NodeSpec{Name: "n3", Memory: "lots"}, wantErr: `memory "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := nodeObject(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Status.Allocatable.Cpu().String(); got != tt.wantCPU {
				t.Errorf("allocatable cpu = %s, want %s", got, tt.wantCPU)
			}
			if got := n.Status.Capacity.Memory().String(); got != tt.wantMem {
				t.Errorf("capacity memory = %s, want %s", got, tt.wantMem)
			}
			if got := n.Status.Allocatable.Pods().String(); got != maxPodsPerNode {
				t.Errorf("allocatable pods = %s, want %s", got, maxPodsPerNode)
			}
			for k, v := range tt.wantLabels {
				if n.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
				}
			}
			if n.Annotations[kwokNodeAnnotation] != "fake" {
				t.Errorf("annotations = %v, want %s=fake", n.Annotations, kwokNodeAnnotation)
			}
			if len(n.Spec.Taints) != len(tt.spec.Taints) || len(tt.spec.Taints) > 0 && n.Spec.Taints[0] != tt.spec.Taints[0] {
				t.Errorf("taints = %v, want %v", n.Spec.Taints, tt.spec.Taints)
			}
		})
	}
}
