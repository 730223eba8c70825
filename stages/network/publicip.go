package network

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
)

// Public subnets and MapPublicIpOnLaunch.
//
// A managed node group with privateNetworking: false (eksctl's default)
// runs in the public subnets (PUBLIC_SUBNET_IDS; see the nodegroups stage's
// subnetsFor). Its nodes have no NAT: they reach the EKS endpoint, ECR and
// STS through the internet gateway, so they need a public IPv4 address, and
// EKS fails such a group after about twenty minutes with
// Ec2SubnetInvalidConfiguration when a subnet does not assign one at
// launch. eksctl sets MapPublicIpOnLaunch on every public subnet it creates
// (pkg/cfn/builder/vpc_ipv4.go) and, for an existing VPC, refuses a public
// node group whose subnets lack it (pkg/vpc ValidateLegacySubnetsForNodeGroups).
// coderctl does the same: its own public subnets get the attribute (set,
// converged, verified); an existing VPC's are checked and never changed.

// checkPublicIP names the verify check.
const checkPublicIP = "public-ip-on-launch"

// publicIPReason says, in plans and checks, why the attribute matters.
const publicIPReason = "nodes of managed node groups with privateNetworking: false need a public IPv4 address"

// mapsPublicIP reports whether instances launched into s get a public IPv4
// address.
func mapsPublicIP(s ec2types.Subnet) bool { return aws.ToBool(s.MapPublicIpOnLaunch) }

// enablePublicIP turns MapPublicIpOnLaunch on for one of coderctl's public
// subnets; nothing is called when it is on already. CreateSubnet cannot set
// it, so a new subnet always takes this call; a run killed between the two
// leaves it off and the next run's plan shows it and its apply sets it.
func (n *network) enablePublicIP(ctx context.Context, r engine.Reporter, s ec2types.Subnet) error {
	if mapsPublicIP(s) {
		return nil
	}
	id := aws.ToString(s.SubnetId)
	_, err := n.d.AWS.EC2.ModifySubnetAttribute(ctx, &ec2.ModifySubnetAttributeInput{
		SubnetId:            aws.String(id),
		MapPublicIpOnLaunch: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("turn on MapPublicIpOnLaunch of public subnet %s: %w", id, err)
	}
	r.Progress(fmt.Sprintf("public subnet %s now assigns public IPv4 addresses at launch", id))
	return nil
}

// publicGroup is a managed node group that runs in the public subnets.
type publicGroup struct {
	Index int // in managedNodeGroups, for the field path
	Name  string
}

func (g publicGroup) field() string {
	return fmt.Sprintf("managedNodeGroups[%d].privateNetworking", g.Index)
}

// publicGroups lists the managed node groups with privateNetworking false,
// in file order (the groups config.NodeGroups lists).
func (n *network) publicGroups() []publicGroup {
	var out []publicGroup
	for i, ng := range n.d.Cluster.ManagedNodeGroups {
		if ng != nil && ng.NodeGroupBase != nil && !ng.PrivateNetworking {
			out = append(out, publicGroup{Index: i, Name: ng.Name})
		}
	}
	return out
}

// checkPublicGroupsConfig refuses, from the file alone, a public node group
// in an existing VPC that lists no public subnets: the group would have no
// subnet to run in.
func (n *network) checkPublicGroupsConfig() error {
	groups := n.publicGroups()
	if len(groups) == 0 || !n.existing() {
		return nil
	}
	for _, c := range n.configuredSubnets() {
		if c.Kind == kindPublic {
			return nil
		}
	}
	g := groups[0]
	return fault.Input(n.d.ConfigPath, g.field(),
		"set privateNetworking: true, or list the VPC's public subnets under vpc.subnets.public",
		"node group %q runs in public subnets (privateNetworking is false, eksctl's default), but vpc.subnets.public lists none", g.Name)
}

// checkExistingPublicIP refuses a public node group in an existing VPC whose
// public subnets do not assign public IPv4 addresses: EKS would fail the
// group after twenty minutes, and coderctl does not change a VPC it does
// not own. The first such subnet is named, with its field.
func (n *network) checkExistingPublicIP(ex *existingNetwork) error {
	groups := n.publicGroups()
	if len(groups) == 0 {
		return nil
	}
	off := publicIPOff(ex.Public)
	if len(off) == 0 {
		return nil
	}
	id := off[0]
	g := groups[0]
	return fault.Input(n.d.ConfigPath, n.publicSubnetField(id),
		fmt.Sprintf("enable auto-assign public IPv4 on subnet %s (aws ec2 modify-subnet-attribute --subnet-id %s --map-public-ip-on-launch), or set %s: true", id, id, g.field()),
		"public subnet %s does not assign public IPv4 addresses at launch (MapPublicIpOnLaunch is off), and node group %q runs there (%s is false); EKS would fail the group after about 20 minutes with Ec2SubnetInvalidConfiguration",
		id, g.Name, g.field())
}

// publicSubnetField is the vpc.subnets.public entry naming subnet id.
func (n *network) publicSubnetField(id string) string {
	for _, c := range n.configuredSubnets() {
		if c.Kind == kindPublic && c.Spec.ID == id {
			return c.Field
		}
	}
	// Listed by CIDR: the key is still the best field to name.
	return "vpc.subnets.public"
}

// publicIPOff are the IDs of the subnets that do not assign public IPv4
// addresses, in the order given.
func publicIPOff(subnets []ec2types.Subnet) []string {
	var off []string
	for _, s := range subnets {
		if !mapsPublicIP(s) {
			off = append(off, aws.ToString(s.SubnetId))
		}
	}
	return off
}

// checkPublicIPOf: coderctl's public subnets assign public IPv4 addresses;
// an existing VPC's must where a node group runs in them.
func (n *network) checkPublicIPOf(o *observation) engine.Check {
	off := publicIPOff(o.public)
	groups := n.publicGroups()
	switch {
	case len(o.public) == 0:
		return engine.Passf(checkPublicIP, "no public subnets")
	case len(off) == 0:
		return engine.Passf(checkPublicIP, "%d public subnets assign public IPv4 addresses at launch", len(o.public))
	case o.layout != nil:
		return engine.Failf(checkPublicIP, hintApplyRepair, "public subnets %s do not assign public IPv4 addresses at launch (MapPublicIpOnLaunch off); %s",
			strings.Join(off, ", "), publicIPReason)
	case len(groups) == 0:
		return engine.Passf(checkPublicIP, "no node group runs in the public subnets (privateNetworking: true everywhere); %s do not assign public IPv4 addresses",
			strings.Join(off, ", "))
	}
	return engine.Failf(checkPublicIP,
		fmt.Sprintf("enable auto-assign public IPv4 on %s in the VPC console (coderctl does not change an existing VPC), or set %s: true", strings.Join(off, ", "), groups[0].field()),
		"public subnets %s do not assign public IPv4 addresses at launch, and node group %q runs there", strings.Join(off, ", "), groups[0].Name)
}
