package network

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

func (n *network) planNAT(ctx context.Context) ([]engine.Action, error) {
	if n.existing() {
		return []engine.Action{n.existingAction("NAT gateways")}, nil
	}
	l, err := n.layout(ctx)
	if err != nil {
		return nil, err
	}
	if len(l.natZones()) == 0 {
		return []engine.Action{{Kind: engine.Nothing, Resource: "NAT gateways", Reason: "vpc.nat.gateway is Disable in " + n.d.ConfigPath}}, nil
	}
	v, err := n.findVPC(ctx)
	if err != nil {
		return nil, err
	}
	live, eips := map[string]ec2types.NatGateway{}, []ec2types.Address{}
	if v != nil {
		all, err := n.taggedNATs(ctx, aws.ToString(v.VpcId))
		if err != nil {
			return nil, err
		}
		live = liveNATs(all)
		if eips, err = n.taggedEIPs(ctx); err != nil {
			return nil, err
		}
	}
	var acts []engine.Action
	for _, z := range l.natZones() {
		if _, ok := eipNamed(eips, n.eipName(z)); !ok {
			acts = append(acts, engine.Action{Kind: engine.Create, Resource: "Elastic IP " + n.eipName(z), Reason: "for the NAT gateway in " + z})
		}
		g, ok := live[n.natName(z)]
		switch {
		case !ok:
			acts = append(acts, engine.Action{Kind: engine.Create, Resource: "NAT gateway " + n.natName(z),
				Reason: fmt.Sprintf("vpc.nat.gateway is %s; none pending or available in %s", l.NAT, z)})
		default:
			acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: "NAT gateway " + aws.ToString(g.NatGatewayId), Reason: string(g.State)})
		}
	}
	return acts, nil
}

func (n *network) applyNAT(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return nil
	}
	l, vpcID, err := n.layoutAndVPCID(ctx)
	if err != nil || len(l.natZones()) == 0 {
		return err
	}
	subnets, err := n.ownSubnets(ctx, vpcID)
	if err != nil {
		return err
	}
	eips, err := n.taggedEIPs(ctx)
	if err != nil {
		return err
	}
	all, err := n.taggedNATs(ctx, vpcID)
	if err != nil {
		return err
	}
	live := liveNATs(all)
	var waitFor []string
	for _, z := range l.natZones() {
		if g, ok := live[n.natName(z)]; ok {
			if g.State != ec2types.NatGatewayStateAvailable {
				waitFor = append(waitFor, aws.ToString(g.NatGatewayId))
			}
			continue
		}
		if err := n.awaitDeleting(ctx, r, all, n.natName(z)); err != nil {
			return err
		}
		id, err := n.createNAT(ctx, r, z, subnets, eips, all)
		if err != nil {
			return err
		}
		waitFor = append(waitFor, id)
	}
	if len(waitFor) == 0 {
		return nil
	}
	return n.waitNATs(ctx, r, waitFor)
}

// createNAT creates the zone's NAT gateway in its public subnet with its
// Elastic IP.
func (n *network) createNAT(ctx context.Context, r engine.Reporter, zone string, subnets map[string]ec2types.Subnet,
	eips []ec2types.Address, all []ec2types.NatGateway) (string, error) {
	pub, ok := subnets[n.subnetName(kindPublic, zone)]
	if !ok {
		return "", fmt.Errorf("public subnet %s is missing: run 'coderctl stage %s apply' again to create it", n.subnetName(kindPublic, zone), Name)
	}
	allocID, err := n.ensureEIP(ctx, r, zone, eips, liveAllocations(all))
	if err != nil {
		return "", err
	}
	subnetID := aws.ToString(pub.SubnetId)
	// The token names this subnet and address, so a retried call gets the
	// same gateway back. The zone's dead gateways (failed, or deleted in the
	// last hour while AWS still lists them) are part of it: EC2 would
	// otherwise answer a repair with the dead gateway the same token made.
	token := clientToken(append([]string{n.d.Deployment(), "nat", subnetID, allocID}, deadNATs(all, n.natName(zone))...)...)
	out, err := n.d.AWS.EC2.CreateNatGateway(ctx, &ec2.CreateNatGatewayInput{
		SubnetId:          aws.String(subnetID),
		AllocationId:      aws.String(allocID),
		ClientToken:       aws.String(token),
		ConnectivityType:  ec2types.ConnectivityTypePublic,
		TagSpecifications: tagSpec(ec2types.ResourceTypeNatgateway, n.tags(n.natName(zone))),
	})
	if err != nil {
		return "", fmt.Errorf("create NAT gateway %s in %s: %w", n.natName(zone), subnetID, err)
	}
	id := aws.ToString(out.NatGateway.NatGatewayId)
	r.Progress(fmt.Sprintf("created NAT gateway %s in %s", id, zone))
	return id, nil
}

