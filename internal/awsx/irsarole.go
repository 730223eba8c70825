package awsx

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/engine"
)

// RoleSpec is an IAM role coderctl owns, tagged for a deployment: its
// trust policy, and the policies it holds — an inline one (an IRSA role
// for one Kubernetes service account, held to exactly that) or AWS managed
// ones attached (the EKS cluster, node and EBS CSI roles). Trust and the
// policies may be nil for Destroy.
type RoleSpec struct {
	// Name is the role's name; Description is set when it is created.
	Name, Description string
	// Deployment is the value the role's TagDeployment tag must hold.
	Deployment string
	// Region is the deployment's region, put in the role's TagRegion tag:
	// IAM role names are account-wide, so the same cluster name in two
	// regions names the same role, and only this tag tells the two
	// deployments apart. "" checks nothing.
	Region string
	// Tags are put on the role when it is created.
	Tags map[string]string
	// Trust is the wanted trust policy.
	Trust map[string]any
	// TrustAllows, when set, accepts a trust policy (as IAM returns it)
	// that lets the role be assumed as wanted beside statements an
	// administrator added; nil: the trust policy must be exactly Trust.
	TrustAllows func(doc string) bool
	// PolicyName and Policy are the role's inline policy; "" for none.
	PolicyName string
	Policy     map[string]any
	// Managed are the ARNs of the AWS managed policies the role must have
	// attached.
	Managed []string
	// KeepOtherPolicies leaves policies beyond PolicyName and Managed in
	// place (administrators extend the EKS roles); otherwise each is
	// removed, the progress message ending with Why.
	KeepOtherPolicies bool
	Why               string
	// Foreign is the error for a role of that name not tagged for
	// Deployment (owner is its tag's value); nil gives a generic one.
	Foreign func(owner string) error
}

// RoleState is what IAM holds for a RoleSpec, compared with it.
type RoleState struct {
	ARN      string
	TrustOK  bool
	PolicyOK bool // the inline policy, when the spec has one
	// Missing are the spec's managed policies not attached.
	Missing []string
	// ExtraInline and Attached are policies beyond the spec's: each
	// widens what the role may do (empty with KeepOtherPolicies).
	ExtraInline []string
	Attached    []string
	// Created: this run made the role (IAM may not serve it everywhere
	// yet).
	Created bool
	// RegionUntagged: the role lacks TagRegion (an older coderctl made it);
	// Converge adds it.
	RegionUntagged bool

	policyName string
}

// Drift says what differs from the spec; empty when nothing does.
func (st *RoleState) Drift() []string {
	var why []string
	if !st.TrustOK {
		why = append(why, "trust policy differs")
	}
	if !st.PolicyOK {
		why = append(why, "inline policy "+st.policyName+" missing or different")
	}
	if len(st.ExtraInline) > 0 {
		why = append(why, "extra inline policies "+strings.Join(st.ExtraInline, ", "))
	}
	if len(st.Attached) > 0 {
		why = append(why, "attached managed policies "+strings.Join(st.Attached, ", "))
	}
	if len(st.Missing) > 0 {
		why = append(why, "not attached: "+strings.Join(PolicyNames(st.Missing), ", "))
	}
	if st.RegionUntagged {
		why = append(why, "not tagged "+TagRegion)
	}
	return why
}

// RoleInOtherRegionError is a role of this deployment's name made for the
// same cluster name in another region of the account: that deployment's,
// never adopted, changed or deleted here.
type RoleInOtherRegionError struct{ Role, Deployment, Region, OtherRegion string }

func (e *RoleInOtherRegionError) Error() string {
	return fmt.Sprintf("IAM role %s belongs to deployment %s in %s, not in %s: IAM role names are account-wide; choose a cluster name not used in another region",
		e.Role, e.Deployment, e.OtherRegion, e.Region)
}

// otherRegion is the region a role's tags say it was made for, when that is
// not the spec's ("" otherwise).
func (sp RoleSpec) otherRegion(tags map[string]string) string {
	if r := tags[TagRegion]; sp.Region != "" && r != "" && r != sp.Region {
		return r
	}
	return ""
}

// tags are the role's tags at creation, the region's among them.
func (sp RoleSpec) tags() map[string]string {
	if sp.Region == "" {
		return sp.Tags
	}
	t := maps.Clone(sp.Tags)
	if t == nil {
		t = map[string]string{}
	}
	t[TagRegion] = sp.Region
	return t
}

// PolicyNames are the names of managed policies, from their ARNs.
func PolicyNames(arns []string) []string {
	out := make([]string, len(arns))
	for i, a := range arns {
		out[i] = PolicyName(a)
	}
	return out
}

