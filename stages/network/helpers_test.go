package network

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/prereqs"
)

func TestMain(m *testing.M) { moto.Main(m) }

// deployment is the shipped cluster-config.yaml's metadata.name.
const deployment = "coder-prod"

// runner is what the tests need of stagetest.Env and ConfigEnv alike.
type runner interface {
	Run(t testing.TB, stages []engine.Stage, opts engine.Options) (*engine.Summary, []engine.Event, error)
	Reload(t testing.TB)
}

// deps returns the current Deps of either kind of env.
func deps(e runner) *deploy.Deps {
	switch v := e.(type) {
	case *stagetest.Env:
		return v.Deps
	case *stagetest.ConfigEnv:
		return v.Deps
	}
	panic("unknown env")
}

func graph(d *deploy.Deps) []engine.Stage { return []engine.Stage{prereqs.New(d), New(d)} }

// run runs the network stage in mode, with prereqs in the graph but not
// selected (its checkpoint costs moto ~3 s after each reset; TestApplyFromEmpty
// runs it), and fails the test when the run does not succeed.
func run(t *testing.T, e runner, mode engine.Mode) (*engine.Summary, []engine.Event) {
	t.Helper()
	return runOpts(t, e, engine.Options{Mode: mode, Only: []string{Name}})
}

func runOpts(t *testing.T, e runner, opts engine.Options) (*engine.Summary, []engine.Event) {
	t.Helper()
	mode := opts.Mode
	sum, events, err := e.Run(t, graph(deps(e)), opts)
	if err != nil || !sum.OK {
		t.Fatalf("%s: err=%v failed checks=%v\n%s", mode, err, sumFailures(sum), stepErrors(events))
	}
	return sum, events
}

func sumFailures(sum *engine.Summary) []string {
	if sum == nil {
		return nil
	}
	var out []string
	for _, st := range sum.Stages {
		for _, c := range st.Checks {
			if c.Status == engine.Fail {
				out = append(out, st.Stage+"/"+c.Name+": "+c.Reason)
			}
		}
		if st.Error != "" {
			out = append(out, st.Stage+": "+st.Error)
		}
	}
	return out
}

func stepErrors(events []engine.Event) string {
	var b strings.Builder
	for _, ev := range events {
		if ev.Error != "" {
			b.WriteString(ev.Stage + "/" + ev.Step + ": " + ev.Error + "\n")
		}
	}
	return b.String()
}

// checksOf returns the network checkpoint's checks by name.
func checksOf(checks []engine.Check) map[string]engine.Check {
	out := map[string]engine.Check{}
	for _, c := range checks {
		out[c.Name] = c
	}
	return out
}

func networkChecks(t *testing.T, sum *engine.Summary) map[string]engine.Check {
	t.Helper()
	for _, st := range sum.Stages {
		if st.Stage == Name {
			return checksOf(st.Checks)
		}
	}
	t.Fatalf("no %s stage in the summary", Name)
	return nil
}

// inventory is every EC2 resource carrying the deployment's tag.
type inventory struct {
	VPCs, Subnets, IGWs, NATs, EIPs, RouteTables, SecurityGroups []string
}

func ours(tags []ec2types.Tag) bool {
	return awsx.EC2TagMap(tags)[awsx.TagDeployment] == deployment
}

