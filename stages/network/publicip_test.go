package network

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// publicGroupPair turns the shipped config's first node group (system,
// managedNodeGroups[0]) into a public one. The label line anchors it to the
// group, not to a comment that mentions the field.
var publicGroupPair = []string{
	"    privateNetworking: true\n    labels:\n      coder/node-type: system",
	"    privateNetworking: false\n    labels:\n      coder/node-type: system",
}

func setPublicIP(t *testing.T, c *ec2.Client, id string, on bool) {
	t.Helper()
	_, err := c.ModifySubnetAttribute(context.Background(), &ec2.ModifySubnetAttributeInput{
		SubnetId: aws.String(id), MapPublicIpOnLaunch: &ec2types.AttributeBooleanValue{Value: aws.Bool(on)},
	})
	must(t, err)
}

// publicIPOf reads each subnet's MapPublicIpOnLaunch from moto.
func publicIPOf(t *testing.T, c *ec2.Client, ids []string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, s := range describeSubnets(t, c, ids) {
		out[aws.ToString(s.SubnetId)] = mapsPublicIP(s)
	}
	return out
}

// TestPublicSubnetsAssignPublicIP: the public subnets coderctl creates
// assign public IPv4 addresses (the private ones do not), verify says so;
// turned off behind coderctl's back, verify fails naming the subnet, plan
// shows the change, apply turns it back on with one call and nothing else.
func TestPublicSubnetsAssignPublicIP(t *testing.T) {
	env := stagetest.New(t, nil)
	c := env.Deps.AWS.EC2
	sum, _ := run(t, env, engine.ModeApply)
	public := strings.Split(env.Deps.State.Get(names.KeyPublicSubnetIDs), ",")
	private := strings.Split(env.Deps.State.Get(names.KeyPrivateSubnetIDs), ",")
	for id, on := range publicIPOf(t, c, public) {
		if !on {
			t.Errorf("public subnet %s: MapPublicIpOnLaunch off after apply", id)
		}
	}
	for id, on := range publicIPOf(t, c, private) {
		if on {
			t.Errorf("private subnet %s: MapPublicIpOnLaunch on; only public subnets should assign public addresses", id)
		}
	}
	if ck := networkChecks(t, sum)[checkPublicIP]; ck.Status != engine.Pass {
		t.Errorf("check %s after apply = %+v, want pass", checkPublicIP, ck)
	}

	drifted := public[1]
	setPublicIP(t, c, drifted, false)
	ck := checksOf(New(env.Deps).Verify(context.Background()))[checkPublicIP]
	if ck.Status != engine.Fail || !strings.Contains(ck.Reason, drifted) || ck.Hint != hintApplyRepair {
		t.Errorf("check %s with %s off = %+v, want a failure naming it with hint %q", checkPublicIP, drifted, ck, hintApplyRepair)
	}

	_, events := run(t, env, engine.ModePlan)
	var updates []engine.Action
	for _, a := range actionsByStep(events)[names.NetworkStepSubnets] {
		if a.Kind == engine.Update {
			updates = append(updates, a)
		}
	}
	if len(updates) != 1 || !strings.Contains(updates[0].Resource, drifted) || !strings.Contains(updates[0].Reason, "MapPublicIpOnLaunch") {
		t.Errorf("plan updates = %+v, want one update of %s turning on MapPublicIpOnLaunch", updates, drifted)
	}

	env.Calls.Reset()
	sum, _ = run(t, env, engine.ModeApply)
	if m := env.Calls.Mutations(); !slices.Equal(m, []string{"EC2.ModifySubnetAttribute"}) {
		t.Errorf("repairing apply made mutating calls %v, want exactly one EC2.ModifySubnetAttribute", m)
	}
	if !publicIPOf(t, c, []string{drifted})[drifted] {
		t.Errorf("public subnet %s: MapPublicIpOnLaunch still off after the repairing apply", drifted)
	}
	if ck := networkChecks(t, sum)[checkPublicIP]; ck.Status != engine.Pass {
		t.Errorf("check %s after repair = %+v, want pass", checkPublicIP, ck)
	}
}

