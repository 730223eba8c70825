package nodegroups

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
)

const applyHint = "run 'coderctl stage nodegroups apply'"

// verify is the checkpoint: the node role, each group as EKS reports it,
// then each group's nodes as Kubernetes sees them.
func (s *stage) verify(ctx context.Context) []engine.Check {
	groups := s.d.NodeGroups()
	found := make([]*ekstypes.Nodegroup, len(groups))
	errs := make([]error, len(groups))
	var role engine.Check
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		role = s.roleCheck(ctx)
	}()
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found[i], errs[i] = s.describeGroup(ctx, g.Name)
		}()
	}
	wg.Wait()

	checks := []engine.Check{role}
	desired := map[string]int32{}
	for i, g := range groups {
		checks = append(checks, s.groupCheck(g, found[i], errs[i]))
		desired[g.Name] = g.Desired
		if found[i] != nil && found[i].ScalingConfig != nil {
			desired[g.Name] = aws.ToInt32(found[i].ScalingConfig.DesiredSize)
		}
	}
	return append(checks, s.nodeChecks(ctx, desired)...)
}

func (s *stage) roleCheck(ctx context.Context) engine.Check {
	const name = "node-role"
	st, err := s.readRole(ctx)
	switch {
	case err != nil:
		return engine.Failf(name, "", "%v", err)
	case st == nil:
		return engine.Failf(name, applyHint, "IAM role %s does not exist", s.nodeRoleName())
	case !st.trustOK:
		return engine.Failf(name, applyHint+" to rewrite its trust policy", "IAM role %s does not let %s assume it", s.nodeRoleName(), s.ec2Principal())
	case len(st.missing) > 0:
		return engine.Failf(name, applyHint+" to attach them", "IAM role %s lacks %s", s.nodeRoleName(), strings.Join(policyNames(st.missing), ", "))
	}
	return engine.Passf(name, "%s with %s", s.nodeRoleName(), strings.Join(nodePolicies, ", "))
}

// groupCheck compares one group as EKS reports it with cluster-config.yaml.
func (s *stage) groupCheck(spec config.NodeGroupSpec, ng *ekstypes.Nodegroup, err error) engine.Check {
	name := "nodegroup/" + spec.Name
	if err != nil {
		return engine.Failf(name, "", "%v", err)
	}
	if ng == nil {
		return engine.Failf(name, applyHint, "node group %s does not exist", spec.Name)
	}
	if ng.Status != ekstypes.NodegroupStatusActive {
		return engine.Failf(name, "see the group's health issues in the EKS console; "+applyHint+" once they are fixed",
			"%s", healthSummary(ng))
	}
	w, err := wantOf(spec)
	if err != nil {
		return engine.Failf(name, "fix the taint in "+s.d.ConfigPath, "%v", err)
	}
	d := diff(w, ng, s.placementFor(spec))
	if d.any() {
		return engine.Failf(name, applyHint+" to converge it", "drifted from %s: %s", s.d.ConfigPath, strings.Join(d.changes, "; "))
	}
	sc := ng.ScalingConfig
	if sc == nil {
		sc = &ekstypes.NodegroupScalingConfig{}
	}
	summary := fmt.Sprintf("ACTIVE, %d × %s (min %d, max %d), labels and taints as configured",
		aws.ToInt32(sc.DesiredSize), spec.InstanceType, aws.ToInt32(sc.MinSize), aws.ToInt32(sc.MaxSize))
	if len(d.fixed) > 0 {
		return engine.Warnf(name, "EKS cannot change this in place: destroy and re-create the group to apply it",
			"%s; but %s", summary, strings.Join(d.fixed, "; "))
	}
	return engine.Passf(name, "%s", summary)
}
