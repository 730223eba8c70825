package network

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

func (n *network) planIGW(ctx context.Context) ([]engine.Action, error) {
	if n.existing() {
		return []engine.Action{n.existingAction("internet gateway")}, nil
	}
	create := engine.Action{Kind: engine.Create, Resource: "internet gateway " + n.igwName()}
	v, err := n.findVPC(ctx)
	if err != nil {
		return nil, err
	}
	if v == nil {
		create.Reason = "the VPC does not exist yet"
		return []engine.Action{create}, nil
	}
	vpcID := aws.ToString(v.VpcId)
	igws, err := n.taggedIGWs(ctx)
	if err != nil {
		return nil, err
	}
	igw := pickIGW(igws, vpcID)
	switch {
	case igw == nil:
		create.Reason = "none tagged " + awsx.TagDeployment + "=" + n.d.Deployment()
		return []engine.Action{create}, nil
	case !attachedTo(*igw, vpcID):
		return []engine.Action{{Kind: engine.Update, Resource: "internet gateway " + aws.ToString(igw.InternetGatewayId), Reason: "attach it to " + vpcID}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: "internet gateway " + aws.ToString(igw.InternetGatewayId), Reason: "attached to " + vpcID}}, nil
}

func (n *network) applyIGW(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return nil
	}
	vpcID, err := n.d.Output(names.KeyVPCID, Name)
	if err != nil {
		return err
	}
	igws, err := n.taggedIGWs(ctx)
	if err != nil {
		return err
	}
	igw := pickIGW(igws, vpcID)
	if igw == nil {
		out, err := n.d.AWS.EC2.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{
			TagSpecifications: tagSpec(ec2types.ResourceTypeInternetGateway, n.tags(n.igwName())),
		})
		if err != nil {
			return fmt.Errorf("create internet gateway %s: %w", n.igwName(), err)
		}
		igw = out.InternetGateway
		r.Progress("created internet gateway " + aws.ToString(igw.InternetGatewayId))
	}
	if attachedTo(*igw, vpcID) {
		return nil
	}
	id := aws.ToString(igw.InternetGatewayId)
	if _, err := n.d.AWS.EC2.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{
		InternetGatewayId: aws.String(id), VpcId: aws.String(vpcID),
	}); err != nil {
		return fmt.Errorf("attach internet gateway %s to %s: %w", id, vpcID, err)
	}
	r.Progress("attached internet gateway " + id + " to " + vpcID)
	return nil
}

// pickIGW prefers the gateway already attached to the VPC, then one that is
// attached nowhere (left by a run killed before it attached it).
func pickIGW(igws []ec2types.InternetGateway, vpcID string) *ec2types.InternetGateway {
	for i := range igws {
		if attachedTo(igws[i], vpcID) {
			return &igws[i]
		}
	}
	for i := range igws {
		if len(igws[i].Attachments) == 0 {
			return &igws[i]
		}
	}
	return nil
}

func attachedTo(igw ec2types.InternetGateway, vpcID string) bool {
	for _, a := range igw.Attachments {
		if aws.ToString(a.VpcId) == vpcID && a.State != ec2types.AttachmentStatusDetached && a.State != ec2types.AttachmentStatusDetaching {
			return true
		}
	}
	return false
}

// destroyIGW detaches and deletes every internet gateway tagged for the
// deployment. EC2 refuses the detach while an address in the VPC is mapped
// to a public one (a load balancer's interface AWS has not released yet):
// that is retried for a bounded time, and the error names the holders.
func (n *network) destroyIGW(ctx context.Context, r engine.Reporter) error {
	if n.existing() {
		return nil
	}
	igws, err := n.taggedIGWs(ctx)
	if err != nil {
		return err
	}
	for _, igw := range igws {
		id := aws.ToString(igw.InternetGatewayId)
		for _, a := range igw.Attachments {
			vpcID := aws.ToString(a.VpcId)
			err := n.retryHeld(ctx, r, fmt.Sprintf("internet gateway %s (attached to %s)", id, vpcID),
				func(ctx context.Context) error {
					_, err := n.d.AWS.EC2.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: aws.String(id), VpcId: aws.String(vpcID)})
					if err != nil && !awsx.IsNotFound(err) && awsx.ErrorCode(err) != "Gateway.NotAttached" {
						return fmt.Errorf("detach internet gateway %s from %s: %w", id, vpcID, err)
					}
					return nil
				},
				func(ctx context.Context) error { return n.deleteLeftovers(ctx, r, vpcID) },
				func(ctx context.Context) ([]string, error) { return n.publicAddressHolders(ctx, vpcID) })
			if err != nil {
				return err
			}
		}
		err := n.retryHeld(ctx, r, "internet gateway "+id,
			func(ctx context.Context) error {
				_, err := n.d.AWS.EC2.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: aws.String(id)})
				if err != nil && !awsx.IsNotFound(err) {
					return fmt.Errorf("delete internet gateway %s: %w", id, err)
				}
				return nil
			}, nil,
			func(ctx context.Context) ([]string, error) { return nil, nil })
		if err != nil {
			return err
		}
		r.Progress("deleted internet gateway " + id)
	}
	return nil
}
