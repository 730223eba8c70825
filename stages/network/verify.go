package network

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/state"
)

// Check names of the network checkpoint.
const (
	checkVPC       = "vpc"
	checkSubnets   = "subnets"
	checkZones     = "availability-zones"
	checkCIDRs     = "cidrs"
	checkIGW       = "internet-gateway"
	checkNAT       = "nat"
	checkPublicRT  = "public-routes"
	checkPrivateRT = "private-routes"
	checkTagsName  = "tags"
)

// What to do when a check of a network coderctl built fails.
const (
	hintApply       = "run 'coderctl stage network apply'"
	hintApplyRepair = "run 'coderctl stage network apply' to repair it"
)

// observation is what verify reads once and every check judges.
type observation struct {
	layout  *layout // nil for an existing VPC
	vpc     *ec2types.Vpc
	dnsOff  []ec2types.VpcAttributeName
	private []ec2types.Subnet // from PRIVATE_SUBNET_IDS, in that order
	public  []ec2types.Subnet
	missing []string // subnet IDs in state that are not in the VPC
	igws    []ec2types.InternetGateway
	nats    map[string]ec2types.NatGateway // every NAT gateway of the VPC by ID
	tables  []ec2types.RouteTable
}

func (n *network) verify(ctx context.Context) []engine.Check {
	o, err := n.observe(ctx)
	if err != nil {
		return []engine.Check{engine.Failf(checkVPC, "check AWS access and "+n.d.State.Path(), "%v", err)}
	}
	if o.vpc == nil {
		return []engine.Check{n.vpcMissing()}
	}
	return []engine.Check{
		n.checkVPC(o), n.checkSubnets(o), n.checkZones(o), checkCIDRsOf(o), n.checkIGW(o), n.checkNAT(o),
		n.checkPublicRoutes(o), n.checkPrivateRoutes(o), n.checkPublicIPOf(o), n.checkTags(o),
	}
}

func (n *network) vpcMissing() engine.Check {
	id := n.d.State.Get(names.KeyVPCID)
	if id == "" {
		return engine.Failf(checkVPC, hintApply, "%s is not in %s", names.KeyVPCID, n.d.State.Path())
	}
	return engine.Failf(checkVPC, hintApply+" (it recreates the network)", "VPC %s from %s does not exist", id, n.d.State.Path())
}

// observe reads the VPC named in state and everything in it that matters.
func (n *network) observe(ctx context.Context) (*observation, error) {
	o := &observation{nats: map[string]ec2types.NatGateway{}}
	if !n.existing() {
		l, err := n.layout(ctx)
		if err != nil {
			return nil, err
		}
		o.layout = l
	}
	id := n.d.State.Get(names.KeyVPCID)
	if id == "" {
		return o, nil
	}
	v, err := n.describeVPC(ctx, id)
	if err != nil || v == nil {
		return o, err
	}
	o.vpc = v
	if o.dnsOff, err = n.dnsAttributesOff(ctx, id); err != nil {
		return nil, err
	}
	if err := n.observeSubnets(ctx, o, id); err != nil {
		return nil, err
	}
	if err := n.observeGateways(ctx, o, id); err != nil {
		return nil, err
	}
	o.tables, err = n.routeTables(ctx, id)
	return o, err
}

func (n *network) observeSubnets(ctx context.Context, o *observation, vpcID string) error {
	inVPC := map[string]ec2types.Subnet{}
	pages := ec2.NewDescribeSubnetsPaginator(n.d.AWS.EC2, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{filter("vpc-id", vpcID)}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describe subnets of %s: %w", vpcID, err)
		}
		for _, s := range page.Subnets {
			inVPC[aws.ToString(s.SubnetId)] = s
		}
	}
	pick := func(key string) []ec2types.Subnet {
		var out []ec2types.Subnet
		for _, id := range state.SplitList(n.d.State.Get(key)) {
			if s, ok := inVPC[id]; ok {
				out = append(out, s)
			} else {
				o.missing = append(o.missing, id)
			}
		}
		return out
	}
	o.private, o.public = pick(names.KeyPrivateSubnetIDs), pick(names.KeyPublicSubnetIDs)
	return nil
}

