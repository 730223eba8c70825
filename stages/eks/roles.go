package eks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// The EBS CSI controller's service account, which its IRSA role trusts.
const (
	ebsCSIServiceAccount = "system:serviceaccount:kube-system:ebs-csi-controller-sa"
)

// roleSpec is an IAM role this stage owns: its trust policy and the one
// AWS managed policy attached to it.
type roleSpec struct {
	name        string
	description string
	trust       map[string]any
	policyARN   string
	stateKey    string
}

func (r roleSpec) resource() string { return "iam-role/" + r.name }

// clusterRoleSpec is the role the EKS control plane assumes.
func (s *stage) clusterRoleSpec() roleSpec {
	return roleSpec{
		name:        s.clusterRoleName(),
		description: "EKS control plane of " + s.clusterName() + " (coderctl)",
		trust:       awsx.ServiceTrust("eks.amazonaws.com"),
		policyARN:   s.managedPolicyARN("AmazonEKSClusterPolicy"),
		stateKey:    KeyClusterRoleARN,
	}
}

// ebsCSIRoleSpec is the EBS CSI controller's IRSA role, trusted only by its
// service account through the cluster's OIDC provider.
func (s *stage) ebsCSIRoleSpec(providerARN string) (roleSpec, error) {
	issuerHost, ok := awsx.IssuerHostOf(providerARN)
	if !ok {
		return roleSpec{}, fmt.Errorf("%s %q is not an IAM OIDC provider ARN", KeyOIDCProviderARN, providerARN)
	}
	return roleSpec{
		name:        s.ebsCSIRoleName(),
		description: "EBS CSI driver of EKS cluster " + s.clusterName() + " (coderctl)",
		trust:       awsx.IRSATrust(providerARN, issuerHost, ebsCSIServiceAccount),
		policyARN:   s.managedPolicyARN("service-role/AmazonEBSCSIDriverPolicy"),
		stateKey:    KeyEBSCSIRoleARN,
	}, nil
}

// roleState is what IAM says about a role.
type roleState struct {
	arn      string
	trustOK  bool
	attached bool
}

// readRole finds the role; nil when it does not exist. A role of that name
// that is not tagged for this deployment is someone else's: an error.
func (s *stage) readRole(ctx context.Context, spec roleSpec) (*roleState, error) {
	out, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(spec.name)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("IAM GetRole "+spec.name, err)
	}
	if !s.ownedBy(awsx.IAMTags(out.Role.Tags)) {
		return nil, s.foreignError("IAM role", spec.name)
	}
	attached, err := s.hasPolicy(ctx, spec.name, spec.policyARN)
	if err != nil {
		return nil, err
	}
	return &roleState{
		arn:      aws.ToString(out.Role.Arn),
		trustOK:  awsx.SamePolicy(aws.ToString(out.Role.AssumeRolePolicyDocument), spec.trust),
		attached: attached,
	}, nil
}

// foreignError is a resource with one of our names that is not tagged for
// this deployment: someone else's, never adopted, changed or deleted.
type foreignError struct{ kind, name, deployment string }

func (e *foreignError) Error() string {
	return fmt.Sprintf("%s %s exists but is not tagged coderctl/deployment=%s: it belongs to something else; delete it or choose another CLUSTER_NAME",
		e.kind, e.name, e.deployment)
}

func (s *stage) foreignError(kind, name string) error {
	return &foreignError{kind: kind, name: name, deployment: s.d.Deployment()}
}

func isForeign(err error) bool {
	var fe *foreignError
	return errors.As(err, &fe)
}

// hasPolicy reports whether policyARN is attached to the role.
func (s *stage) hasPolicy(ctx context.Context, role, policyARN string) (bool, error) {
	arns, err := awsx.AttachedRolePolicies(ctx, s.d.AWS.IAM, role)
	if err != nil {
		return false, err
	}
	for _, a := range arns {
		if a == policyARN {
			return true, nil
		}
	}
	return false, nil
}

// planRole says what applyRole would do.
func (s *stage) planRole(ctx context.Context, spec roleSpec) ([]engine.Action, error) {
	st, err := s.readRole(ctx, spec)
	if err != nil {
		return nil, err
	}
	policy := awsx.PolicyName(spec.policyARN)
	switch {
	case st == nil:
		return action(engine.Create, spec.resource(), "missing: create it with %s", policy), nil
	case !st.trustOK:
		return action(engine.Update, spec.resource(), "trust policy differs from the one coderctl sets: rewrite it"), nil
	case !st.attached:
		return action(engine.Update, spec.resource(), "%s is not attached: attach it", policy), nil
	}
	return action(engine.Nothing, spec.resource(), "exists with its trust policy and %s", policy), nil
}

