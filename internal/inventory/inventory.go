// Package inventory finds every AWS resource that carries a deployment's
// tag, so `coderctl down` can prove nothing was left behind (and say what
// was).
package inventory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
)

// Tagged lists resources tagged coderctl/deployment=<deployment> that still
// exist, asking each service that coderctl creates resources in. (The
// Resource Groups Tagging API would be one call, but it lags behind
// deletions, misses IAM, and its SDK client speaks a protocol moto cannot
// answer; per-service listings see live state.)
func Tagged(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	finders := []func(context.Context, *awsx.Clients, string) ([]string, error){
		ec2Live, eksClusters, iamRoles, oidcProviders, rdsResources, certificates, secrets, loadBalancers,
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	seen := map[string]bool{}
	var firstErr error
	for _, find := range finders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found, err := find(ctx, c, deployment)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			for _, r := range found {
				seen[r] = true
			}
		}()
	}
	wg.Wait()
	return slices.Sorted(maps.Keys(seen)), firstErr
}

func ec2Live(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	filter := []ec2types.Filter{{Name: aws.String("tag:" + awsx.TagDeployment), Values: []string{deployment}}}
	var out []string
	vpcs, err := c.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("EC2 DescribeVpcs: %w", err)
	}
	for _, v := range vpcs.Vpcs {
		out = append(out, "vpc "+aws.ToString(v.VpcId))
	}
	subnets, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: filter})
	if err != nil {
		return out, err
	}
	for _, s := range subnets.Subnets {
		out = append(out, "subnet "+aws.ToString(s.SubnetId))
	}
	nats, err := c.EC2.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{Filter: filter})
	if err != nil {
		return out, err
	}
	for _, n := range nats.NatGateways {
		if n.State != ec2types.NatGatewayStateDeleted && hasTag(n.Tags, deployment) {
			out = append(out, "nat-gateway "+aws.ToString(n.NatGatewayId))
		}
	}
	addrs, err := c.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: filter})
	if err != nil {
		return out, err
	}
	for _, a := range addrs.Addresses {
		out = append(out, "elastic-ip "+aws.ToString(a.AllocationId))
	}
	igws, err := c.EC2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: filter})
	if err != nil {
		return out, err
	}
	for _, g := range igws.InternetGateways {
		out = append(out, "internet-gateway "+aws.ToString(g.InternetGatewayId))
	}
	sgs, err := c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filter})
	if err != nil {
		return out, err
	}
	for _, g := range sgs.SecurityGroups {
		out = append(out, "security-group "+aws.ToString(g.GroupId))
	}
	rts, err := c.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: filter})
	if err != nil {
		return out, err
	}
	for _, r := range rts.RouteTables {
		out = append(out, "route-table "+aws.ToString(r.RouteTableId))
	}
	return out, nil
}

// hasTag re-checks the tag: moto's DescribeNatGateways ignores tag filters.
func hasTag(tags []ec2types.Tag, deployment string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == awsx.TagDeployment && aws.ToString(t.Value) == deployment {
			return true
		}
	}
	return false
}

func eksClusters(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	var out []string
	p := eks.NewListClustersPaginator(c.EKS, &eks.ListClustersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("EKS ListClusters: %w", err)
		}
		for _, name := range page.Clusters {
			d, err := c.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
			if err == nil && d.Cluster.Tags[awsx.TagDeployment] == deployment {
				out = append(out, "eks-cluster "+name)
			}
		}
	}
	return out, nil
}

func iamRoles(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	var out []string
	p := iam.NewListRolesPaginator(c.IAM, &iam.ListRolesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("IAM ListRoles: %w", err)
		}
		for _, r := range page.Roles {
			tags, err := c.IAM.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: r.RoleName})
			if err != nil {
				continue
			}
			for _, t := range tags.Tags {
				if aws.ToString(t.Key) == awsx.TagDeployment && aws.ToString(t.Value) == deployment {
					out = append(out, "iam-role "+aws.ToString(r.RoleName))
				}
			}
		}
	}
	return out, nil
}

func oidcProviders(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	list, err := c.IAM.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		return nil, fmt.Errorf("IAM ListOpenIDConnectProviders: %w", err)
	}
	var out []string
	for _, p := range list.OpenIDConnectProviderList {
		tags, err := c.IAM.ListOpenIDConnectProviderTags(ctx, &iam.ListOpenIDConnectProviderTagsInput{OpenIDConnectProviderArn: p.Arn})
		if err != nil {
			continue
		}
		for _, t := range tags.Tags {
			if aws.ToString(t.Key) == awsx.TagDeployment && aws.ToString(t.Value) == deployment {
				out = append(out, "oidc-provider "+aws.ToString(p.Arn))
			}
		}
	}
	return out, nil
}
