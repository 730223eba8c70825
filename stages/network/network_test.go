package network

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

var shippedZones = []string{"us-west-2a", "us-west-2b", "us-west-2c"}

func TestApplyFromEmpty(t *testing.T) {
	env := stagetest.New(t, nil)
	// The whole graph: the prereqs checkpoint must pass on moto before the
	// network steps start.
	sum, _ := runOpts(t, env, engine.Options{Mode: engine.ModeApply})
	for _, st := range sum.Stages {
		if st.Status != engine.StatusDone {
			t.Errorf("stage %s ended %s, want %s", st.Stage, st.Status, engine.StatusDone)
		}
	}
	c := env.Deps.AWS.EC2

	inv := taggedInventory(t, c)
	want := map[string]int{"vpcs": 1, "subnets": 6, "igws": 1, "nats": 1, "eips": 1, "route-tables": 4, "security-groups": 0}
	if got := inv.counts(); !maps.Equal(got, want) {
		t.Fatalf("tagged resources = %v, want %v", got, want)
	}
	out := outputs(env.Deps)
	if out[names.KeyVPCID] != inv.VPCs[0] {
		t.Errorf("%s = %q, want the tagged VPC %s", names.KeyVPCID, out[names.KeyVPCID], inv.VPCs[0])
	}

	carved, _ := carveSubnets(netip.MustParsePrefix("10.0.0.0/16"), 3)
	private := describeSubnets(t, c, strings.Split(out[names.KeyPrivateSubnetIDs], ","))
	public := describeSubnets(t, c, strings.Split(out[names.KeyPublicSubnetIDs], ","))
	checkSubnetGroup(t, private, carved.Private, map[string]string{"kubernetes.io/role/internal-elb": "1"})
	checkSubnetGroup(t, public, carved.Public, map[string]string{"kubernetes.io/role/elb": "1"})

	nat := inv.NATs[0]
	privateTargets := defaultTargets(t, c, out[names.KeyVPCID], subnetIDs(private))
	publicTargets := defaultTargets(t, c, out[names.KeyVPCID], subnetIDs(public))
	for id, target := range privateTargets {
		if target != nat {
			t.Errorf("private subnet %s routes 0.0.0.0/0 to %q, want the NAT gateway %s", id, target, nat)
		}
	}
	for id, target := range publicTargets {
		if target != inv.IGWs[0] {
			t.Errorf("public subnet %s routes 0.0.0.0/0 to %q, want the internet gateway %s", id, target, inv.IGWs[0])
		}
	}
	if natSubnet := natSubnets(t, c, inv.NATs)[nat]; natSubnet != aws.ToString(public[0].SubnetId) {
		t.Errorf("the single NAT gateway is in %s, want the first zone's public subnet %s", natSubnet, aws.ToString(public[0].SubnetId))
	}

	checks := networkChecks(t, sum)
	for _, name := range []string{checkVPC, checkSubnets, checkZones, checkCIDRs, checkIGW, checkNAT, checkPublicRT, checkPrivateRT, checkTagsName} {
		if c, ok := checks[name]; !ok || c.Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, c)
		}
	}
}

// checkSubnetGroup asserts one kind's subnets: zone order, carved blocks,
// and the deployment's and Kubernetes tags.
func checkSubnetGroup(t *testing.T, subnets []ec2types.Subnet, cidrs []netip.Prefix, roleTags map[string]string) {
	t.Helper()
	if len(subnets) != 3 {
		t.Fatalf("%d subnets, want 3", len(subnets))
	}
	if got := zonesOf(subnets); !slices.Equal(got, shippedZones) {
		t.Errorf("subnet zones = %v, want %v in that order", got, shippedZones)
	}
	for i, s := range subnets {
		if got := aws.ToString(s.CidrBlock); got != cidrs[i].String() {
			t.Errorf("subnet %s has %s, want %s", aws.ToString(s.SubnetId), got, cidrs[i])
		}
		tags := awsx.EC2TagMap(s.Tags)
		want := map[string]string{"coderctl/deployment": deployment, "coderctl/stage": Name, "kubernetes.io/cluster/" + deployment: "shared"}
		maps.Copy(want, roleTags)
		for k, v := range want {
			if tags[k] != v {
				t.Errorf("subnet %s tag %s = %q, want %q", aws.ToString(s.SubnetId), k, tags[k], v)
			}
		}
	}
}