// deadNATs are the IDs of the zone's gateways that failed or are deleted.
func deadNATs(all []ec2types.NatGateway, name string) []string {
	var ids []string
	for _, g := range all {
		if nameOf(g.Tags) == name && !isLive(g) {
			ids = append(ids, aws.ToString(g.NatGatewayId))
		}
	}
	sort.Strings(ids)
	return ids
}

// awaitDeleting waits for the zone's gateways that are being deleted (by
// hand, or by a destroy that was interrupted): until they are gone they
// hold the zone's Elastic IP.
func (n *network) awaitDeleting(ctx context.Context, r engine.Reporter, all []ec2types.NatGateway, name string) error {
	var ids []string
	for _, g := range all {
		if nameOf(g.Tags) == name && g.State == ec2types.NatGatewayStateDeleting {
			ids = append(ids, aws.ToString(g.NatGatewayId))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return n.waitNATsDeleted(ctx, r, ids)
}

// liveAllocations are the Elastic IPs that pending or available gateways use.
func liveAllocations(all []ec2types.NatGateway) map[string]bool {
	used := map[string]bool{}
	for _, g := range all {
		if isLive(g) {
			for _, a := range g.NatGatewayAddresses {
				used[aws.ToString(a.AllocationId)] = true
			}
		}
	}
	return used
}

// ensureEIP finds the zone's tagged Elastic IP or allocates one. Allocation
// takes no client token, so the tag lookup is what keeps a re-run from
// allocating a second address. An association that outlived its gateway
// (AWS drops it when the gateway is deleted; moto keeps it) is removed, or
// the new gateway could not take the address.
func (n *network) ensureEIP(ctx context.Context, r engine.Reporter, zone string, eips []ec2types.Address, inUse map[string]bool) (string, error) {
	if a, ok := eipNamed(eips, n.eipName(zone)); ok {
		id := aws.ToString(a.AllocationId)
		if a.AssociationId != nil && !inUse[id] {
			if _, err := n.d.AWS.EC2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: a.AssociationId}); err != nil && !awsx.IsNotFound(err) {
				return "", fmt.Errorf("free Elastic IP %s from its deleted NAT gateway: %w", id, err)
			}
			r.Progress("freed Elastic IP " + id + " from a deleted NAT gateway")
		}
		return id, nil
	}
	out, err := n.d.AWS.EC2.AllocateAddress(ctx, &ec2.AllocateAddressInput{
		Domain:            ec2types.DomainTypeVpc,
		TagSpecifications: tagSpec(ec2types.ResourceTypeElasticIp, n.tags(n.eipName(zone))),
	})
	if err != nil {
		return "", fmt.Errorf("allocate Elastic IP %s (check the EC2-VPC Elastic IPs quota): %w", n.eipName(zone), err)
	}
	r.Progress(fmt.Sprintf("allocated Elastic IP %s (%s)", aws.ToString(out.AllocationId), aws.ToString(out.PublicIp)))
	return aws.ToString(out.AllocationId), nil
}

