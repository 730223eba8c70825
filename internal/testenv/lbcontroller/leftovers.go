package lbcontroller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/coderctl/coderctl/internal/awsx"
)

// The NLB's security group and network interfaces, and what is left of
// them when the NLB goes.
//
// The cloud controller with NLBSecurityGroupMode = Managed
// (cloud-provider-aws docs/nlb_security_groups.md) gives each NLB a
// security group of its own, tagged kubernetes.io/cluster/<cluster>=owned
// and kubernetes.io/cloud-provider-aws/NLBSecurityGroupMode=Managed,
// allowing the listeners' ports, and deletes it after the NLB, retrying
// while EC2 answers DependencyViolation. The NLB itself has one network
// interface per subnet ("ELB net/<name>/<id>"), which AWS releases some
// minutes after the NLB is deleted: until then the group cannot go, nor can
// the subnets or the VPC.
//
// moto neither makes an NLB's interfaces nor refuses to delete a group in
// use, so the stand-in makes the interfaces itself (moto shows them
// "available"; on AWS they are in-use and AWS-managed) and checks the
// group's users before deleting it, as EC2 would. It never releases the
// interfaces: the worst case, a cluster torn down before AWS released them
// and the controller finished retrying, which leaves the interfaces and
// the group for the teardown (eksctl's pkg/vpc and pkg/elb cleanups exist
// for exactly this). Unlike the controller, which keeps the Service's
// finalizer until the group is gone, the stand-in gives the group up and
// lets the Service go, or it would hold the Service forever.

// Tags on the managed group.
const (
	TagNLBSecurityGroupMode = "kubernetes.io/cloud-provider-aws/NLBSecurityGroupMode"
	managedMode             = "Managed"
	// SecurityGroupPrefix begins the groups' names, as the cloud
	// controller names the groups of its load balancers.
	SecurityGroupPrefix = "k8s-elb-"
)

// InterfaceDescription is how AWS describes an NLB's network interface.
func InterfaceDescription(lb elbtypes.LoadBalancer) string {
	arn := aws.ToString(lb.LoadBalancerArn)
	id := arn[strings.LastIndexByte(arn, '/')+1:]
	return "ELB net/" + aws.ToString(lb.LoadBalancerName) + "/" + id
}

// ensureSecurityGroup finds the Service's managed group by its owner tags
// or creates it in the VPC of the subnets, allowing TCP on the listeners'
// ports from anywhere (the NLB is internet-facing or internal by its
// subnets, not by the group). It returns the group's ID.
func (c *cloud) ensureSecurityGroup(ctx context.Context, name string, subnets []string, owner map[string]string, listeners []listenerSpec) (string, error) {
	if sg, err := c.findSecurityGroup(ctx, owner); err != nil || sg != nil {
		if sg != nil {
			return aws.ToString(sg.GroupId), nil
		}
		return "", err
	}
	out, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets[:1]})
	if err != nil || len(out.Subnets) == 0 {
		return "", fmt.Errorf("find the VPC of subnet %s: %w", subnets[0], err)
	}
	vpcID := aws.ToString(out.Subnets[0].VpcId)
	tags := map[string]string{TagNLBSecurityGroupMode: managedMode, "Name": SecurityGroupPrefix + name}
	for k, v := range owner {
		tags[k] = v
	}
	made, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(SecurityGroupPrefix + name),
		Description: aws.String(fmt.Sprintf("Security group for Kubernetes NLB %s (%s)", name, owner[TagServiceName])),
		VpcId:       aws.String(vpcID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup,
			Tags: awsx.EC2Tags(tags)}},
	})
	if err != nil {
		return "", fmt.Errorf("create security group %s%s: %w", SecurityGroupPrefix, name, err)
	}
	id := aws.ToString(made.GroupId)
	var perms []ec2types.IpPermission
	for _, l := range listeners {
		proto := "tcp"
		if l.Protocol == elbtypes.ProtocolEnumUdp {
			proto = "udp"
		}
		perms = append(perms, ec2types.IpPermission{IpProtocol: aws.String(proto), FromPort: aws.Int32(l.Port), ToPort: aws.Int32(l.Port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}})
	}
	if len(perms) > 0 {
		if _, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms}); err != nil {
			return "", fmt.Errorf("allow the listeners' ports in %s: %w", id, err)
		}
	}
	return id, nil
}

// findSecurityGroup returns the managed group carrying owner's tags, or nil.
func (c *cloud) findSecurityGroup(ctx context.Context, owner map[string]string) (*ec2types.SecurityGroup, error) {
	filters := []ec2types.Filter{{Name: aws.String("tag:" + TagNLBSecurityGroupMode), Values: []string{managedMode}}}
	for _, k := range slices.Sorted(maps.Keys(owner)) {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{owner[k]}})
	}
	out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("describe security groups: %w", err)
	}
	for i := range out.SecurityGroups {
		if ec2HasTags(out.SecurityGroups[i].Tags, owner) {
			return &out.SecurityGroups[i], nil
		}
	}
	return nil, nil
}

// createInterfaces makes the NLB's network interface in each of its
// subnets, in its group, as ELB does when it provisions the NLB.
func (c *cloud) createInterfaces(ctx context.Context, lb elbtypes.LoadBalancer, subnets []string, sgID string) error {
	for _, s := range subnets {
		_, err := c.ec2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(s), Description: aws.String(InterfaceDescription(lb)), Groups: []string{sgID},
		})
		if err != nil {
			return fmt.Errorf("create network interface of %s in %s: %w", aws.ToString(lb.LoadBalancerName), s, err)
		}
	}
	return nil
}

// deleteSecurityGroup deletes the Service's managed group unless network
// interfaces still use it, as EC2 refuses then; it returns those users.
func (c *cloud) deleteSecurityGroup(ctx context.Context, owner map[string]string) (string, []string, error) {
	sg, err := c.findSecurityGroup(ctx, owner)
	if err != nil || sg == nil {
		return "", nil, err
	}
	id := aws.ToString(sg.GroupId)
	out, err := c.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{id}}}})
	if err != nil {
		return id, nil, fmt.Errorf("describe network interfaces in %s: %w", id, err)
	}
	var users []string
	for _, e := range out.NetworkInterfaces {
		users = append(users, aws.ToString(e.NetworkInterfaceId))
	}
	if len(users) > 0 {
		return id, users, nil
	}
	if _, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)}); err != nil {
		return id, nil, fmt.Errorf("delete security group %s: %w", id, err)
	}
	return id, nil, nil
}

// ec2HasTags reports whether an EC2 tag list carries every tag of want.
func ec2HasTags(tags []ec2types.Tag, want map[string]string) bool {
	return awsx.HasTags(awsx.EC2TagMap(tags), want)
}