// TestExistingVPCPublicNodeGroups: in a VPC coderctl does not own, a node
// group with privateNetworking: false needs every public subnet to assign
// public IPv4 addresses. Where one does not, validation refuses (exit 2)
// naming the subnet and both ways out, with no mutating call; the subnets
// are never modified by coderctl.
func TestExistingVPCPublicNodeGroups(t *testing.T) {
	tests := []struct {
		name        string
		publicGroup bool
		onInVPC     []int // indexes of the public subnets that have MapPublicIpOnLaunch
		noPublic    bool  // list no public subnets in the config
		wantField   string
		wantParts   []string // in the refusal; the subnet ID is added
		wantCheck   engine.CheckStatus
	}{
		{name: "public group, one subnet without public IPs", publicGroup: true, onInVPC: []int{0, 2},
			wantField: "vpc.subnets.public.us-west-2b",
			wantParts: []string{"MapPublicIpOnLaunch", "enable auto-assign public IPv4 on subnet", "managedNodeGroups[0].privateNetworking: true", `"system"`}},
		{name: "public group, no public subnet assigns public IPs", publicGroup: true,
			wantField: "vpc.subnets.public.us-west-2a", wantParts: []string{"Ec2SubnetInvalidConfiguration"}},
		{name: "public group, every public subnet assigns public IPs", publicGroup: true, onInVPC: []int{0, 1, 2}, wantCheck: engine.Pass},
		{name: "private groups only, subnets without public IPs", wantCheck: engine.Pass},
		{name: "public group, no public subnets listed", publicGroup: true, noPublic: true,
			wantField: "managedNodeGroups[0].privateNetworking", wantParts: []string{"vpc.subnets.public lists none", "set privateNetworking: true"}},
	}
	env := stagetest.NewWithClusterConfig(t, nil, stagetest.ClusterConfigPath(t))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := env.Deps.AWS.EC2
			u := buildUserVPC(t, c, 40+i)
			for _, j := range tt.onInVPC {
				setPublicIP(t, c, u.Public[j], true)
			}
			listed := u.Public
			if tt.noPublic {
				listed = nil
			}
			pairs := existingPairs(t, u.ID, u.Private, listed)
			if tt.noPublic {
				pairs[len(pairs)-1] = strings.TrimSuffix(pairs[len(pairs)-1], "    public:\n")
			}
			if tt.publicGroup {
				pairs = append(pairs, publicGroupPair...)
			}
			env.ClusterConfig = stagetest.WriteClusterConfig(t, t.TempDir(), pairs...)
			env.Reload(t)
			before := publicIPOf(t, c, u.Public)
			env.Calls.Reset()

			err := New(env.Deps).Validate(context.Background())
			if m := env.Calls.Mutations(); len(m) > 0 {
				t.Errorf("validation made mutating calls: %v", m)
			}
			if tt.wantField != "" {
				parts := tt.wantParts
				if !tt.noPublic {
					parts = append(parts, firstOff(u, tt.onInVPC))
				}
				checkRefusal(t, err, env.ClusterConfig, tt.wantField, parts)
				return
			}
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			run(t, env, engine.ModeApply)
			if m := env.Calls.Mutations(); len(m) > 0 {
				t.Errorf("apply on an existing VPC made mutating calls: %v", m)
			}
			if after := publicIPOf(t, c, u.Public); !mapsEqualBool(before, after) {
				t.Errorf("MapPublicIpOnLaunch of the existing VPC's subnets changed: %v -> %v", before, after)
			}
			if ck := checksOf(New(env.Deps).Verify(context.Background()))[checkPublicIP]; ck.Status != tt.wantCheck {
				t.Errorf("check %s = %+v, want %s", checkPublicIP, ck, tt.wantCheck)
			}
		})
	}
}

// checkRefusal asserts a bad-input error (exit 2) naming the file, the
// field and every part.
func checkRefusal(t *testing.T, err error, cfg, field string, parts []string) {
	t.Helper()
	if !fault.IsInput(err) || fault.ExitCode(err) != fault.ExitInput {
		t.Fatalf("Validate = %v, want bad input (exit 2)", err)
	}
	t.Logf("refusal: %v", err)
	for _, part := range append([]string{cfg, field}, parts...) {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
}

// firstOff is the first public subnet of u, in zone order, that was not
// given public IPs.
func firstOff(u userVPC, on []int) string {
	for j, id := range u.Public {
		if !slices.Contains(on, j) {
			return id
		}
	}
	return ""
}

func mapsEqualBool(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestExistingVPCPublicIPTurnedOffFailsVerify: a public subnet of an
// existing VPC that stops assigning public IPs after adoption fails verify
// while a public node group runs there, with the hint naming both ways out.
func TestExistingVPCPublicIPTurnedOffFailsVerify(t *testing.T) {
	env := stagetest.NewWithClusterConfig(t, nil, stagetest.ClusterConfigPath(t))
	c := env.Deps.AWS.EC2
	u := buildUserVPC(t, c, 50)
	for _, id := range u.Public {
		setPublicIP(t, c, id, true)
	}
	env.ClusterConfig = stagetest.WriteClusterConfig(t, t.TempDir(), append(existingPairs(t, u.ID, u.Private, u.Public), publicGroupPair...)...)
	env.Reload(t)
	run(t, env, engine.ModeApply)
	setPublicIP(t, c, u.Public[2], false)
	ck := checksOf(New(env.Deps).Verify(context.Background()))[checkPublicIP]
	if ck.Status != engine.Fail || !strings.Contains(ck.Reason, u.Public[2]) || !strings.Contains(ck.Hint, "privateNetworking: true") ||
		!strings.Contains(ck.Hint, "does not change an existing VPC") {
		t.Errorf("check %s = %+v, want a failure naming %s with both ways out", checkPublicIP, ck, u.Public[2])
	}
}
