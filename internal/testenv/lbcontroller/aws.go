package lbcontroller

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

// describeTagsBatch is the most ARNs DescribeTags takes at once.
const describeTagsBatch = 20

// cloud is the AWS side of the controller.
type cloud struct {
	elb     *elb.Client
	ec2     *ec2.Client
	cluster string
	vpcID   string
}

// findLoadBalancer returns the load balancer carrying owner's tags, or nil.
// Finding it by tags (not by state or name alone) is what makes the
// controller idempotent across restarts.
func (c *cloud) findLoadBalancer(ctx context.Context, owner map[string]string) (*elbtypes.LoadBalancer, error) {
	var all []elbtypes.LoadBalancer
	p := elb.NewDescribeLoadBalancersPaginator(c.elb, &elb.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe load balancers: %w", err)
		}
		all = append(all, page.LoadBalancers...)
	}
	arns := make([]string, 0, len(all))
	for _, lb := range all {
		arns = append(arns, aws.ToString(lb.LoadBalancerArn))
	}
	owned, err := c.ownedARNs(ctx, arns, owner)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if owned[aws.ToString(all[i].LoadBalancerArn)] {
			return &all[i], nil
		}
	}
	return nil, nil
}

// ownedTargetGroups returns the target groups carrying owner's tags, by name.
func (c *cloud) ownedTargetGroups(ctx context.Context, owner map[string]string) (map[string]elbtypes.TargetGroup, error) {
	var all []elbtypes.TargetGroup
	p := elb.NewDescribeTargetGroupsPaginator(c.elb, &elb.DescribeTargetGroupsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe target groups: %w", err)
		}
		all = append(all, page.TargetGroups...)
	}
	arns := make([]string, 0, len(all))
	for _, tg := range all {
		arns = append(arns, aws.ToString(tg.TargetGroupArn))
	}
	owned, err := c.ownedARNs(ctx, arns, owner)
	if err != nil {
		return nil, err
	}
	out := map[string]elbtypes.TargetGroup{}
	for _, tg := range all {
		if owned[aws.ToString(tg.TargetGroupArn)] {
			out[aws.ToString(tg.TargetGroupName)] = tg
		}
	}
	return out, nil
}

// ownedARNs returns which of arns carry every tag in owner.
func (c *cloud) ownedARNs(ctx context.Context, arns []string, owner map[string]string) (map[string]bool, error) {
	owned := map[string]bool{}
	for start := 0; start < len(arns); start += describeTagsBatch {
		batch := arns[start:min(start+describeTagsBatch, len(arns))]
		out, err := c.elb.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: batch})
		if err != nil {
			return nil, fmt.Errorf("describe tags: %w", err)
		}
		for _, d := range out.TagDescriptions {
			if hasTags(d.Tags, owner) {
				owned[aws.ToString(d.ResourceArn)] = true
			}
		}
	}
	return owned, nil
}

func hasTags(tags []elbtypes.Tag, want map[string]string) bool {
	have := map[string]string{}
	for _, t := range tags {
		have[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// subnetsFor picks one subnet per availability zone for a load balancer of
// the given scheme: those tagged with the scheme's role
// (kubernetes.io/role/elb or .../internal-elb) in the cluster's VPC, else
// every subnet tagged kubernetes.io/cluster/<cluster>.
func (c *cloud) subnetsFor(ctx context.Context, scheme elbtypes.LoadBalancerSchemeEnum) ([]string, error) {
	role := TagRoleELB
	if scheme == elbtypes.LoadBalancerSchemeEnumInternal {
		role = TagRoleInternal
	}
	byRole, err := c.describeSubnets(ctx, role)
	if err != nil {
		return nil, err
	}
	var candidates []ec2types.Subnet
	for _, s := range byRole {
		// "1" and "" both mean yes, as the cloud controller reads the tag;
		// without a VPC to scope by, only this cluster's subnets qualify.
		if v := subnetTag(s, role); (v == "1" || v == "") && (c.vpcID != "" || hasSubnetTag(s, ClusterTag(c.cluster))) {
			candidates = append(candidates, s)
		}
	}
	if len(candidates) == 0 {
		if candidates, err = c.describeSubnets(ctx, ClusterTag(c.cluster)); err != nil {
			return nil, err
		}
	}
	ids := onePerZone(candidates)
	if len(ids) == 0 {
		return nil, fmt.Errorf("no subnets for a %s load balancer: tag the cluster's subnets %s=1 (or %s) %s",
			scheme, role, ClusterTag(c.cluster), c.vpcScope())
	}
	return ids, nil
}

func (c *cloud) vpcScope() string {
	if c.vpcID == "" {
		return "in any VPC"
	}
	return "in " + c.vpcID
}

func (c *cloud) describeSubnets(ctx context.Context, tagKey string) ([]ec2types.Subnet, error) {
	filters := []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{tagKey}}}
	if c.vpcID != "" {
		filters = append(filters, ec2types.Filter{Name: aws.String("vpc-id"), Values: []string{c.vpcID}})
	}
	var out []ec2types.Subnet
	p := ec2.NewDescribeSubnetsPaginator(c.ec2, &ec2.DescribeSubnetsInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe subnets tagged %s: %w", tagKey, err)
		}
		out = append(out, page.Subnets...)
	}
	return out, nil
}

