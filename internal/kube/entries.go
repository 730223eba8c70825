package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coderctl/coderctl/internal/awsx"
)

// Access is who reaches a cluster's Kubernetes API through EKS, and how:
// what the eks stage converges and `coderctl access` lists.
type Access struct {
	Cluster string `json:"cluster"`
	// Mode is the cluster's authentication mode (API, API_AND_CONFIG_MAP or
	// CONFIG_MAP); under CONFIG_MAP there are no access entries and the
	// aws-auth ConfigMap decides.
	Mode string `json:"authentication_mode"`
	// CreatorAdmin tells whether EKS made the creator an admin entry.
	CreatorAdmin bool `json:"bootstrap_cluster_creator_admin"`
	// Caller is the principal running coderctl (an assumed-role session
	// as its role), the one an access entry would name.
	Caller  string        `json:"caller_principal_arn,omitempty"`
	Entries []AccessEntry `json:"access_entries"`
}

// AccessEntry is one principal's access entry with its access policies.
type AccessEntry struct {
	Principal string         `json:"principal_arn"`
	Type      string         `json:"type"`
	Username  string         `json:"kubernetes_username,omitempty"`
	Groups    []string       `json:"kubernetes_groups,omitempty"`
	Policies  []AccessPolicy `json:"access_policies,omitempty"`
	// Tags are the entry's tags; the deployment tag marks the entries
	// coderctl made (and may change or delete).
	Tags map[string]string `json:"tags,omitempty"`
}

// AccessPolicy is an EKS access policy associated with an entry, with its
// scope: the whole cluster, or the namespaces listed.
type AccessPolicy struct {
	ARN        string   `json:"policy_arn"`
	Scope      string   `json:"scope"`
	Namespaces []string `json:"namespaces,omitempty"`
}

// ListAccess reads the cluster's authentication mode and, where it has
// them, its access entries with their policies.
func ListAccess(ctx context.Context, clients *awsx.Clients, cluster string) (Access, error) {
	out, err := clients.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(cluster)})
	if err != nil {
		if awsx.IsNotFound(err) {
			return Access{}, fmt.Errorf("EKS cluster %s not found in %s: run 'coderctl stage eks apply' first", cluster, clients.Config.Region)
		}
		return Access{}, awsx.Describe("EKS DescribeCluster "+cluster, err)
	}
	acc := Access{Cluster: cluster, Mode: "CONFIG_MAP"}
	if ac := out.Cluster.AccessConfig; ac != nil {
		if ac.AuthenticationMode != "" {
			acc.Mode = string(ac.AuthenticationMode)
		}
		acc.CreatorAdmin = aws.ToBool(ac.BootstrapClusterCreatorAdminPermissions)
	}
	if id, err := clients.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
		acc.Caller = awsx.PrincipalOf(aws.ToString(id.Arn))
	}
	if acc.Mode == "CONFIG_MAP" {
		return acc, nil
	}
	acc.Entries, err = ListAccessEntries(ctx, clients.EKS, cluster)
	return acc, err
}

// ListAccessEntries reads every access entry of the cluster, sorted by
// principal, each with its tags and associated policies (sorted by ARN).
func ListAccessEntries(ctx context.Context, client *eks.Client, cluster string) ([]AccessEntry, error) {
	var out []AccessEntry
	pages := eks.NewListAccessEntriesPaginator(client, &eks.ListAccessEntriesInput{ClusterName: aws.String(cluster)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, awsx.Describe("EKS ListAccessEntries "+cluster, err)
		}
		for _, principal := range page.AccessEntries {
			e, err := describeEntry(ctx, client, cluster, principal)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b AccessEntry) int { return strings.Compare(a.Principal, b.Principal) })
	return out, nil
}

func describeEntry(ctx context.Context, client *eks.Client, cluster, principal string) (AccessEntry, error) {
	d, err := client.DescribeAccessEntry(ctx, &eks.DescribeAccessEntryInput{ClusterName: aws.String(cluster), PrincipalArn: aws.String(principal)})
	if err != nil {
		return AccessEntry{}, awsx.Describe("EKS DescribeAccessEntry "+principal, err)
	}
	e := AccessEntry{Principal: principal, Type: aws.ToString(d.AccessEntry.Type), Username: aws.ToString(d.AccessEntry.Username),
		Groups: slices.Sorted(slices.Values(d.AccessEntry.KubernetesGroups)), Tags: d.AccessEntry.Tags}
	pages := eks.NewListAssociatedAccessPoliciesPaginator(client, &eks.ListAssociatedAccessPoliciesInput{
		ClusterName: aws.String(cluster), PrincipalArn: aws.String(principal)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return AccessEntry{}, awsx.Describe("EKS ListAssociatedAccessPolicies "+principal, err)
		}
		for _, p := range page.AssociatedAccessPolicies {
			pol := AccessPolicy{ARN: aws.ToString(p.PolicyArn)}
			if p.AccessScope != nil {
				pol.Scope, pol.Namespaces = string(p.AccessScope.Type), slices.Sorted(slices.Values(p.AccessScope.Namespaces))
			}
			e.Policies = append(e.Policies, pol)
		}
	}
	slices.SortFunc(e.Policies, func(a, b AccessPolicy) int { return strings.Compare(a.ARN, b.ARN) })
	return e, nil
}
