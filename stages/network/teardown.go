package network

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// Teardown of what others leave in the deployment's VPC. EC2 refuses to
// delete a subnet, security group, internet gateway or VPC that something
// still uses (DependencyViolation), and on EKS such things outlive the
// stages that caused them: the network interfaces of a deleted load
// balancer or RDS instance are released by AWS minutes later; the VPC CNI
// leaves detached ("available") interfaces when nodes go before its
// daemon cleans up; the cloud controller and the AWS Load Balancer
// Controller leave the security groups they made for a load balancer when
// the cluster goes before they finish. eksctl deletes such interfaces and
// groups and retries; so does this stage.

// Tags that mark a security group as made by a Kubernetes controller for
// this cluster: the cloud controller's k8s-elb-* groups carry
// kubernetes.io/cluster/<cluster>=owned ("shared" marks one the user
// brought, which is not the cluster's to delete); the AWS Load Balancer
// Controller's k8s-traffic-<cluster>-* and k8s-<namespace>-<service>-*
// groups carry elbv2.k8s.aws/cluster=<cluster>.
const (
	tagELBv2Cluster = "elbv2.k8s.aws/cluster"
	ownedValue      = "owned"
)

// codeDependencyViolation is EC2's refusal to delete what is still in use.
const codeDependencyViolation = "DependencyViolation"

// heldWait is how a delete that EC2 refuses with DependencyViolation is
// retried: how long, and how often. AWS releases a deleted load balancer's
// or database's interfaces within minutes; Terraform's AWS provider waits
// up to 20 minutes for a subnet. Longer than this, something that is not
// going away on its own holds it, and the error says what.
var heldWait = awsx.WaitPolicy{MinDelay: 5 * time.Second, MaxDelay: 30 * time.Second, Timeout: 10 * time.Minute}

// retryHeld calls del until it succeeds, fails with anything but
// DependencyViolation, or heldWait's bound (the run's wait timeout) passes.
// Between attempts it backs off as the run's wait policy says and calls
// cleanup (which may remove what holds the resource); when the bound
// passes, the error names what holds it, from holders.
func (n *network) retryHeld(ctx context.Context, r engine.Reporter, what string,
	del func(context.Context) error, cleanup func(context.Context) error, holders func(context.Context) ([]string, error)) error {
	wait := n.d.Opts.Wait.For(heldWait)
	lo, hi, bound := wait.MinDelay, wait.MaxDelay, wait.Timeout
	start := time.Now()
	delay := lo
	for {
		err := del(ctx)
		if err == nil || awsx.ErrorCode(err) != codeDependencyViolation {
			return err
		}
		held, herr := holders(ctx)
		if herr != nil {
			return herr
		}
		list := "something EC2 does not list (an endpoint, a peering, a mapped public address)"
		if len(held) > 0 {
			list = strings.Join(held, ", ")
		}
		if time.Since(start) >= bound {
			return fmt.Errorf("%s is still in use after %s of retries, held by %s: delete those (or the stage or controller that made them), then run down again: %w",
				what, elapsed(start), list, err)
		}
		r.Progress(fmt.Sprintf("waiting for %s: held by %s (%s elapsed)", what, list, elapsed(start)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, hi)
		if cleanup != nil {
			if err := cleanup(ctx); err != nil {
				return err
			}
		}
	}
}

// elapsed is the time since start, to the second (to the millisecond
// under a second, as tests bound the retries).
func elapsed(start time.Time) time.Duration {
	if d := time.Since(start); d < time.Second {
		return d.Round(time.Millisecond)
	}
	return time.Since(start).Round(time.Second)
}

// interfaces lists the network interfaces matching filters.
func (n *network) interfaces(ctx context.Context, filters ...ec2types.Filter) ([]ec2types.NetworkInterface, error) {
	var out []ec2types.NetworkInterface
	pages := ec2.NewDescribeNetworkInterfacesPaginator(n.d.AWS.EC2, &ec2.DescribeNetworkInterfacesInput{Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe network interfaces: %w", err)
		}
		out = append(out, page.NetworkInterfaces...)
	}
	return out, nil
}

// describeInterface says what an interface is, as a holder in a message:
// "eni-0abc (ELB net/k8s-coder-coder-1a2b/3c4d, in-use)".
func describeInterface(e ec2types.NetworkInterface) string {
	what := aws.ToString(e.Description)
	if what == "" {
		what = string(e.InterfaceType)
	}
	parts := []string{what, string(e.Status)}
	if e.Attachment != nil && aws.ToString(e.Attachment.InstanceId) != "" {
		parts = append(parts, "attached to "+aws.ToString(e.Attachment.InstanceId))
	}
	if aws.ToBool(e.RequesterManaged) {
		parts = append(parts, "managed by AWS, released on its own")
	}
	return aws.ToString(e.NetworkInterfaceId) + " (" + strings.Join(parts, ", ") + ")"
}

// interfaceHolders names the interfaces matching filters.
func (n *network) interfaceHolders(ctx context.Context, filters ...ec2types.Filter) ([]string, error) {
	list, err := n.interfaces(ctx, filters...)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		out = append(out, "network interface "+describeInterface(e))
	}
	return out, nil
}

