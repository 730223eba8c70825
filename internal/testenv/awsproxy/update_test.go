package awsproxy

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// TestSlowEKSVersionUpdate: behind the proxy, a control plane version
// update the EKS stand-in finishes at once stays InProgress in
// UpdateClusterVersion's answer and in DescribeUpdate for the profile's
// duration, then shows the stand-in's Successful.
func TestSlowEKSVersionUpdate(t *testing.T) {
	emu := ekstest.Start(t, moto.Require(t).URL, ekstest.Options{})
	slow := Instant()
	slow.Create = map[Kind]time.Duration{EKSVersionUpdate: time.Hour}
	px, err := Start(emu.URL, slow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Stop)
	c := eks.NewFromConfig(awsConfig(t, px.URL, 1))
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &eks.CreateClusterInput{Name: aws.String("up"), Version: aws.String("1.34"),
		RoleArn:            aws.String("arn:aws:iam::123456789012:role/eks"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1", "subnet-2"}}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String("up"), Version: aws.String("1.35")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Update.Id)
	describe := func() ekstypes.UpdateStatus {
		t.Helper()
		d, err := c.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String("up"), UpdateId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return d.Update.Status
	}
	tests := []struct {
		name    string
		hold    time.Duration
		want    ekstypes.UpdateStatus
		readies int
	}{
		{"held by the profile", time.Hour, ekstypes.UpdateStatusInProgress, 0},
		{"after the duration", 0, ekstypes.UpdateStatusSuccessful, 1},
	}
	if out.Update.Status != ekstypes.UpdateStatusInProgress {
		t.Errorf("UpdateClusterVersion answered %s, want InProgress", out.Update.Status)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Instant()
			p.Create = map[Kind]time.Duration{EKSVersionUpdate: tt.hold}
			px.SetProfile(p)
			if got := describe(); got != tt.want {
				t.Errorf("DescribeUpdate says %s, want %s", got, tt.want)
			}
			if n := len(px.Readiness()); n != tt.readies {
				t.Errorf("readiness records %d, want %d", n, tt.readies)
			}
		})
	}
}
