package network

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// configuredSubnet is one entry of vpc.subnets.private or .public.
type configuredSubnet struct {
	Kind  string
	Field string // "vpc.subnets.private.us-west-2a", for messages
	Spec  api.AZSubnetSpec
}

// configuredSubnets lists vpc.subnets, private then public, by key.
func (n *network) configuredSubnets() []configuredSubnet {
	subnets := n.d.Cluster.VPC.Subnets
	if subnets == nil {
		return nil
	}
	var out []configuredSubnet
	for _, group := range []struct {
		kind string
		m    api.AZSubnetMapping
	}{{kindPrivate, subnets.Private}, {kindPublic, subnets.Public}} {
		keys := make([]string, 0, len(group.m))
		for k := range group.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, configuredSubnet{Kind: group.kind, Field: "vpc.subnets." + group.kind + "." + k, Spec: group.m[k]})
		}
	}
	return out
}

// existingNetwork is the user's VPC and the subnets the config names in it,
// each kind in zone order.
type existingNetwork struct {
	VPC     ec2types.Vpc
	Private []ec2types.Subnet
	Public  []ec2types.Subnet
}

// resolveExisting finds vpc.id and every configured subnet in it. Anything
// missing, or a subnet of another VPC, is bad input naming the field.
func (n *network) resolveExisting(ctx context.Context) (*existingNetwork, error) {
	id := n.d.Cluster.VPC.ID
	v, err := n.describeVPC(ctx, id)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fault.Input(n.d.ConfigPath, "vpc.id", "check the ID and AWS_REGION, or remove vpc.id to let coderctl create a VPC",
			"VPC %s does not exist in %s", id, n.d.Region())
	}
	if err := n.checkExistingCIDR(v); err != nil {
		return nil, err
	}
	ex := &existingNetwork{VPC: *v}
	for _, c := range n.configuredSubnets() {
		s, err := n.resolveSubnet(ctx, id, c)
		if err != nil {
			return nil, err
		}
		if c.Kind == kindPrivate {
			ex.Private = append(ex.Private, *s)
		} else {
			ex.Public = append(ex.Public, *s)
		}
	}
	sortByZone(ex.Private)
	sortByZone(ex.Public)
	return ex, nil
}

// checkExistingCIDR: vpc.cidr, when given with vpc.id, must be one of the
// VPC's blocks; otherwise the file describes another network.
func (n *network) checkExistingCIDR(v *ec2types.Vpc) error {
	cfg := n.d.Cluster.VPC.CIDR
	if cfg == nil {
		return nil
	}
	var blocks []string
	for _, b := range v.CidrBlockAssociationSet {
		blocks = append(blocks, aws.ToString(b.CidrBlock))
		if aws.ToString(b.CidrBlock) == cfg.String() {
			return nil
		}
	}
	if len(blocks) == 0 {
		blocks = []string{aws.ToString(v.CidrBlock)}
		if blocks[0] == cfg.String() {
			return nil
		}
	}
	return fault.Input(n.d.ConfigPath, "vpc.cidr", "remove vpc.cidr or set it to the VPC's block",
		"%s is not a block of VPC %s (%s)", cfg, aws.ToString(v.VpcId), strings.Join(blocks, ", "))
}

// resolveSubnet finds a configured subnet by ID, else by CIDR inside the VPC.
func (n *network) resolveSubnet(ctx context.Context, vpcID string, c configuredSubnet) (*ec2types.Subnet, error) {
	var s *ec2types.Subnet
	var err error
	switch {
	case c.Spec.ID != "":
		s, err = n.describeSubnet(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{c.Spec.ID}})
		if err == nil && s == nil {
			return nil, fault.Input(n.d.ConfigPath, c.Field+".id", "check the subnet ID and AWS_REGION", "subnet %s does not exist", c.Spec.ID)
		}
	case c.Spec.CIDR != nil:
		s, err = n.describeSubnet(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{filter("vpc-id", vpcID), filter("cidr-block", c.Spec.CIDR.String())}})
		if err == nil && s == nil {
			return nil, fault.Input(n.d.ConfigPath, c.Field+".cidr", "give the subnet's id, or the CIDR of a subnet of "+vpcID, "no subnet %s in VPC %s", c.Spec.CIDR, vpcID)
		}
	default:
		return nil, fault.Input(n.d.ConfigPath, c.Field, "give the subnet's id, e.g. id: subnet-0123456789abcdef0", "an existing VPC's subnet needs an id or a cidr")
	}
	if err != nil {
		return nil, err
	}
	if got := aws.ToString(s.VpcId); got != vpcID {
		return nil, fault.Input(n.d.ConfigPath, c.Field, "list only subnets of vpc.id "+vpcID,
			"subnet %s is in VPC %s, not in %s", aws.ToString(s.SubnetId), got, vpcID)
	}
	if az := c.Spec.AZ; az != "" && az != aws.ToString(s.AvailabilityZone) && az != aws.ToString(s.AvailabilityZoneId) {
		return nil, fault.Input(n.d.ConfigPath, c.Field, "key each subnet by its own availability zone",
			"subnet %s is in %s, not in %s", aws.ToString(s.SubnetId), aws.ToString(s.AvailabilityZone), az)
	}
	return s, nil
}