// trustOK compares the role's trust policy with the spec's.
func (sp RoleSpec) trustOK(doc string) bool {
	if sp.TrustAllows != nil {
		return sp.TrustAllows(doc)
	}
	return SamePolicy(doc, sp.Trust)
}

func (sp RoleSpec) foreign(owner string) error {
	if sp.Foreign != nil {
		return sp.Foreign(owner)
	}
	return fmt.Errorf("IAM role %s exists but is not tagged %s=%s: it belongs to something else; delete it or choose another CLUSTER_NAME",
		sp.Name, TagDeployment, sp.Deployment)
}

// Read reads the role; nil when it does not exist. A role of that name
// not tagged for the deployment is someone else's: sp.Foreign's error.
func (sp RoleSpec) Read(ctx context.Context, client *iam.Client) (*RoleState, error) {
	out, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(sp.Name)})
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, Describe("IAM GetRole "+sp.Name, err)
	}
	tags := IAMTags(out.Role.Tags)
	if owner := tags[TagDeployment]; owner != sp.Deployment {
		return nil, sp.foreign(owner)
	}
	if other := sp.otherRegion(tags); other != "" {
		return nil, &RoleInOtherRegionError{Role: sp.Name, Deployment: sp.Deployment, Region: sp.Region, OtherRegion: other}
	}
	st := &RoleState{ARN: aws.ToString(out.Role.Arn), TrustOK: sp.trustOK(aws.ToString(out.Role.AssumeRolePolicyDocument)),
		PolicyOK: sp.PolicyName == "", RegionUntagged: sp.Region != "" && tags[TagRegion] == "", policyName: sp.PolicyName}
	// A role without an inline policy of its own that keeps others has
	// nothing to learn from them: IAM is not asked.
	var inline []string
	if sp.PolicyName != "" || !sp.KeepOtherPolicies {
		if inline, err = InlineRolePolicies(ctx, client, sp.Name); err != nil {
			return nil, err
		}
	}
	for _, p := range inline {
		if p != sp.PolicyName {
			if !sp.KeepOtherPolicies {
				st.ExtraInline = append(st.ExtraInline, p)
			}
			continue
		}
		doc, err := client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(sp.Name), PolicyName: aws.String(p)})
		if err != nil {
			return nil, Describe("IAM GetRolePolicy "+p, err)
		}
		st.PolicyOK = SamePolicy(aws.ToString(doc.PolicyDocument), sp.Policy)
	}
	attached, err := AttachedRolePolicies(ctx, client, sp.Name)
	if err != nil {
		return nil, err
	}
	for _, p := range attached {
		if !slices.Contains(sp.Managed, p) && !sp.KeepOtherPolicies {
			st.Attached = append(st.Attached, p)
		}
	}
	for _, p := range sp.Managed {
		if !slices.Contains(attached, p) {
			st.Missing = append(st.Missing, p)
		}
	}
	return st, nil
}

// Create creates the role with its trust policy and tags at once (no
// untagged window); its policies follow in Converge. IAM has no
// idempotency token: the role's fixed name makes a repeated create safe,
// and a role another run created since Read is read instead.
func (sp RoleSpec) Create(ctx context.Context, client *iam.Client, r engine.Reporter) (*RoleState, error) {
	trust, err := policyJSON(sp.Trust)
	if err != nil {
		return nil, err
	}
	r.Progress("creating IAM role " + sp.Name)
	out, err := client.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(sp.Name),
		AssumeRolePolicyDocument: aws.String(trust),
		Description:              aws.String(sp.Description),
		Tags:                     IAMTagList(sp.tags()),
	})
	if ErrorCode(err) == "EntityAlreadyExists" {
		// Created by another run since we looked.
		st, rerr := sp.Read(ctx, client)
		if rerr != nil || st == nil {
			return nil, Describe("IAM CreateRole "+sp.Name, err)
		}
		return st, nil
	}
	if err != nil {
		return nil, Describe("IAM CreateRole "+sp.Name, err)
	}
	return &RoleState{ARN: aws.ToString(out.Role.Arn), TrustOK: true, PolicyOK: sp.PolicyName == "",
		Missing: slices.Clone(sp.Managed), Created: true, policyName: sp.PolicyName}, nil
}

