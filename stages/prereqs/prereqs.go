// Package prereqs is the guide's "Prerequisites" step: nothing is created;
// its checkpoint proves that the account, region, quotas and inputs can carry
// the deployment before anything is spent.
package prereqs

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = names.StagePrereqs

// Service Quotas codes the checks compare against.
const (
	quotaOnDemandStandardVCPU = "L-1216C47A" // ec2: Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances
	quotaElasticIPs           = "L-0263D0A3" // ec2: EC2-VPC Elastic IPs
	quotaVPCsPerRegion        = "L-F678F1CE" // vpc: VPCs per Region
)

// New builds the prereqs stage.
func New(d *deploy.Deps) engine.Stage {
	p := &prereqs{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "check credentials, region, quotas, instance types and inputs",
		Reads:   []string{config.KeyRegion, config.KeyClusterName, config.KeyDomain, config.KeyHostedZoneID},
		Verify:  p.verify,
		// Every deployment ends in a Coder URL: without a domain nothing
		// after the cluster can be built, so refuse before creating anything.
		Validate: func(context.Context) error { return d.Inputs.Require("CODER_DOMAIN") },
	}
}

type prereqs struct{ d *deploy.Deps }

// verify runs the independent checks concurrently; each is one AWS read or
// a handful.
func (p *prereqs) verify(ctx context.Context) []engine.Check {
	checks := []func(context.Context) engine.Check{
		p.checkCredentials, p.checkRegion, p.checkInstanceTypes,
		p.checkVCPUQuota, p.checkEIPQuota, p.checkVPCQuota, p.checkHostedZone, p.checkInputs,
	}
	groups := make([]func(context.Context) []engine.Check, len(checks))
	for i, c := range checks {
		groups[i] = engine.One(c)
	}
	return engine.Concurrently(ctx, groups...)
}

func (p *prereqs) checkCredentials(ctx context.Context) engine.Check {
	id, err := p.d.AWS.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return engine.Failf("credentials", "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", "STS GetCallerIdentity failed: %v", err)
	}
	return engine.Passf("credentials", "account %s as %s", aws.ToString(id.Account), aws.ToString(id.Arn))
}

// checkRegion proves the region exists and that every configured
// availability zone is in it and available.
func (p *prereqs) checkRegion(ctx context.Context) engine.Check {
	region := p.d.Region()
	out, err := p.d.AWS.EC2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		return engine.Failf("region", "check AWS_REGION", "cannot list availability zones of %s: %v", region, err)
	}
	available := map[string]bool{}
	for _, z := range out.AvailabilityZones {
		available[aws.ToString(z.ZoneName)] = z.State == ec2types.AvailabilityZoneStateAvailable
	}
	wanted := p.zones(out.AvailabilityZones)
	if len(wanted) < 3 {
		return engine.Failf("region", "choose a region with at least three availability zones",
			"%s offers %d usable availability zones, the deployment needs 3", region, len(wanted))
	}
	for _, z := range wanted {
		if !available[z] {
			return engine.Failf("region", "fix availabilityZones in "+p.d.ConfigPath, "availability zone %s is not available in %s", z, region)
		}
	}
	return engine.Passf("region", "%s, zones %s", region, strings.Join(wanted, ", "))
}

// zones are the deployment's availability zones (awsx.ChooseZones).
func (p *prereqs) zones(all []ec2types.AvailabilityZone) []string {
	return awsx.ChooseZones(p.d.Cluster.AvailabilityZones, all)
}