// natSubnets maps NAT gateway IDs to their subnets.
func natSubnets(t *testing.T, c *ec2.Client, ids []string) map[string]string {
	t.Helper()
	out, err := c.DescribeNatGateways(context.Background(), &ec2.DescribeNatGatewaysInput{NatGatewayIds: ids})
	must(t, err)
	m := map[string]string{}
	for _, g := range out.NatGateways {
		m[aws.ToString(g.NatGatewayId)] = aws.ToString(g.SubnetId)
	}
	return m
}

// TestNATModes covers the modes TestApplyFromEmpty (Single) does not. The
// configs also drop availabilityZones, so the zones are the region's first
// three.
func TestNATModes(t *testing.T) {
	tests := []struct {
		mode      string
		nats      int
		natCheck  engine.CheckStatus
		sameZone  bool // each private subnet routes to its own zone's NAT
		noDefault bool // private subnets have no default route
	}{
		{mode: "HighlyAvailable", nats: 3, natCheck: engine.Pass, sameZone: true},
		{mode: "Disable", nats: 0, natCheck: engine.Warn, noDefault: true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cfg := stagetest.WriteClusterConfig(t, t.TempDir(), "gateway: Single", "gateway: "+tt.mode,
				`availabilityZones: ["us-west-2a", "us-west-2b", "us-west-2c"]`+"\n", "")
			env := stagetest.NewWithClusterConfig(t, nil, cfg)
			sum, _ := run(t, env, engine.ModeApply)
			c := env.Deps.AWS.EC2

			inv := taggedInventory(t, c)
			if len(inv.NATs) != tt.nats || len(inv.EIPs) != tt.nats {
				t.Fatalf("%s made %d NAT gateways and %d Elastic IPs, want %d and %d", tt.mode, len(inv.NATs), len(inv.EIPs), tt.nats, tt.nats)
			}
			if got := networkChecks(t, sum)[checkNAT].Status; got != tt.natCheck {
				t.Errorf("check %s = %s, want %s", checkNAT, got, tt.natCheck)
			}
			out := outputs(env.Deps)
			public := describeSubnets(t, c, strings.Split(out[names.KeyPublicSubnetIDs], ","))
			private := describeSubnets(t, c, strings.Split(out[names.KeyPrivateSubnetIDs], ","))
			if got := zonesOf(private); !slices.Equal(got, shippedZones) {
				t.Errorf("without availabilityZones the subnets are in %v, want the region's first three %v", got, shippedZones)
			}
			zoneOfSubnet := map[string]string{}
			for _, s := range append(slices.Clone(public), private...) {
				zoneOfSubnet[aws.ToString(s.SubnetId)] = aws.ToString(s.AvailabilityZone)
			}
			natZone := map[string]string{}
			for nat, subnet := range natSubnets(t, c, inv.NATs) {
				natZone[nat] = zoneOfSubnet[subnet]
			}
			if zones := slices.Sorted(maps.Values(natZone)); tt.sameZone && !slices.Equal(zones, shippedZones) {
				t.Errorf("NAT gateways are in zones %v, want one in each of %v", zones, shippedZones)
			}
			for subnet, target := range defaultTargets(t, c, out[names.KeyVPCID], subnetIDs(private)) {
				switch {
				case tt.noDefault && target != "":
					t.Errorf("private subnet %s routes 0.0.0.0/0 to %s, want no default route with NAT disabled", subnet, target)
				case tt.sameZone && natZone[target] != zoneOfSubnet[subnet]:
					t.Errorf("private subnet %s in %s routes to %q in %q, want its own zone's NAT gateway", subnet, zoneOfSubnet[subnet], target, natZone[target])
				}
			}
		})
	}
}

func TestReapplyMakesNoMutatingCalls(t *testing.T) {
	env := stagetest.New(t, nil)
	run(t, env, engine.ModeApply)
	before := outputs(env.Deps)

	env.Reload(t)
	env.Calls.Reset()
	run(t, env, engine.ModeApply)
	if m := env.Calls.Mutations(); len(m) > 0 {
		t.Errorf("second apply made mutating calls: %v", m)
	}
	if len(env.Calls.Reads()) == 0 {
		t.Error("second apply made no calls at all: the counter is not wired")
	}
	if after := outputs(env.Deps); !maps.Equal(before, after) {
		t.Errorf("outputs changed on re-apply: %v -> %v", before, after)
	}
}

