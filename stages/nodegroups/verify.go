package nodegroups

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
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
	lts := make([]engine.Check, len(groups))
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
			lts[i] = s.ltCheck(ctx, g.Name, found[i], errs[i])
		}()
	}
	wg.Wait()

	checks := []engine.Check{role}
	desired := map[string]int32{}
	for i, g := range groups {
		checks = append(checks, s.groupCheck(g, found[i], errs[i]), lts[i])
		desired[g.Name] = g.Desired
		if found[i] != nil && found[i].ScalingConfig != nil {
			desired[g.Name] = aws.ToInt32(found[i].ScalingConfig.DesiredSize)
		}
	}
	return append(checks, s.nodeChecks(ctx, desired)...)
}

func (s *stage) roleCheck(ctx context.Context) engine.Check {
	const name = "node-role"
	st, err := s.nodeRole().Read(ctx, s.d.AWS.IAM)
	switch {
	case err != nil:
		return engine.Failf(name, "", "%v", err)
	case st == nil:
		return engine.Failf(name, applyHint, "IAM role %s does not exist", s.nodeRoleName())
	case !st.TrustOK:
		return engine.Failf(name, applyHint+" to rewrite its trust policy", "IAM role %s does not let %s assume it", s.nodeRoleName(), s.ec2Principal())
	case len(st.Missing) > 0:
		return engine.Failf(name, applyHint+" to attach them", "IAM role %s lacks %s", s.nodeRoleName(), strings.Join(awsx.PolicyNames(st.Missing), ", "))
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
	w, err := s.want(spec)
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
	summary := fmt.Sprintf("ACTIVE, %d × %s (%s, min %d, max %d), labels and taints as configured",
		aws.ToInt32(sc.DesiredSize), spec.InstanceType, ng.AmiType, aws.ToInt32(sc.MinSize), aws.ToInt32(sc.MaxSize))
	if len(d.fixed) > 0 {
		return engine.Warnf(name, "EKS cannot change this in place: destroy and re-create the group to apply it",
			"%s; but %s", summary, strings.Join(d.fixed, "; "))
	}
	return engine.Passf(name, "%s", summary)
}

// ltCheck ("launch-template/<group>") checks that the group runs
// coderctl's launch template at its latest version, that this version holds
// the configured volume, IMDS options and tags, and that the group's AMI
// type is eksctl's for amiFamily and the instance type.
func (s *stage) ltCheck(ctx context.Context, group string, ng *ekstypes.Nodegroup, err error) engine.Check {
	name := "launch-template/" + group
	if err != nil {
		return engine.Failf(name, "", "%v", err)
	}
	if ng == nil {
		return engine.Failf(name, applyHint, "node group %s does not exist", group)
	}
	d, err := s.ltDrift(ctx, group, ng)
	if err != nil {
		return engine.Failf(name, "", "%v", err)
	}
	w, err := s.want(config.NodeGroupSpec{Name: group})
	if err != nil {
		return engine.Failf(name, "", "%v", err)
	}
	switch {
	case d.fixed != "":
		return engine.Failf(name, "destroy and re-create the group ('coderctl stage nodegroups destroy', then apply)", "%s", d.fixed)
	case d.roll:
		return engine.Failf(name, applyHint+" to roll the group to a version that holds them", "launch template %s: %s", d.st.name, joinChanges(d.changes))
	case ng.AmiType != w.amiType:
		return engine.Failf(name, "destroy and re-create the group: EKS keeps a group's AMI type",
			"AMI type is %s, amiFamily and instanceType ask for %s", ng.AmiType, w.amiType)
	}
	f := s.wantedLT(s.managedGroup(group))
	return engine.Passf(name, "%s version %s (latest), AMI type %s, IMDS HttpTokens %s with hop limit %d, %d GiB %s root volume",
		d.st.name, aws.ToString(ng.LaunchTemplate.Version), ng.AmiType, f.httpTokens, f.hopLimit, f.volumeSize, f.volumeType)
}
