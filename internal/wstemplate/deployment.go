package wstemplate

import (
	"fmt"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/sizing"
)

// ForDeployment places and sizes the workspaces as the deployment does:
// on the node group labelled coder/node-type=workspace, tolerating its
// NoSchedule taint, with the requests, limits and home size of the
// sizing, in namespace (Coder's, where its chart grants coderd the
// workspace permissions). The same function serves `coderctl template
// init` and the push, so what is written is what is pushed.
func ForDeployment(groups []config.NodeGroupSpec, s sizing.Sizing, namespace string) (Params, error) {
	g, ok := sizing.GroupFor(groups, sizing.RoleWorkspace)
	if !ok {
		return Params{}, fmt.Errorf("no node group in the cluster config is labelled %s=%s: workspaces would have nowhere to run",
			sizing.NodeTypeLabel, sizing.RoleWorkspace)
	}
	taint, ok := schedulingTaint(g)
	if !ok {
		return Params{}, fmt.Errorf("node group %s has no NoSchedule taint: give it %s=%s:NoSchedule, so that only workspaces land there",
			g.Name, sizing.NodeTypeLabel, sizing.RoleWorkspace)
	}
	w := s.Workspaces
	return Params{
		Namespace:    namespace,
		NodeLabelKey: sizing.NodeTypeLabel, NodeLabelValue: sizing.RoleWorkspace,
		TaintKey: taint.Key, TaintValue: taint.Value, TaintEffect: taint.Effect,
		CPURequest: w.PerUser.CPU, MemoryRequest: w.PerUser.Memory,
		CPULimit: w.Limit.CPU, MemoryLimit: w.Limit.Memory,
		HomeSize: w.HomeSize,
		Image:    DefaultImage,
	}, nil
}

// schedulingTaint is the group's first NoSchedule taint: the one a pod
// must tolerate to be placed there at all.
func schedulingTaint(g config.NodeGroupSpec) (config.Taint, bool) {
	for _, t := range g.Taints {
		if t.Effect == "NoSchedule" {
			return t, true
		}
	}
	return config.Taint{}, false
}
