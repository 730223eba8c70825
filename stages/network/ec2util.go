package network

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/coderctl/coderctl/internal/awsx"
)

// tagSpec tags a resource in the call that creates it, so it is never
// untagged (and so never invisible to a re-run looking for it).
func tagSpec(rt ec2types.ResourceType, tags map[string]string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: awsx.EC2Tags(tags)}}
}

// nameOf is a resource's Name tag.
func nameOf(tags []ec2types.Tag) string { return awsx.EC2TagMap(tags)[awsx.TagName] }

// tagFilters selects resources carrying every tag. Results are still
// checked with awsx.HasTags: moto ignores tag filters on some calls
// (DescribeNatGateways), and a stray match must never be adopted.
func tagFilters(tags map[string]string) []ec2types.Filter {
	out := make([]ec2types.Filter, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	return out
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

// ownTags are the tags every resource of this stage carries, without a Name.
func (n *network) ownTags() map[string]string { return n.d.Tags(Name, nil) }

// clientToken derives an EC2 idempotency token from what identifies one
// creation: a retried or re-run call sends the same token and gets the same
// resource back instead of a second one. EC2 tokens are at most 64 ASCII
// characters.
func clientToken(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "coderctl-" + hex.EncodeToString(sum[:])[:40]
}
