// Package network is the guide's VPC step: a VPC with a public and a private
// subnet in each of three availability zones, an internet gateway, NAT
// gateways and route tables, all tagged for the deployment; or an existing
// VPC named in cluster-config.yaml, which it verifies and never changes.
package network

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = names.StageNetwork

// Step names other stages depend on ("network/subnets").
const (
	StepInternetGateway = "internet-gateway"
	StepNAT             = "nat"
	StepRoutes          = "routes"
)

// Tags the Kubernetes AWS cloud provider and the AWS Load Balancer
// Controller use to pick subnets for internet-facing and internal load
// balancers, and to know a subnet may be used by the cluster.
const (
	tagRoleELB         = "kubernetes.io/role/elb"
	tagRoleInternalELB = "kubernetes.io/role/internal-elb"
	tagClusterPrefix   = "kubernetes.io/cluster/"
)

// anywhere is the destination of a default route.
const anywhere = "0.0.0.0/0"

// New builds the network stage.
func New(d *deploy.Deps) engine.Stage {
	n := &network{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "VPC, public and private subnets in three AZs, internet gateway, NAT, routes",
		Needs:   []string{names.StagePrereqs},
		Reads:   []string{config.KeyRegion, config.KeyClusterName, names.KeyVPCID, names.KeyPublicSubnetIDs, names.KeyPrivateSubnetIDs},
		Writes:  []string{names.KeyVPCID, names.KeyPublicSubnetIDs, names.KeyPrivateSubnetIDs},
		Steps: []engine.Step{
			{Name: names.NetworkStepVPC, Typical: 5 * time.Second, Plan: n.planVPC, Apply: n.applyVPC, Destroy: n.destroyVPC},
			{Name: StepInternetGateway, Needs: []string{engine.StepID(Name, names.NetworkStepVPC)}, Typical: 5 * time.Second,
				Plan: n.planIGW, Apply: n.applyIGW, Destroy: n.destroyIGW},
			{Name: names.NetworkStepSubnets, Needs: []string{engine.StepID(Name, names.NetworkStepVPC)}, Typical: 10 * time.Second,
				Plan: n.planSubnets, Apply: n.applySubnets, Destroy: n.destroySubnets},
			{Name: StepNAT, Needs: []string{engine.StepID(Name, names.NetworkStepSubnets), engine.StepID(Name, StepInternetGateway)},
				Typical: 90 * time.Second, Plan: n.planNAT, Apply: n.applyNAT, Destroy: n.destroyNAT},
			{Name: StepRoutes, Needs: []string{engine.StepID(Name, StepNAT), engine.StepID(Name, names.NetworkStepSubnets), engine.StepID(Name, StepInternetGateway)},
				Typical: 10 * time.Second, Plan: n.planRoutes, Apply: n.applyRoutes, Destroy: n.destroyRoutes},
		},
		Verify:   n.verify,
		Validate: n.validate,
	}
}

type network struct{ d *deploy.Deps }

// existing reports whether the config names a VPC coderctl must adopt
// rather than create.
func (n *network) existing() bool {
	return n.d.Cluster.VPC != nil && n.d.Cluster.VPC.ID != ""
}

// natMode is vpc.nat.gateway (Single when unset, as eksctl defaults it).
func (n *network) natMode() string {
	vpc := n.d.Cluster.VPC
	if vpc == nil || vpc.NAT == nil || vpc.NAT.Gateway == nil || *vpc.NAT.Gateway == "" {
		return api.ClusterSingleNAT
	}
	return *vpc.NAT.Gateway
}

// layout is what the stage builds: zones in order, each with its subnets.
type layout struct {
	Zones   []string
	CIDR    netip.Prefix
	Subnets subnetCIDRs
	NAT     string
}

// natZones are the zones that get a NAT gateway.
func (l *layout) natZones() []string {
	switch l.NAT {
	case api.ClusterDisableNAT:
		return nil
	case api.ClusterHighlyAvailableNAT:
		return l.Zones
	default:
		return l.Zones[:1]
	}
}

