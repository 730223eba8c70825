package eksnodes

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestCapacityOf(t *testing.T) {
	tests := []struct {
		instanceType    string
		disk            int32
		cpu, mem, ephem string
	}{
		{"t3.medium", 50, "2", "4Gi", "50Gi"},
		{"m7i.xlarge", 50, "4", "16Gi", "50Gi"},
		{"c7i.2xlarge", 50, "8", "16Gi", "50Gi"},
		{"m7i.12xlarge", 100, "48", "192Gi", "100Gi"},
		{"r7i.large", 0, "4", "16Gi", "20Gi"}, // not in the table: the default size and EKS's default disk
	}
	for _, tc := range tests {
		t.Run(tc.instanceType, func(t *testing.T) {
			got, err := Capacity(tc.instanceType, tc.disk)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range map[corev1.ResourceName]string{
				corev1.ResourceCPU: tc.cpu, corev1.ResourceMemory: tc.mem, corev1.ResourceEphemeralStorage: tc.ephem, corev1.ResourcePods: "110",
			} {
				q := got[name]
				if q.Cmp(resource.MustParse(want)) != 0 {
					t.Errorf("%s = %s, want %s", name, q.String(), want)
				}
			}
		})
	}
}

func TestKubeTaints(t *testing.T) {
	got, err := KubeTaints([]ekstypes.Taint{
		{Key: aws.String("a"), Value: aws.String("1"), Effect: ekstypes.TaintEffectNoSchedule},
		{Key: aws.String("b"), Effect: ekstypes.TaintEffectPreferNoSchedule},
		{Key: aws.String("c"), Value: aws.String("3"), Effect: ekstypes.TaintEffectNoExecute},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Taint{
		{Key: "a", Value: "1", Effect: corev1.TaintEffectNoSchedule},
		{Key: "b", Effect: corev1.TaintEffectPreferNoSchedule},
		{Key: "c", Value: "3", Effect: corev1.TaintEffectNoExecute},
	}
	if len(got) != len(want) {
		t.Fatalf("taints = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("taint %d = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := KubeTaints([]ekstypes.Taint{{Key: aws.String("x"), Effect: "NoSchedule"}}); err == nil {
		t.Error("a Kubernetes-spelt effect from EKS was accepted")
	}
}