func eipNamed(eips []ec2types.Address, name string) (ec2types.Address, bool) {
	for _, a := range eips {
		if nameOf(a.Tags) == name {
			return a, true
		}
	}
	return ec2types.Address{}, false
}

func (n *network) waitNATs(ctx context.Context, r engine.Reporter, ids []string) error {
	wait := n.d.Opts.Wait.For(natWait)
	w := ec2.NewNatGatewayAvailableWaiter(n.d.AWS.EC2, func(o *ec2.NatGatewayAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "NAT gateways "+strings.Join(ids, ", "), natStates, o.Retryable)
	})
	err := w.Wait(ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: ids}, wait.Timeout)
	return awsx.Describe("wait for NAT gateways to be available", err)
}

// natStates summarizes gateways' states: "available 2, pending 1".
func natStates(out *ec2.DescribeNatGatewaysOutput) string {
	count := map[string]int{}
	for _, g := range out.NatGateways {
		count[string(g.State)]++
	}
	var parts []string
	for st, c := range count {
		parts = append(parts, fmt.Sprintf("%s %d", st, c))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "not visible yet"
	}
	return strings.Join(parts, ", ")
}

// destroyNAT deletes the deployment's NAT gateways, waits until they are
// gone (their Elastic IPs stay associated until then), and releases the
// Elastic IPs.
func (n *network) destroyNAT(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return nil
	}
	all, err := n.taggedNATs(ctx, "")
	if err != nil {
		return err
	}
	var waitFor []string
	for _, g := range all {
		id := aws.ToString(g.NatGatewayId)
		switch g.State {
		case ec2types.NatGatewayStateDeleted:
			continue
		case ec2types.NatGatewayStateDeleting:
		default:
			if _, err := n.d.AWS.EC2.DeleteNatGateway(ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: aws.String(id)}); err != nil {
				if awsx.IsNotFound(err) {
					continue
				}
				return fmt.Errorf("delete NAT gateway %s: %w", id, err)
			}
			r.Progress("deleting NAT gateway " + id)
		}
		waitFor = append(waitFor, id)
	}
	if len(waitFor) > 0 {
		if err := n.waitNATsDeleted(ctx, r, waitFor); err != nil {
			return err
		}
	}
	return n.releaseEIPs(ctx, r)
}

func (n *network) waitNATsDeleted(ctx context.Context, r engine.Reporter, ids []string) error {
	wait := n.d.Opts.Wait.For(natWait)
	w := ec2.NewNatGatewayDeletedWaiter(n.d.AWS.EC2, func(o *ec2.NatGatewayDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "NAT gateways "+strings.Join(ids, ", ")+" to be deleted", natStates, o.Retryable)
	})
	err := w.Wait(ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: ids}, wait.Timeout)
	return awsx.Describe("wait for NAT gateways to be deleted", err)
}

// releaseEIPs releases the deployment's Elastic IPs. AWS disassociates an
// address from a deleted NAT gateway shortly after the gateway is gone, so
// an address still "in use" is retried for a while.
func (n *network) releaseEIPs(ctx context.Context, r engine.Reporter) error {
	eips, err := n.taggedEIPs(ctx)
	if err != nil {
		return err
	}
	for _, a := range eips {
		id := aws.ToString(a.AllocationId)
		release := func(ctx context.Context) (bool, string, error) {
			_, err := n.d.AWS.EC2.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: aws.String(id)})
			switch {
			case err == nil || awsx.IsNotFound(err):
				return true, "released", nil
			case awsx.ErrorCode(err) == "InvalidIPAddress.InUse":
				return false, "still associated", nil
			}
			return false, "", fmt.Errorf("release Elastic IP %s: %w", id, err)
		}
		if err := awsx.Poll(ctx, r, "Elastic IP "+id, n.d.Opts.Wait, 5*time.Minute, release); err != nil {
			return err
		}
	}
	return nil
}