// deleteLeftovers removes from a VPC coderctl created what holds its
// subnets and the VPC itself but belongs to no stage: detached network
// interfaces, and the security groups Kubernetes controllers made for this
// cluster's load balancers. Never called for an existing VPC (vpc.id).
func (n *network) deleteLeftovers(ctx context.Context, r engine.Reporter, vpcID string) error {
	if err := n.deleteAvailableInterfaces(ctx, r, vpcID); err != nil {
		return err
	}
	return n.deleteClusterSecurityGroups(ctx, r, vpcID)
}

// deleteAvailableInterfaces deletes the interfaces in the VPC that nothing
// is attached to: left by the VPC CNI (aws-K8S-i-…) or by a load balancer.
// The VPC is the deployment's, and such an interface would hold it
// forever. Interfaces AWS manages (requester-managed) cannot be deleted by
// anyone and go on their own; an interface tagged for another deployment
// is left alone.
func (n *network) deleteAvailableInterfaces(ctx context.Context, r engine.Reporter, vpcID string) error {
	list, err := n.interfaces(ctx, filter("vpc-id", vpcID), filter("status", string(ec2types.NetworkInterfaceStatusAvailable)))
	if err != nil {
		return err
	}
	for _, e := range list {
		tags := awsx.EC2TagMap(e.TagSet)
		if e.Status != ec2types.NetworkInterfaceStatusAvailable || aws.ToString(e.VpcId) != vpcID || aws.ToBool(e.RequesterManaged) ||
			(tags[awsx.TagDeployment] != "" && tags[awsx.TagDeployment] != n.d.Deployment()) {
			continue
		}
		id := aws.ToString(e.NetworkInterfaceId)
		_, err := n.d.AWS.EC2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
		switch {
		case err == nil:
			r.Progress("deleted detached network interface " + describeInterface(e))
		case awsx.IsNotFound(err):
		case isInUse(err):
			// Attached again, or AWS's own: what holds the subnet is named
			// if it still does.
		default:
			return fmt.Errorf("delete network interface %s in VPC %s: %w", describeInterface(e), vpcID, err)
		}
	}
	return nil
}

// isInUse: the interface got attached since it was listed, or AWS manages it.
func isInUse(err error) bool {
	switch awsx.ErrorCode(err) {
	case "InvalidNetworkInterface.InUse", "OperationNotPermitted", "UnauthorizedOperation":
		return true
	}
	return false
}

// isClusterGroup reports whether a security group was made by a Kubernetes
// controller for this cluster's load balancers, by its tags (never by name
// alone), and is not another deployment's.
func (n *network) isClusterGroup(sg ec2types.SecurityGroup) bool {
	tags := awsx.EC2TagMap(sg.Tags)
	if aws.ToString(sg.GroupName) == "default" || (tags[awsx.TagDeployment] != "" && tags[awsx.TagDeployment] != n.d.Deployment()) {
		return false
	}
	cluster := n.d.Deployment()
	return tags[tagClusterPrefix+cluster] == ownedValue || tags[tagELBv2Cluster] == cluster
}

// clusterSecurityGroups lists the VPC's groups that isClusterGroup accepts.
func (n *network) clusterSecurityGroups(ctx context.Context, vpcID string) ([]ec2types.SecurityGroup, error) {
	return n.securityGroupsIn(ctx, vpcID, nil, n.isClusterGroup)
}

