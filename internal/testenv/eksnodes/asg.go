package eksnodes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/smithy-go"
)

// Tags EKS puts on the Auto Scaling group of every managed node group. The
// cluster autoscaler's auto-discovery finds the groups by the first two.
const (
	TagAutoscalerEnabled = "k8s.io/cluster-autoscaler/enabled"
	// TagAutoscalerClusterPrefix + <cluster> is tagged "owned".
	TagAutoscalerClusterPrefix = "k8s.io/cluster-autoscaler/"
	TagEKSCluster              = "eks:cluster-name"
	TagEKSNodegroup            = "eks:nodegroup-name"
)

// ASGName is the Auto Scaling group EKS reports for a node group
// (nodegroup.resources.autoScalingGroups[0].name), "" when none.
func ASGName(g *ekstypes.Nodegroup) string {
	if g.Resources == nil || len(g.Resources.AutoScalingGroups) == 0 {
		return ""
	}
	return aws.ToString(g.Resources.AutoScalingGroups[0].Name)
}

// ASGTags are the tags EKS puts on a node group's Auto Scaling group.
func ASGTags(cluster, nodegroup string) map[string]string {
	return map[string]string{
		TagAutoscalerEnabled:                 "true",
		TagAutoscalerClusterPrefix + cluster: "owned",
		TagEKSCluster:                        cluster,
		TagEKSNodegroup:                      nodegroup,
	}
}

// syncASGs makes moto's Auto Scaling groups match the node groups as EKS
// keeps them: moto's CreateNodegroup names a group in
// resources.autoScalingGroups but creates none. Each group gets a launch
// template of its instance type and an Auto Scaling group of that name with
// the node group's min, max and desired sizes and EKS's tags; the groups of
// node groups that are gone (or of a deleted cluster) are deleted, with
// their launch templates.
func (s *Syncer) syncASGs(ctx context.Context, groups []*ekstypes.Nodegroup, res *Result) error {
	if s.AutoScaling == nil {
		return nil
	}
	if s.EC2 == nil {
		return errors.New("eksnodes: Syncer.AutoScaling needs Syncer.EC2 for the groups' launch templates")
	}
	have, err := s.clusterASGs(ctx)
	if err != nil {
		return err
	}
	want := map[string]*ekstypes.Nodegroup{}
	var errs []error
	for _, g := range groups {
		name := ASGName(g)
		if name == "" {
			continue
		}
		want[name] = g
		if asg, ok := have[name]; ok {
			errs = append(errs, s.resizeASG(ctx, asg, g))
			continue
		}
		if err := s.createASG(ctx, name, g); err != nil {
			errs = append(errs, err)
			continue
		}
		res.ASGCreated = append(res.ASGCreated, name)
	}
	for _, name := range sortedNames(have) {
		if want[name] != nil {
			continue
		}
		if err := s.deleteASG(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		res.ASGDeleted = append(res.ASGDeleted, name)
	}
	return errors.Join(errs...)
}

// clusterASGs are the Auto Scaling groups tagged as this cluster's.
func (s *Syncer) clusterASGs(ctx context.Context) (map[string]astypes.AutoScalingGroup, error) {
	out := map[string]astypes.AutoScalingGroup{}
	pager := autoscaling.NewDescribeAutoScalingGroupsPaginator(s.AutoScaling, &autoscaling.DescribeAutoScalingGroupsInput{
		Filters: []astypes.Filter{{Name: aws.String("tag-key"), Values: []string{TagEKSCluster}}},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe auto scaling groups: %w", err)
		}
		for _, g := range page.AutoScalingGroups {
			if tagValue(g.Tags, TagEKSCluster) == s.Cluster {
				out[aws.ToString(g.AutoScalingGroupName)] = g
			}
		}
	}
	return out, nil
}

func tagValue(tags []astypes.TagDescription, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// sizes are a node group's min, max and desired sizes, widened so that an
// Auto Scaling group accepts them (moto's EKS does not validate them).
func sizes(g *ekstypes.Nodegroup) (minSize, maxSize, desired int32) {
	if sc := g.ScalingConfig; sc != nil {
		minSize, maxSize, desired = aws.ToInt32(sc.MinSize), aws.ToInt32(sc.MaxSize), aws.ToInt32(sc.DesiredSize)
	}
	return min(minSize, desired), max(maxSize, desired), desired
}

func (s *Syncer) createASG(ctx context.Context, name string, g *ekstypes.Nodegroup) error {
	_, err := s.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: ec2types.InstanceType(InstanceType(g))},
	})
	if err != nil && !isCode(err, "InvalidLaunchTemplateName.AlreadyExistsException") {
		return fmt.Errorf("create launch template %s: %w", name, err)
	}
	var tags []astypes.Tag
	asgTags := ASGTags(s.Cluster, aws.ToString(g.NodegroupName))
	for _, k := range sortedNames(asgTags) {
		tags = append(tags, astypes.Tag{
			Key: aws.String(k), Value: aws.String(asgTags[k]), PropagateAtLaunch: aws.Bool(true),
			ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group"),
		})
	}
	minSize, maxSize, desired := sizes(g)
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(name), Version: aws.String("$Latest")},
		MinSize:              aws.Int32(minSize), MaxSize: aws.Int32(maxSize), DesiredCapacity: aws.Int32(desired),
		VPCZoneIdentifier: aws.String(strings.Join(g.Subnets, ",")),
		Tags:              tags,
	}
	_, err = s.AutoScaling.CreateAutoScalingGroup(ctx, in)
	if err != nil && len(g.Subnets) > 0 && isCode(err, "InvalidSubnetID.NotFound", "ValidationError") {
		// Subnets moto does not know (tests that make node groups with
		// made-up subnet IDs): place the group by zone instead.
		in.VPCZoneIdentifier = nil
		in.AvailabilityZones = s.zones(ctx, nil)
		_, err = s.AutoScaling.CreateAutoScalingGroup(ctx, in)
	}
	if err != nil && !isCode(err, "AlreadyExists") {
		return fmt.Errorf("create auto scaling group %s of node group %s: %w", name, aws.ToString(g.NodegroupName), err)
	}
	return nil
}

func (s *Syncer) resizeASG(ctx context.Context, asg astypes.AutoScalingGroup, g *ekstypes.Nodegroup) error {
	minSize, maxSize, desired := sizes(g)
	if aws.ToInt32(asg.MinSize) == minSize && aws.ToInt32(asg.MaxSize) == maxSize && aws.ToInt32(asg.DesiredCapacity) == desired {
		return nil
	}
	_, err := s.AutoScaling.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: asg.AutoScalingGroupName,
		MinSize:              aws.Int32(minSize), MaxSize: aws.Int32(maxSize), DesiredCapacity: aws.Int32(desired),
	})
	if err != nil {
		return fmt.Errorf("resize auto scaling group %s: %w", aws.ToString(asg.AutoScalingGroupName), err)
	}
	return nil
}

func (s *Syncer) deleteASG(ctx context.Context, name string) error {
	_, err := s.AutoScaling.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), ForceDelete: aws.Bool(true),
	})
	if err != nil && !isCode(err, "ValidationError") { // moto: "AutoScalingGroup name not found"
		return fmt.Errorf("delete auto scaling group %s: %w", name, err)
	}
	_, err = s.EC2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String(name)})
	if err != nil && !isCode(err, "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound") {
		return fmt.Errorf("delete launch template %s: %w", name, err)
	}
	return nil
}

func isCode(err error, codes ...string) bool {
	var api smithy.APIError
	return errors.As(err, &api) && slices.Contains(codes, api.ErrorCode())
}
