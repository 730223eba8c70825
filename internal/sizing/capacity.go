package sizing

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
)

// Shape is an instance type's vCPUs and memory.
type Shape struct {
	VCPU      int
	MemoryGiB float64
}

// burstable are the T-family shapes, which follow no per-vCPU rule.
func burstable(size string) (Shape, bool) {
	shapes := map[string]Shape{
		"nano": {2, 0.5}, "micro": {2, 1}, "small": {2, 2}, "medium": {2, 4},
		"large": {2, 8}, "xlarge": {4, 16}, "2xlarge": {8, 32},
	}
	s, ok := shapes[size]
	return s, ok
}

// generalRE matches the c/m/r families of generations 5 to 8 in the
// variants whose memory follows the family ratio (Intel, AMD, Graviton,
// with or without local disks).
var generalRE = regexp.MustCompile(`^([cmr])([5-8])(i|a|g|id|ad|gd|d)?\.(large|xlarge|[0-9]+xlarge)$`)

// memPerVCPU is the GiB per vCPU of the c, m and r families.
func memPerVCPU(family string) float64 {
	return map[string]float64{"c": 2, "m": 4, "r": 8}[family]
}

// ShapeOf returns the shape of the common EC2 instance types (t3, t3a, t4g,
// and the c/m/r families of generations 5–8); ok is false for others, whose
// capacity coderctl then does not guess.
func ShapeOf(instanceType string) (Shape, bool) {
	t := strings.ToLower(strings.TrimSpace(instanceType))
	family, size, found := strings.Cut(t, ".")
	if !found {
		return Shape{}, false
	}
	switch family {
	case "t3", "t3a", "t4g":
		return burstable(size)
	}
	m := generalRE.FindStringSubmatch(t)
	if m == nil {
		return Shape{}, false
	}
	vcpu := 2
	switch {
	case m[4] == "xlarge":
		vcpu = 4
	case strings.HasSuffix(m[4], "xlarge") && m[4] != "xlarge":
		n, err := strconv.Atoi(strings.TrimSuffix(m[4], "xlarge"))
		if err != nil || n <= 0 {
			return Shape{}, false
		}
		vcpu = 4 * n
	}
	return Shape{VCPU: vcpu, MemoryGiB: float64(vcpu) * memPerVCPU(m[1])}, true
}

// What each node keeps for the kubelet, the OS and the DaemonSets every
// node runs (VPC CNI, kube-proxy, EBS and Secrets Store CSI drivers).
const (
	nodeReservedMilliCPU = 500
	nodeReservedMiB      = 2048
)

// PodsPerNode is how many pods with these requests fit on one node of the
// instance type after the node's reservations; 0 when the type is unknown
// or the requests do not parse.
func PodsPerNode(instanceType string, p Pod) int {
	shape, ok := ShapeOf(instanceType)
	if !ok {
		return 0
	}
	cpu, err1 := resource.ParseQuantity(p.Requests.CPU)
	mem, err2 := resource.ParseQuantity(p.Requests.Memory)
	if err1 != nil || err2 != nil || cpu.MilliValue() <= 0 || mem.Value() <= 0 {
		return 0
	}
	freeMilli := int64(shape.VCPU)*1000 - nodeReservedMilliCPU
	freeMiB := int64(shape.MemoryGiB*1024) - nodeReservedMiB
	byCPU := freeMilli / cpu.MilliValue()
	byMem := freeMiB * (1 << 20) / mem.Value()
	return int(max(min(byCPU, byMem), 0))
}

// NodeTypeLabel is the label every coder node group carries; its value
// names the role (coderd, provisioner, workspace).
const NodeTypeLabel = "coder/node-type"

// Node roles, the values of NodeTypeLabel.
const (
	// RoleSystem is the untainted group for cluster add-ons and
	// controllers (CoreDNS, CSI controllers, the cluster-autoscaler).
	RoleSystem      = "system"
	RoleCoderd      = "coderd"
	RoleProvisioner = "provisioner"
	RoleWorkspace   = "workspace"
)

// GroupFor returns the node group labelled for role, if any.
func GroupFor(groups []config.NodeGroupSpec, role string) (config.NodeGroupSpec, bool) {
	for _, g := range groups {
		if g.Labels[NodeTypeLabel] == role {
			return g, true
		}
	}
	return config.NodeGroupSpec{}, false
}

// Fit is how one role's pods fit its node group.
type Fit struct {
	Role         string `json:"role"`
	Group        string `json:"group,omitempty"`
	InstanceType string `json:"instance_type,omitempty"`
	// MaxNodes is the number of nodes the group can really have: maxSize
	// when the autoscaler may grow it, desiredCapacity otherwise.
	MaxNodes int `json:"max_nodes"`
	// Grows says MaxNodes is the group's maxSize, reached by the autoscaler.
	Grows       bool `json:"grows"`
	PerNode     int  `json:"pods_per_node"`
	Pods        int  `json:"pods"`
	NodesNeeded int  `json:"nodes_needed"`
	// Problem is empty when the group holds the pods at MaxNodes.
	Problem string `json:"problem,omitempty"`
}

