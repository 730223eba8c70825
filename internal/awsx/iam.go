package awsx

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// AttachedRolePolicies lists the ARNs of the managed policies attached to
// a role, sorted.
func AttachedRolePolicies(ctx context.Context, client *iam.Client, role string) ([]string, error) {
	var arns []string
	pager := iam.NewListAttachedRolePoliciesPaginator(client, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, Describe("IAM ListAttachedRolePolicies "+role, err)
		}
		for _, p := range page.AttachedPolicies {
			arns = append(arns, aws.ToString(p.PolicyArn))
		}
	}
	slices.Sort(arns)
	return arns, nil
}

// InlineRolePolicies lists the names of a role's inline policies, sorted.
func InlineRolePolicies(ctx context.Context, client *iam.Client, role string) ([]string, error) {
	var names []string
	pager := iam.NewListRolePoliciesPaginator(client, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, Describe("IAM ListRolePolicies "+role, err)
		}
		names = append(names, page.PolicyNames...)
	}
	slices.Sort(names)
	return names, nil
}
