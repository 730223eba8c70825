package config

import (
	"maps"
	"math"
	"strings"

	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/fault"
)

// NodeGroupSpec is one managed node group as the nodegroups stage creates
// it: sizes, labels and taints exactly as cluster-config.yaml says, with
// eksctl's defaults for what it leaves out.
type NodeGroupSpec struct {
	Name, InstanceType string
	Min, Max, Desired  int32
	VolumeSize         int32 // GiB
	Labels             map[string]string
	Taints             []Taint
	PrivateNetworking  bool
}

// Growable reports whether an autoscaler may grow the group: its maxSize
// is above its minSize. A group with minSize == maxSize keeps its size.
func (g NodeGroupSpec) Growable() bool { return g.Max > g.Min }

// Taint is a node taint; Effect is in Kubernetes spelling (NoSchedule).
// NodeGroupTaintEffectToEKS converts it for the EKS API.
type Taint struct{ Key, Value, Effect string }

// eksctlLabelPrefix marks the bookkeeping labels eksctl's defaults add
// (alpha.eksctl.io/cluster-name, alpha.eksctl.io/nodegroup-name). coderctl,
// not eksctl, owns these node groups, so it does not put them on nodes.
const eksctlLabelPrefix = "alpha.eksctl.io/"

// NodeGroups lists the managed node groups of a config returned by
// LoadCluster or ParseCluster, in file order.
func NodeGroups(cfg *api.ClusterConfig) []NodeGroupSpec {
	if cfg == nil {
		return nil
	}
	specs := make([]NodeGroupSpec, 0, len(cfg.ManagedNodeGroups))
	for _, ng := range cfg.ManagedNodeGroups {
		if ng == nil || ng.NodeGroupBase == nil {
			continue
		}
		specs = append(specs, nodeGroupSpec(ng))
	}
	return specs
}

func nodeGroupSpec(ng *api.ManagedNodeGroup) NodeGroupSpec {
	spec := NodeGroupSpec{
		Name:              ng.Name,
		InstanceType:      ng.InstanceType,
		VolumeSize:        int32Of(ng.VolumeSize),
		Labels:            map[string]string{},
		PrivateNetworking: ng.PrivateNetworking,
	}
	if sc := ng.ScalingConfig; sc != nil {
		spec.Min, spec.Max, spec.Desired = int32Of(sc.MinSize), int32Of(sc.MaxSize), int32Of(sc.DesiredCapacity)
	}
	maps.Copy(spec.Labels, ng.Labels)
	maps.DeleteFunc(spec.Labels, func(k, _ string) bool { return strings.HasPrefix(k, eksctlLabelPrefix) })
	for _, t := range ng.Taints {
		spec.Taints = append(spec.Taints, Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)})
	}
	return spec
}

// int32Of reads an optional size; the checks keep sizes small and
// non-negative, the clamp only guards the conversion.
func int32Of(p *int) int32 {
	if p == nil {
		return 0
	}
	return int32(min(max(*p, 0), math.MaxInt32))
}

// NodeGroupTaintEffectToEKS converts a Kubernetes taint effect (NoSchedule)
// to the EKS API's spelling (NO_SCHEDULE).
func NodeGroupTaintEffectToEKS(effect string) (string, error) {
	switch effect {
	case "NoSchedule":
		return string(ekstypes.TaintEffectNoSchedule), nil
	case "PreferNoSchedule":
		return string(ekstypes.TaintEffectPreferNoSchedule), nil
	case "NoExecute":
		return string(ekstypes.TaintEffectNoExecute), nil
	}
	msg, hint := taintEffectProblem(effect)
	return "", fault.Input("", "taint effect", hint, "%s", msg)
}
