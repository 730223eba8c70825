package network

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// tableSpec is one route table the stage wants: its default route's target
// ("" for none) and the subnets that use it.
type tableSpec struct {
	Name    string
	Target  string
	Subnets []string // subnet IDs
}

// world is what the routes step reads before it plans or applies.
type world struct {
	vpcID   string
	subnets map[string]ec2types.Subnet
	igwID   string
	nats    map[string]ec2types.NatGateway
	tables  []ec2types.RouteTable
}

func (n *network) readWorld(ctx context.Context, vpcID string) (*world, error) {
	w := &world{vpcID: vpcID}
	subnets, err := n.ownSubnets(ctx, vpcID)
	if err != nil {
		return nil, err
	}
	w.subnets = subnets
	igws, err := n.taggedIGWs(ctx)
	if err != nil {
		return nil, err
	}
	if igw := pickIGW(igws, vpcID); igw != nil && attachedTo(*igw, vpcID) {
		w.igwID = aws.ToString(igw.InternetGatewayId)
	}
	nats, err := n.taggedNATs(ctx, vpcID)
	if err != nil {
		return nil, err
	}
	w.nats = liveNATs(nats)
	w.tables, err = n.routeTables(ctx, vpcID)
	return w, err
}

// tableSpecs are the route tables the layout needs: one public table to the
// internet gateway for every public subnet, and one table per zone for its
// private subnet, to the zone's NAT gateway (the first zone's with a single
// NAT). A table per zone lets HighlyAvailable NAT be switched on later
// without moving subnets. Missing pieces are reported, not guessed.
func (n *network) tableSpecs(l *layout, w *world) ([]tableSpec, []string) {
	var missing []string
	subnetID := func(kind, zone string) string {
		s, ok := w.subnets[n.subnetName(kind, zone)]
		if !ok {
			missing = append(missing, "subnet "+n.subnetName(kind, zone))
		}
		return aws.ToString(s.SubnetId)
	}
	if w.igwID == "" {
		missing = append(missing, "internet gateway "+n.igwName()+" attached to "+w.vpcID)
	}
	public := tableSpec{Name: n.publicRTName(), Target: w.igwID}
	for _, z := range l.Zones {
		public.Subnets = append(public.Subnets, subnetID(kindPublic, z))
	}
	specs := []tableSpec{public}
	for _, z := range l.Zones {
		spec := tableSpec{Name: n.privateRTName(z), Subnets: []string{subnetID(kindPrivate, z)}}
		if natZone := l.natZoneFor(z); natZone != "" {
			g, ok := w.nats[n.natName(natZone)]
			if !ok {
				missing = append(missing, "NAT gateway "+n.natName(natZone))
			}
			spec.Target = aws.ToString(g.NatGatewayId)
		}
		specs = append(specs, spec)
	}
	return specs, missing
}

func (n *network) planRoutes(ctx context.Context) ([]engine.Action, error) {
	if n.existing() {
		return []engine.Action{n.existingAction("route tables")}, nil
	}
	l, v, err := n.layoutAndVPC(ctx)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return n.planAllTables(l, "the VPC does not exist yet"), nil
	}
	w, err := n.readWorld(ctx, aws.ToString(v.VpcId))
	if err != nil {
		return nil, err
	}
	specs, missing := n.tableSpecs(l, w)
	if len(missing) > 0 {
		return n.planAllTables(l, "after "+strings.Join(missing, ", ")+" exist"), nil
	}
	own := n.ownRouteTables(w.tables)
	var acts []engine.Action
	for _, spec := range specs {
		acts = append(acts, planTable(spec, own, w.tables))
	}
	return acts, nil
}

