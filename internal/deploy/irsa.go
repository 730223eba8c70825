package deploy

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// IRSARole is an IAM role that one Kubernetes service account assumes
// through the cluster's OIDC provider (IRSA), with one inline policy and
// nothing attached: what the secrets and autoscaler stages give coderd and
// the cluster-autoscaler. Its steps need the eks stage's provider ARN.
type IRSARole struct {
	Stage string // the stage that owns it, for its tags
	// Suffix names it <cluster><Suffix>.
	Suffix                    string
	Namespace, ServiceAccount string
	PolicyName                string
	// Policy builds the inline policy for the provider's partition and
	// account and the deployment's region and name.
	Policy func(partition, region, account, cluster string) map[string]any
	// Who and Does describe the role in IAM: "<Who> of <cluster>: <Does>".
	Who, Does string
	// Grants says in a few words what the policy allows, for plans.
	Grants string
	// Why says why a drifted role is put back (see awsx.RoleSpec).
	Why string
	// KeyARN is the state key its ARN is recorded under.
	KeyARN string
	// Foreign, when set, builds the error for a role another deployment
	// owns (awsx.RoleSpec's default otherwise).
	Foreign func(role, owner, deployment string) error
}

// NameFor is the role's name for a cluster.
func (r IRSARole) NameFor(cluster string) string { return cluster + r.Suffix }

// IRSARoleName is the role's name for the deployment.
func (d *Deps) IRSARoleName(r IRSARole) string { return r.NameFor(d.Deployment()) }

// irsaSpec is the role with the given trust and policy (nil for destroy,
// which needs only the name and the deployment).
func (d *Deps) irsaSpec(r IRSARole, trust, policy map[string]any) awsx.RoleSpec {
	name := d.IRSARoleName(r)
	return awsx.RoleSpec{
		Name: name, Deployment: d.Deployment(), Region: d.Region(),
		Description: r.Who + " of " + d.Deployment() + ": " + r.Does + " (coderctl)",
		Tags:        d.Tags(r.Stage, map[string]string{"Name": name}),
		Trust:       trust, PolicyName: r.PolicyName, Policy: policy, Why: r.Why, Foreign: d.foreign(r, name),
	}
}

// foreign builds the role's error for a role another deployment owns.
func (d *Deps) foreign(r IRSARole, name string) func(owner string) error {
	if r.Foreign == nil {
		return nil
	}
	return func(owner string) error { return r.Foreign(name, owner, d.Deployment()) }
}

// Trust lets exactly the role's service account, with a token from the
// cluster's OIDC issuer meant for STS, assume the role.
func (r IRSARole) Trust(providerARN string) (map[string]any, error) {
	host, ok := awsx.IssuerHostOf(providerARN)
	if !ok {
		return nil, fmt.Errorf("%s %q is not an IAM OIDC provider ARN: run 'coderctl stage eks apply'", names.KeyOIDCProviderARN, providerARN)
	}
	return awsx.IRSATrust(providerARN, host, "system:serviceaccount:"+r.Namespace+":"+r.ServiceAccount), nil
}

// wantedIRSA is the role with its trust and policy, read from the OIDC
// provider's ARN: its partition and account, so no STS call is needed.
func (d *Deps) wantedIRSA(r IRSARole) (awsx.RoleSpec, error) {
	provider, err := d.Output(names.KeyOIDCProviderARN, names.StageEKS)
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	trust, err := r.Trust(provider)
	if err != nil {
		return awsx.RoleSpec{}, err
	}
	a, err := arn.Parse(provider)
	if err != nil || a.AccountID == "" {
		return awsx.RoleSpec{}, fmt.Errorf("%s %q is not an IAM ARN: run 'coderctl stage eks apply'", names.KeyOIDCProviderARN, provider)
	}
	return d.irsaSpec(r, trust, r.Policy(a.Partition, d.Region(), a.AccountID, d.Deployment())), nil
}

// ReadIRSARole reads the role as it is in IAM (nil when it does not exist)
// with what it should be, for a checkpoint.
func (d *Deps) ReadIRSARole(ctx context.Context, r IRSARole) (*awsx.RoleState, error) {
	want, err := d.wantedIRSA(r)
	if err != nil {
		return nil, err
	}
	return want.Read(ctx, d.AWS.IAM)
}

// PlanIRSARole plans the role: create once the provider exists, converge
// a drifted trust or policy.
func (d *Deps) PlanIRSARole(ctx context.Context, r IRSARole) ([]engine.Action, error) {
	if d.State.Get(names.KeyOIDCProviderARN) == "" {
		return []engine.Action{{Kind: engine.Create, Resource: "iam-role/" + d.IRSARoleName(r),
			Reason: "create once the eks stage records " + names.KeyOIDCProviderARN}}, nil
	}
	want, err := d.wantedIRSA(r)
	if err != nil {
		return nil, err
	}
	return want.Plan(ctx, d.AWS.IAM, "missing: trusted by "+r.Namespace+"/"+r.ServiceAccount+", "+r.Grants)
}

// ApplyIRSARole creates or converges the role and records its ARN.
func (d *Deps) ApplyIRSARole(ctx context.Context, rep engine.Reporter, r IRSARole) error {
	want, err := d.wantedIRSA(r)
	if err != nil {
		return err
	}
	_, err = want.Apply(ctx, d.AWS.IAM, rep, func(arn string) error {
		if d.State.Get(r.KeyARN) == arn {
			return nil
		}
		return d.Record(map[string]string{r.KeyARN: arn})
	})
	return err
}

// DestroyIRSARole removes the role's policies, then the role, and forgets
// its ARN. A role of another deployment is left with a notice.
func (d *Deps) DestroyIRSARole(ctx context.Context, rep engine.Reporter, r IRSARole) error {
	if err := d.irsaSpec(r, nil, nil).Destroy(ctx, d.AWS.IAM, rep); err != nil {
		return err
	}
	return d.State.Unset(r.KeyARN)
}

// maxRoleNameLen is IAM's limit on role names.
const maxRoleNameLen = 64

// ValidateIRSARoleName refuses a cluster name that makes the role's name
// longer than IAM allows, naming where the cluster name was set.
func (d *Deps) ValidateIRSARoleName(r IRSARole) error {
	name := d.IRSARoleName(r)
	if len(name) <= maxRoleNameLen {
		return nil
	}
	source, field := d.Inputs.Origin(config.KeyClusterName)
	return fault.Input(source, field,
		fmt.Sprintf("use a cluster name of at most %d characters", maxRoleNameLen-len(r.Suffix)),
		"the IAM role %s would be %d characters long; IAM allows %d", name, len(name), maxRoleNameLen)
}
