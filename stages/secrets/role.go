package secrets

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

const (
	// roleSuffix makes the role name <cluster>-coder-secrets.
	roleSuffix = "-coder-secrets"
	// maxRoleNameLen is IAM's limit on role names.
	maxRoleNameLen = 64
	// RolePolicyName is the role's one inline policy.
	RolePolicyName = "coder-secrets-read"
)

// RoleName is the IRSA role's name for a cluster.
func RoleName(cluster string) string { return cluster + roleSuffix }

func (s *stage) roleName() string { return RoleName(s.d.Deployment()) }

// callerIdentity is the account and partition the run works in.
type callerIdentity struct{ account, partition string }

// callerInfo asks STS once per run.
func (s *stage) callerInfo(ctx context.Context) (callerIdentity, error) {
	s.callerMu.Lock()
	defer s.callerMu.Unlock()
	if s.caller != nil {
		return *s.caller, nil
	}
	out, err := s.d.AWS.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return callerIdentity{}, awsx.Describe("STS GetCallerIdentity", err)
	}
	id := callerIdentity{account: aws.ToString(out.Account), partition: "aws"}
	if a, err := arn.Parse(aws.ToString(out.Arn)); err == nil && a.Partition != "" {
		id.partition = a.Partition
	}
	s.caller = &id
	return id, nil
}

// TrustPolicy lets exactly coderd's service account, with a token from the
// cluster's OIDC issuer meant for STS, assume the role.
func TrustPolicy(providerARN string) (map[string]any, error) {
	host, ok := awsx.IssuerHostOf(providerARN)
	if !ok {
		return nil, fmt.Errorf("%s %q is not an IAM OIDC provider ARN: run 'coderctl stage eks apply'", names.KeyOIDCProviderARN, providerARN)
	}
	return awsx.IRSATrust(providerARN, host, "system:serviceaccount:"+Namespace+":"+ServiceAccount), nil
}

// AccessPolicy allows reading the coder/* secrets of the region, nothing
// else.
func AccessPolicy(partition, region, account string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":   "Allow",
			"Action":   []any{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
			"Resource": fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:coder/*", partition, region, account),
		}},
	}
}

// roleSpec is the role with the given trust and inline policy (nil for
// destroy, which uses only the name and deployment).
func (s *stage) roleSpec(trust, policy map[string]any) awsx.RoleSpec {
	name := s.roleName()
	return awsx.RoleSpec{
		Name:        name,
		Description: "coderd of " + s.d.Deployment() + ": reads coder/* secrets through the Secrets Store CSI driver (coderctl)",
		Deployment:  s.d.Deployment(),
		Tags:        s.d.Tags(Name, map[string]string{"Name": name}),
		Trust:       trust,
		PolicyName:  RolePolicyName,
		Policy:      policy,
		Why:         "coderd may only read coder/* secrets",
		Foreign: func(owner string) error {
			return &foreignError{kind: "IAM role", name: name, owner: owner, deployment: s.d.Deployment()}
		},
	}
}

// wantedRole is the role with its desired trust and inline policy.
func (s *stage) wantedRole(ctx context.Context) (awsx.RoleSpec, error) {
	provider, err := s.d.Output(names.KeyOIDCProviderARN, names.StageEKS)
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	trust, err := TrustPolicy(provider)
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	id, err := s.callerInfo(ctx)
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	return s.roleSpec(trust, AccessPolicy(id.partition, s.d.Region(), id.account)), nil
}

func (s *stage) planRole(ctx context.Context) ([]engine.Action, error) {
	res := "iam-role/" + s.roleName()
	if s.d.State.Get(names.KeyOIDCProviderARN) == "" {
		return []engine.Action{{Kind: engine.Create, Resource: res,
			Reason: "create once the eks stage records " + names.KeyOIDCProviderARN}}, nil
	}
	want, err := s.wantedRole(ctx)
	if err != nil {
		return nil, err
	}
	return want.Plan(ctx, s.d.AWS.IAM, "missing: trusted by "+Namespace+"/"+ServiceAccount+", may read coder/* secrets")
}

func (s *stage) applyRole(ctx context.Context, r engine.Reporter) error {
	want, err := s.wantedRole(ctx)
	if err != nil {
		return err
	}
	return want.Apply(ctx, s.d.AWS.IAM, r, func(arn string) error { return s.recordIfChanged(KeyRoleARN, arn) })
}

// destroyRole removes the role's policies, then the role. A role of
// another deployment is left with a notice.
func (s *stage) destroyRole(ctx context.Context, r engine.Reporter) error {
	if err := s.roleSpec(nil, nil).Destroy(ctx, s.d.AWS.IAM, r); err != nil {
		return err
	}
	return s.d.State.Unset(KeyRoleARN)
}