// applyRole creates the role or converges its trust policy and policy
// attachment, recording its ARN as soon as it exists.
func (s *stage) applyRole(ctx context.Context, spec roleSpec) error {
	st, err := s.readRole(ctx, spec)
	if err != nil {
		return err
	}
	if st == nil {
		if st, err = s.createRole(ctx, spec); err != nil {
			return err
		}
	}
	if err := s.recordIfChanged(spec.stateKey, st.arn); err != nil {
		return err
	}
	if !st.trustOK {
		doc, _ := json.Marshal(spec.trust)
		if _, err := s.d.AWS.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName: aws.String(spec.name), PolicyDocument: aws.String(string(doc)),
		}); err != nil {
			return awsx.Describe("IAM UpdateAssumeRolePolicy "+spec.name, err)
		}
	}
	if !st.attached {
		if _, err := s.d.AWS.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{
			RoleName: aws.String(spec.name), PolicyArn: aws.String(spec.policyARN),
		}); err != nil {
			return awsx.Describe("IAM AttachRolePolicy "+awsx.PolicyName(spec.policyARN)+" to "+spec.name, err)
		}
	}
	return nil
}

// createRole creates the role, tagged at creation. IAM has no idempotency
// token; the role's fixed name is what makes a repeated create safe.
func (s *stage) createRole(ctx context.Context, spec roleSpec) (*roleState, error) {
	doc, err := json.Marshal(spec.trust)
	if err != nil {
		return nil, err
	}
	out, err := s.d.AWS.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(spec.name),
		AssumeRolePolicyDocument: aws.String(string(doc)),
		Description:              aws.String(spec.description),
		Tags:                     awsx.IAMTagList(s.tags(spec.name)),
	})
	if awsx.ErrorCode(err) == "EntityAlreadyExists" {
		// Created since we looked (another run, or a retried call).
		st, rerr := s.readRole(ctx, spec)
		if rerr != nil || st == nil {
			return nil, awsx.Describe("IAM CreateRole "+spec.name, err)
		}
		return st, nil
	}
	if err != nil {
		return nil, awsx.Describe("IAM CreateRole "+spec.name, err)
	}
	return &roleState{arn: aws.ToString(out.Role.Arn), trustOK: true}, nil
}

// destroyRole detaches the role's policies and deletes it; a role that is
// gone is fine, one that is not ours is left alone.
func (s *stage) destroyRole(ctx context.Context, r engine.Reporter, spec roleSpec) error {
	out, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(spec.name)})
	if awsx.IsNotFound(err) {
		return s.d.State.Unset(spec.stateKey)
	}
	if err != nil {
		return awsx.Describe("IAM GetRole "+spec.name, err)
	}
	if !s.ownedBy(awsx.IAMTags(out.Role.Tags)) {
		r.Notice(fmt.Sprintf("IAM role %s is not tagged for deployment %s: left alone", spec.name, s.d.Deployment()), nil)
		return nil
	}
	r.Progress("deleting IAM role " + spec.name)
	if err := awsx.DeleteRole(ctx, s.d.AWS.IAM, spec.name); err != nil {
		return err
	}
	return s.d.State.Unset(spec.stateKey)
}

// recordIfChanged writes one output, skipping the write when the state
// already holds it.
func (s *stage) recordIfChanged(key, value string) error {
	if s.d.State.Get(key) == value {
		return nil
	}
	return s.d.Record(map[string]string{key: value})
}

// The two role steps.

func (s *stage) planClusterRole(ctx context.Context) ([]engine.Action, error) {
	return s.planRole(ctx, s.clusterRoleSpec())
}

func (s *stage) applyClusterRole(ctx context.Context, _ engine.Reporter) error {
	return s.applyRole(ctx, s.clusterRoleSpec())
}

func (s *stage) destroyClusterRole(ctx context.Context, r engine.Reporter) error {
	return s.destroyRole(ctx, r, s.clusterRoleSpec())
}

func (s *stage) planEBSCSIRole(ctx context.Context) ([]engine.Action, error) {
	providerARN, err := s.wantedProviderARN(ctx)
	if err != nil {
		return nil, err
	}
	if providerARN == "" {
		return action(engine.Create, "iam-role/"+s.ebsCSIRoleName(), "create once the cluster's OIDC provider exists"), nil
	}
	spec, err := s.ebsCSIRoleSpec(providerARN)
	if err != nil {
		return nil, err
	}
	return s.planRole(ctx, spec)
}

func (s *stage) applyEBSCSIRole(ctx context.Context, _ engine.Reporter) error {
	providerARN, err := s.d.Output(KeyOIDCProviderARN, Name)
	if err != nil {
		return err
	}
	spec, err := s.ebsCSIRoleSpec(providerARN)
	if err != nil {
		return err
	}
	return s.applyRole(ctx, spec)
}

// destroyEBSCSIRole needs only the role's name: its trust policy does not
// matter for deletion, so a placeholder provider ARN is fine.
func (s *stage) destroyEBSCSIRole(ctx context.Context, r engine.Reporter) error {
	return s.destroyRole(ctx, r, roleSpec{name: s.ebsCSIRoleName(), stateKey: KeyEBSCSIRoleARN})
}