// planAllTables says every table will be created or brought in line.
func (n *network) planAllTables(l *layout, reason string) []engine.Action {
	acts := []engine.Action{{Kind: engine.Create, Resource: "route table " + n.publicRTName() + " (0.0.0.0/0 to the internet gateway)", Reason: reason}}
	for _, z := range l.Zones {
		target := "the NAT gateway in " + l.natZoneFor(z)
		if l.natZoneFor(z) == "" {
			target = "nowhere: NAT is disabled"
		}
		acts = append(acts, engine.Action{Kind: engine.Create, Resource: fmt.Sprintf("route table %s (0.0.0.0/0 to %s)", n.privateRTName(z), target), Reason: reason})
	}
	return acts
}

func planTable(spec tableSpec, own map[string]ec2types.RouteTable, all []ec2types.RouteTable) engine.Action {
	rt, ok := own[spec.Name]
	if !ok {
		return engine.Action{Kind: engine.Create, Resource: "route table " + spec.Name, Reason: fmt.Sprintf("missing; 0.0.0.0/0 to %s for %s", orNone(spec.Target), strings.Join(spec.Subnets, ", "))}
	}
	id := aws.ToString(rt.RouteTableId)
	var drift []string
	if routeNeedsChange(defaultRoute(&rt), spec.Target) {
		drift = append(drift, "0.0.0.0/0 to "+orNone(spec.Target))
	}
	for _, s := range spec.Subnets {
		if cur, _ := explicitAssociation(all, s); cur != id {
			drift = append(drift, "associate "+s)
		}
	}
	if len(drift) > 0 {
		return engine.Action{Kind: engine.Update, Resource: "route table " + id, Reason: strings.Join(drift, "; ")}
	}
	return engine.Action{Kind: engine.Nothing, Resource: "route table " + id, Reason: spec.Name + " routes and associations as wanted"}
}

func orNone(target string) string {
	if target == "" {
		return "nowhere"
	}
	return target
}

func (n *network) applyRoutes(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return nil
	}
	l, vpcID, err := n.layoutAndVPCID(ctx)
	if err != nil {
		return err
	}
	w, err := n.readWorld(ctx, vpcID)
	if err != nil {
		return err
	}
	specs, missing := n.tableSpecs(l, w)
	if len(missing) > 0 {
		return fmt.Errorf("cannot route yet, missing %s: run 'coderctl stage %s apply' again", strings.Join(missing, ", "), Name)
	}
	own := n.ownRouteTables(w.tables)
	for _, spec := range specs {
		if err := n.applyTable(ctx, r, w, own, spec); err != nil {
			return err
		}
	}
	return nil
}

func (n *network) applyTable(ctx context.Context, r engine.Reporter, w *world, own map[string]ec2types.RouteTable, spec tableSpec) error {
	rt, ok := own[spec.Name]
	if !ok {
		out, err := n.d.AWS.EC2.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{
			VpcId:             aws.String(w.vpcID),
			ClientToken:       aws.String(clientToken(n.d.Deployment(), "route-table", w.vpcID, spec.Name)),
			TagSpecifications: tagSpec(ec2types.ResourceTypeRouteTable, n.tags(spec.Name)),
		})
		if err != nil {
			return fmt.Errorf("create route table %s: %w", spec.Name, err)
		}
		rt = *out.RouteTable
		r.Progress("created route table " + aws.ToString(rt.RouteTableId) + " (" + spec.Name + ")")
	}
	id := aws.ToString(rt.RouteTableId)
	if err := n.ensureDefaultRoute(ctx, id, defaultRoute(&rt), spec.Target); err != nil {
		return err
	}
	for _, s := range spec.Subnets {
		if err := n.ensureAssociation(ctx, w.tables, id, s); err != nil {
			return err
		}
	}
	return nil
}

// routeNeedsChange reports whether a default route differs from target
// (including a blackhole route to a gateway that is gone).
func routeNeedsChange(cur *ec2types.Route, target string) bool {
	if target == "" {
		return cur != nil
	}
	return cur == nil || routeTarget(cur) != target || cur.State == ec2types.RouteStateBlackhole
}

