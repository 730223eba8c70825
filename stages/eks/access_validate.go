package eks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/fault"
)

const (
	accessField  = "accessConfig"
	entriesField = "accessConfig.accessEntries"
	modeField    = "accessConfig.authenticationMode"
	// clusterAdminPolicy is the access policy EKS gives the creator.
	clusterAdminPolicy = "AmazonEKSClusterAdminPolicy"
)

// modeRank orders the modes the way EKS lets them change: only towards API.
var modeRank = map[ekstypes.AuthenticationMode]int{
	ekstypes.AuthenticationModeConfigMap: 0, ekstypes.AuthenticationModeApiAndConfigMap: 1, ekstypes.AuthenticationModeApi: 2,
}

// validateAccess checks accessConfig before anything changes: principals
// EKS takes (IAM roles and users), access policies EKS has, a mode change
// EKS allows, and that the identity running coderctl will reach the
// cluster's Kubernetes API afterwards.
func (s *stage) validateAccess(ctx context.Context) error {
	want := s.accessWant()
	for _, e := range want.entries {
		if a, err := arn.Parse(e.principal); err != nil || a.Service != "iam" || !(strings.HasPrefix(a.Resource, "role/") || strings.HasPrefix(a.Resource, "user/")) {
			return fault.Input(s.d.ConfigPath, fmt.Sprintf("%s[%d].principalARN", entriesField, e.index), "use an IAM role or user ARN, arn:"+s.partition()+":iam::ACCOUNT:role/NAME",
				"%q is not the ARN of an IAM role or user (EKS takes only those; for an assumed-role session use its role)", e.principal)
		}
	}
	if s.d.AWS == nil {
		return nil
	}
	if err := s.validatePolicies(ctx, want); err != nil {
		return err
	}
	c, err := s.describeCluster(ctx)
	if err != nil {
		return nil // validateExisting and apply report it
	}
	if c != nil {
		if err := s.validateModeChange(c, want); err != nil {
			return err
		}
	}
	return s.validateReach(ctx, c, want)
}

// validatePolicies checks each policy ARN against EKS's list. A failing
// query (permissions) is not bad input: AssociateAccessPolicy decides.
func (s *stage) validatePolicies(ctx context.Context, want accessWant) error {
	known := map[string]bool{}
	var names []string
	pages := eks.NewListAccessPoliciesPaginator(s.d.AWS.EKS, &eks.ListAccessPoliciesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil
		}
		for _, p := range page.AccessPolicies {
			known[aws.ToString(p.Arn)] = true
			names = append(names, aws.ToString(p.Name))
		}
	}
	for _, e := range want.entries {
		for i, p := range slices.Sorted(maps.Keys(e.policies)) {
			if !known[p] {
				return fault.Input(s.d.ConfigPath, fmt.Sprintf("%s[%d].accessPolicies[%d].policyARN", entriesField, e.index, i),
					"use an EKS access policy, arn:"+s.partition()+":eks::aws:cluster-access-policy/NAME with NAME one of "+strings.Join(firstN(names, 4), ", ")+", ...",
					"%q is not an EKS access policy", p)
			}
		}
	}
	return nil
}

// validateModeChange: EKS moves the mode only towards API, and never
// changes bootstrapClusterCreatorAdminPermissions after creation.
func (s *stage) validateModeChange(c *ekstypes.Cluster, want accessWant) error {
	have := clusterMode(c, ekstypes.AuthenticationModeConfigMap)
	if modeRank[want.mode] < modeRank[have] {
		return fault.Input(s.d.ConfigPath, modeField, fmt.Sprintf("set it to %q (or towards API): EKS changes the mode only from CONFIG_MAP to API_AND_CONFIG_MAP to API", have),
			"cluster %s uses %s, the file says %s", s.clusterName(), have, want.mode)
	}
	if c.AccessConfig != nil && c.AccessConfig.BootstrapClusterCreatorAdminPermissions != nil &&
		aws.ToBool(c.AccessConfig.BootstrapClusterCreatorAdminPermissions) != want.bootstrap {
		return fault.Input(s.d.ConfigPath, accessField+".bootstrapClusterCreatorAdminPermissions",
			fmt.Sprintf("set it to %v: EKS fixes it when the cluster is created", !want.bootstrap),
			"cluster %s was created with %v, the file says %v", s.clusterName(), !want.bootstrap, want.bootstrap)
	}
	return nil
}

// validateReach refuses a run whose identity would not reach the cluster's
// Kubernetes API: the later stages (secrets, coder, provisioners) and
// `down` need it. It reaches it as the creator of a new cluster with
// bootstrap on, through an entry of the file with an access policy, or
// through an entry the existing cluster already has.
func (s *stage) validateReach(ctx context.Context, c *ekstypes.Cluster, want accessWant) error {
	id, err := s.d.AWS.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil // the run fails on its first call and says why
	}
	me := awsx.PrincipalOf(aws.ToString(id.Arn))
	for _, e := range want.entries {
		if e.principal == me && len(e.policies) > 0 && usesAPI(want.mode) {
			return nil
		}
	}
	switch {
	case c == nil && want.bootstrap && usesAPI(want.mode):
		return nil
	case c == nil && !usesAPI(want.mode):
		return nil // the creator is mapped in aws-auth by EKS under CONFIG_MAP
	case c != nil && usesAPI(clusterMode(c, want.mode)):
		// An entry coderctl made that the file no longer lists is deleted
		// by this very run: it does not count.
		if out, err := s.d.AWS.EKS.DescribeAccessEntry(ctx, &eks.DescribeAccessEntryInput{ClusterName: aws.String(s.clusterName()), PrincipalArn: aws.String(me)}); err == nil &&
			(out.AccessEntry == nil || !s.ownedBy(out.AccessEntry.Tags)) {
			return nil
		}
	case c != nil:
		return nil // CONFIG_MAP: aws-auth decides, coderctl cannot tell
	}
	return fault.Input(s.d.ConfigPath, entriesField,
		fmt.Sprintf("add an entry for %s with policyARN arn:%s:eks::aws:cluster-access-policy/%s (accessScope type cluster), or run as an identity that has one", me, s.partition(), clusterAdminPolicy),
		"%s (the identity running coderctl) would not reach cluster %s's Kubernetes API: it is not the creator with bootstrapClusterCreatorAdminPermissions, and has no access entry", me, s.clusterName())
}