// Converge repairs what st says drifted: trust, the inline policy, and any
// policy beyond it (removed, saying sp.Why).
func (sp RoleSpec) Converge(ctx context.Context, client *iam.Client, r engine.Reporter, st *RoleState) error {
	name := aws.String(sp.Name)
	if st.RegionUntagged {
		r.Progress("tagging IAM role " + sp.Name + " with " + TagRegion + "=" + sp.Region)
		if _, err := client.TagRole(ctx, &iam.TagRoleInput{RoleName: name, Tags: IAMTagList(map[string]string{TagRegion: sp.Region})}); err != nil {
			return Describe("IAM TagRole "+sp.Name, err)
		}
	}
	if !st.TrustOK {
		trust, err := policyJSON(sp.Trust)
		if err != nil {
			return err
		}
		r.Progress("restoring the trust policy of IAM role " + sp.Name)
		if _, err := client.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName: name, PolicyDocument: aws.String(trust)}); err != nil {
			return Describe("IAM UpdateAssumeRolePolicy "+sp.Name, err)
		}
	}
	if !st.PolicyOK {
		policy, err := policyJSON(sp.Policy)
		if err != nil {
			return err
		}
		r.Progress("putting inline policy " + sp.PolicyName + " on IAM role " + sp.Name)
		if _, err := client.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
			RoleName: name, PolicyName: aws.String(sp.PolicyName), PolicyDocument: aws.String(policy)}); err != nil {
			return Describe("IAM PutRolePolicy "+sp.Name, err)
		}
	}
	for _, p := range st.Missing {
		r.Progress("attaching " + PolicyName(p) + " to IAM role " + sp.Name)
		if _, err := client.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: name, PolicyArn: aws.String(p)}); err != nil {
			return Describe("IAM AttachRolePolicy "+PolicyName(p)+" to "+sp.Name, err)
		}
	}
	for _, p := range st.ExtraInline {
		r.Progress(fmt.Sprintf("removing inline policy %s from IAM role %s: %s", p, sp.Name, sp.Why))
		if _, err := client.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(p)}); err != nil && !IsNotFound(err) {
			return Describe("IAM DeleteRolePolicy "+p, err)
		}
	}
	for _, p := range st.Attached {
		r.Progress(fmt.Sprintf("detaching policy %s from IAM role %s: %s", p, sp.Name, sp.Why))
		if _, err := client.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: name, PolicyArn: aws.String(p)}); err != nil && !IsNotFound(err) {
			return Describe("IAM DetachRolePolicy "+p, err)
		}
	}
	return nil
}

// Plan is the role's action on resource iam-role/<Name>: create, saying
// missing; update, saying what drifted; or nothing.
func (sp RoleSpec) Plan(ctx context.Context, client *iam.Client, missing string) ([]engine.Action, error) {
	res := "iam-role/" + sp.Name
	st, err := sp.Read(ctx, client)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: missing}}, nil
	case len(st.Drift()) > 0:
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: strings.Join(st.Drift(), "; ")}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "trust and policies as wanted"}}, nil
}

// Apply reads the role, creates it if missing, hands its ARN to record
// (before anything else changes), then converges it, and returns what it
// found (Created says it made the role).
func (sp RoleSpec) Apply(ctx context.Context, client *iam.Client, r engine.Reporter, record func(arn string) error) (*RoleState, error) {
	st, err := sp.Read(ctx, client)
	if err != nil {
		return nil, err
	}
	if st == nil {
		if st, err = sp.Create(ctx, client, r); err != nil {
			return nil, err
		}
	}
	if err := record(st.ARN); err != nil {
		return nil, err
	}
	return st, sp.Converge(ctx, client, r, st)
}

// Destroy removes the role's policies, then the role; nil when it is
// gone. A role not tagged for the deployment is left with a notice (and
// nil). Only Name and Deployment are used.
func (sp RoleSpec) Destroy(ctx context.Context, client *iam.Client, r engine.Reporter) error {
	out, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(sp.Name)})
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return Describe("IAM GetRole "+sp.Name, err)
	}
	tags := IAMTags(out.Role.Tags)
	if owner := tags[TagDeployment]; owner != sp.Deployment {
		r.Notice(fmt.Sprintf("IAM role %s is not tagged %s=%s: left in place", sp.Name, TagDeployment, sp.Deployment), map[string]any{"role": sp.Name})
		return nil
	}
	if other := sp.otherRegion(tags); other != "" {
		r.Notice(fmt.Sprintf("IAM role %s is deployment %s's in %s: left in place", sp.Name, sp.Deployment, other), map[string]any{"role": sp.Name})
		return nil
	}
	r.Progress("deleting IAM role " + sp.Name)
	return DeleteRole(ctx, client, sp.Name)
}

// policyJSON encodes a policy document built from maps of strings.
func policyJSON(doc map[string]any) (string, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("IAM policy does not encode: %w", err)
	}
	return string(b), nil
}
