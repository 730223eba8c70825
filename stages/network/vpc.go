package network

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// The stage's waits for EC2: the SDK waiters' own delays, and bounds well
// above the seconds a VPC and the minutes a NAT gateway take.
var (
	vpcWait = awsx.WaitPolicy{MinDelay: 15 * time.Second, MaxDelay: 120 * time.Second, Timeout: 5 * time.Minute}
	natWait = awsx.WaitPolicy{MinDelay: 15 * time.Second, MaxDelay: 120 * time.Second, Timeout: 15 * time.Minute}
)

// dnsAttributes are the VPC attributes EKS needs: nodes reach a private API
// endpoint by its DNS name, and register under their private DNS names.
func dnsAttributes() []ec2types.VpcAttributeName {
	return []ec2types.VpcAttributeName{ec2types.VpcAttributeNameEnableDnsSupport, ec2types.VpcAttributeNameEnableDnsHostnames}
}

func (n *network) planVPC(ctx context.Context) ([]engine.Action, error) {
	if n.existing() {
		return []engine.Action{n.existingAction("VPC " + n.d.Cluster.VPC.ID)}, nil
	}
	cidr, err := n.vpcCIDR()
	if err != nil {
		return nil, err
	}
	v, err := n.findVPC(ctx)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return []engine.Action{{Kind: engine.Create, Resource: fmt.Sprintf("VPC %s (%s)", n.vpcName(), cidr),
			Reason: fmt.Sprintf("no VPC in %s or tagged %s=%s", names.KeyVPCID, awsx.TagDeployment, n.d.Deployment())}}, nil
	}
	id := aws.ToString(v.VpcId)
	off, err := n.dnsAttributesOff(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(off) > 0 {
		return []engine.Action{{Kind: engine.Update, Resource: "VPC " + id, Reason: fmt.Sprintf("turn on %v (EKS needs VPC DNS)", off)}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: "VPC " + id, Reason: "exists with DNS support and hostnames"}}, nil
}

// existingAction is the plan of every step when the VPC is the user's.
func (n *network) existingAction(resource string) engine.Action {
	return engine.Action{Kind: engine.Nothing, Resource: resource,
		Reason: fmt.Sprintf("existing VPC %s from vpc.id in %s: coderctl verifies it and changes nothing", n.d.Cluster.VPC.ID, n.d.ConfigPath)}
}

func (n *network) applyVPC(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return n.adoptVPC(ctx)
	}
	cidr, err := n.vpcCIDR()
	if err != nil {
		return err
	}
	v, err := n.findVPC(ctx)
	if err != nil {
		return err
	}
	if v == nil {
		if v, err = n.createVPC(ctx, r, cidr.String()); err != nil {
			return err
		}
	} else if err := n.checkOwnCIDR(v, cidr); err != nil {
		return err
	}
	id := aws.ToString(v.VpcId)
	if err := n.d.Record(map[string]string{names.KeyVPCID: id}); err != nil {
		return err
	}
	if v.State != ec2types.VpcStateAvailable {
		if err := n.waitVPC(ctx, r, id); err != nil {
			return err
		}
	}
	return n.enableDNS(ctx, id)
}

func (n *network) createVPC(ctx context.Context, r engine.Reporter, cidr string) (*ec2types.Vpc, error) {
	out, err := n.d.AWS.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{
		CidrBlock:         aws.String(cidr),
		TagSpecifications: tagSpec(ec2types.ResourceTypeVpc, n.tags(n.vpcName())),
	})
	if err != nil {
		return nil, fmt.Errorf("create VPC %s (%s): %w", n.vpcName(), cidr, err)
	}
	r.Progress("created VPC " + aws.ToString(out.Vpc.VpcId))
	return out.Vpc, nil
}

func (n *network) waitVPC(ctx context.Context, r engine.Reporter, id string) error {
	wait := n.d.Opts.Wait.For(vpcWait)
	w := ec2.NewVpcAvailableWaiter(n.d.AWS.EC2, func(o *ec2.VpcAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "VPC "+id, func(out *ec2.DescribeVpcsOutput) string {
			if len(out.Vpcs) == 0 {
				return "not visible yet"
			}
			return string(out.Vpcs[0].State)
		}, o.Retryable)
	})
	err := w.Wait(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{id}}, wait.Timeout)
	return awsx.Describe("wait for VPC "+id, err)
}

// dnsAttributesOff lists the DNS attributes that are turned off.
func (n *network) dnsAttributesOff(ctx context.Context, id string) ([]ec2types.VpcAttributeName, error) {
	var off []ec2types.VpcAttributeName
	for _, attr := range dnsAttributes() {
		out, err := n.d.AWS.EC2.DescribeVpcAttribute(ctx, &ec2.DescribeVpcAttributeInput{VpcId: aws.String(id), Attribute: attr})
		if err != nil {
			return nil, fmt.Errorf("describe %s of VPC %s: %w", attr, id, err)
		}
		v := out.EnableDnsSupport
		if attr == ec2types.VpcAttributeNameEnableDnsHostnames {
			v = out.EnableDnsHostnames
		}
		if v == nil || !aws.ToBool(v.Value) {
			off = append(off, attr)
		}
	}
	return off, nil
}

