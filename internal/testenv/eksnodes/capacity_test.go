package eksnodes

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestResources holds the fake nodes to the EKS AMI's reservations. Each
// row's allocatable is worked out by hand from nodeadm's formulas:
// maxPods = ENIs × (IPv4 per ENI − 1) + 2; memory = capacity − (11 Mi ×
// maxPods + 255 Mi) − 100 Mi eviction; CPU = capacity − (60m for core 1 +
// 10m for core 2 + 5m each for cores 3-4 + 2.5m each above 4); disk =
// capacity − 1 Gi − 10%.
func TestResources(t *testing.T) {
	tests := []struct {
		instanceType string
		disk         int32
		// capacity
		cpu, mem, pods, capDisk string
		// allocatable
		allocCPU, allocMem, allocDisk string
	}{
		// 3 ENIs × 5 + 2 = 17 pods; 11×17+255 = 442 Mi → 4096−442−100 = 3554 Mi;
		// 60+10 = 70m → 1930m; 50 − 1 − 5 = 44 Gi.
		{"t3.medium", 50, "2", "4Gi", "17", "50Gi", "1930m", "3554Mi", "44Gi"},
		// 4 × 14 + 2 = 58 pods; 11×58+255 = 893 Mi → 16384−893−100 = 15391 Mi;
		// 60+10+5+5 = 80m → 3920m: two 2-CPU coderd pods never share one.
		{"m7i.xlarge", 50, "4", "16Gi", "58", "50Gi", "3920m", "15391Mi", "44Gi"},
		// 58 pods, 15391 Mi as above; 80m + 4 × 2.5m = 90m → 7910m.
		{"c7i.2xlarge", 50, "8", "16Gi", "58", "50Gi", "7910m", "15391Mi", "44Gi"},
		{"c7g.2xlarge", 50, "8", "16Gi", "58", "50Gi", "7910m", "15391Mi", "44Gi"},
		// 8 × 29 + 2 = 234 pods; 11×234+255 = 2829 Mi → 196608−2829−100 = 193679 Mi;
		// 80m + 44 × 2.5m = 190m → 47810m; 100 − 1 − 10 = 89 Gi.
		{"m7i.12xlarge", 100, "48", "192Gi", "234", "100Gi", "47810m", "193679Mi", "89Gi"},
		// Not in the table: 4 vCPUs, 16 Gi and nodeadm's fallback of 110 pods:
		// 11×110+255 = 1465 Mi → 16384−1465−100 = 14819 Mi; EKS's 20 Gi disk
		// → 20 − 1 − 2 = 17 Gi.
		{"r7i.large", 0, "4", "16Gi", "110", "20Gi", "3920m", "14819Mi", "17Gi"},
	}
	for _, tc := range tests {
		t.Run(tc.instanceType, func(t *testing.T) {
			capacity, alloc := Resources(tc.instanceType, tc.disk)
			for _, c := range []struct {
				what string
				list corev1.ResourceList
				name corev1.ResourceName
				want string
			}{
				{"capacity", capacity, corev1.ResourceCPU, tc.cpu},
				{"capacity", capacity, corev1.ResourceMemory, tc.mem},
				{"capacity", capacity, corev1.ResourcePods, tc.pods},
				{"capacity", capacity, corev1.ResourceEphemeralStorage, tc.capDisk},
				{"allocatable", alloc, corev1.ResourceCPU, tc.allocCPU},
				{"allocatable", alloc, corev1.ResourceMemory, tc.allocMem},
				{"allocatable", alloc, corev1.ResourcePods, tc.pods},
				{"allocatable", alloc, corev1.ResourceEphemeralStorage, tc.allocDisk},
			} {
				q := c.list[c.name]
				if q.Cmp(resource.MustParse(c.want)) != 0 {
					t.Errorf("%s %s = %s, want %s", c.what, c.name, q.String(), c.want)
				}
			}
		})
	}
}

// TestReservedMilliCPU checks the CPU ladder at its edges, where the
// integer arithmetic of each range matters.
func TestReservedMilliCPU(t *testing.T) {
	for vcpu, want := range map[int]int{1: 60, 2: 70, 3: 75, 4: 80, 5: 82, 16: 110, 96: 310} {
		if got := (Shape{VCPU: vcpu}).ReservedMilliCPU(); got != want {
			t.Errorf("%d vCPUs: reserved %dm, want %dm", vcpu, got, want)
		}
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