// observeGateways reads the internet gateways attached to the VPC and its
// NAT gateways (tagged or not: an existing VPC's are the user's).
func (n *network) observeGateways(ctx context.Context, o *observation, vpcID string) error {
	igws, err := n.d.AWS.EC2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []ec2types.Filter{filter("attachment.vpc-id", vpcID)}})
	if err != nil {
		return fmt.Errorf("describe internet gateways of %s: %w", vpcID, err)
	}
	for _, g := range igws.InternetGateways {
		if attachedTo(g, vpcID) {
			o.igws = append(o.igws, g)
		}
	}
	pages := ec2.NewDescribeNatGatewaysPaginator(n.d.AWS.EC2, &ec2.DescribeNatGatewaysInput{Filter: []ec2types.Filter{filter("vpc-id", vpcID)}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describe NAT gateways of %s: %w", vpcID, err)
		}
		for _, g := range page.NatGateways {
			o.nats[aws.ToString(g.NatGatewayId)] = g
		}
	}
	return nil
}

func (n *network) checkVPC(o *observation) engine.Check {
	id := aws.ToString(o.vpc.VpcId)
	hint := hintApplyRepair
	if n.existing() {
		hint = "fix the VPC in the VPC console; coderctl does not change an existing VPC"
		if id != n.d.Cluster.VPC.ID {
			return engine.Failf(checkVPC, hintApply, "%s is %s but vpc.id in %s is %s", names.KeyVPCID, id, n.d.ConfigPath, n.d.Cluster.VPC.ID)
		}
	}
	switch {
	case o.vpc.State != ec2types.VpcStateAvailable:
		return engine.Failf(checkVPC, "wait and verify again", "VPC %s is %s", id, o.vpc.State)
	case o.layout != nil && aws.ToString(o.vpc.CidrBlock) != o.layout.CIDR.String():
		return engine.Failf(checkVPC, "set vpc.cidr to the VPC's block", "VPC %s has %s, vpc.cidr says %s", id, aws.ToString(o.vpc.CidrBlock), o.layout.CIDR)
	case len(o.dnsOff) > 0:
		return engine.Failf(checkVPC, hint, "VPC %s has %v turned off; EKS nodes need VPC DNS support and hostnames", id, o.dnsOff)
	}
	return engine.Passf(checkVPC, "%s (%s), DNS support and hostnames on", id, aws.ToString(o.vpc.CidrBlock))
}

// wantedSubnets is how many subnets of each kind there should be.
func (n *network) wantedSubnets(o *observation) (private, public int) {
	if o.layout != nil {
		return len(o.layout.Zones), len(o.layout.Zones)
	}
	for _, c := range n.configuredSubnets() {
		if c.Kind == kindPrivate {
			private++
		} else {
			public++
		}
	}
	return private, public
}

func (n *network) checkSubnets(o *observation) engine.Check {
	wantPrivate, wantPublic := n.wantedSubnets(o)
	id := aws.ToString(o.vpc.VpcId)
	switch {
	case len(o.missing) > 0:
		return engine.Failf(checkSubnets, hintApplyRepair, "%s not found in VPC %s", strings.Join(o.missing, ", "), id)
	case len(o.private) != wantPrivate || len(o.public) != wantPublic:
		return engine.Failf(checkSubnets, hintApply, "%s and %s list %d private and %d public subnets, want %d and %d",
			names.KeyPrivateSubnetIDs, names.KeyPublicSubnetIDs, len(o.private), len(o.public), wantPrivate, wantPublic)
	}
	for _, s := range append(slices.Clone(o.private), o.public...) {
		if s.State != ec2types.SubnetStateAvailable {
			return engine.Failf(checkSubnets, "wait and verify again", "subnet %s is %s", aws.ToString(s.SubnetId), s.State)
		}
	}
	return engine.Passf(checkSubnets, "%d private, %d public in %s", len(o.private), len(o.public), id)
}

