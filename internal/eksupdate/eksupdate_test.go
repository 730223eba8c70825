package eksupdate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/eksupdate"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

// world is cluster c at Kubernetes 1.32 in moto behind the EKS stand-in,
// with node group ng at 1.31 on launch template version 1 of a template
// that has a version 2. Node group and cluster updates stay InProgress for
// polls descriptions.
type world struct {
	eks  *eks.Client
	ltID string
}

func newWorld(t *testing.T, polls int) *world {
	t.Helper()
	m := moto.Require(t)
	s := ekstest.Start(t, m.URL, ekstest.Options{Polls: polls, UpdatePolls: polls})
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{eks: eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(s.URL) })}
	ec2c := ec2.NewFromConfig(cfg)
	if _, err := w.eks.CreateCluster(ctx, &eks.CreateClusterInput{
		Name: aws.String("c"), Version: aws.String("1.32"), RoleArn: aws.String("arn:aws:iam::123456789012:role/c"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1"}},
	}); err != nil {
		t.Fatal(err)
	}
	data := &ec2types.RequestLaunchTemplateData{MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
		HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired}}
	lt, err := ec2c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("c-ng"), LaunchTemplateData: data})
	if err != nil {
		t.Fatal(err)
	}
	w.ltID = aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	if _, err := ec2c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(w.ltID), LaunchTemplateData: data}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eks.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String("c"), NodegroupName: aws.String("ng"), Version: aws.String("1.31"),
		NodeRole: aws.String("arn:aws:iam::123456789012:role/n"), Subnets: []string{"subnet-1"},
		InstanceTypes: []string{"m7i.xlarge"}, AmiType: ekstypes.AMITypesAl2023X8664Standard,
		ScalingConfig:  &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(1), MaxSize: aws.Int32(3), DesiredSize: aws.Int32(1)},
		LaunchTemplate: &ekstypes.LaunchTemplateSpecification{Id: aws.String(w.ltID), Version: aws.String("1")},
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) group(name string) eksupdate.Group {
	return eksupdate.Group{EKS: w.eks, Cluster: "c", Name: name,
		Wait: awsx.WaitPolicy{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, Timeout: 30 * time.Second}}
}

// describe is what EKS says of group ng now; nil once it is gone.
func (w *world) describe(t *testing.T) *ekstypes.Nodegroup {
	t.Helper()
	out, err := w.eks.DescribeNodegroup(context.Background(), &eks.DescribeNodegroupInput{ClusterName: aws.String("c"), NodegroupName: aws.String("ng")})
	if awsx.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.Nodegroup
}

// show says what the cases check of a group.
func show(ng *ekstypes.Nodegroup) string {
	if ng == nil {
		return "none"
	}
	lt := ""
	if ng.LaunchTemplate != nil {
		lt = aws.ToString(ng.LaunchTemplate.Version)
	}
	desired := int32(0)
	if ng.ScalingConfig != nil {
		desired = aws.ToInt32(ng.ScalingConfig.DesiredSize)
	}
	return fmt.Sprintf("%s, Kubernetes %s, launch template version %q, desired size %d", ng.Status, aws.ToString(ng.Version), lt, desired)
}

// startVersionUpdate starts an update of ng to Kubernetes 1.32 behind the
// caller's back (a killed run's), with token.
func (w *world) startVersionUpdate(t *testing.T, token string) {
	t.Helper()
	if _, err := w.eks.UpdateNodegroupVersion(context.Background(), &eks.UpdateNodegroupVersionInput{
		ClusterName: aws.String("c"), NodegroupName: aws.String("ng"), Version: aws.String("1.32"), ClientRequestToken: aws.String(token),
	}); err != nil {
		t.Fatal(err)
	}
}

