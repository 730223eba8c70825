package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/iampolicy"
)

// notExercised are the actions the policy grants that a lifecycle on the
// proving ground never calls, each with the reason. Dependent actions
// (iampolicy.Dependent: AWS authorizes them inside another call, coderctl
// never calls them) are exceptions too, with their own reasons. An entry
// that the run does call fails the test: the list only ever shrinks to
// what is true.
var notExercised = map[string]string{
	// Convergence: the second up repairs the drift driftBeforeSecondUp
	// makes (a subnet's tag, a role's trust, a secret scheduled for
	// deletion, a node group's label); the calls that repair other drift or apply a changed
	// config never run.
	"ec2:CreateLaunchTemplateVersion":        "a node group's launch template changed in cluster-config.yaml",
	"ec2:ReplaceRoute":                       "a default route that points elsewhere",
	"ec2:DeleteRoute":                        "a default route to the wrong kind of gateway",
	"ec2:ReplaceRouteTableAssociation":       "a subnet associated with another route table",
	"ec2:DisassociateAddress":                "a NAT's Elastic IP associated with something else",
	"eks:UpdateClusterConfig":                "endpoint access, public CIDRs or logging changed on an existing cluster",
	"eks:AssociateEncryptionConfig":          "secretsEncryption added to a cluster created without it",
	"eks:DescribeUpdate":                     "follows an update EKS answers as in progress; the stand-in answers a node group config update Successful at once, and the cluster's and versions' updates do not happen here",
	"eks:UpdateClusterVersion":               "metadata.version raised in cluster-config.yaml",
	"eks:DescribeClusterVersions":            "checking a raised metadata.version against the versions EKS offers",
	"rds:DescribeDBSnapshots":                "a major engine upgrade (--allow-major-version-upgrade) waits for its snapshot",
	"eks:UpdateAddon":                        "an add-on's version or configurationValues changed",
	"eks:DescribeAddonConfiguration":         "only for add-ons with configurationValues, which the shipped config has none of",
	"eks:UpdateNodegroupVersion":             "a node group's launch template version or Kubernetes version changed",
	"iam:AddClientIDToOpenIDConnectProvider": "an OIDC provider made without sts.amazonaws.com as audience",
	"rds:ModifyDBSubnetGroup":                "the private subnets changed",
	"secretsmanager:TagResource":             "a secret found without its deployment tags, or a legacy-named one being moved",
	"secretsmanager:UntagResource":           "the end of a master password reset",
	// Access entries: accessConfig.accessEntries is not in the shipped
	// cluster-config.yaml, so none is created, changed or removed.
	"eks:CreateAccessEntry":        "accessConfig.accessEntries lists a principal",
	"eks:UpdateAccessEntry":        "an access entry's Kubernetes groups changed",
	"eks:DeleteAccessEntry":        "an access entry removed from accessConfig.accessEntries",
	"eks:AssociateAccessPolicy":    "an access entry with an access policy",
	"eks:DisassociateAccessPolicy": "an access policy removed from an entry",
	// What the ground's stand-ins do in AWS's place.
	"logs:CreateLogGroup":                       "EKS (here its stand-in) makes /aws/eks/<cluster>/cluster when logging is on; coderctl makes it only when EKS has not yet",
	"logs:DeleteLogGroup":                       "coderctl deletes the log group only when it made it",
	"elasticloadbalancing:DescribeTargetGroups": "down looks for target groups only when the cluster went before its Service's load balancer",
	"elasticloadbalancing:DeleteLoadBalancer":   "the cloud controller (here its stand-in) deletes the load balancer with the Service",
	"elasticloadbalancing:DeleteTargetGroup":    "as DeleteLoadBalancer",
	"ec2:RevokeSecurityGroupEgress":             "only when another group's egress rule names a group being deleted",
	"iam:RemoveRoleFromInstanceProfile":         "only when a role is still in an instance profile (EKS removes the node role from its own)",
	"ec2:DetachVolume":                          "only with --delete-volumes for a volume still attached",
	"ec2:DeleteVolume":                          "only with --delete-volumes, when the cluster's claims left EBS volumes",
	// down's leftovers listing reads the tags of what still exists.
	"iam:ListRoleTags":                  "the leftovers listing reads tags only of roles that are left",
	"iam:ListOpenIDConnectProviderTags": "the leftovers listing reads tags only of OIDC providers that are left",
}