// securityGroupsIn lists the groups in the VPC that match filters and keep.
func (n *network) securityGroupsIn(ctx context.Context, vpcID string, filters []ec2types.Filter, keep func(ec2types.SecurityGroup) bool) ([]ec2types.SecurityGroup, error) {
	var out []ec2types.SecurityGroup
	in := &ec2.DescribeSecurityGroupsInput{Filters: append(filters, filter("vpc-id", vpcID))}
	pages := ec2.NewDescribeSecurityGroupsPaginator(n.d.AWS.EC2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find security groups in VPC %s: %w", vpcID, err)
		}
		for _, sg := range page.SecurityGroups {
			if aws.ToString(sg.VpcId) == vpcID && keep(sg) {
				out = append(out, sg)
			}
		}
	}
	return out, nil
}

// deleteClusterSecurityGroups deletes the load balancer groups the
// cluster's controllers left. One still in use (its load balancer's
// interfaces not yet released) is left for the next attempt: the subnet
// and VPC retries call this again, and name it if it stays.
func (n *network) deleteClusterSecurityGroups(ctx context.Context, r engine.Reporter, vpcID string) error {
	sgs, err := n.clusterSecurityGroups(ctx, vpcID)
	if err != nil || len(sgs) == 0 {
		return err
	}
	return n.deleteSecurityGroups(ctx, r, vpcID, sgs, " the cluster's load balancer controller left")
}

// deleteSecurityGroups deletes sgs, the rules that reference one another
// first (a referenced group cannot be deleted). A group still in use is
// skipped: the caller's retry comes back to it. left ends the progress
// line (who made the group).
func (n *network) deleteSecurityGroups(ctx context.Context, r engine.Reporter, vpcID string, sgs []ec2types.SecurityGroup, left string) error {
	for _, sg := range sgs {
		if err := n.revokeGroupReferences(ctx, sg); err != nil {
			return err
		}
	}
	for _, sg := range sgs {
		id := aws.ToString(sg.GroupId)
		_, err := n.d.AWS.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		switch {
		case err == nil:
			r.Progress(fmt.Sprintf("deleted security group %s (%s)%s", id, aws.ToString(sg.GroupName), left))
		case awsx.IsNotFound(err), awsx.ErrorCode(err) == codeDependencyViolation:
		default:
			return fmt.Errorf("delete security group %s (%s) in VPC %s: %w", id, aws.ToString(sg.GroupName), vpcID, err)
		}
	}
	return nil
}

// vpcHolders names what is still in a VPC that keeps it from being deleted.
func (n *network) vpcHolders(ctx context.Context, vpcID string) ([]string, error) {
	out, err := n.interfaceHolders(ctx, filter("vpc-id", vpcID))
	if err != nil {
		return nil, err
	}
	subnets, err := n.d.AWS.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{filter("vpc-id", vpcID)}})
	if err != nil {
		return nil, fmt.Errorf("describe subnets of %s: %w", vpcID, err)
	}
	for _, s := range subnets.Subnets {
		out = append(out, fmt.Sprintf("subnet %s (%s)", aws.ToString(s.SubnetId), nameOf(s.Tags)))
	}
	sgs, err := n.d.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{filter("vpc-id", vpcID)}})
	if err != nil {
		return nil, fmt.Errorf("describe security groups of %s: %w", vpcID, err)
	}
	for _, sg := range sgs.SecurityGroups {
		if aws.ToString(sg.GroupName) != "default" {
			out = append(out, fmt.Sprintf("security group %s (%s)", aws.ToString(sg.GroupId), aws.ToString(sg.GroupName)))
		}
	}
	igws, err := n.d.AWS.EC2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []ec2types.Filter{filter("attachment.vpc-id", vpcID)}})
	if err != nil {
		return nil, fmt.Errorf("describe internet gateways of %s: %w", vpcID, err)
	}
	for _, g := range igws.InternetGateways {
		out = append(out, "internet gateway "+aws.ToString(g.InternetGatewayId))
	}
	return out, nil
}

// publicAddressHolders names what maps a public address in the VPC: an
// internet gateway cannot be detached while any does.
func (n *network) publicAddressHolders(ctx context.Context, vpcID string) ([]string, error) {
	list, err := n.interfaces(ctx, filter("vpc-id", vpcID))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list {
		if e.Association != nil && aws.ToString(e.Association.PublicIp) != "" {
			out = append(out, fmt.Sprintf("network interface %s with public address %s", describeInterface(e), aws.ToString(e.Association.PublicIp)))
		}
	}
	return out, nil
}
