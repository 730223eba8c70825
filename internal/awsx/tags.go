package awsx

import (
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// The tags every resource coderctl creates carries, so that apply can adopt,
// plan can compare, and down can prove nothing was left behind.
const (
	TagDeployment = "coderctl/deployment"
	TagStage      = "coderctl/stage"
	// TagRegion is on account-wide resources (IAM roles): the region of
	// the deployment that made them.
	TagRegion = "coderctl/region"
	TagName   = "Name"
)

// Tags returns the deployment and stage tags plus any extra ones.
func Tags(deployment, stage string, extra map[string]string) map[string]string {
	t := map[string]string{TagDeployment: deployment, TagStage: stage}
	for k, v := range extra {
		t[k] = v
	}
	return t
}

// TagList converts a tag map to a service's tag type, sorted by key so the
// calls are deterministic.
func TagList[T any](tags map[string]string, mk func(key, value string) T) []T {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, mk(k, tags[k]))
	}
	return out
}

// HasTags reports whether have contains every key/value of want.
func HasTags(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// EC2Tags converts a tag map to EC2's tag list, in key order.
func EC2Tags(m map[string]string) []ec2types.Tag {
	return TagList(m, func(k, v string) ec2types.Tag { return ec2types.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// EC2TagMap converts EC2's tag list to a map.
func EC2TagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// SecretsManagerTags converts a tag map to Secrets Manager's tag list, in
// key order.
func SecretsManagerTags(m map[string]string) []smtypes.Tag {
	return TagList(m, func(k, v string) smtypes.Tag { return smtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// SecretsManagerTagMap converts Secrets Manager's tag list to a map.
func SecretsManagerTagMap(tags []smtypes.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
