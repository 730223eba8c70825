package autoscaler

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

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

// roleSpec is the role with the given trust and inline policy (nil for
// destroy, which uses only the name and deployment).
func (s *stage) roleSpec(trust, policy map[string]any) awsx.RoleSpec {
	name := s.roleName()
	return awsx.RoleSpec{
		Name:        name,
		Description: "cluster-autoscaler of " + s.d.Deployment() + ": resizes this cluster's node groups (coderctl)",
		Deployment:  s.d.Deployment(),
		Tags:        s.d.Tags(Name, map[string]string{"Name": name}),
		Trust:       trust,
		PolicyName:  RolePolicyName,
		Policy:      policy,
		Why:         "the autoscaler gets only its documented minimum",
	}
}

// wantedRole is the role with its trust and inline policy.
func (s *stage) wantedRole() (awsx.RoleSpec, error) {
	provider, err := s.d.Output(KeyOIDCProviderARN, "eks")
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	trust, err := TrustPolicy(provider)
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	partition, account, err := accountOf(provider)
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	return s.roleSpec(trust, AccessPolicy(partition, s.d.Region(), account, s.d.Deployment())), nil
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
	return want.Plan(ctx, s.d.AWS.IAM, "missing: trusted by "+Namespace+"/"+ServiceAccount+", may resize only this cluster's Auto Scaling groups")
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
	return want.Apply(ctx, s.d.AWS.IAM, r, func(arn string) error {
		if s.d.State.Get(KeyRoleARN) == arn {
			return nil
		}
		return s.d.Record(map[string]string{KeyRoleARN: arn})
	})
}

// destroyRole removes the role's policies, then the role. A role of
// another deployment is left with a notice.
func (s *stage) destroyRole(ctx context.Context, r engine.Reporter) error {
	if err := s.roleSpec(nil, nil).Destroy(ctx, s.d.AWS.IAM, r); err != nil {
		return err
	}
	return s.d.State.Unset(KeyRoleARN)
}