// checkInstanceTypes proves each node group's instance type is offered in
// every chosen zone: a managed node group fails after ~20 minutes otherwise.
func (p *prereqs) checkInstanceTypes(ctx context.Context) engine.Check {
	azs, err := p.d.AWS.EC2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		return engine.Failf("instance-types", "", "cannot list availability zones: %v", err)
	}
	zones := p.zones(azs.AvailabilityZones)
	types := p.instanceTypes()
	offered := map[string]map[string]bool{}
	pager := ec2.NewDescribeInstanceTypeOfferingsPaginator(p.d.AWS.EC2, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters: []ec2types.Filter{
			{Name: aws.String("instance-type"), Values: types},
			{Name: aws.String("location"), Values: zones},
		},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return engine.Warnf("instance-types", "check ec2:DescribeInstanceTypeOfferings permission", "could not check: %v", err)
		}
		for _, o := range page.InstanceTypeOfferings {
			t := string(o.InstanceType)
			if offered[t] == nil {
				offered[t] = map[string]bool{}
			}
			offered[t][aws.ToString(o.Location)] = true
		}
	}
	var missing []string
	for _, t := range types {
		for _, z := range zones {
			if !offered[t][z] {
				missing = append(missing, t+" in "+z)
			}
		}
	}
	if len(missing) > 0 {
		return engine.Failf("instance-types", "pick other instanceType or availabilityZones in "+p.d.ConfigPath,
			"not offered: %s", strings.Join(missing, ", "))
	}
	return engine.Passf("instance-types", "%s offered in %s", strings.Join(types, ", "), strings.Join(zones, ", "))
}

func (p *prereqs) instanceTypes() []string {
	var types []string
	for _, ng := range p.d.NodeGroups() {
		if !slices.Contains(types, ng.InstanceType) {
			types = append(types, ng.InstanceType)
		}
	}
	sort.Strings(types)
	return types
}

// checkVCPUQuota compares the on-demand standard vCPU quota with what the
// node groups need at their maximum sizes.
func (p *prereqs) checkVCPUQuota(ctx context.Context) engine.Check {
	need, err := p.maxVCPUs(ctx)
	if err != nil {
		return engine.Warnf("quota-vcpus", "check ec2:DescribeInstanceTypes permission", "could not check: %v", err)
	}
	limit, err := p.quota(ctx, "ec2", quotaOnDemandStandardVCPU)
	if err != nil {
		return engine.Warnf("quota-vcpus", "request the quota in the Service Quotas console if unsure",
			"could not check (node groups need up to %d vCPUs): %v", need, err)
	}
	if float64(need) > limit {
		return engine.Failf("quota-vcpus", "request an increase of quota "+quotaOnDemandStandardVCPU,
			"node groups need up to %d on-demand vCPUs, the quota is %.0f", need, limit)
	}
	return engine.Passf("quota-vcpus", "node groups need up to %d vCPUs, quota %.0f", need, limit)
}

// maxVCPUs sums maxSize × vCPUs of every node group.
func (p *prereqs) maxVCPUs(ctx context.Context) (int, error) {
	types := p.instanceTypes()
	its := make([]ec2types.InstanceType, len(types))
	for i, t := range types {
		its[i] = ec2types.InstanceType(t)
	}
	vcpus := map[string]int{}
	pager := ec2.NewDescribeInstanceTypesPaginator(p.d.AWS.EC2, &ec2.DescribeInstanceTypesInput{InstanceTypes: its})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		for _, t := range page.InstanceTypes {
			if t.VCpuInfo != nil {
				vcpus[string(t.InstanceType)] = int(aws.ToInt32(t.VCpuInfo.DefaultVCpus))
			}
		}
	}
	total := 0
	for _, ng := range p.d.NodeGroups() {
		v, ok := vcpus[ng.InstanceType]
		if !ok {
			return 0, fmt.Errorf("instance type %s unknown to EC2", ng.InstanceType)
		}
		total += v * int(ng.Max)
	}
	return total, nil
}

// checkEIPQuota: each NAT gateway takes one Elastic IP.
func (p *prereqs) checkEIPQuota(ctx context.Context) engine.Check {
	need := p.natGateways()
	addrs, err := p.d.AWS.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return engine.Warnf("quota-eips", "", "could not check: %v", err)
	}
	limit, err := p.quota(ctx, "ec2", quotaElasticIPs)
	if err != nil {
		return engine.Warnf("quota-eips", "", "could not check (%d in use, NAT needs %d more): %v", len(addrs.Addresses), need, err)
	}
	if float64(len(addrs.Addresses)+need) > limit {
		return engine.Failf("quota-eips", "release unused Elastic IPs or request an increase of "+quotaElasticIPs,
			"%d Elastic IPs in use + %d for NAT gateways exceeds the quota %.0f", len(addrs.Addresses), need, limit)
	}
	return engine.Passf("quota-eips", "%d in use + %d for NAT, quota %.0f", len(addrs.Addresses), need, limit)
}

