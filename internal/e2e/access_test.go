package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ciRoleEntry lists the CI role as a cluster admin in accessConfig.
const ciRoleEntry = `accessConfig:
  accessEntries:
    - principalARN: arn:aws:iam::123456789012:role/ci
      accessPolicies:
        - policyARN: arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy
          accessScope: {type: cluster}

`

// TestSecondIdentity: a platform engineer deploys with the CI role listed
// in accessEntries; the CI role (an assumed-role session) then runs up and
// verify to completion, Kubernetes stages included; a role that is not
// listed is refused before anything changes, as is the CI role once the
// file drops it (its entry would be deleted by that very run).
func TestSecondIdentity(t *testing.T) {
	w := newWorld(t)
	cfgPath := filepath.Join(w.dir, "cluster-config.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	shipped := string(cfg)
	listed := strings.Replace(shipped, "\ncloudWatch:", "\n"+ciRoleEntry+"cloudWatch:", 1)
	if listed == shipped {
		t.Fatal("could not place accessConfig in cluster-config.yaml")
	}
	w.writeConfig(t, listed)
	if r := w.run("up", "--yes", "-o", "json"); r.code != 0 {
		t.Fatalf("up as the creator: exit %d\n%s", r.code, r.stderr)
	}

	ci, dev := w.assumeRole(t, "ci"), w.assumeRole(t, "dev")
	r := w.runWith(ci, "up", "--yes", "-o", "json")
	if r.code != 0 {
		t.Fatalf("up as the listed CI role: exit %d\n%s", r.code, r.stderr)
	}
	for stage, status := range stageStatuses(summary(t, r.stdout)) {
		if status != "done" {
			t.Errorf("up as the CI role: stage %s %s", stage, status)
		}
	}
	if r := w.runWith(ci, "verify"); r.code != 0 || !strings.Contains(r.stdout, "access-entries") {
		t.Errorf("verify as the CI role: exit %d\n%s", r.code, r.stdout)
	}
	if r := w.runWith(ci, "access"); r.code != 0 || !strings.Contains(r.stdout, "arn:aws:iam::123456789012:role/ci") || !strings.Contains(r.stdout, "you") {
		t.Errorf("access as the CI role: exit %d\n%s", r.code, r.stdout)
	}

	refused := []struct {
		name   string
		env    []string
		config string
		who    string
	}{
		{"a role that is not listed", dev, listed, "arn:aws:iam::123456789012:role/dev"},
		{"the CI role once the file drops it", ci, shipped, "arn:aws:iam::123456789012:role/ci"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			w.writeConfig(t, tc.config)
			before := w.stateValues()
			r := w.runWith(tc.env, "up", "--yes")
			if r.code != 2 || !strings.Contains(r.stderr, tc.who+" (the identity running coderctl) would not reach") ||
				!strings.Contains(r.stderr, "accessConfig.accessEntries") {
				t.Fatalf("exit %d, want 2 naming %s and the field\n%s", r.code, tc.who, r.stderr)
			}
			if after := w.stateValues(); len(after) != len(before) || after["STAGE_EKS_APPLIED_AT"] != before["STAGE_EKS_APPLIED_AT"] {
				t.Errorf("the refused run changed the state file")
			}
		})
	}
	// The CI role's entry is still there: the refused run deleted nothing.
	w.writeConfig(t, listed)
	if r := w.runWith(ci, "access"); r.code != 0 || !strings.Contains(r.stdout, "arn:aws:iam::123456789012:role/ci") {
		t.Errorf("after the refusals: exit %d\n%s", r.code, r.stdout)
	}
}

func (w *world) writeConfig(t *testing.T, cfg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, "cluster-config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// assumeRole creates an IAM role in moto and returns the environment of a
// session of it: moto's STS then answers GetCallerIdentity with the
// assumed-role ARN, as AWS does for a CI job's OIDC session.
func (w *world) assumeRole(t *testing.T, name string) []string {
	t.Helper()
	ctx := context.Background()
	cfg, err := w.g.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	role, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("run-1")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	return []string{"AWS_ACCESS_KEY_ID=" + aws.ToString(c.AccessKeyId), "AWS_SECRET_ACCESS_KEY=" + aws.ToString(c.SecretAccessKey),
		"AWS_SESSION_TOKEN=" + aws.ToString(c.SessionToken)}
}