// checkZones: each kind's subnets are in distinct zones (one zone's loss
// takes one of each), and a new VPC's are in the zones chosen.
func (n *network) checkZones(o *observation) engine.Check {
	for _, group := range []struct {
		kind    string
		subnets []ec2types.Subnet
	}{{kindPrivate, o.private}, {kindPublic, o.public}} {
		zones := zonesOf(group.subnets)
		if dup := firstDuplicate(zones); dup != "" {
			return engine.Failf(checkZones, "use one subnet per availability zone", "two %s subnets are in %s", group.kind, dup)
		}
		if o.layout != nil && !slices.Equal(zones, o.layout.Zones) {
			return engine.Failf(checkZones, hintApplyRepair, "%s subnets are in %s, want %s", group.kind, strings.Join(zones, ", "), strings.Join(o.layout.Zones, ", "))
		}
	}
	if len(o.private) < 2 {
		return engine.Failf(checkZones, "list private subnets in at least two zones", "EKS needs subnets in at least two availability zones, %d private given", len(o.private))
	}
	return engine.Passf(checkZones, "%s", strings.Join(zonesOf(o.private), ", "))
}

func zonesOf(subnets []ec2types.Subnet) []string {
	out := make([]string, len(subnets))
	for i, s := range subnets {
		out[i] = aws.ToString(s.AvailabilityZone)
	}
	return out
}

func firstDuplicate(items []string) string {
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it] {
			return it
		}
		seen[it] = true
	}
	return ""
}

// checkCIDRsOf: every subnet lies inside the VPC and none overlap.
func checkCIDRsOf(o *observation) engine.Check {
	blocks := blocksOf(o.vpc)
	var cidrs []netip.Prefix
	for _, s := range append(slices.Clone(o.private), o.public...) {
		p, err := netip.ParsePrefix(aws.ToString(s.CidrBlock))
		if err != nil {
			return engine.Failf(checkCIDRs, "", "subnet %s has no IPv4 block", aws.ToString(s.SubnetId))
		}
		if !slices.ContainsFunc(blocks, func(b netip.Prefix) bool { return b.Contains(p.Addr()) && b.Bits() <= p.Bits() }) {
			return engine.Failf(checkCIDRs, "", "subnet %s (%s) is outside the VPC's blocks %v", aws.ToString(s.SubnetId), p, blocks)
		}
		cidrs = append(cidrs, p)
	}
	if a, b, ok := firstOverlap(cidrs); ok {
		return engine.Failf(checkCIDRs, "list subnets whose blocks do not overlap", "subnets %s and %s overlap", a, b)
	}
	return engine.Passf(checkCIDRs, "%d subnets inside %v, none overlapping", len(cidrs), blocks)
}

func (n *network) checkIGW(o *observation) engine.Check {
	if len(o.igws) == 0 && o.layout == nil && len(o.public) == 0 {
		return engine.Warnf(checkIGW, "list public subnets under vpc.subnets.public for an internet-facing load balancer",
			"no public subnets and no internet gateway: Coder will be reachable only from inside the network")
	}
	if len(o.igws) == 0 {
		return engine.Failf(checkIGW, n.repairHint("attach an internet gateway to the VPC"), "no internet gateway is attached to %s", aws.ToString(o.vpc.VpcId))
	}
	if o.layout != nil && !slices.ContainsFunc(o.igws, func(g ec2types.InternetGateway) bool { return n.isOwn(g.Tags) }) {
		return engine.Failf(checkIGW, hintApplyRepair, "the internet gateway attached to %s is not tagged %s=%s", aws.ToString(o.vpc.VpcId), awsx.TagDeployment, n.d.Deployment())
	}
	return engine.Passf(checkIGW, "%s attached", aws.ToString(o.igws[0].InternetGatewayId))
}

func (n *network) repairHint(existing string) string {
	if n.existing() {
		return existing + " (coderctl does not change an existing VPC)"
	}
	return hintApplyRepair
}