func TestApplyAdoptsTaggedResourcesWhenStateLost(t *testing.T) {
	env := stagetest.New(t, nil)
	run(t, env, engine.ModeApply)
	before := outputs(env.Deps)
	inventoryBefore := taggedInventory(t, env.Deps.AWS.EC2).counts()

	must(t, env.Deps.State.Unset(names.KeyVPCID, names.KeyPublicSubnetIDs, names.KeyPrivateSubnetIDs))
	env.Reload(t)
	if v := env.Deps.State.Get(names.KeyVPCID); v != "" {
		t.Fatalf("%s still %q after unset and reload", names.KeyVPCID, v)
	}
	env.Calls.Reset()
	run(t, env, engine.ModeApply)
	if m := env.Calls.Mutations(); len(m) > 0 {
		t.Errorf("adopting apply made mutating calls: %v", m)
	}
	if after := outputs(env.Deps); !maps.Equal(before, after) {
		t.Errorf("adopted outputs %v, want the original %v", after, before)
	}
	if got := taggedInventory(t, env.Deps.AWS.EC2).counts(); !maps.Equal(got, inventoryBefore) {
		t.Errorf("resources after adopting = %v, want unchanged %v", got, inventoryBefore)
	}
}

func TestPlan(t *testing.T) {
	env := stagetest.New(t, nil)
	_, events := run(t, env, engine.ModePlan)
	if m := env.Calls.Mutations(); len(m) > 0 {
		t.Fatalf("plan made mutating calls: %v", m)
	}
	byStep := actionsByStep(events)
	wantCreates := map[string]int{names.NetworkStepVPC: 1, StepInternetGateway: 1, names.NetworkStepSubnets: 6, StepNAT: 2, StepRoutes: 4}
	for step, n := range wantCreates {
		acts := byStep[step]
		if len(acts) != n || !slices.Equal(kinds(acts), []engine.ActionKind{engine.Create}) {
			t.Errorf("plan on empty: step %s = %+v, want %d creates", step, acts, n)
		}
	}

	run(t, env, engine.ModeApply)
	env.Calls.Reset()
	_, events = run(t, env, engine.ModePlan)
	byStep = actionsByStep(events)
	for _, step := range []string{names.NetworkStepVPC, StepInternetGateway, names.NetworkStepSubnets, StepNAT, StepRoutes} {
		if acts := byStep[step]; len(acts) == 0 || !slices.Equal(kinds(acts), []engine.ActionKind{engine.Nothing}) {
			t.Errorf("plan after apply: step %s = %+v, want only nothing", step, acts)
		}
	}
	if m := env.Calls.Mutations(); len(m) > 0 {
		t.Errorf("plan made mutating calls: %v", m)
	}
}