// taggedInventory lists, per service call, every resource tagged for the
// deployment (NAT gateways only while pending or available: moto keeps
// deleted ones visible, as AWS does for an hour).
func taggedInventory(t *testing.T, c *ec2.Client) inventory {
	t.Helper()
	ctx := context.Background()
	var inv inventory
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	must(t, err)
	for _, v := range vpcs.Vpcs {
		if ours(v.Tags) {
			inv.VPCs = append(inv.VPCs, aws.ToString(v.VpcId))
		}
	}
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	must(t, err)
	for _, s := range subnets.Subnets {
		if ours(s.Tags) {
			inv.Subnets = append(inv.Subnets, aws.ToString(s.SubnetId))
		}
	}
	igws, err := c.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{})
	must(t, err)
	for _, g := range igws.InternetGateways {
		if ours(g.Tags) {
			inv.IGWs = append(inv.IGWs, aws.ToString(g.InternetGatewayId))
		}
	}
	nats, err := c.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{})
	must(t, err)
	for _, g := range nats.NatGateways {
		if ours(g.Tags) && isLive(g) {
			inv.NATs = append(inv.NATs, aws.ToString(g.NatGatewayId))
		}
	}
	eips, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	must(t, err)
	for _, a := range eips.Addresses {
		if ours(a.Tags) {
			inv.EIPs = append(inv.EIPs, aws.ToString(a.AllocationId))
		}
	}
	rts, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{})
	must(t, err)
	for _, rt := range rts.RouteTables {
		if ours(rt.Tags) {
			inv.RouteTables = append(inv.RouteTables, aws.ToString(rt.RouteTableId))
		}
	}
	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	must(t, err)
	for _, sg := range sgs.SecurityGroups {
		if ours(sg.Tags) {
			inv.SecurityGroups = append(inv.SecurityGroups, aws.ToString(sg.GroupId))
		}
	}
	return inv
}

func (inv inventory) counts() map[string]int {
	return map[string]int{"vpcs": len(inv.VPCs), "subnets": len(inv.Subnets), "igws": len(inv.IGWs), "nats": len(inv.NATs),
		"eips": len(inv.EIPs), "route-tables": len(inv.RouteTables), "security-groups": len(inv.SecurityGroups)}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// outputs reads the stage's outputs from the state store.
func outputs(d *deploy.Deps) map[string]string {
	return map[string]string{
		names.KeyVPCID: d.State.Get(names.KeyVPCID), names.KeyPublicSubnetIDs: d.State.Get(names.KeyPublicSubnetIDs), names.KeyPrivateSubnetIDs: d.State.Get(names.KeyPrivateSubnetIDs),
	}
}

// describeSubnets returns subnets by ID, in the order given.
func describeSubnets(t *testing.T, c *ec2.Client, ids []string) []ec2types.Subnet {
	t.Helper()
	out, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{SubnetIds: ids})
	must(t, err)
	byID := map[string]ec2types.Subnet{}
	for _, s := range out.Subnets {
		byID[aws.ToString(s.SubnetId)] = s
	}
	got := make([]ec2types.Subnet, 0, len(ids))
	for _, id := range ids {
		s, ok := byID[id]
		if !ok {
			t.Fatalf("subnet %s does not exist", id)
		}
		got = append(got, s)
	}
	return got
}

// defaultTargets maps each subnet to the target of its table's 0.0.0.0/0.
func defaultTargets(t *testing.T, c *ec2.Client, vpcID string, subnetIDs []string) map[string]string {
	t.Helper()
	out, err := c.DescribeRouteTables(context.Background(), &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", vpcID)}})
	must(t, err)
	targets := map[string]string{}
	for _, id := range subnetIDs {
		rt, _ := subnetRouteTable(out.RouteTables, id)
		targets[id] = routeTarget(defaultRoute(rt))
	}
	return targets
}

// actionsByStep collects a plan's actions per step of the network stage.
func actionsByStep(events []engine.Event) map[string][]engine.Action {
	out := map[string][]engine.Action{}
	for _, ev := range events {
		if ev.Type == engine.EventPlan && ev.Stage == Name && ev.Action != nil {
			out[ev.Step] = append(out[ev.Step], *ev.Action)
		}
	}
	return out
}

func kinds(acts []engine.Action) []engine.ActionKind {
	var out []engine.ActionKind
	for _, a := range acts {
		if !slices.Contains(out, a.Kind) {
			out = append(out, a.Kind)
		}
	}
	slices.Sort(out)
	return out
}