// checkNAT: the NAT gateways the mode wants are available; extra ones are
// a warning (they cost money and route nothing).
func (n *network) checkNAT(o *observation) engine.Check {
	if o.layout == nil {
		return engine.Passf(checkNAT, "existing VPC: NAT is the VPC's own (judged by %s)", checkPrivateRT)
	}
	var live, unused []string
	for _, z := range o.layout.natZones() {
		g, ok := n.liveOwnNAT(o, n.natName(z))
		if !ok {
			return engine.Failf(checkNAT, hintApplyRepair, "no available NAT gateway %s (vpc.nat.gateway is %s)", n.natName(z), o.layout.NAT)
		}
		live = append(live, aws.ToString(g.NatGatewayId))
	}
	for id, g := range o.nats {
		if n.isOwn(g.Tags) && isLive(g) && !slices.Contains(live, id) {
			unused = append(unused, id)
		}
	}
	if len(o.layout.natZones()) == 0 {
		return engine.Warnf(checkNAT, "set vpc.nat.gateway to Single or HighlyAvailable unless the VPC has endpoints for ECR, S3, EC2 and STS",
			"NAT is disabled: private subnets have no route to the internet, so nodes cannot pull images without VPC endpoints")
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		return engine.Warnf(checkNAT, "delete them in the VPC console if vpc.nat.gateway changed on purpose",
			"%s available; %s also exist but no longer match vpc.nat.gateway %s", strings.Join(live, ", "), strings.Join(unused, ", "), o.layout.NAT)
	}
	return engine.Passf(checkNAT, "%s available (%s)", strings.Join(live, ", "), o.layout.NAT)
}

func isLive(g ec2types.NatGateway) bool {
	return g.State == ec2types.NatGatewayStateAvailable || g.State == ec2types.NatGatewayStatePending
}

func (n *network) liveOwnNAT(o *observation, name string) (ec2types.NatGateway, bool) {
	for _, g := range o.nats {
		if n.isOwn(g.Tags) && nameOf(g.Tags) == name && g.State == ec2types.NatGatewayStateAvailable {
			return g, true
		}
	}
	return ec2types.NatGateway{}, false
}

// checkPublicRoutes: every public subnet's table sends 0.0.0.0/0 to an
// internet gateway attached to the VPC.
func (n *network) checkPublicRoutes(o *observation) engine.Check {
	for _, s := range o.public {
		id := aws.ToString(s.SubnetId)
		rt, _ := subnetRouteTable(o.tables, id)
		r := defaultRoute(rt)
		target := routeTarget(r)
		switch {
		case r == nil:
			return engine.Failf(checkPublicRT, n.repairHint("add a 0.0.0.0/0 route to the internet gateway"), "public subnet %s has no default route", id)
		case r.State == ec2types.RouteStateBlackhole:
			return engine.Failf(checkPublicRT, n.repairHint("point 0.0.0.0/0 at the attached internet gateway"), "public subnet %s routes 0.0.0.0/0 to %s, which is gone", id, target)
		case !slices.ContainsFunc(o.igws, func(g ec2types.InternetGateway) bool { return aws.ToString(g.InternetGatewayId) == target }):
			return engine.Failf(checkPublicRT, n.repairHint("point 0.0.0.0/0 at the attached internet gateway"), "public subnet %s routes 0.0.0.0/0 to %s, not to an internet gateway of the VPC", id, orNone(target))
		}
	}
	return engine.Passf(checkPublicRT, "%d public subnets route 0.0.0.0/0 to the internet gateway", len(o.public))
}

