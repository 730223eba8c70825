package eks

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
)

// Principals of the tests; moto's STS answers every unknown key as motoUser.
const (
	motoUser = "arn:aws:iam::123456789012:user/moto"
	ciRole   = "arn:aws:iam::123456789012:role/ci"
	devRole  = "arn:aws:iam::123456789012:role/dev"
	otherOne = "arn:aws:iam::123456789012:role/someone-else"
)

var (
	adminPolicy = ekstest.AccessPolicyARN("AmazonEKSClusterAdminPolicy")
	viewPolicy  = ekstest.AccessPolicyARN("AmazonEKSViewPolicy")
	editPolicy  = ekstest.AccessPolicyARN("AmazonEKSEditPolicy")
)

// withAccess puts an accessConfig before iam: in the shipped file.
func withAccess(body string) []string {
	return []string{"iam:\n", "accessConfig:\n" + body + "\niam:\n"}
}

const twoEntries = `  accessEntries:
    - principalARN: arn:aws:iam::123456789012:role/ci
      accessPolicies:
        - policyARN: arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy
          accessScope: {type: cluster}
    - principalARN: arn:aws:iam::123456789012:role/dev
      kubernetesGroups: [devs]
      accessPolicies:
        - policyARN: arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy
          accessScope: {type: namespace, namespaces: [coder]}`

// oneChangedEntry drops ci and changes dev's groups and policy.
const oneChangedEntry = `  accessEntries:
    - principalARN: arn:aws:iam::123456789012:role/dev
      kubernetesGroups: [devs, readers]
      accessPolicies:
        - policyARN: arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy
          accessScope: {type: cluster}`

