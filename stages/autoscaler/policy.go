package autoscaler

import "fmt"

// AccessPolicy is the autoscaler's documented minimum, held to this
// cluster where IAM can: the describe calls it makes to discover groups and
// instance shapes (they take no resource-level permissions, hence "*");
// eks:DescribeNodegroup on this cluster's node groups only, so it can
// scale a group up from zero nodes by its labels and taints; and resizing
// or terminating only in Auto Scaling groups tagged for this cluster.
func AccessPolicy(partition, region, account, cluster string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid":    "Discover",
				"Effect": "Allow",
				"Action": []any{
					"autoscaling:DescribeAutoScalingGroups",
					"autoscaling:DescribeAutoScalingInstances",
					"autoscaling:DescribeLaunchConfigurations",
					"autoscaling:DescribeScalingActivities",
					"autoscaling:DescribeTags",
					"ec2:DescribeImages",
					"ec2:DescribeInstanceTypes",
					"ec2:DescribeLaunchTemplateVersions",
					"ec2:GetInstanceTypesFromInstanceRequirements",
				},
				"Resource": "*",
			},
			map[string]any{
				"Sid":      "ReadOwnNodeGroups",
				"Effect":   "Allow",
				"Action":   "eks:DescribeNodegroup",
				"Resource": fmt.Sprintf("arn:%s:eks:%s:%s:nodegroup/%s/*/*", partition, region, account, cluster),
			},
			map[string]any{
				"Sid":      "ScaleOwnGroups",
				"Effect":   "Allow",
				"Action":   []any{"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"},
				"Resource": "*",
				"Condition": map[string]any{"StringEquals": map[string]any{
					"aws:ResourceTag/" + TagEnabled:          "true",
					"aws:ResourceTag/" + TagCluster(cluster): "owned",
				}},
			},
		},
	}
}