// TestIAMPolicyMatchesRecordedCalls runs up, verify, a second up (after
// some drift) and down on the proving ground with the shipped config (as
// the lifecycle test does) while the AWS proxy records every operation coderctl calls, and
// holds `coderctl iam-policy` to the record: each run's calls are all in
// the policy printed for that kind of run, the policy for verify is
// exactly verify's calls, and the policy for all three grants nothing no
// run called, except notExercised and the dependent actions.
func TestIAMPolicyMatchesRecordedCalls(t *testing.T) {
	w := newWorld(t)
	w.useFidelityConfig()
	w.useHostedZone()
	policies := map[iampolicy.Mode][]string{}
	for _, m := range iampolicy.Modes {
		policies[m] = w.policyActions("--for", string(m))
	}
	all := w.policyActions("--for", "up,verify,down")

	recorded := map[string]bool{}
	perMode := map[iampolicy.Mode]map[string]bool{}
	for i, run := range []struct {
		mode iampolicy.Mode
		args []string
	}{
		{iampolicy.Up, []string{"up", "--yes", "-o", "json"}},
		{iampolicy.Verify, []string{"verify", "-o", "json"}},
		{iampolicy.Up, []string{"up", "--yes", "-o", "json"}},
		{iampolicy.Down, []string{"down", "--yes", "--delete-database", "--skip-final-snapshot", "--force-delete-secrets", "--delete-volumes", "-o", "json"}},
	} {
		if i == 2 {
			w.assertStagePolicies()
			w.driftBeforeSecondUp()
		}
		w.g.Proxy.ForgetOperations()
		r := w.run(run.args...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", strings.Join(run.args, " "), r.code, r.stderr, tail(r.stdout, 30))
		}
		for _, op := range w.g.Proxy.Operations() {
			if strings.Contains(op, ":?") {
				t.Errorf("%s: the proxy could not name a call: %s (add its route to awsproxy)", run.args[0], op)
				continue
			}
			action := iampolicy.ActionFor(op)
			recorded[action] = true
			if perMode[run.mode] == nil {
				perMode[run.mode] = map[string]bool{}
			}
			perMode[run.mode][action] = true
			if !slices.Contains(policies[run.mode], action) {
				t.Errorf("%s called %s, which `iam-policy --for %s` does not grant", run.args[0], action, run.mode)
			}
		}
	}
	for _, a := range slices.Sorted(maps.Keys(recorded)) {
		if !slices.Contains(all, a) {
			t.Errorf("%s was called but the policy for up, verify and down lacks it", a)
		}
		if why, ok := notExercised[a]; ok {
			t.Errorf("%s is listed as not exercised (%s) but was called: drop it from notExercised", a, why)
		}
	}
	for _, a := range all {
		_, dependent := iampolicy.Dependent[a]
		if _, excepted := notExercised[a]; !recorded[a] && !excepted && !dependent {
			t.Errorf("the policy grants %s, which no run called and which is not a documented exception", a)
		}
	}
	// The read-only role is the one most often handed out (CI checks,
	// dashboards): its policy is exactly what verify calls, no exception.
	for _, a := range policies[iampolicy.Verify] {
		if !perMode[iampolicy.Verify][a] {
			t.Errorf("`iam-policy --for verify` grants %s, which verify did not call", a)
		}
	}
	for a := range notExercised {
		if !slices.Contains(all, a) {
			t.Errorf("notExercised lists %s, which the policy does not grant", a)
		}
	}
	if doc, err := os.ReadFile("../../docs/iam.md"); err == nil {
		for a := range notExercised {
			if !strings.Contains(string(doc), "| `"+a+"` |") {
				t.Errorf("docs/iam.md's exceptions do not list %s", a)
			}
		}
	} else {
		t.Error(err)
	}
	t.Logf("%d actions granted, %d called, %d documented exceptions, %d dependent", len(all), len(recorded), len(notExercised), len(iampolicy.Dependent))
}

// useHostedZone makes a Route53 zone for CODER_DOMAIN in moto and sets
// HOSTED_ZONE_ID, so that the certificate's validation records and Coder's
// alias records are written by coderctl (and Route53 is in the policy).
func (w *world) useHostedZone() {
	w.t.Helper()
	ctx := context.Background()
	cfg, err := w.g.AWSConfig(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	zone, err := route53.NewFromConfig(cfg).CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name: aws.String("coder.e2e.example"), CallerReference: aws.String("iam-e2e")})
	if err != nil {
		w.t.Fatalf("create hosted zone: %v", err)
	}
	id := strings.TrimPrefix(aws.ToString(zone.HostedZone.Id), "/hostedzone/")
	if r := w.run("state", "set", "HOSTED_ZONE_ID="+id); r.code != 0 {
		w.t.Fatalf("state set HOSTED_ZONE_ID: %d %s", r.code, r.stderr)
	}
}

// firstOwnerSecret is why the Coder stages' checkpoints read Secrets
// Manager only sometimes.
const firstOwnerSecret = "only without CODER_SESSION_TOKEN (the ground gives one): the checkpoint logs in to Coder with the first owner's secret"

// stageVerifyNotExercised are, per "stage action", what `iam-policy --for
// verify --stage S` grants that `verify S` on the ground does not call.
var stageVerifyNotExercised = map[string]string{
	"provisioners secretsmanager:DescribeSecret": firstOwnerSecret,
	"provisioners secretsmanager:GetSecretValue": firstOwnerSecret,
	"template secretsmanager:DescribeSecret":     firstOwnerSecret,
	"template secretsmanager:GetSecretValue":     firstOwnerSecret,
}

