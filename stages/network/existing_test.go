package network

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// userVPC is a network a platform team built without coderctl.
type userVPC struct {
	ID              string
	Private, Public []string // subnet IDs in us-west-2a, b, c
}

// buildUserVPC creates, through the SDK, a VPC with subnets in three zones,
// an internet gateway, one NAT gateway and the route tables, carrying the
// Kubernetes subnet tags but none of coderctl's.
func buildUserVPC(t *testing.T, c *ec2.Client, second int) userVPC {
	t.Helper()
	ctx := context.Background()
	v, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("10.%d.0.0/16", second))})
	must(t, err)
	u := userVPC{ID: aws.ToString(v.Vpc.VpcId)}
	for _, attr := range []*ec2.ModifyVpcAttributeInput{
		{VpcId: v.Vpc.VpcId, EnableDnsSupport: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
		{VpcId: v.Vpc.VpcId, EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
	} {
		_, err := c.ModifyVpcAttribute(ctx, attr)
		must(t, err)
	}
	subnet := func(third int, zone, role string) string {
		cidr := fmt.Sprintf("10.%d.%d.0/24", second, third)
		out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String(cidr),
			AvailabilityZone: aws.String(zone), TagSpecifications: tagSpec(ec2types.ResourceTypeSubnet, map[string]string{role: "1", "kubernetes.io/cluster/" + deployment: "shared"})})
		if awsx.ErrorCode(err) == "InvalidSubnet.Conflict" {
			// The SDK retried a call whose response a loaded machine lost
			// (CreateSubnet takes no client token): the first one made it.
			found, ferr := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
				filter("vpc-id", aws.ToString(v.Vpc.VpcId)), filter("cidr-block", cidr)}})
			must(t, ferr)
			if len(found.Subnets) == 1 {
				return aws.ToString(found.Subnets[0].SubnetId)
			}
		}
		must(t, err)
		return aws.ToString(out.Subnet.SubnetId)
	}
	for i, z := range shippedZones {
		u.Private = append(u.Private, subnet(i, z, "kubernetes.io/role/internal-elb"))
		u.Public = append(u.Public, subnet(10+i, z, "kubernetes.io/role/elb"))
	}
	igw, err := c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	must(t, err)
	_, err = c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: v.Vpc.VpcId})
	must(t, err)
	eip, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc})
	must(t, err)
	nat, err := c.CreateNatGateway(ctx, &ec2.CreateNatGatewayInput{SubnetId: aws.String(u.Public[0]), AllocationId: eip.AllocationId})
	must(t, err)
	routeAll := func(subnets []string, gw, natID *string) {
		rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: v.Vpc.VpcId})
		must(t, err)
		_, err = c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId, DestinationCidrBlock: aws.String(anywhere), GatewayId: gw, NatGatewayId: natID})
		must(t, err)
		for _, s := range subnets {
			_, err := c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: aws.String(s)})
			must(t, err)
		}
	}
	routeAll(u.Public, igw.InternetGateway.InternetGatewayId, nil)
	routeAll(u.Private, nil, nat.NatGateway.NatGatewayId)
	return u
}

// useExistingConfig points env at a cluster config naming an existing VPC.
func useExistingConfig(t *testing.T, env *stagetest.ConfigEnv, u userVPC) {
	t.Helper()
	env.ClusterConfig = stagetest.WriteClusterConfig(t, t.TempDir(), existingPairs(t, u.ID, u.Private, u.Public)...)
	env.Reload(t)
}