// enableDNS turns on the DNS attributes that are off (one per call, as the
// API requires); nothing is called when both are on.
func (n *network) enableDNS(ctx context.Context, id string) error {
	off, err := n.dnsAttributesOff(ctx, id)
	if err != nil {
		return err
	}
	for _, attr := range off {
		in := &ec2.ModifyVpcAttributeInput{VpcId: aws.String(id)}
		on := &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}
		if attr == ec2types.VpcAttributeNameEnableDnsHostnames {
			in.EnableDnsHostnames = on
		} else {
			in.EnableDnsSupport = on
		}
		if _, err := n.d.AWS.EC2.ModifyVpcAttribute(ctx, in); err != nil {
			return fmt.Errorf("turn on %s of VPC %s: %w", attr, id, err)
		}
	}
	return nil
}

// destroyVPC deletes every VPC tagged for the deployment, after the
// security groups other stages left in it with the deployment's tags. A VPC
// without the tags (an existing VPC from vpc.id) is never deleted.
func (n *network) destroyVPC(ctx context.Context, r engine.Reporter) error {
	if !n.existing() {
		vpcs, err := n.taggedVPCs(ctx)
		if err != nil {
			return err
		}
		for _, v := range vpcs {
			if err := n.deleteVPC(ctx, r, aws.ToString(v.VpcId)); err != nil {
				return err
			}
		}
	}
	return n.d.State.Unset(names.KeyVPCID)
}

// deleteVPC deletes the deployment's security groups in the VPC, what
// others left in it, then the VPC; a VPC still in use is retried for a
// bounded time (cleaning up again between attempts), and the error names
// what holds it.
func (n *network) deleteVPC(ctx context.Context, r engine.Reporter, id string) error {
	cleanup := func(ctx context.Context) error {
		if err := n.deleteLeftovers(ctx, r, id); err != nil {
			return err
		}
		return n.deleteOwnSecurityGroups(ctx, r, id)
	}
	if err := cleanup(ctx); err != nil {
		return err
	}
	deleted := false
	err := n.retryHeld(ctx, r, "VPC "+id,
		func(ctx context.Context) error {
			_, err := n.d.AWS.EC2.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(id)})
			switch {
			case err == nil:
				deleted = true
			case awsx.IsNotFound(err):
			default:
				return fmt.Errorf("delete VPC %s: %w", id, err)
			}
			return nil
		},
		cleanup,
		func(ctx context.Context) ([]string, error) { return n.vpcHolders(ctx, id) })
	if err != nil {
		return err
	}
	if deleted {
		r.Progress("deleted VPC " + id)
	}
	return nil
}

// deleteOwnSecurityGroups deletes the security groups in the VPC that carry
// the deployment's tag (from any stage): a VPC cannot be deleted while they
// exist. Rules that reference another of them go first, since a referenced
// group cannot be deleted. A group still in use (a deleted database's
// interfaces are released minutes later) is left for the VPC's retry,
// which calls this again and names what holds it.
func (n *network) deleteOwnSecurityGroups(ctx context.Context, r engine.Reporter, vpcID string) error {
	sgs, err := n.ownSecurityGroups(ctx, vpcID)
	if err != nil || len(sgs) == 0 {
		return err
	}
	return n.deleteSecurityGroups(ctx, r, vpcID, sgs, "")
}

func (n *network) ownSecurityGroups(ctx context.Context, vpcID string) ([]ec2types.SecurityGroup, error) {
	want := map[string]string{awsx.TagDeployment: n.d.Deployment()}
	return n.securityGroupsIn(ctx, vpcID, tagFilters(want), func(sg ec2types.SecurityGroup) bool {
		return aws.ToString(sg.GroupName) != "default" && awsx.HasTags(awsx.EC2TagMap(sg.Tags), want)
	})
}

// revokeGroupReferences removes a group's rules that name other groups.
func (n *network) revokeGroupReferences(ctx context.Context, sg ec2types.SecurityGroup) error {
	id := aws.String(aws.ToString(sg.GroupId))
	if in := referencing(sg.IpPermissions); len(in) > 0 {
		_, err := n.d.AWS.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: id, IpPermissions: in})
		if err != nil && !awsx.IsNotFound(err) {
			return fmt.Errorf("revoke ingress rules of %s: %w", aws.ToString(id), err)
		}
	}
	if out := referencing(sg.IpPermissionsEgress); len(out) > 0 {
		_, err := n.d.AWS.EC2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: id, IpPermissions: out})
		if err != nil && !awsx.IsNotFound(err) {
			return fmt.Errorf("revoke egress rules of %s: %w", aws.ToString(id), err)
		}
	}
	return nil
}

func referencing(perms []ec2types.IpPermission) []ec2types.IpPermission {
	var out []ec2types.IpPermission
	for _, p := range perms {
		if len(p.UserIdGroupPairs) > 0 {
			out = append(out, ec2types.IpPermission{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort, UserIdGroupPairs: p.UserIdGroupPairs})
		}
	}
	return out
}