// Fits compares the sizing with the node groups of cluster-config.yaml:
// provisioner pods on the provisioner group, coderd pods on the coderd
// group (one per node, as the validated architectures run them) and every
// user's workspace on the workspace group. A group counts at its maxSize
// only when autoscaling is on and the group may grow (maxSize > minSize):
// nothing else ever adds nodes, so otherwise it counts at desiredCapacity.
func Fits(s Sizing, groups []config.NodeGroupSpec, autoscaling bool) []Fit {
	return []Fit{
		fitPods(groups, autoscaling, RoleProvisioner, s.Provisioners.Replicas, s.Provisioners.Pod, 0),
		fitPods(groups, autoscaling, RoleCoderd, s.Coderd.Replicas, s.Coderd.Pod, 1),
		fitPods(groups, autoscaling, RoleWorkspace, s.Users, Pod{Requests: s.Workspaces.PerUser}, 0),
	}
}

// reachableNodes is how many nodes a group can have: maxSize when an
// autoscaler grows it, desiredCapacity (at least minSize) when nothing does.
func reachableNodes(g config.NodeGroupSpec, autoscaling bool) (nodes int, grows bool) {
	if autoscaling && g.Growable() {
		return int(g.Max), true
	}
	return int(max(g.Desired, g.Min)), false
}

// fitPods computes one role's fit; perNodeCap > 0 bounds pods per node.
func fitPods(groups []config.NodeGroupSpec, autoscaling bool, role string, pods int, p Pod, perNodeCap int) Fit {
	f := Fit{Role: role, Pods: pods}
	g, ok := GroupFor(groups, role)
	if !ok {
		f.Problem = fmt.Sprintf("no node group in the cluster config is labelled %s=%s", NodeTypeLabel, role)
		return f
	}
	f.Group, f.InstanceType = g.Name, g.InstanceType
	f.MaxNodes, f.Grows = reachableNodes(g, autoscaling)
	f.PerNode = PodsPerNode(g.InstanceType, p)
	if perNodeCap > 0 && f.PerNode > perNodeCap {
		f.PerNode = perNodeCap
	}
	switch {
	case f.PerNode == 0 && !knownShape(g.InstanceType):
		f.Problem = fmt.Sprintf("instance type %s is not one coderctl knows the size of; check by hand that %d × %s/%s fit",
			g.InstanceType, pods, p.Requests.CPU, p.Requests.Memory)
		return f
	case f.PerNode == 0:
		f.Problem = fmt.Sprintf("one %s pod (%s CPU, %s) does not fit on a %s", role, p.Requests.CPU, p.Requests.Memory, g.InstanceType)
		return f
	}
	f.NodesNeeded = ceilDiv(pods, f.PerNode)
	if f.NodesNeeded > f.MaxNodes {
		f.Problem = fmt.Sprintf("node group %s (%s) holds %d %s pods at %s CPU / %s each; %d need %d nodes: %s",
			g.Name, reachDescription(g, f), f.PerNode*f.MaxNodes, role, p.Requests.CPU, p.Requests.Memory,
			pods, f.NodesNeeded, growAdvice(g, f, autoscaling))
	}
	return f
}

// reachDescription says how many nodes were counted and why.
func reachDescription(g config.NodeGroupSpec, f Fit) string {
	if f.Grows {
		return fmt.Sprintf("%d–%d × %s", g.Min, g.Max, g.InstanceType)
	}
	if g.Growable() {
		return fmt.Sprintf("%d × %s at desiredCapacity: AUTOSCALER=none, nothing grows it", f.MaxNodes, g.InstanceType)
	}
	return fmt.Sprintf("%d × %s, fixed size", f.MaxNodes, g.InstanceType)
}

// growAdvice says what to change so the group holds its pods.
func growAdvice(g config.NodeGroupSpec, f Fit, autoscaling bool) string {
	switch {
	case f.Grows || !g.Growable() && autoscaling:
		return fmt.Sprintf("raise its maxSize to %d in the cluster config (the autoscaler grows it), or use a larger instance type", f.NodesNeeded)
	default:
		return fmt.Sprintf("raise its desiredCapacity to %d in the cluster config, set AUTOSCALER=%s, or use a larger instance type",
			f.NodesNeeded, config.AutoscalerCluster)
	}
}

func knownShape(instanceType string) bool {
	_, ok := ShapeOf(instanceType)
	return ok
}

// countingRule says how the groups' sizes were counted.
func countingRule(autoscaling bool) string {
	if autoscaling {
		return "growable groups at maxSize, which the cluster-autoscaler reaches; the others at desiredCapacity"
	}
	return "every group at desiredCapacity: AUTOSCALER=none, nothing grows them"
}

// CapacityCheck is the checkpoint line for the fits: a warning naming every
// group that cannot hold its pods, a pass otherwise. It warns rather than
// fails: node groups can be resized later, and users may size by measured
// load instead.
func CapacityCheck(s Sizing, groups []config.NodeGroupSpec, autoscaling bool) engine.Check {
	var problems []string
	for _, f := range Fits(s, groups, autoscaling) {
		if f.Problem != "" {
			problems = append(problems, f.Problem)
		}
	}
	if len(problems) > 0 {
		return engine.Warnf("capacity", "run 'coderctl size --users N' for the whole sizing",
			"for %d users: %s", s.Users, strings.Join(problems, "; "))
	}
	return engine.Passf("capacity", "node groups hold %d provisioners, %d coderd replicas and %d workspaces (%s)",
		s.Provisioners.Replicas, s.Coderd.Replicas, s.Users, countingRule(autoscaling))
}