// TestVerifyFailsOnBreakage breaks one thing at a time through the SDK
// after apply: the named check must fail, the others pass, and apply must
// repair it (so the next case starts from a whole network again).
func TestVerifyFailsOnBreakage(t *testing.T) {
	tests := []struct {
		name      string
		check     string
		reason    string
		alsoFail  []string // checks that fail as a consequence
		breakWith func(t *testing.T, c *ec2.Client, out map[string]string)
	}{
		{name: "private route to the NAT deleted", check: checkPrivateRT, reason: "no 0.0.0.0/0 route",
			breakWith: func(t *testing.T, c *ec2.Client, out map[string]string) {
				second := strings.Split(out[names.KeyPrivateSubnetIDs], ",")[1]
				deleteDefaultRoute(t, c, out[names.KeyVPCID], second)
			}},
		{name: "public route to the internet gateway deleted", check: checkPublicRT, reason: "no default route",
			breakWith: func(t *testing.T, c *ec2.Client, out map[string]string) {
				deleteDefaultRoute(t, c, out[names.KeyVPCID], strings.Split(out[names.KeyPublicSubnetIDs], ",")[0])
			}},
		{name: "load balancer role tag removed", check: checkTagsName, reason: "kubernetes.io/role/elb",
			breakWith: func(t *testing.T, c *ec2.Client, out map[string]string) {
				_, err := c.DeleteTags(context.Background(), &ec2.DeleteTagsInput{
					Resources: []string{strings.Split(out[names.KeyPublicSubnetIDs], ",")[2]},
					Tags:      []ec2types.Tag{{Key: aws.String("kubernetes.io/role/elb")}},
				})
				must(t, err)
			}},
		{name: "NAT gateway deleted", check: checkNAT, reason: "no available NAT gateway", alsoFail: []string{checkPrivateRT},
			breakWith: func(t *testing.T, c *ec2.Client, out map[string]string) {
				for _, id := range taggedInventory(t, c).NATs {
					_, err := c.DeleteNatGateway(context.Background(), &ec2.DeleteNatGatewayInput{NatGatewayId: aws.String(id)})
					must(t, err)
				}
			}},
		{name: "DNS hostnames turned off", check: checkVPC, reason: "enableDnsHostnames",
			breakWith: func(t *testing.T, c *ec2.Client, out map[string]string) {
				_, err := c.ModifyVpcAttribute(context.Background(), &ec2.ModifyVpcAttributeInput{
					VpcId: aws.String(out[names.KeyVPCID]), EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(false)},
				})
				must(t, err)
			}},
	}
	env := stagetest.New(t, nil)
	run(t, env, engine.ModeApply)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.breakWith(t, env.Deps.AWS.EC2, outputs(env.Deps))

			checks := checksOf(New(env.Deps).Verify(context.Background()))
			if got := checks[tt.check]; got.Status != engine.Fail || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("check %s = %+v, want fail mentioning %q", tt.check, got, tt.reason)
			}
			for name, c := range checks {
				if name != tt.check && !slices.Contains(tt.alsoFail, name) && c.Status == engine.Fail {
					t.Errorf("check %s also failed: %s", name, c.Reason)
				}
			}
			// Apply converges the drift, and its checkpoint then passes.
			run(t, env, engine.ModeApply)
			for _, name := range append([]string{tt.check}, tt.alsoFail...) {
				if got := checksOf(New(env.Deps).Verify(context.Background()))[name]; got.Status != engine.Pass {
					t.Errorf("after re-apply, check %s = %+v, want pass", name, got)
				}
			}
		})
	}
}

func deleteDefaultRoute(t *testing.T, c *ec2.Client, vpcID, subnetID string) {
	t.Helper()
	out, err := c.DescribeRouteTables(context.Background(), &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", vpcID)}})
	must(t, err)
	rt, _ := subnetRouteTable(out.RouteTables, subnetID)
	if rt == nil {
		t.Fatalf("no route table for %s", subnetID)
	}
	_, err = c.DeleteRoute(context.Background(), &ec2.DeleteRouteInput{RouteTableId: rt.RouteTableId, DestinationCidrBlock: aws.String(anywhere)})
	must(t, err)
}

func TestDestroyLeavesNothingTagged(t *testing.T) {
	cfg := stagetest.WriteClusterConfig(t, t.TempDir(), "gateway: Single", "gateway: HighlyAvailable")
	env := stagetest.NewWithClusterConfig(t, nil, cfg)
	run(t, env, engine.ModeApply)
	c := env.Deps.AWS.EC2
	vpcID := env.Deps.State.Get(names.KeyVPCID)
	// Security groups another stage left behind, one referring to the other:
	// the VPC cannot go while they exist.
	a := createTaggedSG(t, c, vpcID, "left-by-rds")
	b := createTaggedSG(t, c, vpcID, "left-by-eks")
	_, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(a), IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(b)}}}},
	})
	must(t, err)

	env.Reload(t)
	run(t, env, engine.ModeDestroy)
	inv := taggedInventory(t, c)
	for kind, n := range inv.counts() {
		if n != 0 {
			t.Errorf("after destroy, %d %s still tagged %s=%s: %+v", n, kind, "coderctl/deployment", deployment, inv)
		}
	}
	if out := outputs(env.Deps); out[names.KeyVPCID] != "" || out[names.KeyPrivateSubnetIDs] != "" || out[names.KeyPublicSubnetIDs] != "" {
		t.Errorf("outputs still set after destroy: %v", out)
	}

	// Everything is already gone: a second destroy succeeds and calls no delete.
	env.Reload(t)
	env.Calls.Reset()
	run(t, env, engine.ModeDestroy)
	if m := env.Calls.Mutations(); len(m) > 0 {
		t.Errorf("destroy of nothing made mutating calls: %v", m)
	}
}