// TestGroupUpdates: each update is started (after a busy group's update is
// over), waited through DescribeUpdate while EKS says InProgress, and then
// until the group is ACTIVE, which is returned; a refused update fails at
// once, naming the call and the group.
func TestGroupUpdates(t *testing.T) {
	upgrade := func(ctx context.Context, w *world, r *enginetest.Recorder) (*ekstypes.Nodegroup, error) {
		return w.group("ng").Upgrade(ctx, r, "1.31", "1.32", 1, "tok-upgrade")
	}
	tests := []struct {
		name string
		// polls is how many descriptions an update stays InProgress.
		polls int
		// before runs first: what EKS is busy with when the update starts.
		before func(t *testing.T, w *world, r *enginetest.Recorder)
		update func(ctx context.Context, w *world, r *enginetest.Recorder) (*ekstypes.Nodegroup, error)
		// check tells the returned group and the group EKS describes after.
		check       func(ng *ekstypes.Nodegroup) bool
		wantErr     string
		said, quiet []string
	}{
		{
			name: "Kubernetes version waited through DescribeUpdate", polls: 2, update: upgrade,
			check: func(ng *ekstypes.Nodegroup) bool { return aws.ToString(ng.Version) == "1.32" },
			said: []string{"upgrading node group ng from Kubernetes 1.31 to 1.32 (1 batches, updateConfig)",
				"waiting for update of node group ng: InProgress", "waiting for node group ng: ACTIVE"},
			quiet: []string{"another update of the node group is in progress"},
		},
		{
			name: "launch template version", polls: 2,
			update: func(ctx context.Context, w *world, r *enginetest.Recorder) (*ekstypes.Nodegroup, error) {
				return w.group("ng").UpdateVersion(ctx, r, &eks.UpdateNodegroupVersionInput{
					LaunchTemplate:     &ekstypes.LaunchTemplateSpecification{Id: aws.String(w.ltID), Version: aws.String("2")},
					ClientRequestToken: aws.String("tok-roll"),
				})
			},
			check: func(ng *ekstypes.Nodegroup) bool {
				// Without a version EKS also moves the group to the cluster's.
				return ng.LaunchTemplate != nil && aws.ToString(ng.LaunchTemplate.Version) == "2" && aws.ToString(ng.Version) == "1.32"
			},
			said: []string{"waiting for update of node group ng: InProgress", "waiting for node group ng: ACTIVE"},
		},
		{
			name: "config update EKS answers as done", polls: 2,
			update: func(ctx context.Context, w *world, r *enginetest.Recorder) (*ekstypes.Nodegroup, error) {
				return w.group("ng").UpdateConfig(ctx, r, &eks.UpdateNodegroupConfigInput{
					ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(1), MaxSize: aws.Int32(3), DesiredSize: aws.Int32(2)},
				})
			},
			check: func(ng *ekstypes.Nodegroup) bool { return aws.ToInt32(ng.ScalingConfig.DesiredSize) == 2 },
			said:  []string{"waiting for node group ng: ACTIVE"},
			quiet: []string{"waiting for update of node group ng"},
		},
		{
			name: "group busy with another update: started once it is over", polls: 2,
			before: func(t *testing.T, w *world, r *enginetest.Recorder) {
				w.startVersionUpdate(t, "tok-other")
				// Each refused try lets EKS's update go on by one description.
				r.OnProgress = func(msg string) {
					if strings.Contains(msg, "another update of the node group is in progress") {
						w.describe(t)
					}
				}
			},
			update: upgrade,
			check:  func(ng *ekstypes.Nodegroup) bool { return aws.ToString(ng.Version) == "1.32" },
			said: []string{"waiting for EKS to take node group ng's update: another update of the node group is in progress",
				"waiting for EKS to take node group ng's update: started", "waiting for node group ng: ACTIVE"},
		},
		{
			name: "a retried call after a kill finds the update its token started", polls: 2,
			before: func(t *testing.T, w *world, r *enginetest.Recorder) { w.startVersionUpdate(t, "tok-upgrade") },
			update: upgrade,
			check:  func(ng *ekstypes.Nodegroup) bool { return aws.ToString(ng.Version) == "1.32" },
			said:   []string{"waiting for update of node group ng: InProgress", "waiting for node group ng: ACTIVE"},
			quiet:  []string{"another update of the node group is in progress"},
		},
		{
			name: "refused update fails at once", polls: 2,
			update: func(ctx context.Context, w *world, r *enginetest.Recorder) (*ekstypes.Nodegroup, error) {
				return w.group("ng").Upgrade(ctx, r, "1.31", "1.33", 1, "tok-too-new")
			},
			check: func(ng *ekstypes.Nodegroup) bool {
				return aws.ToString(ng.Version) == "1.31" && ng.Status == ekstypes.NodegroupStatusActive
			},
			wantErr: "EKS UpdateNodegroupVersion ng: ",
			said:    []string{"upgrading node group ng from Kubernetes 1.31 to 1.33"},
			quiet:   []string{"waiting for update of node group ng", "waiting for node group ng"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.polls)
			r := &enginetest.Recorder{}
			if tc.before != nil {
				tc.before(t, w, r)
			}
			ng, err := tc.update(context.Background(), w, r)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr == "" && (ng == nil || ng.Status != ekstypes.NodegroupStatusActive || !tc.check(ng)):
				t.Errorf("returned group %s: not ACTIVE as the update leaves it", show(ng))
			}
			if after := w.describe(t); after == nil || after.Status != ekstypes.NodegroupStatusActive || !tc.check(after) {
				t.Errorf("EKS describes the group after as %s, want ACTIVE as the update leaves it", show(after))
			}
			for _, part := range tc.said {
				if !r.Said(part) {
					t.Errorf("no progress saying %q; got %q", part, r.Progressed)
				}
			}
			for _, part := range tc.quiet {
				if r.Said(part) {
					t.Errorf("progress says %q; got %q", part, r.Progressed)
				}
			}
		})
	}
}

