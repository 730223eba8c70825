package network

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// subnetSpec is one subnet the stage builds.
type subnetSpec struct {
	Kind string
	Zone string
	CIDR netip.Prefix
}

// subnets lists the wanted subnets: private ones in zone order, then public.
func (l *layout) subnets() []subnetSpec {
	var out []subnetSpec
	for i, z := range l.Zones {
		out = append(out, subnetSpec{Kind: kindPrivate, Zone: z, CIDR: l.Subnets.Private[i]})
	}
	for i, z := range l.Zones {
		out = append(out, subnetSpec{Kind: kindPublic, Zone: z, CIDR: l.Subnets.Public[i]})
	}
	return out
}

func (n *network) planSubnets(ctx context.Context) ([]engine.Action, error) {
	if n.existing() {
		return []engine.Action{n.existingAction("subnets")}, nil
	}
	l, v, err := n.layoutAndVPC(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]ec2types.Subnet{}
	if v != nil {
		if have, err = n.ownSubnets(ctx, aws.ToString(v.VpcId)); err != nil {
			return nil, err
		}
	}
	var acts []engine.Action
	for _, s := range l.subnets() {
		name := n.subnetName(s.Kind, s.Zone)
		got, ok := have[name]
		switch {
		case !ok && v == nil:
			acts = append(acts, engine.Action{Kind: engine.Create, Resource: fmt.Sprintf("subnet %s (%s in %s)", name, s.CIDR, s.Zone), Reason: "the VPC does not exist yet"})
		case !ok:
			acts = append(acts, engine.Action{Kind: engine.Create, Resource: fmt.Sprintf("subnet %s (%s in %s)", name, s.CIDR, s.Zone), Reason: "missing"})
		case len(n.subnetDrift(s, got)) > 0:
			acts = append(acts, engine.Action{Kind: engine.Update, Resource: "subnet " + aws.ToString(got.SubnetId),
				Reason: strings.Join(n.subnetDrift(s, got), "; ")})
		default:
			acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: "subnet " + aws.ToString(got.SubnetId), Reason: name + " exists"})
		}
	}
	return acts, nil
}

// subnetDrift says what apply would change on an existing subnet of the
// deployment: tags someone removed, and a public subnet's
// MapPublicIpOnLaunch turned off.
func (n *network) subnetDrift(s subnetSpec, got ec2types.Subnet) []string {
	var out []string
	if miss := missingTags(got.Tags, n.subnetTags(s.Kind, s.Zone)); len(miss) > 0 {
		out = append(out, "add tags "+strings.Join(tagKeys(miss), ", "))
	}
	if s.Kind == kindPublic && !mapsPublicIP(got) {
		out = append(out, "turn on MapPublicIpOnLaunch (auto-assign public IPv4): "+publicIPReason)
	}
	return out
}

func (n *network) applySubnets(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return n.adoptSubnets(ctx)
	}
	l, vpcID, err := n.layoutAndVPCID(ctx)
	if err != nil {
		return err
	}
	have, err := n.ownSubnets(ctx, vpcID)
	if err != nil {
		return err
	}
	for _, s := range l.subnets() {
		name := n.subnetName(s.Kind, s.Zone)
		want := n.subnetTags(s.Kind, s.Zone)
		got, ok := have[name]
		if !ok {
			created, err := n.createSubnet(ctx, vpcID, s, want)
			if err != nil {
				return err
			}
			r.Progress(fmt.Sprintf("created subnet %s (%s, %s in %s)", aws.ToString(created.SubnetId), name, s.CIDR, s.Zone))
			have[name] = *created
			// Record at once: a run killed now still finds it by state.
			if err := n.d.Record(n.subnetOutputs(l, have)); err != nil {
				return err
			}
			got = *created
		} else if err := n.addMissingTags(ctx, aws.ToString(got.SubnetId), got.Tags, want); err != nil {
			return err
		}
		if s.Kind == kindPublic {
			if err := n.enablePublicIP(ctx, r, got); err != nil {
				return err
			}
		}
	}
	return n.d.Record(n.subnetOutputs(l, have))
}

