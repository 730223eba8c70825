package eks

import (
	"context"
	"errors"
	"fmt"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// The EBS CSI controller's service account, which its IRSA role trusts.
const (
	ebsCSIServiceAccount = "system:serviceaccount:kube-system:ebs-csi-controller-sa"
)

// role is an IAM role this stage owns: its trust policy and the one AWS
// managed policy attached to it (administrators may attach more; they are
// left alone), and the state key its ARN is recorded under.
type role struct {
	awsx.RoleSpec
	stateKey string
}

func (s *stage) role(name, description string, trust map[string]any, policyARN, stateKey string) role {
	return role{stateKey: stateKey, RoleSpec: awsx.RoleSpec{
		Name: name, Description: description, Deployment: s.d.Deployment(), Region: s.d.Region(), Tags: s.tags(name),
		Trust: trust, Managed: []string{policyARN}, KeepOtherPolicies: true,
		Foreign: func(string) error { return s.foreignError("IAM role", name) },
	}}
}

// policy is the role's managed policy, by name.
func (r role) policy() string { return awsx.PolicyName(r.Managed[0]) }

// clusterRole is the role the EKS control plane assumes.
func (s *stage) clusterRole() role {
	return s.role(s.clusterRoleName(), "EKS control plane of "+s.clusterName()+" (coderctl)",
		awsx.ServiceTrust("eks.amazonaws.com"), s.managedPolicyARN("AmazonEKSClusterPolicy"), names.KeyClusterRoleARN)
}

// ebsCSIRole is the EBS CSI controller's IRSA role, trusted only by its
// service account through the cluster's OIDC provider.
func (s *stage) ebsCSIRole(providerARN string) (role, error) {
	issuerHost, ok := awsx.IssuerHostOf(providerARN)
	if !ok {
		return role{}, fmt.Errorf("%s %q is not an IAM OIDC provider ARN", names.KeyOIDCProviderARN, providerARN)
	}
	return s.role(s.ebsCSIRoleName(), "EBS CSI driver of EKS cluster "+s.clusterName()+" (coderctl)",
		awsx.IRSATrust(providerARN, issuerHost, ebsCSIServiceAccount), s.managedPolicyARN("service-role/AmazonEBSCSIDriverPolicy"), names.KeyEBSCSIRoleARN), nil
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

// planRole says what applyRole would do.
func (s *stage) planRole(ctx context.Context, r role) ([]engine.Action, error) {
	return r.Plan(ctx, s.d.AWS.IAM, "missing: create it with "+r.policy())
}

// applyRole creates the role or converges its trust policy and policy
// attachment, recording its ARN as soon as it exists.
func (s *stage) applyRole(ctx context.Context, rep engine.Reporter, r role) error {
	_, err := r.Apply(ctx, s.d.AWS.IAM, rep, func(arn string) error { return s.recordIfChanged(r.stateKey, arn) })
	return err
}

// destroyRole detaches the role's policies and deletes it, and forgets its
// ARN; a role that is gone is fine, one that is not ours is left alone.
func (s *stage) destroyRole(ctx context.Context, rep engine.Reporter, r role) error {
	if err := r.Destroy(ctx, s.d.AWS.IAM, rep); err != nil {
		return err
	}
	return s.d.State.Unset(r.stateKey)
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
	return s.planRole(ctx, s.clusterRole())
}

func (s *stage) applyClusterRole(ctx context.Context, r engine.Reporter) error {
	return s.applyRole(ctx, r, s.clusterRole())
}

func (s *stage) destroyClusterRole(ctx context.Context, r engine.Reporter) error {
	return s.destroyRole(ctx, r, s.clusterRole())
}

func (s *stage) planEBSCSIRole(ctx context.Context) ([]engine.Action, error) {
	providerARN, err := s.wantedProviderARN(ctx)
	if err != nil {
		return nil, err
	}
	if providerARN == "" {
		return action(engine.Create, "iam-role/"+s.ebsCSIRoleName(), "create once the cluster's OIDC provider exists"), nil
	}
	r, err := s.ebsCSIRole(providerARN)
	if err != nil {
		return nil, err
	}
	return s.planRole(ctx, r)
}

func (s *stage) applyEBSCSIRole(ctx context.Context, rep engine.Reporter) error {
	providerARN, err := s.d.Output(names.KeyOIDCProviderARN, Name)
	if err != nil {
		return err
	}
	r, err := s.ebsCSIRole(providerARN)
	if err != nil {
		return err
	}
	return s.applyRole(ctx, rep, r)
}

// destroyEBSCSIRole needs only the role's name: its trust policy does not
// matter for deletion.
func (s *stage) destroyEBSCSIRole(ctx context.Context, r engine.Reporter) error {
	return s.destroyRole(ctx, r, s.role(s.ebsCSIRoleName(), "", nil, "", names.KeyEBSCSIRoleARN))
}
