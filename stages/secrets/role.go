package secrets

import (
	"context"
	"fmt"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
)

// RolePolicyName is the role's one inline policy.
const RolePolicyName = "coder-secrets-read"

// Role is coderd's IRSA role, <cluster>-coder-secrets: it reads the coder/*
// secrets through the Secrets Store CSI driver.
var Role = deploy.IRSARole{
	Stage: Name, Suffix: "-coder-secrets",
	Namespace: Namespace, ServiceAccount: ServiceAccount,
	PolicyName: RolePolicyName,
	Policy:     AccessPolicy,
	Who:        "coderd",
	Does:       "reads coder/* secrets through the Secrets Store CSI driver",
	Grants:     "may read coder/* secrets",
	Why:        "coderd may only read coder/* secrets",
	KeyARN:     KeyRoleARN,
	Foreign: func(role, owner, deployment string) error {
		return &foreignError{kind: "IAM role", name: role, owner: owner, deployment: deployment}
	},
}

// RoleName is the IRSA role's name for a cluster.
func RoleName(cluster string) string { return cluster + Role.Suffix }

func (s *stage) roleName() string { return s.d.IRSARoleName(Role) }

// AccessPolicy allows reading the coder/* secrets of the region, nothing
// else.
func AccessPolicy(partition, region, account, _ string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":   "Allow",
			"Action":   []any{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
			"Resource": fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:coder/*", partition, region, account),
		}},
	}
}

func (s *stage) planRole(ctx context.Context) ([]engine.Action, error) {
	return s.d.PlanIRSARole(ctx, Role)
}

func (s *stage) applyRole(ctx context.Context, r engine.Reporter) error {
	return s.d.ApplyIRSARole(ctx, r, Role)
}

func (s *stage) destroyRole(ctx context.Context, r engine.Reporter) error {
	return s.d.DestroyIRSARole(ctx, r, Role)
}