func createTaggedSG(t *testing.T, c *ec2.Client, vpcID, name string) string {
	t.Helper()
	out, err := c.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(name), Description: aws.String(name), VpcId: aws.String(vpcID),
		TagSpecifications: tagSpec(ec2types.ResourceTypeSecurityGroup, map[string]string{"coderctl/deployment": deployment, "coderctl/stage": "rds"}),
	})
	must(t, err)
	return aws.ToString(out.GroupId)
}

// TestDefaultRouteAlreadyThere: a default route that exists although the
// table was read without one (made meanwhile, or by a CreateRoute the SDK
// retried after a lost response; EC2 answers RouteAlreadyExists) ends at
// the wanted target, whatever it pointed to.
func TestDefaultRouteAlreadyThere(t *testing.T) {
	env := stagetest.New(t, nil)
	run(t, env, engine.ModeApply)
	c := env.Deps.AWS.EC2
	out := outputs(env.Deps)
	ctx := context.Background()
	inv := taggedInventory(t, c)
	nat, igw := inv.NATs[0], inv.IGWs[0]
	tables, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", out[names.KeyVPCID])}})
	must(t, err)
	rt, _ := subnetRouteTable(tables.RouteTables, strings.Split(out[names.KeyPrivateSubnetIDs], ",")[0])
	if rt == nil {
		t.Fatal("no route table for the first private subnet")
	}
	rtID := aws.ToString(rt.RouteTableId)
	tests := []struct{ name, before string }{
		{name: "to the wanted NAT gateway", before: nat},
		{name: "to another target", before: igw},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &ec2.ReplaceRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String(anywhere)}
			if strings.HasPrefix(tc.before, "nat-") {
				in.NatGatewayId = aws.String(tc.before)
			} else {
				in.GatewayId = aws.String(tc.before)
			}
			_, err := c.ReplaceRoute(ctx, in)
			must(t, err)
			n := &network{d: env.Deps}
			if err := n.ensureDefaultRoute(ctx, rtID, nil, nat); err != nil {
				t.Fatalf("ensureDefaultRoute with the route already there: %v", err)
			}
			got, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{rtID}})
			must(t, err)
			if target := routeTarget(defaultRoute(&got.RouteTables[0])); target != nat {
				t.Errorf("default route goes to %q, want %s", target, nat)
			}
		})
	}
}

// TestSubnetAlreadyThere: CreateSubnet takes no client token, so a subnet
// made since the list (or by the SDK's retry of a call whose response was
// lost) answers InvalidSubnet.Conflict. The stage's own subnet of that name
// and CIDR is taken as created; a CIDR taken by another subnet stays an
// error.
func TestSubnetAlreadyThere(t *testing.T) {
	env := stagetest.New(t, nil)
	run(t, env, engine.ModeApply)
	ctx := context.Background()
	out := outputs(env.Deps)
	n := &network{d: env.Deps}
	l, err := n.layout(ctx)
	must(t, err)
	first := l.subnets()[0]
	id := strings.Split(out[names.KeyPrivateSubnetIDs], ",")[0]

	got, err := n.createSubnet(ctx, out[names.KeyVPCID], first, n.subnetTags(first.Kind, first.Zone))
	if err != nil || aws.ToString(got.SubnetId) != id {
		t.Errorf("createSubnet of an existing own subnet = %v, %v; want subnet %s", got, err, id)
	}
	// The same CIDR under another subnet's name: not ours to take.
	other := first
	other.Kind = kindPublic
	if _, err := n.createSubnet(ctx, out[names.KeyVPCID], other, n.subnetTags(other.Kind, other.Zone)); err == nil || !strings.Contains(err.Error(), "InvalidSubnet.Conflict") {
		t.Errorf("createSubnet of a CIDR another subnet holds = %v, want the conflict", err)
	}
}
