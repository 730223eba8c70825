package coder

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Tags the AWS cloud controller puts on the load balancers and target
// groups it creates for a Service.
const (
	tagServiceName   = "kubernetes.io/service-name"
	tagClusterPrefix = "kubernetes.io/cluster/"
	// describeTagsBatch is the most ARNs elbv2 DescribeTags takes at once.
	describeTagsBatch = 20
)

// ownerTags identify the Service's load balancer and target groups.
func (s *stage) ownerTags() map[string]string {
	return map[string]string{tagServiceName: names.CoderNamespace + "/" + ServiceName, tagClusterPrefix + s.d.Deployment(): "owned"}
}

// LoadBalancerByHostname finds the load balancer whose DNS name is host.
func LoadBalancerByHostname(ctx context.Context, client *elbv2.Client, host string) (*elbtypes.LoadBalancer, error) {
	want := normalizeDNS(host)
	var found *elbtypes.LoadBalancer
	err := eachLoadBalancer(ctx, client, func(lbs []elbtypes.LoadBalancer) error {
		for i := range lbs {
			if normalizeDNS(aws.ToString(lbs[i].DNSName)) == want {
				found = &lbs[i]
			}
		}
		return nil
	})
	return found, err
}

// loadBalancersByTags lists the load balancers carrying every tag in want.
func loadBalancersByTags(ctx context.Context, client *elbv2.Client, want map[string]string) ([]elbtypes.LoadBalancer, error) {
	var out []elbtypes.LoadBalancer
	err := eachLoadBalancer(ctx, client, func(lbs []elbtypes.LoadBalancer) error {
		arns := make([]string, len(lbs))
		for i, lb := range lbs {
			arns[i] = aws.ToString(lb.LoadBalancerArn)
		}
		owned, err := taggedARNs(ctx, client, arns, want)
		if err != nil {
			return err
		}
		for _, lb := range lbs {
			if owned[aws.ToString(lb.LoadBalancerArn)] {
				out = append(out, lb)
			}
		}
		return nil
	})
	return out, err
}

func eachLoadBalancer(ctx context.Context, client *elbv2.Client, page func([]elbtypes.LoadBalancer) error) error {
	p := elbv2.NewDescribeLoadBalancersPaginator(client, &elbv2.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return awsx.Describe("describe load balancers", err)
		}
		if err := page(out.LoadBalancers); err != nil {
			return err
		}
	}
	return nil
}

// taggedARNs returns which of arns carry every tag in want.
func taggedARNs(ctx context.Context, client *elbv2.Client, arns []string, want map[string]string) (map[string]bool, error) {
	owned := map[string]bool{}
	for start := 0; start < len(arns); start += describeTagsBatch {
		batch := arns[start:min(start+describeTagsBatch, len(arns))]
		out, err := client.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: batch})
		if err != nil {
			if awsx.IsNotFound(err) {
				continue // deleted between the listing and now
			}
			return nil, awsx.Describe("describe load balancer tags", err)
		}
		for _, d := range out.TagDescriptions {
			have := map[string]string{}
			for _, t := range d.Tags {
				have[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			if awsx.HasTags(have, want) {
				owned[aws.ToString(d.ResourceArn)] = true
			}
		}
	}
	return owned, nil
}

// waitLoadBalancerGone polls elbv2 until no load balancer carries the
// Service's tags.
func (s *stage) waitLoadBalancerGone(ctx context.Context, r engine.Reporter) error {
	return awsx.Poll(ctx, r, "the load balancer of service "+names.CoderNamespace+"/"+ServiceName+" to be deleted", s.d.Opts.Wait, lbTimeout,
		func(ctx context.Context) (bool, string, error) {
			lbs, err := loadBalancersByTags(ctx, s.d.AWS.ELB, s.ownerTags())
			if err != nil {
				return false, "", err
			}
			if len(lbs) == 0 {
				return true, "gone", nil
			}
			names := make([]string, len(lbs))
			for i, lb := range lbs {
				names[i] = aws.ToString(lb.LoadBalancerName)
			}
			return false, "still there: " + strings.Join(names, ", "), nil
		})
}

// deleteLoadBalancer removes the Service's NLB and target groups directly,
// for a destroy that finds the cluster (and so its controller) gone.
func (s *stage) deleteLoadBalancer(ctx context.Context) error {
	lbs, err := loadBalancersByTags(ctx, s.d.AWS.ELB, s.ownerTags())
	if err != nil {
		return err
	}
	for _, lb := range lbs {
		_, err := s.d.AWS.ELB.DeleteLoadBalancer(ctx, &elbv2.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
		if err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("delete load balancer "+aws.ToString(lb.LoadBalancerName), err)
		}
	}
	return s.deleteTargetGroups(ctx)
}

func (s *stage) deleteTargetGroups(ctx context.Context) error {
	p := elbv2.NewDescribeTargetGroupsPaginator(s.d.AWS.ELB, &elbv2.DescribeTargetGroupsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return awsx.Describe("describe target groups", err)
		}
		arns := make([]string, len(page.TargetGroups))
		for i, tg := range page.TargetGroups {
			arns[i] = aws.ToString(tg.TargetGroupArn)
		}
		owned, err := taggedARNs(ctx, s.d.AWS.ELB, arns, s.ownerTags())
		if err != nil {
			return err
		}
		for arn := range owned {
			_, err := s.d.AWS.ELB.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
			if err != nil && !awsx.IsNotFound(err) {
				return awsx.Describe("delete target group "+arn, err)
			}
		}
	}
	return nil
}

// tlsListener finds the load balancer's TLS listener on 443 and reports
// whether it serves certARN.
func tlsListener(ctx context.Context, client *elbv2.Client, lbARN, certARN string) (found, hasCert bool, err error) {
	out, err := client.DescribeListeners(ctx, &elbv2.DescribeListenersInput{LoadBalancerArn: aws.String(lbARN)})
	if err != nil {
		return false, false, awsx.Describe("describe listeners", err)
	}
	for _, l := range out.Listeners {
		if l.Protocol != elbtypes.ProtocolEnumTls || aws.ToInt32(l.Port) != httpsPort {
			continue
		}
		found = true
		for _, c := range l.Certificates {
			if aws.ToString(c.CertificateArn) == certARN {
				hasCert = true
			}
		}
	}
	return found, hasCert, nil
}

// normalizeDNS compares DNS names: lower case, no trailing dot, no
// "dualstack." prefix (Route53 alias targets may carry it).
func normalizeDNS(name string) string {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	return strings.TrimPrefix(n, "dualstack.")
}

func lbLabel(lb *elbtypes.LoadBalancer) string {
	return fmt.Sprintf("%s (%s)", aws.ToString(lb.LoadBalancerName), aws.ToString(lb.DNSName))
}
