package eks

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// The shared security group: coderctl's stand-in for the cluster security
// group, which the database's ingress rule names.
//
// EKS creates its own cluster security group (clusterSecurityGroupId) and
// every managed node carries it; other stages' rules (the database's 5432
// ingress) name it. moto does not model it: DescribeCluster has neither
// clusterSecurityGroupId nor vpcId. So coderctl creates
// "<cluster>-cluster-shared" in the VPC and passes it at creation as an
// additional control-plane security group: on AWS it is a harmless extra
// group on the control plane's network interfaces (no rules beyond the
// default egress), under moto it stands in for the cluster security group.
// CLUSTER_SECURITY_GROUP_ID is EKS's group when EKS reports one, else this.

// findSharedSG returns the shared group's ID ("" when it does not exist).
// vpcID may be empty (destroy without network outputs): then the
// deployment tag narrows the search.
func (s *stage) findSharedSG(ctx context.Context, vpcID string) (string, error) {
	filters := []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{s.sharedSGName()}}}
	if vpcID != "" {
		filters = append(filters, ec2types.Filter{Name: aws.String("vpc-id"), Values: []string{vpcID}})
	} else {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag:" + awsx.TagDeployment), Values: []string{s.d.Deployment()}})
	}
	out, err := s.d.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil {
		return "", awsx.Describe("EC2 DescribeSecurityGroups "+s.sharedSGName(), err)
	}
	for _, g := range out.SecurityGroups {
		if !s.ownedBy(awsx.EC2TagMap(g.Tags)) {
			return "", s.foreignError("security group", s.sharedSGName()+" ("+aws.ToString(g.GroupId)+")")
		}
		return aws.ToString(g.GroupId), nil
	}
	return "", nil
}

// ensureSharedSG finds or creates the shared group. EC2 has no client
// token for security groups; the group name, unique in a VPC, makes a
// repeated create answer InvalidGroup.Duplicate, and we find it then.
func (s *stage) ensureSharedSG(ctx context.Context, vpcID string) (string, error) {
	if id, err := s.findSharedSG(ctx, vpcID); err != nil || id != "" {
		return id, err
	}
	out, err := s.d.AWS.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(s.sharedSGName()),
		Description: aws.String("Control plane of EKS cluster " + s.clusterName() + " (coderctl)"),
		VpcId:       aws.String(vpcID),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeSecurityGroup,
			Tags:         awsx.TagList(s.tags(s.sharedSGName()), ec2Tag),
		}},
	})
	if awsx.ErrorCode(err) == "InvalidGroup.Duplicate" {
		return s.findSharedSG(ctx, vpcID)
	}
	if err != nil {
		return "", awsx.Describe("EC2 CreateSecurityGroup "+s.sharedSGName(), err)
	}
	return aws.ToString(out.GroupId), nil
}

func ec2Tag(k, v string) ec2types.Tag { return ec2types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// clusterSecurityGroup picks CLUSTER_SECURITY_GROUP_ID (see above).
func clusterSecurityGroup(c *ekstypes.Cluster, shared string) string {
	if c != nil && c.ResourcesVpcConfig != nil {
		if id := aws.ToString(c.ResourcesVpcConfig.ClusterSecurityGroupId); id != "" {
			return id
		}
	}
	return shared
}

// deleteSharedSG deletes the shared group, retrying while the deleted
// control plane's network interfaces still hold it.
func (s *stage) deleteSharedSG(ctx context.Context, r engine.Reporter) error {
	id, err := s.findSharedSG(ctx, s.d.State.Get(names.KeyVPCID))
	if err != nil || id == "" {
		return err
	}
	r.Progress("deleting security group " + s.sharedSGName())
	return awsx.Poll(ctx, r, "security group "+id+" to be released", s.d.Opts.Wait, sgDeleteTimeout, func(ctx context.Context) (bool, string, error) {
		_, err := s.d.AWS.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		switch {
		case err == nil, awsx.IsNotFound(err):
			return true, "deleted", nil
		case awsx.ErrorCode(err) == "DependencyViolation":
			return false, "still in use", nil
		}
		return false, "", awsx.Describe("EC2 DeleteSecurityGroup "+id, err)
	})
}
