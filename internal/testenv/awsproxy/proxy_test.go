package awsproxy

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go"

	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

func awsConfig(t *testing.T, url string, attempts int) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-west-2"),
		config.WithBaseEndpoint(url),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = 10 * time.Millisecond
			})
		}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startProxy(t *testing.T, p Profile) *Proxy {
	t.Helper()
	srv := moto.Require(t)
	px, err := Start(srv.URL, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Stop)
	return px
}

func createCluster(t *testing.T, c *eks.Client, name string) *eks.CreateClusterOutput {
	t.Helper()
	out, err := c.CreateCluster(context.Background(), &eks.CreateClusterInput{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::123456789012:role/eks"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1", "subnet-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func clusterStatus(t *testing.T, c *eks.Client, name string) ekstypes.ClusterStatus {
	t.Helper()
	out, err := c.DescribeCluster(context.Background(), &eks.DescribeClusterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Cluster.Status
}

// TestSlowResources: each kind shows its in-progress status until the
// profile's duration passes, then the real one; deletion likewise.
func TestSlowEKSCluster(t *testing.T) {
	// Durations switch between "forever" and short through SetProfile, so
	// the test does not depend on how fast this machine is.
	slow := Instant()
	slow.Create = map[Kind]time.Duration{EKSCluster: time.Hour}
	slow.Delete = map[Kind]time.Duration{EKSCluster: time.Hour}
	px := startProxy(t, slow)
	c := eks.NewFromConfig(awsConfig(t, px.URL, 3))
	if out := createCluster(t, c, "slow"); out.Cluster.Status != ekstypes.ClusterStatusCreating {
		t.Fatalf("the create answer says %s, want CREATING (moto says ACTIVE; AWS never does)", out.Cluster.Status)
	}
	if st := clusterStatus(t, c, "slow"); st != ekstypes.ClusterStatusCreating {
		t.Fatalf("status right after create = %s, want CREATING", st)
	}
	short := Instant()
	short.Create = map[Kind]time.Duration{EKSCluster: 300 * time.Millisecond}
	short.Delete = map[Kind]time.Duration{EKSCluster: time.Hour}
	px.SetProfile(short)
	w := eks.NewClusterActiveWaiter(c, func(o *eks.ClusterActiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 50*time.Millisecond
	})
	if err := w.Wait(context.Background(), &eks.DescribeClusterInput{Name: aws.String("slow")}, 10*time.Second); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	rd := px.Readiness()
	if len(rd) != 1 || rd[0].Key != "eks-cluster/slow" || rd[0].Seen.Before(rd[0].Ready) {
		t.Fatalf("readiness = %+v", rd)
	}
	if _, err := c.DeleteCluster(context.Background(), &eks.DeleteClusterInput{Name: aws.String("slow")}); err != nil {
		t.Fatal(err)
	}
	if st := clusterStatus(t, c, "slow"); st != ekstypes.ClusterStatusDeleting {
		t.Fatalf("status right after delete = %s, want DELETING", st)
	}
	px.SetProfile(Instant()) // the deletion time is over
	_, err := c.DescribeCluster(context.Background(), &eks.DescribeClusterInput{Name: aws.String("slow")})
	var nf *ekstypes.ResourceNotFoundException
	if err == nil || !asErr(err, &nf) {
		t.Fatalf("after the deletion time: err = %v, want ResourceNotFoundException", err)
	}
}

func asErr[T error](err error, target *T) bool {
	for e := err; e != nil; {
		if v, ok := e.(T); ok {
			*target = v
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func TestSlowRDSAndNAT(t *testing.T) {
	p := Instant()
	p.Create = map[Kind]time.Duration{RDSInstance: time.Hour, NATGateway: time.Hour}
	px := startProxy(t, p)
	cfg := awsConfig(t, px.URL, 3)
	ctx := context.Background()
	r := rds.NewFromConfig(cfg)
	if _, err := r.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("db1"),
		DBInstanceClass: aws.String("db.m7i.large"), Engine: aws.String("postgres"), MasterUsername: aws.String("coder"),
		MasterUserPassword: aws.String("pw-long-enough"), AllocatedStorage: aws.Int32(20)}); err != nil {
		t.Fatal(err)
	}
	out, err := r.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("db1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.DBInstances[0].DBInstanceStatus); got != "creating" {
		t.Errorf("db status = %s, want creating", got)
	}
	e := ec2.NewFromConfig(cfg)
	vpc, _ := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	sub, _ := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/24")})
	eip, _ := e.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc})
	nat, err := e.CreateNatGateway(ctx, &ec2.CreateNatGatewayInput{SubnetId: sub.Subnet.SubnetId, AllocationId: eip.AllocationId})
	if err != nil {
		t.Fatal(err)
	}
	nats, err := e.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: []string{aws.ToString(nat.NatGateway.NatGatewayId)}})
	if err != nil {
		t.Fatal(err)
	}
	if st := nats.NatGateways[0].State; st != ec2types.NatGatewayStatePending {
		t.Errorf("nat state = %s, want pending", st)
	}
	c := px.Counts()
	if c.Mutations["rds.CreateDBInstance"] != 1 || c.Mutations["ec2.CreateNatGateway"] != 1 || c.Reads["rds.DescribeDBInstances"] != 1 {
		t.Errorf("counts = %+v", c)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		profile  Profile
		attempts int
		wantCode string // "" = success expected
	}{
		{"throttled every time, no retries", Instant().Faulty(1, 0, 0), 1, "RequestLimitExceeded"},
		{"5xx every time, no retries", Instant().Faulty(0, 1, 0), 1, "http 503"},
		{"half throttled, retried", Instant().Faulty(0.5, 0, 0), 20, ""},
		{"dropped connections and 5xx, retried", Instant().Faulty(0, 0.2, 0.2), 20, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := startProxy(t, tt.profile)
			e := ec2.NewFromConfig(awsConfig(t, px.URL, tt.attempts))
			var err error
			for range 5 {
				if _, err = e.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{}); err != nil {
					break
				}
			}
			switch {
			case tt.wantCode == "" && err != nil:
				t.Fatalf("want success through retries, got %v", err)
			case tt.wantCode != "" && err == nil:
				t.Fatalf("want failure %s", tt.wantCode)
			case tt.wantCode == "RequestLimitExceeded":
				var ae smithy.APIError
				if !asErr(err, &ae) || ae.ErrorCode() != tt.wantCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
			}
			if tt.wantCode == "" && px.Counts().Faults == nil {
				t.Fatal("no faults injected")
			}
		})
	}
}
