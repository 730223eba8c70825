package eksnodes_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// TestShapesMatchMoto holds the shape table to what EC2's
// DescribeInstanceTypes answers (moto carries AWS's instance data): vCPUs,
// memory and the default network card's ENI and address limits.
func TestShapesMatchMoto(t *testing.T) {
	ctx := context.Background()
	cfg, err := moto.Require(t).AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	types := []string{"t3.medium", "m7i.xlarge", "c7i.2xlarge", "c7g.2xlarge", "m7i.12xlarge"}
	asked := make([]ec2types.InstanceType, len(types))
	for i, it := range types {
		asked[i] = ec2types.InstanceType(it)
	}
	out, err := ec2.NewFromConfig(cfg).DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: asked})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceTypes) != len(types) {
		t.Fatalf("EC2 described %d of %d types", len(out.InstanceTypes), len(types))
	}
	for _, it := range out.InstanceTypes {
		name := string(it.InstanceType)
		got, ok := eksnodes.ShapeOf(name)
		if !ok {
			t.Errorf("%s is not in the table", name)
			continue
		}
		ni := it.NetworkInfo
		enis := int32(0)
		for _, card := range ni.NetworkCards {
			if aws.ToInt32(card.NetworkCardIndex) == aws.ToInt32(ni.DefaultNetworkCardIndex) {
				enis = aws.ToInt32(card.MaximumNetworkInterfaces)
			}
		}
		want := eksnodes.Shape{VCPU: int(aws.ToInt32(it.VCpuInfo.DefaultVCpus)), MemoryMiB: aws.ToInt64(it.MemoryInfo.SizeInMiB),
			ENIs: int(enis), IPv4PerENI: int(aws.ToInt32(ni.Ipv4AddressesPerInterface))}
		if got != want {
			t.Errorf("%s: table %+v, EC2 %+v", name, got, want)
		}
	}
}