// assertStagePolicies holds --stage to each stage's own calls on the
// deployed ground: `verify S` calls exactly what `iam-policy --for verify
// --stage S` grants, and `stage S apply` (plan, apply, checkpoint; nothing
// to change) nothing that `iam-policy --for up --stage S` does not.
func (w *world) assertStagePolicies() {
	w.t.Helper()
	for _, stage := range iampolicy.Stages {
		for _, run := range []struct {
			mode  iampolicy.Mode
			args  []string
			exact bool
		}{
			{iampolicy.Verify, []string{"verify", stage, "-o", "json"}, true},
			{iampolicy.Up, []string{"stage", stage, "apply", "--yes", "-o", "json"}, false},
		} {
			granted := w.policyActions("--for", string(run.mode), "--stage", stage)
			w.g.Proxy.ForgetOperations()
			if r := w.run(run.args...); r.code != 0 {
				w.t.Fatalf("%s: exit %d\n%s\n%s", strings.Join(run.args, " "), r.code, r.stderr, tail(r.stdout, 20))
			}
			called := map[string]bool{}
			for _, op := range w.g.Proxy.Operations() {
				a := iampolicy.ActionFor(op)
				called[a] = true
				if !slices.Contains(granted, a) {
					w.t.Errorf("%s called %s, which `iam-policy --for %s --stage %s` does not grant", strings.Join(run.args[:2], " "), a, run.mode, stage)
				}
			}
			for _, a := range granted {
				why, excepted := stageVerifyNotExercised[stage+" "+a]
				switch {
				case !run.exact:
				case excepted && called[a]:
					w.t.Errorf("`verify %s` called %s, listed as not exercised (%s): drop it from stageVerifyNotExercised", stage, a, why)
				case !excepted && !called[a]:
					w.t.Errorf("`iam-policy --for verify --stage %s` grants %s, which `verify %s` did not call", stage, a, stage)
				}
			}
		}
	}
}

// driftBeforeSecondUp changes, behind coderctl's back (in moto directly),
// what the second up puts back, so the repair calls are recorded: a public
// subnet loses its load balancer role tag (ec2:CreateTags), the cluster
// role's trust policy is replaced (iam:UpdateAssumeRolePolicy), the
// database URL secret is scheduled for deletion
// (secretsmanager:RestoreSecret), and a node group gets a label the config
// does not have (eks:UpdateNodegroupConfig, eks:DescribeUpdate).
func (w *world) driftBeforeSecondUp() {
	w.t.Helper()
	ctx := context.Background()
	cfg, err := w.g.AWSConfig(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	c := awsx.NewClients(cfg)
	subnets, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + awsx.TagDeployment), Values: []string{"coder-prod"}},
		{Name: aws.String("tag-key"), Values: []string{"kubernetes.io/role/elb"}},
	}})
	if err != nil || len(subnets.Subnets) == 0 {
		w.t.Fatalf("find a public subnet: %v (%d found)", err, len(subnets.Subnets))
	}
	if _, err := c.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{aws.ToString(subnets.Subnets[0].SubnetId)},
		Tags: []ec2types.Tag{{Key: aws.String("kubernetes.io/role/elb")}}}); err != nil {
		w.t.Fatalf("untag subnet: %v", err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := c.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("coder-prod-eks-cluster"),
		PolicyDocument: aws.String(trust)}); err != nil {
		w.t.Fatalf("change the cluster role's trust: %v", err)
	}
	if _, err := c.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("coder/coder-prod/database-url"),
		RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		w.t.Fatalf("schedule the database URL secret for deletion: %v", err)
	}
	// Through the ground's EKS (its update API is the stand-in's).
	ground := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(w.g.AWSURL) })
	if _, err := ground.UpdateNodegroupConfig(ctx, &eks.UpdateNodegroupConfigInput{ClusterName: aws.String("coder-prod"),
		NodegroupName: aws.String("coder-workspace"),
		Labels:        &ekstypes.UpdateLabelsPayload{AddOrUpdateLabels: map[string]string{"drift": "e2e"}}}); err != nil {
		w.t.Fatalf("label a node group: %v", err)
	}
}

// policyActions runs `coderctl iam-policy` with args and returns the
// actions its document grants.
func (w *world) policyActions(args ...string) []string {
	w.t.Helper()
	r := w.run(append([]string{"iam-policy"}, args...)...)
	if r.code != 0 {
		w.t.Fatalf("iam-policy %v: exit %d: %s", args, r.code, r.stderr)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		w.t.Fatalf("iam-policy %v printed no policy: %v\n%s", args, err, r.stdout)
	}
	if p.Version != "2012-10-17" || len(p.Statement) == 0 {
		w.t.Fatalf("iam-policy %v: Version %q with %d statements", args, p.Version, len(p.Statement))
	}
	return p.Actions()
}
