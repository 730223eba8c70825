package autoscaler

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
)

// RolePolicyName is the role's one inline policy.
const RolePolicyName = "cluster-autoscaler"

// Role is the autoscaler's IRSA role, <cluster>-cluster-autoscaler.
var Role = deploy.IRSARole{
	Stage: Name, Suffix: "-cluster-autoscaler",
	Namespace: Namespace, ServiceAccount: ServiceAccount,
	PolicyName: RolePolicyName,
	Policy:     AccessPolicy,
	Who:        "cluster-autoscaler",
	Does:       "resizes this cluster's node groups",
	Grants:     "may resize only this cluster's Auto Scaling groups",
	Why:        "the autoscaler gets only its documented minimum",
	KeyARN:     KeyRoleARN,
}

func (s *stage) roleName() string { return s.d.IRSARoleName(Role) }

func (s *stage) planRole(ctx context.Context) ([]engine.Action, error) {
	if !s.enabled() {
		return s.planRemoval(ctx, "iam-role/"+s.roleName())
	}
	return s.d.PlanIRSARole(ctx, Role)
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
	return s.d.ApplyIRSARole(ctx, r, Role)
}

func (s *stage) destroyRole(ctx context.Context, r engine.Reporter) error {
	return s.d.DestroyIRSARole(ctx, r, Role)
}