func (n *network) ensureDefaultRoute(ctx context.Context, rtID string, cur *ec2types.Route, target string) error {
	if !routeNeedsChange(cur, target) {
		return nil
	}
	if target == "" {
		_, err := n.d.AWS.EC2.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String(anywhere)})
		if err != nil && !awsx.IsNotFound(err) {
			return fmt.Errorf("delete the default route of %s: %w", rtID, err)
		}
		return nil
	}
	gw, nat := aws.String(target), (*string)(nil)
	if strings.HasPrefix(target, "nat-") {
		gw, nat = nil, aws.String(target)
	}
	if cur == nil {
		_, err := n.d.AWS.EC2.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String(anywhere), GatewayId: gw, NatGatewayId: nat})
		// A route that exists after all was made since the table was read,
		// or by this very call when the SDK retried it after a lost
		// response: it is replaced with the target, which is idempotent.
		if awsx.ErrorCode(err) != "RouteAlreadyExists" {
			return awsx.Describe(fmt.Sprintf("route 0.0.0.0/0 of %s to %s", rtID, target), err)
		}
	}
	_, err := n.d.AWS.EC2.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String(anywhere), GatewayId: gw, NatGatewayId: nat})
	return awsx.Describe(fmt.Sprintf("replace route 0.0.0.0/0 of %s with %s", rtID, target), err)
}

// ensureAssociation makes the subnet use the table, moving it from another
// table if it was explicitly associated elsewhere.
func (n *network) ensureAssociation(ctx context.Context, all []ec2types.RouteTable, rtID, subnetID string) error {
	cur, assocID := explicitAssociation(all, subnetID)
	switch {
	case cur == rtID:
		return nil
	case assocID != "":
		_, err := n.d.AWS.EC2.ReplaceRouteTableAssociation(ctx, &ec2.ReplaceRouteTableAssociationInput{AssociationId: aws.String(assocID), RouteTableId: aws.String(rtID)})
		return awsx.Describe(fmt.Sprintf("move subnet %s from %s to %s", subnetID, cur, rtID), err)
	}
	_, err := n.d.AWS.EC2.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: aws.String(rtID), SubnetId: aws.String(subnetID)})
	return awsx.Describe(fmt.Sprintf("associate subnet %s with %s", subnetID, rtID), err)
}

// explicitAssociation is the table a subnet is explicitly associated with
// and the association's ID ("" when it uses the main table).
func explicitAssociation(all []ec2types.RouteTable, subnetID string) (rtID, assocID string) {
	for _, rt := range all {
		for _, a := range rt.Associations {
			if aws.ToString(a.SubnetId) == subnetID && !aws.ToBool(a.Main) {
				return aws.ToString(rt.RouteTableId), aws.ToString(a.RouteTableAssociationId)
			}
		}
	}
	return "", ""
}

// destroyRoutes deletes the deployment's route tables, after removing
// their subnet associations.
func (n *network) destroyRoutes(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return nil
	}
	tables, err := n.routeTables(ctx, "")
	if err != nil {
		return err
	}
	for _, rt := range tables {
		if !n.isOwn(rt.Tags) {
			continue
		}
		id := aws.ToString(rt.RouteTableId)
		for _, a := range rt.Associations {
			if aws.ToBool(a.Main) {
				continue
			}
			_, err := n.d.AWS.EC2.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: a.RouteTableAssociationId})
			if err != nil && !awsx.IsNotFound(err) {
				return fmt.Errorf("disassociate route table %s: %w", id, err)
			}
		}
		if _, err := n.d.AWS.EC2.DeleteRouteTable(ctx, &ec2.DeleteRouteTableInput{RouteTableId: aws.String(id)}); err != nil && !awsx.IsNotFound(err) {
			return fmt.Errorf("delete route table %s: %w", id, err)
		}
		r.Progress("deleted route table " + id)
	}
	return nil
}