func TestExistingVPCIsAdoptedAndNeverChanged(t *testing.T) {
	cenv := stagetest.NewWithClusterConfig(t, nil, stagetest.ClusterConfigPath(t))
	u := buildUserVPC(t, cenv.Deps.AWS.EC2, 20)
	useExistingConfig(t, cenv, u)
	cenv.Calls.Reset()

	if err := New(cenv.Deps).Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	_, events := run(t, cenv, engine.ModePlan)
	for step, acts := range actionsByStep(events) {
		if !slices.Equal(kinds(acts), []engine.ActionKind{engine.Nothing}) {
			t.Errorf("plan for an existing VPC: step %s = %+v, want only nothing", step, acts)
		}
	}
	run(t, cenv, engine.ModeApply)
	if m := cenv.Calls.Mutations(); len(m) > 0 {
		t.Errorf("apply on an existing VPC made mutating calls: %v", m)
	}
	want := map[string]string{names.KeyVPCID: u.ID, names.KeyPrivateSubnetIDs: strings.Join(u.Private, ","), names.KeyPublicSubnetIDs: strings.Join(u.Public, ",")}
	if got := outputs(cenv.Deps); !mapsEqual(got, want) {
		t.Errorf("outputs = %v, want %v (zone order)", got, want)
	}
	for name, c := range checksOf(New(cenv.Deps).Verify(context.Background())) {
		if c.Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, c)
		}
	}
	if inv := taggedInventory(t, cenv.Deps.AWS.EC2); len(inv.VPCs)+len(inv.Subnets)+len(inv.NATs)+len(inv.IGWs)+len(inv.RouteTables)+len(inv.EIPs) != 0 {
		t.Errorf("coderctl tagged or created resources in an existing VPC: %+v", inv)
	}

	cenv.Calls.Reset()
	run(t, cenv, engine.ModeDestroy)
	if m := cenv.Calls.Mutations(); len(m) > 0 {
		t.Errorf("destroy of an existing VPC made mutating calls: %v", m)
	}
	if got, err := cenv.Deps.AWS.EC2.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{VpcIds: []string{u.ID}}); err != nil || len(got.Vpcs) != 1 {
		t.Errorf("the existing VPC %s is gone after destroy: %v", u.ID, err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestExistingVPCWithoutNATRouteFailsVerify: the private subnets of an
// existing VPC must reach the internet through a NAT gateway.
func TestExistingVPCWithoutNATRouteFailsVerify(t *testing.T) {
	cenv := stagetest.NewWithClusterConfig(t, nil, stagetest.ClusterConfigPath(t))
	u := buildUserVPC(t, cenv.Deps.AWS.EC2, 21)
	deleteDefaultRoute(t, cenv.Deps.AWS.EC2, u.ID, u.Private[0])
	useExistingConfig(t, cenv, u)
	sum, _, err := cenv.Run(t, graph(cenv.Deps), engine.Options{Mode: engine.ModeApply})
	if err == nil && sum.OK {
		t.Fatal("apply succeeded although a private subnet has no route to a NAT gateway")
	}
	if c := networkChecks(t, sum)[checkPrivateRT]; c.Status != engine.Fail || !strings.Contains(c.Reason, u.Private[0]) {
		t.Errorf("check %s = %+v, want a failure naming %s", checkPrivateRT, c, u.Private[0])
	}
}

// TestBadInput: each case is refused by the Validator (exit 2) with a
// message naming the config file and field, before any mutating call.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name       string
		config     func(t *testing.T, c *ec2.Client) []string // replacement pairs for the shipped config
		applyFirst bool                                       // build the network from the shipped config first
		field      string
		reason     string
	}{
		{name: "vpc.id that does not exist", field: "vpc.id", reason: "does not exist",
			config: func(t *testing.T, c *ec2.Client) []string {
				return append(withoutZones(), "cidr: 10.0.0.0/16\n", "id: vpc-0123456789abcdef0\n  subnets:\n    private:\n      us-west-2a: {id: subnet-0123456789abcdef0}\n")
			}},
		{name: "subnet of another VPC", field: "vpc.subnets.public.us-west-2b", reason: "not in",
			config: func(t *testing.T, c *ec2.Client) []string {
				mine, other := buildUserVPC(t, c, 30), buildUserVPC(t, c, 31)
				public := slices.Clone(mine.Public)
				public[1] = other.Public[1]
				return existingPairs(t, mine.ID, mine.Private, public)
			}},
		{name: "subnet that does not exist", field: "vpc.subnets.private.us-west-2c.id", reason: "subnet-00000000000000000 does not exist",
			config: func(t *testing.T, c *ec2.Client) []string {
				mine := buildUserVPC(t, c, 32)
				private := slices.Clone(mine.Private)
				private[2] = "subnet-00000000000000000"
				return existingPairs(t, mine.ID, private, mine.Public)
			}},
		{name: "VPC block too small for four zones", field: "vpc.cidr", reason: "too small",
			config: func(t *testing.T, c *ec2.Client) []string {
				return []string{`availabilityZones: ["us-west-2a", "us-west-2b", "us-west-2c"]`, `availabilityZones: ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]`,
					"cidr: 10.0.0.0/16", "cidr: 10.0.0.0/24"}
			}},
		{name: "subnets listed for a VPC coderctl creates", field: "vpc.subnets", reason: "derives the subnets",
			config: func(t *testing.T, c *ec2.Client) []string {
				return append(withoutZones(), "cidr: 10.0.0.0/16\n", "cidr: 10.0.0.0/16\n  subnets:\n    private:\n      us-west-2a: {cidr: 10.0.0.0/18}\n")
			}},
		{name: "vpc.cidr changed after the VPC exists", field: "vpc.cidr", reason: "has 10.0.0.0/16",
			config:     func(t *testing.T, c *ec2.Client) []string { return []string{"cidr: 10.0.0.0/16", "cidr: 10.1.0.0/16"} },
			applyFirst: true},
	}
	// One moto for all cases (their VPCs do not meet); the case that
	// applies the shipped config runs last.
	env := stagetest.NewWithClusterConfig(t, nil, stagetest.ClusterConfigPath(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.ClusterConfig = stagetest.ClusterConfigPath(t)
			env.Reload(t)
			pairs := tt.config(t, env.Deps.AWS.EC2)
			if tt.applyFirst {
				run(t, env, engine.ModeApply)
			}
			cfg := stagetest.WriteClusterConfig(t, t.TempDir(), pairs...)
			env.ClusterConfig = cfg
			env.Reload(t)
			env.Calls.Reset()
			g, err := engine.NewGraph(graph(env.Deps))
			must(t, err)
			err = g.ValidateAll(context.Background(), nil, nil)
			if !fault.IsInput(err) || fault.ExitCode(err) != fault.ExitInput {
				t.Fatalf("ValidateAll = %v, want bad input (exit 2)", err)
			}
			msg := err.Error()
			for _, part := range []string{cfg, tt.field, tt.reason} {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q does not mention %q", msg, part)
				}
			}
			if m := env.Calls.Mutations(); len(m) > 0 {
				t.Errorf("validation made mutating calls: %v", m)
			}
		})
	}
}

// existingPairs replace the shipped vpc.cidr with vpc.id and the subnets.
func existingPairs(t *testing.T, vpcID string, private, public []string) []string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\n  subnets:\n    private:\n", vpcID)
	for i, id := range private {
		if i == 0 {
			// An alias key with az: the outputs' zone order must not
			// come from the keys' order.
			fmt.Fprintf(&b, "      zz-nodes-a: {id: %s, az: %s}\n", id, shippedZones[i])
			continue
		}
		fmt.Fprintf(&b, "      %s: {id: %s}\n", shippedZones[i], id)
	}
	b.WriteString("    public:\n")
	for i, id := range public {
		fmt.Fprintf(&b, "      %s: {id: %s}\n", shippedZones[i], id)
	}
	return append(withoutZones(), "cidr: 10.0.0.0/16\n", b.String())
}

// withoutZones removes availabilityZones: with listed subnets, the zones
// are the subnets' own.
func withoutZones() []string {
	return []string{`availabilityZones: ["us-west-2a", "us-west-2b", "us-west-2c"]` + "\n", ""}
}