// checkPrivateRoutes: every private subnet's table sends 0.0.0.0/0 to an
// available NAT gateway (nodes pull images and reach AWS APIs through it).
func (n *network) checkPrivateRoutes(o *observation) engine.Check {
	if o.layout != nil && len(o.layout.natZones()) == 0 {
		return engine.Passf(checkPrivateRT, "NAT is disabled in %s: private subnets have no default route by design", n.d.ConfigPath)
	}
	var others []string
	for _, s := range o.private {
		id := aws.ToString(s.SubnetId)
		rt, _ := subnetRouteTable(o.tables, id)
		r := defaultRoute(rt)
		target := routeTarget(r)
		g, isNAT := o.nats[target]
		switch {
		case r == nil:
			return engine.Failf(checkPrivateRT, n.repairHint("add a 0.0.0.0/0 route to a NAT gateway"), "private subnet %s has no 0.0.0.0/0 route to a NAT gateway", id)
		case r.State == ec2types.RouteStateBlackhole:
			return engine.Failf(checkPrivateRT, n.repairHint("point 0.0.0.0/0 at an available NAT gateway"), "private subnet %s routes 0.0.0.0/0 to %s, which is gone", id, target)
		case isNAT && g.State != ec2types.NatGatewayStateAvailable:
			return engine.Failf(checkPrivateRT, n.repairHint("point 0.0.0.0/0 at an available NAT gateway"), "private subnet %s routes to NAT gateway %s, which is %s", id, target, g.State)
		case isNAT && o.layout != nil && !n.isOwn(g.Tags):
			return engine.Failf(checkPrivateRT, hintApplyRepair, "private subnet %s routes to NAT gateway %s, which is not the deployment's", id, target)
		case !isNAT && o.layout != nil:
			return engine.Failf(checkPrivateRT, hintApplyRepair, "private subnet %s routes 0.0.0.0/0 to %s, not to a NAT gateway", id, target)
		case !isNAT:
			others = append(others, id+" via "+target)
		}
	}
	if len(others) > 0 {
		return engine.Warnf(checkPrivateRT, "make sure that path reaches the internet (ECR, EKS and STS endpoints)",
			"private subnets route 0.0.0.0/0 through something other than a NAT gateway: %s", strings.Join(others, ", "))
	}
	return engine.Passf(checkPrivateRT, "%d private subnets route 0.0.0.0/0 to an available NAT gateway", len(o.private))
}

// checkTags: a new VPC's resources carry the deployment's tags and the
// subnets the Kubernetes tags; an existing VPC's subnets need only the
// Kubernetes tags, which coderctl does not add to resources it does not own.
func (n *network) checkTags(o *observation) engine.Check {
	var problems []string
	if o.layout != nil && !n.isOwn(o.vpc.Tags) {
		problems = append(problems, aws.ToString(o.vpc.VpcId)+" lacks "+awsx.TagDeployment)
	}
	for kind, subnets := range map[string][]ec2types.Subnet{kindPrivate: o.private, kindPublic: o.public} {
		for _, s := range subnets {
			want := n.subnetTags(kind, aws.ToString(s.AvailabilityZone))
			if o.layout == nil {
				want = n.kubernetesTags(kind)
			}
			if miss := missingTags(s.Tags, want); len(miss) > 0 {
				problems = append(problems, fmt.Sprintf("%s lacks %s", aws.ToString(s.SubnetId), strings.Join(tagKeys(miss), ", ")))
			}
		}
	}
	if len(problems) == 0 {
		return engine.Passf(checkTagsName, "VPC and subnets tagged")
	}
	slices.Sort(problems)
	if o.layout == nil {
		return engine.Warnf(checkTagsName, fmt.Sprintf("tag public subnets %s=1, private %s=1, all %s%s=shared, or load balancers will not find them",
			tagRoleELB, tagRoleInternalELB, tagClusterPrefix, n.d.Deployment()), "%s", strings.Join(problems, "; "))
	}
	return engine.Failf(checkTagsName, hintApplyRepair, "%s", strings.Join(problems, "; "))
}

// kubernetesTags are the tags load balancers select subnets by.
func (n *network) kubernetesTags(kind string) map[string]string {
	t := map[string]string{tagClusterPrefix + n.d.Deployment(): "shared"}
	if kind == kindPublic {
		t[tagRoleELB] = "1"
	} else {
		t[tagRoleInternalELB] = "1"
	}
	return t
}
