package awsx

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
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

// IAMTagList converts a tag map to IAM's tag list, in key order.
func IAMTagList(m map[string]string) []iamtypes.Tag {
	return TagList(m, func(k, v string) iamtypes.Tag { return iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}

// IAMTags turns IAM's tag list into a map.
func IAMTags(tags []iamtypes.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// DeleteRole empties a role — detaches its managed policies, deletes its
// inline ones, takes it out of instance profiles; IAM refuses to delete a
// role that still has any — and deletes it. What is already gone is fine.
func DeleteRole(ctx context.Context, client *iam.Client, role string) error {
	attached, err := AttachedRolePolicies(ctx, client, role)
	if err != nil && !IsNotFound(err) {
		return err
	}
	for _, a := range attached {
		if _, err := client.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(role), PolicyArn: aws.String(a)}); err != nil && !IsNotFound(err) {
			return Describe("IAM DetachRolePolicy "+a+" from "+role, err)
		}
	}
	inline, err := InlineRolePolicies(ctx, client, role)
	if err != nil && !IsNotFound(err) {
		return err
	}
	for _, p := range inline {
		if _, err := client.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(p)}); err != nil && !IsNotFound(err) {
			return Describe("IAM DeleteRolePolicy "+p+" of "+role, err)
		}
	}
	profiles := iam.NewListInstanceProfilesForRolePaginator(client, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(role)})
	for profiles.HasMorePages() {
		page, err := profiles.NextPage(ctx)
		if IsNotFound(err) {
			break
		}
		if err != nil {
			return Describe("IAM ListInstanceProfilesForRole "+role, err)
		}
		for _, p := range page.InstanceProfiles {
			if _, err := client.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
				RoleName: aws.String(role), InstanceProfileName: p.InstanceProfileName,
			}); err != nil && !IsNotFound(err) {
				return Describe("IAM RemoveRoleFromInstanceProfile "+aws.ToString(p.InstanceProfileName), err)
			}
		}
	}
	if _, err := client.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(role)}); err != nil && !IsNotFound(err) {
		return Describe("IAM DeleteRole "+role, err)
	}
	return nil
}
