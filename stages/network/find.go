package network

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// findVPC finds the deployment's VPC: by VPC_ID in state (which must still
// exist and carry the deployment's tags), else by tags. nil when there is none.
func (n *network) findVPC(ctx context.Context) (*ec2types.Vpc, error) {
	if id := n.d.State.Get(names.KeyVPCID); id != "" {
		v, err := n.describeVPC(ctx, id)
		if err != nil {
			return nil, err
		}
		if v != nil {
			if !n.isOwn(v.Tags) {
				return nil, fault.Input(n.d.State.Path(), names.KeyVPCID, fmt.Sprintf("unset %s, or set vpc.id in %s to use it as an existing VPC", names.KeyVPCID, n.d.ConfigPath),
					"%s is not tagged %s=%s, so coderctl did not create it", id, awsx.TagDeployment, n.d.Deployment())
			}
			return v, nil
		}
	}
	vpcs, err := n.taggedVPCs(ctx)
	if err != nil {
		return nil, err
	}
	switch len(vpcs) {
	case 0:
		return nil, nil
	case 1:
		return &vpcs[0], nil
	}
	ids := make([]string, len(vpcs))
	for i, v := range vpcs {
		ids[i] = aws.ToString(v.VpcId)
	}
	return nil, fmt.Errorf("%d VPCs are tagged %s=%s (%s): delete the extra ones, or set %s in %s to the one to keep",
		len(vpcs), awsx.TagDeployment, n.d.Deployment(), strings.Join(ids, ", "), names.KeyVPCID, n.d.State.Path())
}

// describeVPC returns the VPC, or nil when it does not exist.
func (n *network) describeVPC(ctx context.Context, id string) (*ec2types.Vpc, error) {
	out, err := n.d.AWS.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{id}})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe VPC %s: %w", id, err)
	}
	if len(out.Vpcs) == 0 {
		return nil, nil
	}
	return &out.Vpcs[0], nil
}

