package autoscaler

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/coderctl/coderctl/internal/awsx"
)

// TrustPolicy lets exactly the autoscaler's service account, with a token
// from the cluster's OIDC issuer meant for STS, assume the role.
func TrustPolicy(providerARN string) (map[string]any, error) {
	host, ok := awsx.IssuerHostOf(providerARN)
	if !ok {
		return nil, fmt.Errorf("%s %q is not an IAM OIDC provider ARN: run 'coderctl stage eks apply'", KeyOIDCProviderARN, providerARN)
	}
	return awsx.IRSATrust(providerARN, host, "system:serviceaccount:"+Namespace+":"+ServiceAccount), nil
}

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

// accountOf reads the partition and account from an IAM ARN (the OIDC
// provider's), so the policy needs no STS call.
func accountOf(iamARN string) (partition, account string, err error) {
	a, err := arn.Parse(iamARN)
	if err != nil || a.AccountID == "" {
		return "", "", fmt.Errorf("%s %q is not an IAM ARN: run 'coderctl stage eks apply'", KeyOIDCProviderARN, iamARN)
	}
	return a.Partition, a.AccountID, nil
}
