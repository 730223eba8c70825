package awsx

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

const (
	testProvider = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"
	testReadOnly = "arn:aws:iam::aws:policy/ReadOnlyAccess"
)

func testSpec() RoleSpec {
	return RoleSpec{
		Name:        "demo-test-role",
		Description: "test role (coderctl)",
		Deployment:  "demo",
		Tags:        Tags("demo", "test", map[string]string{TagName: "demo-test-role"}),
		Trust:       IRSATrust(testProvider, "oidc.eks.us-west-2.amazonaws.com/id/ABC", "system:serviceaccount:ns:sa"),
		PolicyName:  "test-read",
		Policy: map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*",
			}},
		},
		Why: "the test role gets only its policy",
	}
}

func iamClient(t *testing.T) *iam.Client {
	t.Helper()
	cfg, err := moto.Require(t).AWSConfig(context.Background(), "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	return iam.NewFromConfig(cfg)
}

// createRaw makes a role outside RoleSpec, as another run or someone
// else would.
func createRaw(t *testing.T, c *iam.Client, trust map[string]any, tags map[string]string) {
	t.Helper()
	doc, err := policyJSON(trust)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRole(context.Background(), &iam.CreateRoleInput{
		RoleName: aws.String(testSpec().Name), AssumeRolePolicyDocument: aws.String(doc),
		Tags: IAMTagList(tags),
	}); err != nil {
		t.Fatal(err)
	}
}

func putInline(t *testing.T, c *iam.Client, name string, policy map[string]any) {
	t.Helper()
	doc, err := policyJSON(policy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{
		RoleName: aws.String(testSpec().Name), PolicyName: aws.String(name), PolicyDocument: aws.String(doc),
	}); err != nil {
		t.Fatal(err)
	}
}

func roleExists(t *testing.T, c *iam.Client) bool {
	t.Helper()
	_, err := c.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(testSpec().Name)})
	if IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func TestRoleSpecLifecycle(t *testing.T) {
	errOther := errors.New("someone else's role")
	otherTrust := ServiceTrust("ec2.amazonaws.com")
	tests := []struct {
		name  string
		setup func(t *testing.T, c *iam.Client)
		// foreign replaces the spec's Foreign.
		foreign func(owner string) error
		// wantMissing: Read finds no role.
		wantMissing bool
		// wantErr: Read fails with this (substring, or errOther by errors.Is).
		wantErr   string
		wantDrift []string
		// wantPlan is Plan's action before anything is changed.
		wantPlan engine.ActionKind
		// wantProgress: substrings of what Create and Converge report.
		wantProgress []string
	}{
		{
			name:         "missing role is created with its policy",
			setup:        func(*testing.T, *iam.Client) {},
			wantMissing:  true,
			wantPlan:     engine.Create,
			wantProgress: []string{"creating IAM role demo-test-role", "putting inline policy test-read on IAM role demo-test-role"},
		},
		{
			name: "role as wanted needs nothing",
			setup: func(t *testing.T, c *iam.Client) {
				createRaw(t, c, testSpec().Trust, testSpec().Tags)
				putInline(t, c, "test-read", testSpec().Policy)
			},
			wantPlan: engine.Nothing,
		},
		{
			name: "created by another run: only the policy is missing",
			setup: func(t *testing.T, c *iam.Client) {
				createRaw(t, c, testSpec().Trust, testSpec().Tags)
			},
			wantDrift:    []string{"inline policy test-read missing or different"},
			wantPlan:     engine.Update,
			wantProgress: []string{"putting inline policy test-read on IAM role demo-test-role"},
		},
		{
			name: "every kind of drift is repaired",
			setup: func(t *testing.T, c *iam.Client) {
				createRaw(t, c, otherTrust, testSpec().Tags)
				putInline(t, c, "test-read", map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
					"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}})
				putInline(t, c, "zz-extra", testSpec().Policy)
				if _, err := c.AttachRolePolicy(context.Background(), &iam.AttachRolePolicyInput{
					RoleName: aws.String(testSpec().Name), PolicyArn: aws.String(testReadOnly)}); err != nil {
					t.Fatal(err)
				}
			},
			wantDrift: []string{
				"trust policy differs",
				"inline policy test-read missing or different",
				"extra inline policies zz-extra",
				"attached managed policies " + testReadOnly,
			},
			wantPlan: engine.Update,
			wantProgress: []string{
				"restoring the trust policy of IAM role demo-test-role",
				"putting inline policy test-read on IAM role demo-test-role",
				"removing inline policy zz-extra from IAM role demo-test-role: the test role gets only its policy",
				"detaching policy " + testReadOnly + " from IAM role demo-test-role: the test role gets only its policy",
			},
		},
		{
			name: "another deployment's role is refused",
			setup: func(t *testing.T, c *iam.Client) {
				createRaw(t, c, testSpec().Trust, Tags("other", "test", nil))
			},
			wantErr: "IAM role demo-test-role exists but is not tagged coderctl/deployment=demo",
		},
		{
			name: "an untagged role is refused with the spec's own error",
			setup: func(t *testing.T, c *iam.Client) {
				createRaw(t, c, testSpec().Trust, nil)
			},
			foreign: func(owner string) error {
				if owner != "" {
					t.Errorf("Foreign got owner %q, want empty", owner)
				}
				return errOther
			},
			wantErr: "errOther",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := iamClient(t)
			tt.setup(t, c)
			spec := testSpec()
			spec.Foreign = tt.foreign
			r := &enginetest.Recorder{}

			st, err := spec.Read(ctx, c)
			if tt.wantErr != "" {
				switch {
				case err == nil:
					t.Fatalf("Read: no error, want %q", tt.wantErr)
				case tt.wantErr == "errOther" && !errors.Is(err, errOther):
					t.Fatalf("Read: %v, want the spec's Foreign error", err)
				case tt.wantErr != "errOther" && !strings.Contains(err.Error(), tt.wantErr):
					t.Fatalf("Read: %v, want %q", err, tt.wantErr)
				}
				// Destroy leaves it with a notice.
				if err := spec.Destroy(ctx, c, r); err != nil {
					t.Fatalf("Destroy: %v", err)
				}
				if len(r.Notices) != 1 || !strings.Contains(r.Notices[0], "is not tagged coderctl/deployment=demo: left in place") {
					t.Errorf("Destroy notices = %q", r.Notices)
				}
				if !roleExists(t, c) {
					t.Error("Destroy deleted another deployment's role")
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			plan, err := spec.Plan(ctx, c, "missing: wanted")
			if err != nil || len(plan) != 1 || plan[0].Kind != tt.wantPlan || plan[0].Resource != "iam-role/demo-test-role" {
				t.Errorf("Plan = %+v, %v; want one %s of iam-role/demo-test-role", plan, err, tt.wantPlan)
			}
			if want := strings.Join(tt.wantDrift, "; "); tt.wantPlan == engine.Update && plan[0].Reason != want {
				t.Errorf("Plan reason = %q, want %q", plan[0].Reason, want)
			}
			if (st == nil) != tt.wantMissing {
				t.Fatalf("Read = %+v, want missing %v", st, tt.wantMissing)
			}
			if st == nil {
				if st, err = spec.Create(ctx, c, r); err != nil {
					t.Fatalf("Create: %v", err)
				}
				// A second Create finds the role made "since we looked".
				again, err := spec.Create(ctx, c, &enginetest.Recorder{})
				if err != nil || again == nil || again.ARN != st.ARN {
					t.Fatalf("Create on an existing role = %+v, %v; want its state", again, err)
				}
			} else if got := st.Drift(); !slices.Equal(got, tt.wantDrift) {
				t.Errorf("Drift = %q, want %q", got, tt.wantDrift)
			}
			if !strings.HasPrefix(st.ARN, "arn:aws:iam::") {
				t.Errorf("ARN = %q", st.ARN)
			}
			if err := spec.Converge(ctx, c, r, st); err != nil {
				t.Fatalf("Converge: %v", err)
			}
			if !slices.Equal(r.Progressed, tt.wantProgress) {
				t.Errorf("progress = %q, want %q", r.Progressed, tt.wantProgress)
			}

			after, err := spec.Read(ctx, c)
			if err != nil || after == nil {
				t.Fatalf("Read after Converge = %+v, %v", after, err)
			}
			if d := after.Drift(); len(d) > 0 || after.ARN != st.ARN {
				t.Errorf("after Converge: drift %q, ARN %q (was %q)", d, after.ARN, st.ARN)
			}
			// Apply now records the ARN and changes nothing.
			var recorded string
			quiet := &enginetest.Recorder{}
			if _, err := spec.Apply(ctx, c, quiet, func(arn string) error { recorded = arn; return nil }); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if recorded != st.ARN || len(quiet.Progressed) > 0 {
				t.Errorf("Apply recorded %q (want %q), reported %q", recorded, st.ARN, quiet.Progressed)
			}
			if plan, err := spec.Plan(ctx, c, "missing: wanted"); err != nil || plan[0].Kind != engine.Nothing {
				t.Errorf("Plan after Converge = %+v, %v", plan, err)
			}

			r = &enginetest.Recorder{}
			if err := spec.Destroy(ctx, c, r); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			if roleExists(t, c) {
				t.Error("role still there after Destroy")
			}
			if !slices.Equal(r.Progressed, []string{"deleting IAM role demo-test-role"}) || len(r.Notices) > 0 {
				t.Errorf("Destroy reported %q, notices %q", r.Progressed, r.Notices)
			}
			// Destroy of a role already gone, with only name and deployment.
			if err := (RoleSpec{Name: spec.Name, Deployment: spec.Deployment}).Destroy(ctx, c, r); err != nil {
				t.Errorf("Destroy of a missing role: %v", err)
			}
		})
	}
}

// TestRoleSpecApplyRecordsFirst: a failed record stops Apply before the
// inline policy is put, so state never lags a role that has one.
func TestRoleSpecApplyRecordsFirst(t *testing.T) {
	ctx := context.Background()
	c := iamClient(t)
	spec := testSpec()
	errRecord := errors.New("state not writable")
	if _, err := spec.Apply(ctx, c, &enginetest.Recorder{}, func(string) error { return errRecord }); !errors.Is(err, errRecord) {
		t.Fatalf("Apply = %v, want the record error", err)
	}
	st, err := spec.Read(ctx, c)
	if err != nil || st == nil {
		t.Fatalf("Read = %+v, %v", st, err)
	}
	if !st.TrustOK || st.PolicyOK {
		t.Errorf("after a failed record: trust %v, policy %v; want the role created without its policy", st.TrustOK, st.PolicyOK)
	}
}

// managedSpec is a role held to AWS managed policies, as the EKS cluster
// and node roles are: EC2 may assume it, other policies are left alone.
func managedSpec() RoleSpec {
	sp := testSpec()
	sp.Trust = ServiceTrust("ec2.amazonaws.com")
	sp.TrustAllows = func(doc string) bool { return TrustAllows(doc, "ec2.amazonaws.com") }
	sp.PolicyName, sp.Policy = "", nil
	sp.Managed = []string{ManagedPolicyARN("aws", "AmazonEKSWorkerNodePolicy"), ManagedPolicyARN("aws", "AmazonEKS_CNI_Policy")}
	sp.KeepOtherPolicies = true
	return sp
}

// TestRoleSpecManagedPolicies: a role held to managed policies is created
// with them, gets a detached one back, keeps the policies and trust
// statements an administrator added, and has a trust policy that no
// longer lets its service in rewritten.
func TestRoleSpecManagedPolicies(t *testing.T) {
	cni := ManagedPolicyARN("aws", "AmazonEKS_CNI_Policy")
	tests := []struct {
		name string
		// change runs on the converged role.
		change       func(t *testing.T, c *iam.Client)
		wantDrift    []string
		wantProgress []string
		// kept is a policy ARN that must still be attached after Apply.
		kept string
	}{
		{name: "nothing changed"},
		{name: "a detached policy is attached again",
			change: func(t *testing.T, c *iam.Client) {
				if _, err := c.DetachRolePolicy(context.Background(), &iam.DetachRolePolicyInput{RoleName: aws.String("demo-test-role"), PolicyArn: aws.String(cni)}); err != nil {
					t.Fatal(err)
				}
			},
			wantDrift:    []string{"not attached: AmazonEKS_CNI_Policy"},
			wantProgress: []string{"attaching AmazonEKS_CNI_Policy to IAM role demo-test-role"}},
		{name: "an administrator's policies are kept",
			change: func(t *testing.T, c *iam.Client) {
				if _, err := c.AttachRolePolicy(context.Background(), &iam.AttachRolePolicyInput{RoleName: aws.String("demo-test-role"), PolicyArn: aws.String(testReadOnly)}); err != nil {
					t.Fatal(err)
				}
				putInline(t, c, "ssm-extra", testSpec().Policy)
			},
			kept: testReadOnly},
		{name: "a trust policy with another service beside EC2 is kept",
			change: func(t *testing.T, c *iam.Client) {
				doc, _ := policyJSON(ServiceTrust("ssm.amazonaws.com"))
				both := strings.Replace(doc, `"Service":"ssm.amazonaws.com"`, `"Service":["ssm.amazonaws.com","ec2.amazonaws.com"]`, 1)
				if _, err := c.UpdateAssumeRolePolicy(context.Background(), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("demo-test-role"), PolicyDocument: aws.String(both)}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "a trust policy without EC2 is rewritten",
			change: func(t *testing.T, c *iam.Client) {
				doc, _ := policyJSON(ServiceTrust("ssm.amazonaws.com"))
				if _, err := c.UpdateAssumeRolePolicy(context.Background(), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("demo-test-role"), PolicyDocument: aws.String(doc)}); err != nil {
					t.Fatal(err)
				}
			},
			wantDrift:    []string{"trust policy differs"},
			wantProgress: []string{"restoring the trust policy of IAM role demo-test-role"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := iamClient(t)
			spec := managedSpec()
			r := &enginetest.Recorder{}
			st, err := spec.Apply(ctx, c, r, func(string) error { return nil })
			if err != nil {
				t.Fatalf("first Apply: %v", err)
			}
			if !st.Created || !slices.Equal(r.Progressed, []string{"creating IAM role demo-test-role",
				"attaching AmazonEKSWorkerNodePolicy to IAM role demo-test-role", "attaching AmazonEKS_CNI_Policy to IAM role demo-test-role"}) {
				t.Errorf("first Apply: created %v, progress %q", st.Created, r.Progressed)
			}
			if tt.change != nil {
				tt.change(t, c)
			}
			st, err = spec.Read(ctx, c)
			if err != nil || st == nil {
				t.Fatalf("Read = %+v, %v", st, err)
			}
			if got := st.Drift(); !slices.Equal(got, tt.wantDrift) {
				t.Errorf("Drift = %q, want %q", got, tt.wantDrift)
			}
			r = &enginetest.Recorder{}
			if st, err = spec.Apply(ctx, c, r, func(string) error { return nil }); err != nil || st.Created {
				t.Fatalf("second Apply: created %v, %v", st != nil && st.Created, err)
			}
			if !slices.Equal(r.Progressed, tt.wantProgress) {
				t.Errorf("second Apply progress = %q, want %q", r.Progressed, tt.wantProgress)
			}
			if after, err := spec.Read(ctx, c); err != nil || len(after.Drift()) > 0 {
				t.Errorf("after Apply: %+v, %v", after, err)
			}
			attached, err := AttachedRolePolicies(ctx, c, "demo-test-role")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range append(slices.Clone(spec.Managed), tt.kept) {
				if want != "" && !slices.Contains(attached, want) {
					t.Errorf("%s not attached after Apply: %q", want, attached)
				}
			}
		})
	}
}

// TestRoleSpecRegion: IAM role names are account-wide, so the region tag
// tells two deployments of one cluster name apart. A role made here
// carries it; one made for another region is refused by Read and left by
// Destroy; one an older coderctl made without it is tagged on Converge.
func TestRoleSpecRegion(t *testing.T) {
	tests := []struct {
		name string
		// tags the role exists with before the spec is applied; nil: none.
		tags         map[string]string
		wantErr      string
		wantDrift    []string
		wantProgress []string
	}{
		{name: "made here carries the region", wantProgress: []string{"creating IAM role demo-test-role",
			"putting inline policy test-read on IAM role demo-test-role"}},
		{name: "made for another region is that deployment's",
			tags:    Tags("demo", "test", map[string]string{TagRegion: "eu-west-1"}),
			wantErr: "IAM role demo-test-role belongs to deployment demo in eu-west-1, not in us-west-2"},
		{name: "made without the region tag is tagged",
			tags:      Tags("demo", "test", nil),
			wantDrift: []string{"inline policy test-read missing or different", "not tagged coderctl/region"},
			wantProgress: []string{"tagging IAM role demo-test-role with coderctl/region=us-west-2",
				"putting inline policy test-read on IAM role demo-test-role"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := iamClient(t)
			spec := testSpec()
			spec.Region = "us-west-2"
			if tt.tags != nil {
				createRaw(t, c, spec.Trust, tt.tags)
			}
			st, err := spec.Read(ctx, c)
			if tt.wantErr != "" {
				var other *RoleInOtherRegionError
				if !errors.As(err, &other) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Read = %v, want %q", err, tt.wantErr)
				}
				r := &enginetest.Recorder{}
				if err := spec.Destroy(ctx, c, r); err != nil || len(r.Notices) != 1 || !roleExists(t, c) {
					t.Errorf("Destroy = %v, notices %q, role kept %v; want it left with a notice", err, r.Notices, roleExists(t, c))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st != nil && !slices.Equal(st.Drift(), tt.wantDrift) {
				t.Errorf("Drift = %q, want %q", st.Drift(), tt.wantDrift)
			}
			r := &enginetest.Recorder{}
			if _, err := spec.Apply(ctx, c, r, func(string) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Progressed, tt.wantProgress) {
				t.Errorf("progress = %q, want %q", r.Progressed, tt.wantProgress)
			}
			out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(spec.Name)})
			if err != nil {
				t.Fatal(err)
			}
			if got := IAMTags(out.Role.Tags)[TagRegion]; got != "us-west-2" {
				t.Errorf("role's %s tag = %q, want us-west-2", TagRegion, got)
			}
			if after, err := spec.Read(ctx, c); err != nil || len(after.Drift()) > 0 {
				t.Errorf("after Apply: %+v, %v", after, err)
			}
		})
	}
}
