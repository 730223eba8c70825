package inventory

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/coderctl/coderctl/internal/awsx"
)

func rdsTagged(tags []rdstypes.Tag, deployment string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == awsx.TagDeployment && aws.ToString(t.Value) == deployment {
			return true
		}
	}
	return false
}

func rdsResources(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	var out []string
	dbs := rds.NewDescribeDBInstancesPaginator(c.RDS, &rds.DescribeDBInstancesInput{})
	for dbs.HasMorePages() {
		page, err := dbs.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("RDS DescribeDBInstances: %w", err)
		}
		for _, db := range page.DBInstances {
			if rdsTagged(db.TagList, deployment) {
				out = append(out, "db-instance "+aws.ToString(db.DBInstanceIdentifier))
			}
		}
	}
	groups := rds.NewDescribeDBSubnetGroupsPaginator(c.RDS, &rds.DescribeDBSubnetGroupsInput{})
	for groups.HasMorePages() {
		page, err := groups.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("RDS DescribeDBSubnetGroups: %w", err)
		}
		for _, g := range page.DBSubnetGroups {
			tags, err := c.RDS.ListTagsForResource(ctx, &rds.ListTagsForResourceInput{ResourceName: g.DBSubnetGroupArn})
			if err == nil && rdsTagged(tags.TagList, deployment) {
				out = append(out, "db-subnet-group "+aws.ToString(g.DBSubnetGroupName))
			}
		}
	}
	return out, nil
}

func certificates(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	var out []string
	p := acm.NewListCertificatesPaginator(c.ACM, &acm.ListCertificatesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("ACM ListCertificates: %w", err)
		}
		for _, cert := range page.CertificateSummaryList {
			tags, err := c.ACM.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: cert.CertificateArn})
			if err != nil {
				continue
			}
			for _, t := range tags.Tags {
				if aws.ToString(t.Key) == awsx.TagDeployment && aws.ToString(t.Value) == deployment {
					out = append(out, "certificate "+aws.ToString(cert.CertificateArn))
				}
			}
		}
	}
	return out, nil
}

// secrets lists tagged secrets, including those scheduled for deletion
// (they still exist during their recovery window).
func secrets(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	var out []string
	p := secretsmanager.NewListSecretsPaginator(c.SecretsManager, &secretsmanager.ListSecretsInput{
		IncludePlannedDeletion: aws.Bool(true),
		Filters:                []smtypes.Filter{{Key: smtypes.FilterNameStringTypeTagKey, Values: []string{awsx.TagDeployment}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("Secrets Manager ListSecrets: %w", err)
		}
		for _, s := range page.SecretList {
			for _, t := range s.Tags {
				if aws.ToString(t.Key) == awsx.TagDeployment && aws.ToString(t.Value) == deployment {
					name := "secret " + aws.ToString(s.Name)
					if s.DeletedDate != nil {
						name += " (scheduled for deletion)"
					}
					out = append(out, name)
				}
			}
		}
	}
	return out, nil
}

// loadBalancers finds NLBs made for the deployment's Services: tagged by
// coderctl, or by the AWS load balancer controller for the cluster.
func loadBalancers(ctx context.Context, c *awsx.Clients, deployment string) ([]string, error) {
	var out []string
	p := elbv2.NewDescribeLoadBalancersPaginator(c.ELB, &elbv2.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("ELB DescribeLoadBalancers: %w", err)
		}
		for _, lb := range page.LoadBalancers {
			tags, err := c.ELB.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{aws.ToString(lb.LoadBalancerArn)}})
			if err != nil {
				continue
			}
			for _, d := range tags.TagDescriptions {
				for _, t := range d.Tags {
					k, v := aws.ToString(t.Key), aws.ToString(t.Value)
					if (k == awsx.TagDeployment && v == deployment) || k == "kubernetes.io/cluster/"+deployment {
						out = append(out, "load-balancer "+aws.ToString(lb.LoadBalancerName))
					}
				}
			}
		}
	}
	return out, nil
}
