package secrets

import (
	"context"
	"fmt"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// RolePolicyName is the role's one inline policy.
const RolePolicyName = "coder-secrets-read"

// Role is coderd's IRSA role, <cluster>-coder-secrets: it reads its own
// deployment's coder/<cluster>/* secrets through the Secrets Store CSI
// driver.
var Role = deploy.IRSARole{
	Stage: Name, Suffix: "-coder-secrets",
	Namespace: names.CoderNamespace, ServiceAccount: names.CoderServiceAccount,
	PolicyName: RolePolicyName,
	Policy:     AccessPolicy,
	Who:        "coderd",
	Does:       "reads the deployment's coder/<cluster>/* secrets through the Secrets Store CSI driver",
	Grants:     "may read the deployment's coder/<cluster>/* secrets",
	Why:        "coderd may only read its own deployment's coder/<cluster>/* secrets",
	KeyARN:     names.KeySecretsRoleARN,
	Foreign: func(role, owner, deployment string) error {
		return &foreignError{kind: "IAM role", name: role, owner: owner, deployment: deployment}
	},
}

func (s *stage) roleName() string { return s.d.IRSARoleName(Role) }

// AccessPolicy allows reading the deployment's secrets in the region,
// coder/<cluster>/*, nothing else: not another deployment's, nor the
// account-wide coder/<leaf> names older versions used.
func AccessPolicy(partition, region, account, cluster string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":   "Allow",
			"Action":   []any{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
			"Resource": fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:%s*", partition, region, account, names.SecretPrefix(cluster)),
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