// TestWaits: WaitActive returns an ACTIVE group and names a missing one
// with its status unknown; WaitDeleted returns once a deleted group is
// gone.
func TestWaits(t *testing.T) {
	tests := []struct {
		name    string
		group   string
		wait    func(ctx context.Context, g eksupdate.Group, r *enginetest.Recorder, w *world) error
		wantErr string
		gone    bool
	}{
		{"ACTIVE group", "ng", func(ctx context.Context, g eksupdate.Group, r *enginetest.Recorder, w *world) error {
			ng, err := g.WaitActive(ctx, r, time.Minute)
			if err == nil && (ng == nil || aws.ToString(ng.NodegroupName) != "ng" || ng.Status != ekstypes.NodegroupStatusActive) {
				t.Errorf("WaitActive returned %+v, want ACTIVE group ng", ng)
			}
			return err
		}, "", false},
		{"missing group", "nope", func(ctx context.Context, g eksupdate.Group, r *enginetest.Recorder, w *world) error {
			_, err := g.WaitActive(ctx, r, time.Minute)
			return err
		}, "node group nope did not become ACTIVE (status unknown)", false},
		{"deleted group", "ng", func(ctx context.Context, g eksupdate.Group, r *enginetest.Recorder, w *world) error {
			if _, err := w.eks.DeleteNodegroup(ctx, &eks.DeleteNodegroupInput{ClusterName: aws.String("c"), NodegroupName: aws.String("ng")}); err != nil {
				t.Fatal(err)
			}
			return g.WaitDeleted(ctx, r, time.Minute)
		}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 0)
			err := tc.wait(context.Background(), w.group(tc.group), &enginetest.Recorder{}, w)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			}
			if gone := w.describe(t) == nil; gone != tc.gone {
				t.Errorf("group ng gone = %v, want %v", gone, tc.gone)
			}
		})
	}
}

// TestClusterUpdates: a cluster update is waited through DescribeUpdate
// while EKS says InProgress, with the cluster named in each message; one
// EKS refuses fails at once, naming the call and the cluster.
func TestClusterUpdates(t *testing.T) {
	tests := []struct {
		name    string
		version string
		// groupFollows moves ng to the cluster's 1.32 first, as EKS
		// requires before the control plane's next minor.
		groupFollows bool
		said         []string
		wantErr      string
	}{
		{name: "one minor up is waited for", version: "1.33", groupFollows: true,
			said: []string{"waiting for EKS to take cluster c's update: started", "waiting for update of cluster c: InProgress"}},
		{name: "a trailing node group is refused", version: "1.33", wantErr: "EKS UpdateClusterVersion c: "},
		{name: "two minors up is refused", version: "1.34", groupFollows: true, wantErr: "EKS UpdateClusterVersion c: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 2)
			r := &enginetest.Recorder{}
			if tc.groupFollows {
				if _, err := w.group("ng").Upgrade(context.Background(), &enginetest.Recorder{}, "1.31", "1.32", 1, "tok-follow"); err != nil {
					t.Fatal(err)
				}
			}
			wait := awsx.WaitPolicy{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, Timeout: 30 * time.Second}
			err := eksupdate.Run(context.Background(), r, w.eks, wait, eksupdate.Target{Cluster: "c"}, "UpdateClusterVersion", time.Minute,
				func(ctx context.Context) (*ekstypes.Update, error) {
					out, err := w.eks.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String("c"), Version: aws.String(tc.version)})
					if err != nil {
						return nil, err
					}
					return out.Update, nil
				})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.said {
				if !r.Said(s) {
					t.Errorf("progress lacks %q: %q", s, r.Progressed)
				}
			}
			out, err := w.eks.DescribeCluster(context.Background(), &eks.DescribeClusterInput{Name: aws.String("c")})
			if err != nil {
				t.Fatal(err)
			}
			if v := aws.ToString(out.Cluster.Version); v != tc.version {
				t.Errorf("cluster version after the update = %s, want %s", v, tc.version)
			}
		})
	}
}
