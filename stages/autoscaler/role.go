package autoscaler

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

const (
	// roleSuffix makes the role name <cluster>-cluster-autoscaler.
	roleSuffix = "-cluster-autoscaler"
	// maxRoleNameLen is IAM's limit on role names.
	maxRoleNameLen = 64
	// RolePolicyName is the role's one inline policy.
	RolePolicyName = "cluster-autoscaler"
)

// RoleName is the IRSA role's name for a cluster.
func RoleName(cluster string) string { return cluster + roleSuffix }

func (s *stage) roleName() string { return RoleName(s.d.Deployment()) }

// wantedRole is the role's trust and inline policy.
type wantedRole struct{ trust, policy map[string]any }

func (s *stage) wantedRole() (wantedRole, error) {
	provider, err := s.d.Output(KeyOIDCProviderARN, "eks")
	if err != nil {
		return wantedRole{}, err
	}
	trust, err := TrustPolicy(provider)
	if err != nil {
		return wantedRole{}, err
	}
	partition, account, err := accountOf(provider)
	if err != nil {
		return wantedRole{}, err
	}
	return wantedRole{trust: trust, policy: AccessPolicy(partition, s.d.Region(), account, s.d.Deployment())}, nil
}

// roleState is what IAM holds, compared with what is wanted.
type roleState struct {
	arn               string
	trustOK, policyOK bool
	// extra are policies beyond coderctl's: each widens what the
	// autoscaler may do.
	extraInline, attached []string
}

func (st *roleState) drift() []string {
	var why []string
	if !st.trustOK {
		why = append(why, "trust policy differs")
	}
	if !st.policyOK {
		why = append(why, "inline policy "+RolePolicyName+" missing or different")
	}
	if len(st.extraInline) > 0 {
		why = append(why, "extra inline policies "+strings.Join(st.extraInline, ", "))
	}
	if len(st.attached) > 0 {
		why = append(why, "attached managed policies "+strings.Join(st.attached, ", "))
	}
	return why
}

// readRole reads the role; nil when it does not exist. A role of that name
// not tagged for this deployment is someone else's: an error.
func (s *stage) readRole(ctx context.Context, want wantedRole) (*roleState, error) {
	name := s.roleName()
	out, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("IAM GetRole "+name, err)
	}
	if owner := awsx.IAMTags(out.Role.Tags)[awsx.TagDeployment]; owner != s.d.Deployment() {
		return nil, fmt.Errorf("IAM role %s exists but is not tagged %s=%s: it belongs to something else; delete it or choose another CLUSTER_NAME",
			name, awsx.TagDeployment, s.d.Deployment())
	}
	st := &roleState{arn: aws.ToString(out.Role.Arn), trustOK: awsx.SamePolicy(aws.ToString(out.Role.AssumeRolePolicyDocument), want.trust)}
	inline, err := awsx.InlineRolePolicies(ctx, s.d.AWS.IAM, name)
	if err != nil {
		return nil, err
	}
	for _, p := range inline {
		if p != RolePolicyName {
			st.extraInline = append(st.extraInline, p)
			continue
		}
		doc, err := s.d.AWS.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)})
		if err != nil {
			return nil, awsx.Describe("IAM GetRolePolicy "+p, err)
		}
		st.policyOK = awsx.SamePolicy(aws.ToString(doc.PolicyDocument), want.policy)
	}
	if st.attached, err = awsx.AttachedRolePolicies(ctx, s.d.AWS.IAM, name); err != nil {
		return nil, err
	}
	return st, nil
}

func (s *stage) planRole(ctx context.Context) ([]engine.Action, error) {
	res := "iam-role/" + s.roleName()
	if !s.enabled() {
		return s.planRemoval(ctx, res)
	}
	if s.d.State.Get(KeyOIDCProviderARN) == "" {
		return []engine.Action{{Kind: engine.Create, Resource: res,
			Reason: "create once the eks stage records " + KeyOIDCProviderARN}}, nil
	}
	want, err := s.wantedRole()
	if err != nil {
		return nil, err
	}
	st, err := s.readRole(ctx, want)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res,
			Reason: "missing: trusted by " + Namespace + "/" + ServiceAccount + ", may resize only this cluster's Auto Scaling groups"}}, nil
	case len(st.drift()) > 0:
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: strings.Join(st.drift(), "; ")}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "trust and policy as wanted"}}, nil
}

// planRemoval is the plan with AUTOSCALER=none: delete the role if a
// previous run made it.
func (s *stage) planRemoval(ctx context.Context, res string) ([]engine.Action, error) {
	_, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(s.roleName())})
	switch {
	case awsx.IsNotFound(err):
		return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "AUTOSCALER=none"}}, nil
	case err != nil:
		return nil, awsx.Describe("IAM GetRole "+s.roleName(), err)
	}
	return []engine.Action{{Kind: engine.Delete, Resource: res, Reason: "AUTOSCALER=none: nothing uses the role"}}, nil
}