// natZoneFor is the zone of the NAT gateway that zone's private subnet
// routes through ("" when NAT is disabled).
func (l *layout) natZoneFor(zone string) string {
	switch l.NAT {
	case api.ClusterDisableNAT:
		return ""
	case api.ClusterHighlyAvailableNAT:
		return zone
	default:
		return l.Zones[0]
	}
}

// vpcCIDR is vpc.cidr; eksctl's defaults fill it in when unset.
func (n *network) vpcCIDR() (netip.Prefix, error) {
	vpc := n.d.Cluster.VPC
	if vpc == nil || vpc.CIDR == nil {
		return netip.Prefix{}, n.cidrInput(cidrHint, "missing")
	}
	p, err := netip.ParsePrefix(vpc.CIDR.String())
	if err != nil {
		return netip.Prefix{}, n.cidrInput(cidrHint, fmt.Sprintf("%q is not a CIDR block", vpc.CIDR.String()))
	}
	return p, nil
}

// cidrInput is bad input naming vpc.cidr in the config file.
func (n *network) cidrInput(hint, msg string) error {
	return fault.Input(n.d.ConfigPath, "vpc.cidr", hint, "%s", msg)
}

const cidrHint = "use a private block between /16 and /24, e.g. cidr: 10.0.0.0/16"

// layout resolves the zones and derives the subnets. A VPC block that cannot
// hold them is bad input naming vpc.cidr.
func (n *network) layout(ctx context.Context) (*layout, error) {
	cidr, err := n.vpcCIDR()
	if err != nil {
		return nil, err
	}
	zones, err := n.zones(ctx)
	if err != nil {
		return nil, err
	}
	subnets, err := carveSubnets(cidr, len(zones))
	if err != nil {
		return nil, n.cidrInput("use a larger block, e.g. cidr: 10.0.0.0/16, or fewer availabilityZones", err.Error())
	}
	return &layout{Zones: zones, CIDR: cidr, Subnets: subnets, NAT: n.natMode()}, nil
}

// zones are the deployment's availability zones: the one choice prereqs
// also checks (awsx.ChooseZones).
func (n *network) zones(ctx context.Context) ([]string, error) {
	if len(n.d.Cluster.AvailabilityZones) > 0 {
		return n.d.Cluster.AvailabilityZones, nil
	}
	out, err := n.d.AWS.EC2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		return nil, fmt.Errorf("list availability zones of %s: %w", n.d.Region(), err)
	}
	names := awsx.ChooseZones(nil, out.AvailabilityZones)
	if len(names) < api.MinRequiredAvailabilityZones {
		return nil, fmt.Errorf("%s has %d available zones, EKS needs at least %d", n.d.Region(), len(names), api.MinRequiredAvailabilityZones)
	}
	return names, nil
}

// Resource names (the Name tag), which identify each resource within the
// deployment's tags.
func (n *network) vpcName() string { return n.d.Deployment() + "-vpc" }
func (n *network) igwName() string { return n.d.Deployment() + "-igw" }
func (n *network) subnetName(kind, zone string) string {
	return n.d.Deployment() + "-" + kind + "-" + zone
}
func (n *network) natName(zone string) string { return n.d.Deployment() + "-nat-" + zone }
func (n *network) eipName(zone string) string { return n.d.Deployment() + "-nat-eip-" + zone }
func (n *network) publicRTName() string       { return n.d.Deployment() + "-public-rt" }
func (n *network) privateRTName(zone string) string {
	return n.d.Deployment() + "-private-rt-" + zone
}

// Subnet kinds, as they appear in names.
const (
	kindPublic  = "public"
	kindPrivate = "private"
)

// tags are the deployment's tags for a resource called name.
func (n *network) tags(name string) map[string]string {
	return n.d.Tags(Name, map[string]string{"Name": name})
}

// subnetTags adds the Kubernetes tags a subnet of kind needs.
func (n *network) subnetTags(kind, zone string) map[string]string {
	t := n.tags(n.subnetName(kind, zone))
	for k, v := range n.kubernetesTags(kind) {
		t[k] = v
	}
	return t
}