// entryOf describes an entry and its policies as EKS holds them.
func entryOf(t *testing.T, d *eks.Client, principal string) (groups []string, tags map[string]string, policies []string) {
	t.Helper()
	out, err := d.DescribeAccessEntry(ctx, &eks.DescribeAccessEntryInput{ClusterName: aws.String(cluster), PrincipalArn: aws.String(principal)})
	if err != nil {
		t.Fatalf("DescribeAccessEntry %s: %v", principal, err)
	}
	pols, err := d.ListAssociatedAccessPolicies(ctx, &eks.ListAssociatedAccessPoliciesInput{ClusterName: aws.String(cluster), PrincipalArn: aws.String(principal)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pols.AssociatedAccessPolicies {
		scope := string(p.AccessScope.Type)
		if len(p.AccessScope.Namespaces) > 0 {
			scope += ":" + strings.Join(p.AccessScope.Namespaces, ",")
		}
		policies = append(policies, policyName(aws.ToString(p.PolicyArn))+"@"+scope)
	}
	return out.AccessEntry.KubernetesGroups, out.AccessEntry.Tags, policies
}

func TestAccessEntriesCreatedConvergedAndRemoved(t *testing.T) {
	e, emu := configEnv(t, ekstest.Options{}, withAccess(twoEntries)...)
	sum, _ := runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{"network", Name}})

	var body struct {
		AccessConfig struct {
			AuthenticationMode                      string
			BootstrapClusterCreatorAdminPermissions *bool
		}
	}
	mustJSON(t, emu.Requests("POST", "/clusters")[0], &body)
	if ac := body.AccessConfig; ac.AuthenticationMode != "API_AND_CONFIG_MAP" || !aws.ToBool(ac.BootstrapClusterCreatorAdminPermissions) {
		t.Errorf("CreateCluster accessConfig %+v, want eksctl's defaults", ac)
	}
	if c := describe(t, e.Env); c.AccessConfig == nil || c.AccessConfig.AuthenticationMode != "API_AND_CONFIG_MAP" {
		t.Errorf("described accessConfig %+v", c.AccessConfig)
	}
	if got := emu.AccessEntries(cluster); !slices.Equal(got, []string{ciRole, devRole, motoUser}) {
		t.Fatalf("entries %v, want ci, dev and the creator", got)
	}
	groups, tags, pols := entryOf(t, e.Deps.AWS.EKS, devRole)
	if !slices.Equal(groups, []string{"devs"}) || tags[awsx.TagDeployment] != cluster || !slices.Equal(pols, []string{"AmazonEKSViewPolicy@namespace:coder"}) {
		t.Errorf("dev entry: groups %v tags %v policies %v", groups, tags, pols)
	}
	if _, _, pols := entryOf(t, e.Deps.AWS.EKS, ciRole); !slices.Equal(pols, []string{"AmazonEKSClusterAdminPolicy@cluster"}) {
		t.Errorf("ci policies %v", pols)
	}
	if c := checksOf(sum)["access-entries"]; c.Status != engine.Pass || !strings.Contains(c.Reason, "3 entries") {
		t.Errorf("check access-entries = %+v", c)
	}

	// Someone else's entry appears; a re-plan has nothing to do and leaves it.
	emu.AccessEntryFor(cluster, otherOne, viewPolicy)
	sum, _ = runConfig(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
	for res, a := range actionsOf(sum) {
		if a.Kind != engine.Nothing {
			t.Errorf("plan after apply: %s = %s (%s)", res, a.Kind, a.Reason)
		}
	}
	e.Calls.Reset()
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if m := e.Calls.Mutations(); len(m) != 0 {
		t.Errorf("second apply made mutating calls: %v", m)
	}

	// ci removed, dev changed: planned, then converged.
	reconfigure(t, e, emu, withAccess(oneChangedEntry)...)
	sum, _ = runConfig(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
	acts := actionsOf(sum)
	if a := acts[entryResource(ciRole)]; a.Kind != engine.Delete {
		t.Errorf("plan for ci: %+v, want delete", a)
	}
	if a := acts[entryResource(devRole)]; a.Kind != engine.Update || !strings.Contains(a.Reason, "associate AmazonEKSEditPolicy") || !strings.Contains(a.Reason, "disassociate AmazonEKSViewPolicy") {
		t.Errorf("plan for dev: %+v", a)
	}
	if a := acts[entryResource(otherOne)]; a.Kind != "" {
		t.Errorf("plan speaks of someone else's unlisted entry: %+v", a)
	}
	sum, _ = runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if got := emu.AccessEntries(cluster); !slices.Equal(got, []string{devRole, otherOne, motoUser}) {
		t.Errorf("entries after converge %v, want dev, someone-else and the creator", got)
	}
	groups, _, pols = entryOf(t, e.Deps.AWS.EKS, devRole)
	if !slices.Equal(groups, []string{"devs", "readers"}) || !slices.Equal(pols, []string{"AmazonEKSEditPolicy@cluster"}) {
		t.Errorf("dev after converge: groups %v policies %v", groups, pols)
	}
	if _, _, pols := entryOf(t, e.Deps.AWS.EKS, otherOne); !slices.Equal(pols, []string{"AmazonEKSViewPolicy@cluster"}) {
		t.Errorf("someone else's entry changed: %v", pols)
	}
	if c := checksOf(sum)["access-entries"]; c.Status != engine.Pass {
		t.Errorf("check access-entries = %+v", c)
	}
	if f := emu.Faults(); len(f) != 0 {
		t.Errorf("double faults: %v", f)
	}
}

func TestAccessRefusedBeforeAnyChange(t *testing.T) {
	tests := []struct {
		name, access, field, msg string
	}{
		{"creator without bootstrap and not listed", "  bootstrapClusterCreatorAdminPermissions: false\n" + twoEntries,
			"accessConfig.accessEntries", motoUser + " (the identity running coderctl) would not reach"},
		{"unknown access policy", `  accessEntries:
    - principalARN: arn:aws:iam::123456789012:role/ci
      accessPolicies:
        - policyARN: arn:aws:eks::aws:cluster-access-policy/AmazonEKSSuperUserPolicy
          accessScope: {type: cluster}`, "accessConfig.accessEntries[0].accessPolicies[0].policyARN", "is not an EKS access policy"},
		{"not an IAM principal", `  accessEntries:
    - principalARN: arn:aws:s3:::my-bucket`, "accessConfig.accessEntries[0].principalARN", "is not the ARN of an IAM role or user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := configEnv(t, ekstest.Options{}, withAccess(tc.access)...)
			e.Calls.Reset()
			err := New(e.Deps).Validate(ctx)
			var ie *fault.InputError
			if !errors.As(err, &ie) || ie.Field != tc.field || fault.ExitCode(err) != fault.ExitInput || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Validate = %v, want exit 2 naming %s with %q", err, tc.field, tc.msg)
			}
			if m := e.Calls.Mutations(); len(m) != 0 {
				t.Errorf("refusal made mutating calls: %v", m)
			}
		})
	}
}

func TestListedIdentityWithoutBootstrapMayRun(t *testing.T) {
	e, _ := configEnv(t, ekstest.Options{}, withAccess(`  bootstrapClusterCreatorAdminPermissions: false
  accessEntries:
    - principalARN: arn:aws:iam::123456789012:user/moto
      accessPolicies:
        - policyARN: arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy
          accessScope: {type: cluster}`)...)
	if err := New(e.Deps).Validate(ctx); err != nil {
		t.Fatalf("Validate = %v, want the listed identity accepted", err)
	}
}