func (s *stage) applyRole(ctx context.Context, r engine.Reporter) error {
	if !s.enabled() {
		return s.destroyRole(ctx, r)
	}
	want, err := s.wantedRole()
	if err != nil {
		return err
	}
	st, err := s.readRole(ctx, want)
	if err != nil {
		return err
	}
	if st == nil {
		if st, err = s.createRole(ctx, r, want); err != nil {
			return err
		}
	}
	if s.d.State.Get(KeyRoleARN) != st.arn {
		if err := s.d.Record(map[string]string{KeyRoleARN: st.arn}); err != nil {
			return err
		}
	}
	return s.convergeRole(ctx, r, st, want)
}

// createRole creates the role with its trust policy and tags at once (no
// untagged window); the inline policy follows in convergeRole.
func (s *stage) createRole(ctx context.Context, r engine.Reporter, want wantedRole) (*roleState, error) {
	name := s.roleName()
	r.Progress("creating IAM role " + name)
	out, err := s.d.AWS.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		AssumeRolePolicyDocument: aws.String(mustJSON(want.trust)),
		Description:              aws.String("cluster-autoscaler of " + s.d.Deployment() + ": resizes this cluster's node groups (coderctl)"),
		Tags: awsx.TagList(s.d.Tags(Name, map[string]string{"Name": name}), func(k, v string) iamtypes.Tag {
			return iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)}
		}),
	})
	if awsx.ErrorCode(err) == "EntityAlreadyExists" {
		// Created by another run since we looked.
		st, rerr := s.readRole(ctx, want)
		if rerr != nil || st == nil {
			return nil, awsx.Describe("IAM CreateRole "+name, err)
		}
		return st, nil
	}
	if err != nil {
		return nil, awsx.Describe("IAM CreateRole "+name, err)
	}
	return &roleState{arn: aws.ToString(out.Role.Arn), trustOK: true}, nil
}

// convergeRole repairs what drifted: trust, the inline policy, and any
// policy beyond it.
func (s *stage) convergeRole(ctx context.Context, r engine.Reporter, st *roleState, want wantedRole) error {
	name := aws.String(s.roleName())
	if !st.trustOK {
		r.Progress("restoring the trust policy of IAM role " + s.roleName())
		if _, err := s.d.AWS.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName: name, PolicyDocument: aws.String(mustJSON(want.trust))}); err != nil {
			return awsx.Describe("IAM UpdateAssumeRolePolicy "+s.roleName(), err)
		}
	}
	if !st.policyOK {
		r.Progress("putting inline policy " + RolePolicyName + " on IAM role " + s.roleName())
		if _, err := s.d.AWS.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
			RoleName: name, PolicyName: aws.String(RolePolicyName), PolicyDocument: aws.String(mustJSON(want.policy))}); err != nil {
			return awsx.Describe("IAM PutRolePolicy "+s.roleName(), err)
		}
	}
	for _, p := range st.extraInline {
		r.Progress(fmt.Sprintf("removing inline policy %s from IAM role %s: the autoscaler gets only its documented minimum", p, s.roleName()))
		if _, err := s.d.AWS.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(p)}); err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("IAM DeleteRolePolicy "+p, err)
		}
	}
	for _, p := range st.attached {
		r.Progress(fmt.Sprintf("detaching policy %s from IAM role %s: the autoscaler gets only its documented minimum", p, s.roleName()))
		if _, err := s.d.AWS.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: name, PolicyArn: aws.String(p)}); err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("IAM DetachRolePolicy "+p, err)
		}
	}
	return nil
}

// destroyRole removes the role's policies, then the role. A role of
// another deployment is left with a notice.
func (s *stage) destroyRole(ctx context.Context, r engine.Reporter) error {
	name := s.roleName()
	out, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if awsx.IsNotFound(err) {
		return s.d.State.Unset(KeyRoleARN)
	}
	if err != nil {
		return awsx.Describe("IAM GetRole "+name, err)
	}
	if owner := awsx.IAMTags(out.Role.Tags)[awsx.TagDeployment]; owner != s.d.Deployment() {
		r.Notice(fmt.Sprintf("IAM role %s is not tagged %s=%s: left in place", name, awsx.TagDeployment, s.d.Deployment()), map[string]any{"role": name})
		return s.d.State.Unset(KeyRoleARN)
	}
	r.Progress("deleting IAM role " + name)
	if err := awsx.DeleteRole(ctx, s.d.AWS.IAM, name); err != nil {
		return err
	}
	return s.d.State.Unset(KeyRoleARN)
}