// describeSubnet returns the one subnet matching in, or nil.
func (n *network) describeSubnet(ctx context.Context, in *ec2.DescribeSubnetsInput) (*ec2types.Subnet, error) {
	out, err := n.d.AWS.EC2.DescribeSubnets(ctx, in)
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe subnets: %w", err)
	}
	if len(out.Subnets) == 0 {
		return nil, nil
	}
	return &out.Subnets[0], nil
}

func sortByZone(subnets []ec2types.Subnet) {
	sort.SliceStable(subnets, func(i, j int) bool {
		return aws.ToString(subnets[i].AvailabilityZone) < aws.ToString(subnets[j].AvailabilityZone)
	})
}

func subnetIDs(subnets []ec2types.Subnet) []string {
	ids := make([]string, len(subnets))
	for i, s := range subnets {
		ids[i] = aws.ToString(s.SubnetId)
	}
	return ids
}

// adoptVPC records the existing VPC; nothing is created or changed.
func (n *network) adoptVPC(ctx context.Context) error {
	ex, err := n.resolveExisting(ctx)
	if err != nil {
		return err
	}
	return n.d.Record(map[string]string{names.KeyVPCID: aws.ToString(ex.VPC.VpcId)})
}

// adoptSubnets records the configured subnets, in zone order.
func (n *network) adoptSubnets(ctx context.Context) error {
	ex, err := n.resolveExisting(ctx)
	if err != nil {
		return err
	}
	if len(ex.Public) == 0 {
		// An internal-only VPC: no stale list may outlive the config.
		if err := n.d.State.Unset(names.KeyPublicSubnetIDs); err != nil {
			return err
		}
		return n.d.Record(map[string]string{names.KeyPrivateSubnetIDs: strings.Join(subnetIDs(ex.Private), ",")})
	}
	return n.d.Record(map[string]string{
		names.KeyPrivateSubnetIDs: strings.Join(subnetIDs(ex.Private), ","),
		names.KeyPublicSubnetIDs:  strings.Join(subnetIDs(ex.Public), ","),
	})
}

// validate checks the inputs before anything changes: an existing VPC and
// its subnets must be there, with public IPv4 addresses assigned where a
// public node group would run; a new VPC's block must hold the subnets and
// match the deployment's VPC if one exists already.
func (n *network) validate(ctx context.Context) error {
	if n.existing() {
		if err := n.checkPublicGroupsConfig(); err != nil {
			return err
		}
		ex, err := n.resolveExisting(ctx)
		if err != nil {
			return err
		}
		return n.checkExistingPublicIP(ex)
	}
	if n.d.Cluster.HasAnySubnets() {
		return fault.Input(n.d.ConfigPath, "vpc.subnets", "remove vpc.subnets to let coderctl derive them from vpc.cidr, or set vpc.id to use an existing VPC",
			"coderctl derives the subnets of a VPC it creates from vpc.cidr; listed subnets are only for an existing VPC")
	}
	if err := n.checkConfiguredZones(ctx); err != nil {
		return err
	}
	l, err := n.layout(ctx)
	if err != nil {
		return err
	}
	v, err := n.findVPC(ctx)
	if err != nil || v == nil {
		return err
	}
	return n.checkOwnCIDR(v, l.CIDR)
}

// checkConfiguredZones refuses availabilityZones the region does not have
// (us-west-2z has the right shape, so the config loader lets it through), or
// has but not available to this account: the subnet create would fail after
// the VPC exists.
func (n *network) checkConfiguredZones(ctx context.Context) error {
	want := n.d.Cluster.AvailabilityZones
	if len(want) == 0 {
		return nil
	}
	out, err := n.d.AWS.EC2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		return fmt.Errorf("list availability zones of %s: %w", n.d.Region(), err)
	}
	available := map[string]bool{}
	var names []string
	for _, z := range out.AvailabilityZones {
		if z.State == ec2types.AvailabilityZoneStateAvailable {
			available[aws.ToString(z.ZoneName)] = true
			names = append(names, aws.ToString(z.ZoneName))
		}
	}
	sort.Strings(names)
	for i, az := range want {
		if !available[az] {
			return fault.Input(n.d.ConfigPath, fmt.Sprintf("availabilityZones[%d]", i), "use zones of "+n.d.Region()+": "+strings.Join(names, ", "),
				"%s is not an available zone of %s", az, n.d.Region())
		}
	}
	return nil
}

// checkOwnCIDR: the deployment's VPC must have the block vpc.cidr names,
// or the derived subnets would not fit in it.
func (n *network) checkOwnCIDR(v *ec2types.Vpc, want netip.Prefix) error {
	if got := aws.ToString(v.CidrBlock); got != want.String() {
		return n.cidrInput(fmt.Sprintf("set vpc.cidr back to %s, or run 'coderctl stage %s destroy' first", got, Name),
			fmt.Sprintf("%s, but the deployment's VPC %s has %s and a VPC's primary block cannot change", want, aws.ToString(v.VpcId), got))
	}
	return nil
}

// blocksOf are a VPC's IPv4 blocks.
func blocksOf(v *ec2types.Vpc) []netip.Prefix {
	var out []netip.Prefix
	for _, b := range v.CidrBlockAssociationSet {
		if p, err := netip.ParsePrefix(aws.ToString(b.CidrBlock)); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		if p, err := netip.ParsePrefix(aws.ToString(v.CidrBlock)); err == nil {
			out = append(out, p)
		}
	}
	return out
}