// natGateways is how many NAT gateways (and so Elastic IPs) the network
// stage will create.
func (p *prereqs) natGateways() int {
	vpc := p.d.Cluster.VPC
	if vpc == nil || vpc.ID != "" {
		return 0
	}
	if vpc.NAT != nil && vpc.NAT.Gateway != nil {
		switch *vpc.NAT.Gateway {
		case "Disable":
			return 0
		case "HighlyAvailable":
			return 3
		}
	}
	return 1
}

func (p *prereqs) checkVPCQuota(ctx context.Context) engine.Check {
	vpcs, err := p.d.AWS.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil {
		return engine.Warnf("quota-vpcs", "", "could not check: %v", err)
	}
	need := 1
	if p.d.State.Get(names.KeyVPCID) != "" || (p.d.Cluster.VPC != nil && p.d.Cluster.VPC.ID != "") {
		need = 0
	}
	limit, err := p.quota(ctx, "vpc", quotaVPCsPerRegion)
	if err != nil {
		return engine.Warnf("quota-vpcs", "", "could not check (%d VPCs exist): %v", len(vpcs.Vpcs), err)
	}
	if float64(len(vpcs.Vpcs)+need) > limit {
		return engine.Failf("quota-vpcs", "delete unused VPCs or request an increase of "+quotaVPCsPerRegion,
			"%d VPCs exist + %d to create exceeds the quota %.0f", len(vpcs.Vpcs), need, limit)
	}
	return engine.Passf("quota-vpcs", "%d VPCs exist + %d to create, quota %.0f", len(vpcs.Vpcs), need, limit)
}

// quota reads a quota's applied value (the default when never raised). A
// quota the API cannot answer for is a warning, not worth a retry storm.
func (p *prereqs) quota(ctx context.Context, service, code string) (float64, error) {
	out, err := p.d.AWS.ServiceQuotas.GetServiceQuota(ctx,
		&servicequotas.GetServiceQuotaInput{ServiceCode: aws.String(service), QuotaCode: aws.String(code)},
		func(o *servicequotas.Options) { o.RetryMaxAttempts = 2 })
	if err != nil {
		return 0, fmt.Errorf("quota %s/%s: %s", service, code, awsx.ErrorCode(err))
	}
	if out.Quota == nil || out.Quota.Value == nil {
		return 0, fmt.Errorf("quota %s/%s has no value", service, code)
	}
	return *out.Quota.Value, nil
}

// checkHostedZone proves HOSTED_ZONE_ID is the domain's zone (or a parent).
func (p *prereqs) checkHostedZone(ctx context.Context) engine.Check {
	zoneID := p.d.Inputs.HostedZoneID()
	domain := p.d.Inputs.Domain()
	if zoneID == "" {
		return engine.Passf("hosted-zone", "no HOSTED_ZONE_ID: DNS records will be printed for you to create")
	}
	out, err := p.d.AWS.Route53.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(zoneID)})
	if err != nil {
		return engine.Failf("hosted-zone", "check HOSTED_ZONE_ID", "hosted zone %s: %v", zoneID, err)
	}
	zone := strings.TrimSuffix(aws.ToString(out.HostedZone.Name), ".")
	if domain != "" && domain != zone && !strings.HasSuffix(domain, "."+zone) {
		return engine.Failf("hosted-zone", "set HOSTED_ZONE_ID to the zone of "+domain,
			"zone %s (%s) cannot hold records for %s", zoneID, zone, domain)
	}
	return engine.Passf("hosted-zone", "%s is zone %s", zoneID, zone)
}

// checkInputs reports the inputs the run will use; they were validated when
// loaded, so this states what they are.
func (p *prereqs) checkInputs(ctx context.Context) engine.Check {
	in := p.d.Inputs
	if in.Domain() == "" {
		return engine.Warnf("inputs", "set CODER_DOMAIN in "+p.d.State.Path(), "CODER_DOMAIN is not set: the acm and coder stages need it")
	}
	return engine.Passf("inputs", "cluster %s in %s, domain %s, %d users, Coder %s", in.ClusterName(), in.Region(), in.Domain(), in.Users(), in.CoderVersion())
}
