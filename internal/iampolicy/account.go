package iampolicy

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/stages/rds"
)

// CallerAccount asks STS which account and partition the credentials
// belong to (awsx.Connect has proven they work).
func CallerAccount(ctx context.Context, c *awsx.Clients) (account, partition string, err error) {
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", fmt.Errorf("AWS STS GetCallerIdentity: %w", err)
	}
	a, err := arn.Parse(aws.ToString(out.Arn))
	if err != nil {
		return aws.ToString(out.Account), "", nil
	}
	return a.AccountID, a.Partition, nil
}

// ValidAccount reports whether s is an AWS account ID: twelve digits.
func ValidAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}

// complete fills what follows from the rest: the partition from the
// region, the database's identifier from the cluster's name (the rds
// stage's own rule).
func (d Deployment) complete() Deployment {
	if d.Partition == "" {
		d.Partition = awsx.Partition(d.Region)
	}
	if d.DBInstanceID == "" {
		d.DBInstanceID = rds.InstanceIdentifier(d.Cluster)
	}
	return d
}
