package awsx

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coderctl/coderctl/internal/fault"
)

// Connect builds the clients for region and proves, with two reads made in
// parallel, that the credentials work and the region exists. Both failures
// are bad input (exit 2), reported before any stage can change anything;
// regionSource names where AWS_REGION came from, for the message.
func Connect(ctx context.Context, region, regionSource, version string) (*Clients, error) {
	cfg, err := LoadConfig(ctx, region, version)
	if err != nil {
		return nil, err
	}
	c := NewClients(cfg)
	var wg sync.WaitGroup
	var credErr, regionErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, credErr = c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	}()
	go func() {
		defer wg.Done()
		regionErr = checkRegion(ctx, c, region, regionSource)
	}()
	wg.Wait()
	if credErr != nil {
		if IsCredentialsError(credErr) {
			return nil, CredentialsInput(credErr)
		}
		return nil, fmt.Errorf("AWS STS GetCallerIdentity: %w", credErr)
	}
	if regionErr != nil {
		return nil, regionErr
	}
	return c, nil
}

// checkRegion refuses a region the account does not list.
func checkRegion(ctx context.Context, c *Clients, region, source string) error {
	out, err := c.EC2.DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: aws.Bool(true)})
	if err != nil {
		if IsCredentialsError(err) {
			return nil // reported by the credentials check
		}
		return fmt.Errorf("AWS EC2 DescribeRegions: %w", err)
	}
	var names []string
	for _, r := range out.Regions {
		if aws.ToString(r.RegionName) == region {
			return nil
		}
		names = append(names, aws.ToString(r.RegionName))
	}
	return fault.Input(source, "AWS_REGION", "use one of: "+strings.Join(names, " "), "%q is not an AWS region", region)
}