// onePerZone keeps the lowest subnet ID of each zone: an NLB takes at most
// one subnet per availability zone.
func onePerZone(subnets []ec2types.Subnet) []string {
	sort.Slice(subnets, func(i, j int) bool { return aws.ToString(subnets[i].SubnetId) < aws.ToString(subnets[j].SubnetId) })
	seen := map[string]bool{}
	var ids []string
	for _, s := range subnets {
		zone := aws.ToString(s.AvailabilityZone)
		if !seen[zone] {
			seen[zone] = true
			ids = append(ids, aws.ToString(s.SubnetId))
		}
	}
	return ids
}

func subnetTag(s ec2types.Subnet, key string) string {
	for _, t := range s.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func hasSubnetTag(s ec2types.Subnet, key string) bool {
	for _, t := range s.Tags {
		if aws.ToString(t.Key) == key {
			return true
		}
	}
	return false
}

func (c *cloud) createLoadBalancer(ctx context.Context, name string, scheme elbtypes.LoadBalancerSchemeEnum, subnets, securityGroups []string, tags map[string]string) (*elbtypes.LoadBalancer, error) {
	out, err := c.elb.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name:           aws.String(name),
		Type:           elbtypes.LoadBalancerTypeEnumNetwork,
		Scheme:         scheme,
		IpAddressType:  elbtypes.IpAddressTypeIpv4,
		Subnets:        subnets,
		SecurityGroups: securityGroups,
		Tags:           elbTags(tags),
	})
	if err != nil {
		return nil, fmt.Errorf("create load balancer %s: %w", name, err)
	}
	if len(out.LoadBalancers) != 1 {
		return nil, fmt.Errorf("create load balancer %s: %d load balancers returned", name, len(out.LoadBalancers))
	}
	return &out.LoadBalancers[0], nil
}

func (c *cloud) createTargetGroup(ctx context.Context, l listenerSpec, vpcID string, tags map[string]string) (elbtypes.TargetGroup, error) {
	protocol := targetProtocol(l.Protocol)
	out, err := c.elb.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name:                aws.String(l.TargetGroup),
		Protocol:            protocol,
		Port:                aws.Int32(l.NodePort),
		VpcId:               aws.String(vpcID),
		TargetType:          elbtypes.TargetTypeEnumInstance,
		HealthCheckProtocol: elbtypes.ProtocolEnumTcp,
		Tags:                elbTags(tags),
	})
	if err != nil {
		return elbtypes.TargetGroup{}, fmt.Errorf("create target group %s: %w", l.TargetGroup, err)
	}
	if len(out.TargetGroups) != 1 {
		return elbtypes.TargetGroup{}, fmt.Errorf("create target group %s: %d groups returned", l.TargetGroup, len(out.TargetGroups))
	}
	return out.TargetGroups[0], nil
}

func (c *cloud) listeners(ctx context.Context, lbARN string) ([]elbtypes.Listener, error) {
	var out []elbtypes.Listener
	p := elb.NewDescribeListenersPaginator(c.elb, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lbARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe listeners: %w", err)
		}
		out = append(out, page.Listeners...)
	}
	return out, nil
}

func (c *cloud) createListener(ctx context.Context, lbARN string, l listenerSpec, tgARN string) error {
	in := &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(lbARN),
		Port:            aws.Int32(l.Port),
		Protocol:        l.Protocol,
		DefaultActions:  []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgARN)}},
	}
	if l.Protocol == elbtypes.ProtocolEnumTls {
		in.Certificates = []elbtypes.Certificate{{CertificateArn: aws.String(l.CertificateARN)}}
		in.SslPolicy = aws.String(l.SSLPolicy)
	}
	if _, err := c.elb.CreateListener(ctx, in); err != nil {
		return fmt.Errorf("create %s listener on port %d: %w", l.Protocol, l.Port, err)
	}
	return nil
}

func (c *cloud) deleteListener(ctx context.Context, arn string) error {
	_, err := c.elb.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(arn)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete listener %s: %w", arn, err)
	}
	return nil
}

func (c *cloud) deleteTargetGroup(ctx context.Context, arn string) error {
	_, err := c.elb.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete target group %s: %w", arn, err)
	}
	return nil
}

// deleteLoadBalancer removes the listeners and then the load balancer.
func (c *cloud) deleteLoadBalancer(ctx context.Context, lb *elbtypes.LoadBalancer) error {
	arn := aws.ToString(lb.LoadBalancerArn)
	listeners, err := c.listeners(ctx, arn)
	if err != nil && !isNotFound(err) {
		return err
	}
	for _, l := range listeners {
		if err := c.deleteListener(ctx, aws.ToString(l.ListenerArn)); err != nil {
			return err
		}
	}
	_, err = c.elb.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(arn)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete load balancer %s: %w", aws.ToString(lb.LoadBalancerName), err)
	}
	return nil
}

// isNotFound covers the ELBv2 "already gone" errors, so deletion tolerates
// what another actor removed first.
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "LoadBalancerNotFound", "ListenerNotFound", "TargetGroupNotFound":
		return true
	}
	return false
}

func elbTags(tags map[string]string) []elbtypes.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]elbtypes.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, elbtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}