// taggedVPCs lists every VPC carrying the deployment's VPC tags.
func (n *network) taggedVPCs(ctx context.Context) ([]ec2types.Vpc, error) {
	want := n.tags(n.vpcName())
	var out []ec2types.Vpc
	pages := ec2.NewDescribeVpcsPaginator(n.d.AWS.EC2, &ec2.DescribeVpcsInput{Filters: tagFilters(want)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find VPCs tagged %s=%s: %w", awsx.TagDeployment, n.d.Deployment(), err)
		}
		for _, v := range page.Vpcs {
			if awsx.HasTags(awsx.EC2TagMap(v.Tags), want) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// taggedSubnets lists the stage's subnets; vpcID "" searches every VPC
// (destroy after the VPC was lost from state).
func (n *network) taggedSubnets(ctx context.Context, vpcID string) ([]ec2types.Subnet, error) {
	want := n.ownTags()
	filters := tagFilters(want)
	if vpcID != "" {
		filters = append(filters, filter("vpc-id", vpcID))
	}
	var out []ec2types.Subnet
	pages := ec2.NewDescribeSubnetsPaginator(n.d.AWS.EC2, &ec2.DescribeSubnetsInput{Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find subnets tagged %s=%s: %w", awsx.TagDeployment, n.d.Deployment(), err)
		}
		for _, s := range page.Subnets {
			if awsx.HasTags(awsx.EC2TagMap(s.Tags), want) && (vpcID == "" || aws.ToString(s.VpcId) == vpcID) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// subnetsByName indexes subnets by their Name tag.
func subnetsByName(list []ec2types.Subnet) map[string]ec2types.Subnet {
	out := make(map[string]ec2types.Subnet, len(list))
	for _, s := range list {
		out[nameOf(s.Tags)] = s
	}
	return out
}

// ownSubnets is the stage's subnets in the VPC, by Name tag.
func (n *network) ownSubnets(ctx context.Context, vpcID string) (map[string]ec2types.Subnet, error) {
	list, err := n.taggedSubnets(ctx, vpcID)
	if err != nil {
		return nil, err
	}
	return subnetsByName(list), nil
}

// layoutAndVPC is what a plan step reads first: the layout, and the VPC
// (nil while it does not exist).
func (n *network) layoutAndVPC(ctx context.Context) (*layout, *ec2types.Vpc, error) {
	l, err := n.layout(ctx)
	if err != nil {
		return nil, nil, err
	}
	v, err := n.findVPC(ctx)
	return l, v, err
}

// layoutAndVPCID is what an apply step reads first: the layout, and the
// VPC the vpc step recorded.
func (n *network) layoutAndVPCID(ctx context.Context) (*layout, string, error) {
	l, err := n.layout(ctx)
	if err != nil {
		return nil, "", err
	}
	vpcID, err := n.d.Output(names.KeyVPCID, Name)
	return l, vpcID, err
}

// taggedIGWs lists the deployment's internet gateways.
func (n *network) taggedIGWs(ctx context.Context) ([]ec2types.InternetGateway, error) {
	want := n.tags(n.igwName())
	var out []ec2types.InternetGateway
	pages := ec2.NewDescribeInternetGatewaysPaginator(n.d.AWS.EC2, &ec2.DescribeInternetGatewaysInput{Filters: tagFilters(want)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find internet gateways tagged %s=%s: %w", awsx.TagDeployment, n.d.Deployment(), err)
		}
		for _, g := range page.InternetGateways {
			if awsx.HasTags(awsx.EC2TagMap(g.Tags), want) {
				out = append(out, g)
			}
		}
	}
	return out, nil
}

// taggedNATs lists the deployment's NAT gateways in every state.
func (n *network) taggedNATs(ctx context.Context, vpcID string) ([]ec2types.NatGateway, error) {
	want := n.ownTags()
	filters := tagFilters(want)
	if vpcID != "" {
		filters = append(filters, filter("vpc-id", vpcID))
	}
	var out []ec2types.NatGateway
	pages := ec2.NewDescribeNatGatewaysPaginator(n.d.AWS.EC2, &ec2.DescribeNatGatewaysInput{Filter: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find NAT gateways tagged %s=%s: %w", awsx.TagDeployment, n.d.Deployment(), err)
		}
		for _, g := range page.NatGateways {
			if awsx.HasTags(awsx.EC2TagMap(g.Tags), want) && (vpcID == "" || aws.ToString(g.VpcId) == vpcID) {
				out = append(out, g)
			}
		}
	}
	return out, nil
}

// liveNATs indexes the NAT gateways that are pending or available by Name.
func liveNATs(all []ec2types.NatGateway) map[string]ec2types.NatGateway {
	out := map[string]ec2types.NatGateway{}
	for _, g := range all {
		if g.State == ec2types.NatGatewayStatePending || g.State == ec2types.NatGatewayStateAvailable {
			out[nameOf(g.Tags)] = g
		}
	}
	return out
}

// taggedEIPs lists the deployment's Elastic IPs.
func (n *network) taggedEIPs(ctx context.Context) ([]ec2types.Address, error) {
	want := n.ownTags()
	out, err := n.d.AWS.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: tagFilters(want)})
	if err != nil {
		return nil, fmt.Errorf("find Elastic IPs tagged %s=%s: %w", awsx.TagDeployment, n.d.Deployment(), err)
	}
	var own []ec2types.Address
	for _, a := range out.Addresses {
		if awsx.HasTags(awsx.EC2TagMap(a.Tags), want) {
			own = append(own, a)
		}
	}
	return own, nil
}

// routeTables lists the route tables of a VPC, or the deployment's tagged
// ones anywhere when vpcID is "".
func (n *network) routeTables(ctx context.Context, vpcID string) ([]ec2types.RouteTable, error) {
	in := &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", vpcID)}}
	if vpcID == "" {
		in.Filters = tagFilters(n.ownTags())
	}
	var out []ec2types.RouteTable
	pages := ec2.NewDescribeRouteTablesPaginator(n.d.AWS.EC2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe route tables: %w", err)
		}
		out = append(out, page.RouteTables...)
	}
	return out, nil
}

// isOwn reports whether a resource carries the stage's tags.
func (n *network) isOwn(tags []ec2types.Tag) bool {
	return awsx.HasTags(awsx.EC2TagMap(tags), n.ownTags())
}

// ownRouteTables indexes the deployment's route tables by Name.
func (n *network) ownRouteTables(all []ec2types.RouteTable) map[string]ec2types.RouteTable {
	out := map[string]ec2types.RouteTable{}
	for _, rt := range all {
		if n.isOwn(rt.Tags) {
			out[nameOf(rt.Tags)] = rt
		}
	}
	return out
}

// subnetRouteTable is the route table a subnet uses: its explicit
// association, else the VPC's main table.
func subnetRouteTable(all []ec2types.RouteTable, subnetID string) (*ec2types.RouteTable, string) {
	var main *ec2types.RouteTable
	for i := range all {
		for _, a := range all[i].Associations {
			if aws.ToString(a.SubnetId) == subnetID {
				return &all[i], aws.ToString(a.RouteTableAssociationId)
			}
			if aws.ToBool(a.Main) {
				main = &all[i]
			}
		}
	}
	return main, ""
}

// defaultRoute is a table's 0.0.0.0/0 route, or nil.
func defaultRoute(rt *ec2types.RouteTable) *ec2types.Route {
	if rt == nil {
		return nil
	}
	for i := range rt.Routes {
		if aws.ToString(rt.Routes[i].DestinationCidrBlock) == anywhere {
			return &rt.Routes[i]
		}
	}
	return nil
}

// routeTarget names where a route sends traffic.
func routeTarget(r *ec2types.Route) string {
	if r == nil {
		return ""
	}
	for _, t := range []*string{r.NatGatewayId, r.GatewayId, r.TransitGatewayId, r.NetworkInterfaceId, r.VpcPeeringConnectionId, r.InstanceId} {
		if aws.ToString(t) != "" {
			return aws.ToString(t)
		}
	}
	return ""
}