// createSubnet makes the subnet. CreateSubnet takes no client token, so a
// subnet that exists after all (made since the subnets were listed, or by
// this very call when the SDK retried it after a lost response, as a
// loaded CI run saw) answers InvalidSubnet.Conflict: the stage's own subnet
// of that name and CIDR is then the one created. Any other conflict is an
// error.
func (n *network) createSubnet(ctx context.Context, vpcID string, s subnetSpec, tags map[string]string) (*ec2types.Subnet, error) {
	out, err := n.d.AWS.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{
		VpcId:             aws.String(vpcID),
		CidrBlock:         aws.String(s.CIDR.String()),
		AvailabilityZone:  aws.String(s.Zone),
		TagSpecifications: tagSpec(ec2types.ResourceTypeSubnet, tags),
	})
	if err == nil {
		return out.Subnet, nil
	}
	if awsx.ErrorCode(err) == "InvalidSubnet.Conflict" {
		have, lerr := n.ownSubnets(ctx, vpcID)
		if got, ok := have[n.subnetName(s.Kind, s.Zone)]; lerr == nil && ok && aws.ToString(got.CidrBlock) == s.CIDR.String() {
			return &got, nil
		}
	}
	return nil, fmt.Errorf("create %s subnet %s in %s: %w", s.Kind, s.CIDR, s.Zone, err)
}

// subnetOutputs lists the IDs of the subnets that exist, in zone order
// (a kind with none yet is left out rather than recorded empty).
func (n *network) subnetOutputs(l *layout, have map[string]ec2types.Subnet) map[string]string {
	var private, public []string
	for _, z := range l.Zones {
		if s, ok := have[n.subnetName(kindPrivate, z)]; ok {
			private = append(private, aws.ToString(s.SubnetId))
		}
		if s, ok := have[n.subnetName(kindPublic, z)]; ok {
			public = append(public, aws.ToString(s.SubnetId))
		}
	}
	out := map[string]string{}
	if len(private) > 0 {
		out[names.KeyPrivateSubnetIDs] = strings.Join(private, ",")
	}
	if len(public) > 0 {
		out[names.KeyPublicSubnetIDs] = strings.Join(public, ",")
	}
	return out
}

// addMissingTags restores tags someone removed (the Kubernetes role tags
// decide where load balancers go); nothing is called when all are there.
func (n *network) addMissingTags(ctx context.Context, id string, have []ec2types.Tag, want map[string]string) error {
	missing := missingTags(have, want)
	if len(missing) == 0 {
		return nil
	}
	_, err := n.d.AWS.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: awsx.EC2Tags(missing)})
	return awsx.Describe("tag "+id, err)
}

// missingTags are the wanted tags a resource lacks or has with another value.
func missingTags(have []ec2types.Tag, want map[string]string) map[string]string {
	got := awsx.EC2TagMap(have)
	out := map[string]string{}
	for k, v := range want {
		if got[k] != v {
			out[k] = v
		}
	}
	return out
}

func tagKeys(tags map[string]string) []string {
	return awsx.TagList(tags, func(k, _ string) string { return k })
}

// destroySubnets deletes every subnet tagged for the deployment, after
// what others left in the VPC (detached network interfaces, the cluster's
// load balancer security groups); a subnet still in use is retried for a
// bounded time, and the error names what holds it.
func (n *network) destroySubnets(ctx context.Context, r engine.Reporter) error {
	if !n.existing() {
		list, err := n.taggedSubnets(ctx, "")
		if err != nil {
			return err
		}
		cleaned := map[string]bool{}
		for _, s := range list {
			if vpcID := aws.ToString(s.VpcId); !cleaned[vpcID] {
				cleaned[vpcID] = true
				if err := n.deleteLeftovers(ctx, r, vpcID); err != nil {
					return err
				}
			}
		}
		for _, s := range list {
			if err := n.deleteSubnet(ctx, r, s); err != nil {
				return err
			}
		}
	}
	return n.d.State.Unset(names.KeyPublicSubnetIDs, names.KeyPrivateSubnetIDs)
}

func (n *network) deleteSubnet(ctx context.Context, r engine.Reporter, s ec2types.Subnet) error {
	id, name, vpcID := aws.ToString(s.SubnetId), nameOf(s.Tags), aws.ToString(s.VpcId)
	err := n.retryHeld(ctx, r, fmt.Sprintf("subnet %s (%s)", id, name),
		func(ctx context.Context) error {
			_, err := n.d.AWS.EC2.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(id)})
			if err != nil && !awsx.IsNotFound(err) {
				return fmt.Errorf("delete subnet %s (%s): %w", id, name, err)
			}
			return nil
		},
		func(ctx context.Context) error { return n.deleteLeftovers(ctx, r, vpcID) },
		func(ctx context.Context) ([]string, error) { return n.interfaceHolders(ctx, filter("subnet-id", id)) })
	if err != nil {
		return err
	}
	r.Progress(fmt.Sprintf("deleted subnet %s (%s)", id, name))
	return nil
}
