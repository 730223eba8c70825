package eksnodes

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// What a node of a managed group can hold is what the EKS AMI's kubelet
// leaves after its reservations, not the instance's size: nodeadm (the
// AL2023 bootstrap, awslabs/amazon-eks-ami nodeadm/internal/kubelet,
// read at commit 81fec2e8) sets
//
//   - maxPods = ENIs × (IPv4 addresses per ENI − 1) + 2 (CalcMaxPods: one
//     address of each ENI is its own, +2 for the host-network pods aws-node
//     and kube-proxy), or 110 when it cannot find the instance type;
//   - kubeReserved memory = 11 MiB × maxPods + 255 MiB
//     (getMemoryMebibytesToReserve);
//   - kubeReserved CPU = 6% of the first core, 1% of the second, 0.5% of
//     the third and fourth, 0.25% of every core above four
//     (getCPUMillicoresToReserve);
//   - kubeReserved ephemeral-storage 1Gi;
//   - evictionHard memory.available 100Mi and nodefs.available 10%, which
//     the kubelet also subtracts from allocatable.
//
// So a coderd pod that would not fit beside another on an m7i.xlarge does
// not fit here either.

// Shape is what EC2 says of an instance type: its vCPUs and memory, and the
// ENI limits of its default network card that bound the pod count.
type Shape struct {
	VCPU       int
	MemoryMiB  int64
	ENIs       int // NetworkInfo.NetworkCards[default].MaximumNetworkInterfaces
	IPv4PerENI int // NetworkInfo.Ipv4AddressesPerInterface
}

// shapes are the instance types the shipped cluster-config.yaml and the
// end-to-end tests use. vCPUs and memory from EC2 DescribeInstanceTypes;
// the ENI limits are the lines of nodeadm's instance-info.jsonl
// ({"instanceType":"m7i.xlarge","defaultMaxENIs":4,"ipv4AddressesPerInterface":15}
// and so on), the file that replaced the AMI's eni-max-pods.txt. moto
// 5.2.1's DescribeInstanceTypes carries the same NetworkInfo for these
// types; TestShapesMatchMoto holds the table to it.
var shapes = map[string]Shape{
	"t3.medium":    {VCPU: 2, MemoryMiB: 4 * 1024, ENIs: 3, IPv4PerENI: 6},
	"m7i.xlarge":   {VCPU: 4, MemoryMiB: 16 * 1024, ENIs: 4, IPv4PerENI: 15},
	"c7i.2xlarge":  {VCPU: 8, MemoryMiB: 16 * 1024, ENIs: 4, IPv4PerENI: 15},
	"c7g.2xlarge":  {VCPU: 8, MemoryMiB: 16 * 1024, ENIs: 4, IPv4PerENI: 15}, // Graviton: the e2e's ARM provisioner group
	"m7i.12xlarge": {VCPU: 48, MemoryMiB: 192 * 1024, ENIs: 8, IPv4PerENI: 30},
}

// defaultShape stands for a type not in the table: 4 vCPUs, 16 GiB, and no
// ENI limits, so the pod count is nodeadm's fallback (110).
var defaultShape = Shape{VCPU: 4, MemoryMiB: 16 * 1024}

// ShapeOf is the instance type's shape; ok is false for a type not in the
// table (defaultShape is returned).
func ShapeOf(instanceType string) (Shape, bool) {
	s, ok := shapes[instanceType]
	if !ok {
		return defaultShape, false
	}
	return s, true
}

// nodeadm's constants.
const (
	fallbackMaxPods      = 110 // defaultMaxPods: the kubelet's default
	evictionMemoryMiB    = 100 // evictionHard memory.available
	reservedEphemeralGiB = 1   // kubeReserved ephemeral-storage
	evictionNodefsPct    = 10  // evictionHard nodefs.available
	defaultDiskGiB       = 20  // EKS's default disk size
)

// MaxPods is the kubelet's maxPods for the shape.
func (s Shape) MaxPods() int {
	if s.ENIs <= 0 || s.IPv4PerENI <= 0 {
		return fallbackMaxPods
	}
	return s.ENIs*(s.IPv4PerENI-1) + 2
}

// ReservedMilliCPU is kubeReserved CPU: the percentage ladder over the
// cores, in hundredths of a percent as nodeadm computes it (integer
// arithmetic per range, so the same rounding).
func (s Shape) ReservedMilliCPU() int {
	total := s.VCPU * 1000
	ranges := []int{0, 1000, 2000, 4000, total}
	percent := []int{600, 100, 50, 25} // 6%, 1%, 0.5%, 0.25%
	out := 0
	for i, p := range percent {
		start, end := ranges[i], ranges[i+1]
		if total <= start {
			continue
		}
		out += (min(total, end) - start) * p / 10000
	}
	return out
}

// ReservedMemoryMiB is kubeReserved memory.
func (s Shape) ReservedMemoryMiB() int64 { return 11*int64(s.MaxPods()) + 255 }

// Resources are a fake node's capacity and allocatable for an instance type
// and root disk in GiB (EKS's 20 when zero): capacity is the instance's
// vCPUs, memory, maxPods and disk; allocatable is capacity less kubeReserved
// and the hard eviction thresholds, as the kubelet reports it.
func Resources(instanceType string, diskGiB int32) (capacity, allocatable corev1.ResourceList) {
	s, _ := ShapeOf(instanceType)
	if diskGiB <= 0 {
		diskGiB = defaultDiskGiB
	}
	const gi = int64(1) << 30
	const mi = int64(1) << 20
	disk := int64(diskGiB) * gi
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(int64(s.VCPU)*1000, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(s.MemoryMiB*mi, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(s.MaxPods()), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk, resource.BinarySI),
	}
	allocatable = corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(s.VCPU*1000-s.ReservedMilliCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity((s.MemoryMiB-s.ReservedMemoryMiB()-evictionMemoryMiB)*mi, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(s.MaxPods()), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk-reservedEphemeralGiB*gi-disk*evictionNodefsPct/100,
			resource.BinarySI),
	}
	return capacity, allocatable
}
