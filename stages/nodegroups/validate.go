package nodegroups

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
)

// validate refuses, before anything is created, what would only fail
// minutes into the run: a role name IAM rejects, and an instance type the
// region does not offer (EKS reports that only after ~20 minutes, as a
// node group that never gets nodes). Duplicate names and inconsistent
// sizes are refused when cluster-config.yaml is loaded.
func (s *stage) validate(ctx context.Context) error {
	if n := s.nodeRoleName(); len(n) > maxIAMNameLen {
		source, field := s.d.Inputs.Origin(config.KeyClusterName)
		return fault.Input(source, field,
			fmt.Sprintf("use a name of at most %d characters", maxIAMNameLen-len("-node")),
			"the node IAM role name %q would be longer than IAM's %d characters", n, maxIAMNameLen)
	}
	for _, g := range s.d.NodeGroups() {
		if _, err := wantOf(g); err != nil {
			return fault.Input(s.d.ConfigPath, s.fieldPath(g.Name, "taints"), "use NoSchedule, PreferNoSchedule or NoExecute", "%v", err)
		}
	}
	if err := s.validateLaunchSettings(); err != nil {
		return err
	}
	if err := s.validateInstanceTypes(ctx); err != nil {
		return err
	}
	return s.validateArchitectures(ctx)
}

// validateInstanceTypes asks EC2 which of the configured instance types the
// region offers. When EC2 cannot answer for another reason than
// credentials, the check is left to the prereqs stage's checkpoint rather
// than blocking the run.
func (s *stage) validateInstanceTypes(ctx context.Context) error {
	var types []string
	for _, g := range s.d.NodeGroups() {
		if !slices.Contains(types, g.InstanceType) {
			types = append(types, g.InstanceType)
		}
	}
	if len(types) == 0 {
		return nil
	}
	offered := map[string]bool{}
	pager := ec2.NewDescribeInstanceTypeOfferingsPaginator(s.d.AWS.EC2, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeRegion,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: types}},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if awsx.IsCredentialsError(err) {
			return awsx.CredentialsInput(err)
		}
		if err != nil {
			return nil
		}
		for _, o := range page.InstanceTypeOfferings {
			offered[string(o.InstanceType)] = true
		}
	}
	for _, g := range s.d.NodeGroups() {
		if !offered[g.InstanceType] {
			return fault.Input(s.d.ConfigPath, s.fieldPath(g.Name, "instanceType"),
				fmt.Sprintf("choose one of the types 'aws ec2 describe-instance-type-offerings --region %s' lists", s.d.Region()),
				"%q is not offered in %s", g.InstanceType, s.d.Region())
		}
	}
	return nil
}

// fieldPath names a node group's field as cluster-config.yaml spells it.
func (s *stage) fieldPath(group, field string) string {
	for i, ng := range s.d.Cluster.ManagedNodeGroups {
		if ng != nil && ng.NodeGroupBase != nil && ng.Name == group {
			return fmt.Sprintf("managedNodeGroups[%d].%s", i, field)
		}
	}
	return fmt.Sprintf("managedNodeGroups(%s).%s", group, field)
}
