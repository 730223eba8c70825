package rds

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// TestVerifyDetectsBreakage breaks one thing at a time through the SDK and
// expects the named check to fail; apply then repairs what it can.
func TestVerifyDetectsBreakage(t *testing.T) {
	ctx := context.Background()
	modify := func(in *rds.ModifyDBInstanceInput) func(*testing.T, *world) {
		return func(t *testing.T, w *world) {
			in.DBInstanceIdentifier, in.ApplyImmediately = aws.String(testInstance), aws.Bool(true)
			if _, err := w.Deps.AWS.RDS.ModifyDBInstance(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name    string
		breakIt func(*testing.T, *world)
		check   string
	}{
		{"single-AZ", modify(&rds.ModifyDBInstanceInput{MultiAZ: aws.Bool(false)}), "multi-az"},
		{"protection off", modify(&rds.ModifyDBInstanceInput{DeletionProtection: aws.Bool(false)}), "deletion-protection"},
		{"public", modify(&rds.ModifyDBInstanceInput{PubliclyAccessible: aws.Bool(true)}), "private"},
		{"short backups", modify(&rds.ModifyDBInstanceInput{BackupRetentionPeriod: aws.Int32(1)}), "backups"},
		{"open to the world", func(t *testing.T, w *world) {
			_, err := w.Deps.AWS.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: aws.String(w.Deps.State.Get(names.KeyDBSecurityGroupID)),
				IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
					IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}},
			})
			if err != nil {
				t.Fatal(err)
			}
		}, "ingress-rule"},
		{"cluster rule revoked", func(t *testing.T, w *world) {
			sg := w.Deps.State.Get(names.KeyDBSecurityGroupID)
			rules := w.ingress(t, sg)
			if _, err := w.Deps.AWS.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sg),
				SecurityGroupRuleIds: []string{aws.ToString(rules[0].SecurityGroupRuleId)}}); err != nil {
				t.Fatal(err)
			}
		}, "ingress-rule"},
		{"endpoint in state wrong", func(t *testing.T, w *world) {
			if err := w.Deps.State.Set(names.KeyRDSEndpoint, "old.example.com"); err != nil {
				t.Fatal(err)
			}
		}, "endpoint"},
		{"secret scheduled for deletion", func(t *testing.T, w *world) {
			if _, err := w.Deps.AWS.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(w.secretName()),
				RecoveryWindowInDays: aws.Int64(7)}); err != nil {
				t.Fatal(err)
			}
		}, "master-secret"},
	}
	// One world for all cases, in order: each breaks one thing, expects
	// exactly its check to fail, then apply must repair it.
	w := newWorld(t)
	w.apply(t)
	if f := stagetest.Failed(New(w.Deps).Verify(ctx)); len(f) != 0 {
		t.Fatalf("verify after apply failed: %v", f)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.breakIt(t, w)
			checks := New(w.Deps).Verify(ctx)
			if c := stagetest.ChecksByName(checks)[tc.check]; c.Status != engine.Fail {
				t.Errorf("after %s, check %s = %+v, want fail", tc.name, tc.check, c)
			}
			if f := stagetest.Failed(checks); len(f) != 1 {
				t.Errorf("want only %s to fail, got %v", tc.check, f)
			}
			w.apply(t)
			if f := stagetest.Failed(New(w.Deps).Verify(ctx)); len(f) != 0 {
				t.Fatalf("apply did not repair %s: %v", tc.name, f)
			}
		})
	}
}

func TestVerifyWithoutInstance(t *testing.T) {
	w := newWorld(t)
	checks := New(w.Deps).Verify(context.Background())
	if c := stagetest.ChecksByName(checks)["instance"]; c.Status != engine.Fail || !strings.Contains(c.Hint, "rds apply") {
		t.Errorf("verify before apply: %+v", checks)
	}
}

func TestDestroyRefusesProtectedDatabase(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	w.Calls.Reset()
	_, evs, err := w.run(t, engine.ModeDestroy)
	if err == nil || !strings.Contains(err.Error(), "--delete-database") {
		t.Fatalf("destroy of a protected database: err = %v, want one naming --delete-database\n%s", err, stagetest.EventLog(evs))
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("a refused destroy changed things: %v", m)
	}
	if inst := w.instance(t); aws.ToString(inst.DBInstanceStatus) != "available" {
		t.Errorf("instance is %s", aws.ToString(inst.DBInstanceStatus))
	}
	if len(w.ingress(t, w.Deps.State.Get(names.KeyDBSecurityGroupID))) != 1 {
		t.Error("the refused destroy revoked the cluster's ingress rule")
	}
}

// TestCheckDestroy: before a destroy changes anything, a protected
// database without --delete-database is bad input naming the flag, with no
// mutating call; with the flag, or without a database, nothing is refused.
func TestCheckDestroy(t *testing.T) {
	tests := []struct {
		name           string
		apply          bool
		deleteDatabase bool
		wantRefused    bool
	}{
		{name: "protected database without --delete-database", apply: true, wantRefused: true},
		{name: "protected database with --delete-database", apply: true, deleteDatabase: true},
		{name: "no database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.apply {
				w.apply(t)
			}
			w.Calls.Reset()
			w.Deps.Opts.DeleteDatabase = tc.deleteDatabase
			err := New(w.Deps).CheckDestroy(context.Background())
			switch {
			case tc.wantRefused && (!fault.IsInput(err) || !strings.Contains(err.Error(), "flag --delete-database") || !strings.Contains(err.Error(), "nothing was deleted")):
				t.Fatalf("CheckDestroy = %v, want bad input naming flag --delete-database", err)
			case !tc.wantRefused && err != nil:
				t.Fatalf("CheckDestroy = %v, want nil", err)
			}
			if m := w.Calls.Mutations(); len(m) != 0 {
				t.Errorf("CheckDestroy changed things: %v", m)
			}
		})
	}
}

func TestDestroy(t *testing.T) {
	cases := []struct {
		name                                    string
		skipSnapshot, forceSecrets              bool
		wantSnapshot, wantSecretPendingDeletion bool
	}{
		{"final snapshot, secret recoverable", false, false, true, true},
		{"no snapshot, secret forced", true, true, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			w.apply(t)
			w.Deps.Opts.DeleteDatabase, w.Deps.Opts.SkipFinalSnapshot, w.Deps.Opts.ForceDeleteSecrets = true, tc.skipSnapshot, tc.forceSecrets
			_, evs, err := w.run(t, engine.ModeDestroy)
			if err != nil {
				t.Fatalf("destroy: %v\n%s", err, stagetest.EventLog(evs))
			}
			w.assertNothingLeft(t)
			for _, k := range []string{names.KeyDBSecurityGroupID, names.KeyRDSEndpoint, names.KeyRDSPort, names.KeyMasterSecretARN, names.KeyDBInstanceID} {
				if v := w.Deps.State.Get(k); v != "" {
					t.Errorf("%s still in state: %q", k, v)
				}
			}

			snaps, err := w.Deps.AWS.RDS.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBInstanceIdentifier: aws.String(testInstance)})
			if err != nil {
				t.Fatal(err)
			}
			final := regexp.MustCompile(`^` + testInstance + `-final-\d{8}-\d{6}$`)
			var names []string
			for _, s := range snaps.DBSnapshots {
				if final.MatchString(aws.ToString(s.DBSnapshotIdentifier)) {
					names = append(names, aws.ToString(s.DBSnapshotIdentifier))
				}
			}
			if tc.wantSnapshot != (len(names) == 1) {
				t.Errorf("final snapshots %v, want one: %v", names, tc.wantSnapshot)
			}

			sec, err := w.Deps.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(w.secretName())})
			switch {
			case tc.wantSecretPendingDeletion && (err != nil || sec.DeletedDate == nil):
				t.Errorf("secret should be scheduled for deletion: %v", err)
			case !tc.wantSecretPendingDeletion && !awsx.IsNotFound(err):
				t.Errorf("secret should be gone, DescribeSecret: %v", err)
			}

			// A second destroy finds nothing and succeeds.
			w.Calls.Reset()
			if _, evs, err := w.run(t, engine.ModeDestroy); err != nil {
				t.Fatalf("second destroy: %v\n%s", err, stagetest.EventLog(evs))
			}
			if m := w.Calls.Mutations(); len(m) != 0 {
				t.Errorf("second destroy changed things: %v", m)
			}
		})
	}
}

// assertNothingLeft looks for anything still tagged for the deployment.
func (w *world) assertNothingLeft(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	sgs, err := w.Deps.AWS.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + awsx.TagDeployment), Values: []string{testCluster}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sgs.SecurityGroups) != 0 {
		t.Errorf("security groups left: %s", aws.ToString(sgs.SecurityGroups[0].GroupId))
	}
	insts, err := w.Deps.AWS.RDS.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(insts.DBInstances) != 0 {
		t.Errorf("DB instances left: %s", aws.ToString(insts.DBInstances[0].DBInstanceIdentifier))
	}
	groups, err := w.Deps.AWS.RDS.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups.DBSubnetGroups) != 0 {
		t.Errorf("DB subnet groups left: %s", aws.ToString(groups.DBSubnetGroups[0].DBSubnetGroupName))
	}
	secs, err := w.Deps.AWS.SecretsManager.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []smtypes.Filter{
		{Key: smtypes.FilterNameStringTypeTagValue, Values: []string{testCluster}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(secs.SecretList) != 0 {
		t.Errorf("live secrets left: %s", aws.ToString(secs.SecretList[0].Name))
	}
}

// TestSecretLostResetsPassword deletes the secret behind the database's
// back: apply must reset the master password and store the new one.
func TestSecretLostResetsPassword(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.apply(t)
	old := w.secret(t)
	if _, err := w.Deps.AWS.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(w.secretName()),
		ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	w.Reload(t)
	w.Calls.Reset()
	evs := w.apply(t)
	m := w.Calls.Mutations()
	for _, op := range []string{"Secrets Manager.CreateSecret", "RDS.ModifyDBInstance", "Secrets Manager.UntagResource"} {
		if !slices.Contains(m, op) {
			t.Errorf("missing %s in %v", op, m)
		}
	}
	now := w.secret(t)
	if now.Password == old.Password || now.Host != w.Deps.State.Get(names.KeyRDSEndpoint) || now.Port != 5432 {
		t.Errorf("new secret: same password %v, host %q, port %d", now.Password == old.Password, now.Host, now.Port)
	}
	var noticed bool
	for _, e := range stagetest.EventsOf(evs, engine.EventNotice) {
		noticed = noticed || strings.Contains(e.Message, "master password is being reset")
	}
	if !noticed {
		t.Errorf("no notice about the reset:\n%s", stagetest.EventLog(evs))
	}
	w.assertNoResetMark(t)
}

// TestInterruptedResetFinishes simulates a run killed between storing a
// new password and ModifyDBInstance: the next apply finishes the reset.
func TestInterruptedResetFinishes(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.apply(t)
	if _, err := w.Deps.AWS.SecretsManager.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(w.secretName()),
		Tags: []smtypes.Tag{{Key: aws.String(tagPasswordReset), Value: aws.String("pending")}}}); err != nil {
		t.Fatal(err)
	}
	w.Calls.Reset()
	w.apply(t)
	if m := w.Calls.Mutations(); !slices.Equal(m, []string{"RDS.ModifyDBInstance", "Secrets Manager.UntagResource"}) {
		t.Errorf("mutations %v, want the reset finished", m)
	}
	w.assertNoResetMark(t)
}

func (w *world) assertNoResetMark(t *testing.T) {
	t.Helper()
	sec, err := w.Deps.AWS.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(w.secretName())})
	if err != nil {
		t.Fatal(err)
	}
	if v := awsx.SecretsManagerTagMap(sec.Tags)[tagPasswordReset]; v != "" {
		t.Errorf("reset mark still on the secret: %q", v)
	}
}

// TestPasswordNeverLeaks captures every event of an apply, a password
// reset, a verify and a destroy, and greps them and the state file for
// the generated passwords.
func TestPasswordNeverLeaks(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var all []engine.Event
	all = append(all, w.apply(t)...)
	passwords := []string{w.secret(t).Password}

	if _, err := w.Deps.AWS.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(w.secretName()),
		ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	w.Reload(t)
	all = append(all, w.apply(t)...)
	passwords = append(passwords, w.secret(t).Password)
	checks := New(w.Deps).Verify(ctx)

	w.Deps.Opts.DeleteDatabase = true
	_, evs, err := w.run(t, engine.ModeDestroy)
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, evs...)

	stateBytes, err := os.ReadFile(w.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	eventBytes, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	checkBytes, _ := json.Marshal(checks)
	for i, p := range passwords {
		if len(p) != passwordLength {
			t.Fatalf("password %d has length %d", i, len(p))
		}
		for name, b := range map[string][]byte{"state file": stateBytes, "events": eventBytes, "checks": checkBytes, "event text": []byte(stagetest.EventLog(all))} {
			if strings.Contains(string(b), p) {
				t.Errorf("password %d appears in the %s", i, name)
			}
		}
	}
	if passwords[0] == passwords[1] {
		t.Error("the reset reused the old password")
	}
	if len(all) < 20 {
		t.Errorf("only %d events captured; the test would prove little", len(all))
	}
}

func TestGeneratePassword(t *testing.T) {
	alphabet := passwordAlphabet()
	for _, c := range "/\"@ " {
		if strings.ContainsRune(alphabet, c) {
			t.Errorf("alphabet holds %q, which RDS refuses", c)
		}
	}
	if len(alphabet) != 94-3 {
		t.Errorf("alphabet has %d characters, want the 91 printable ASCII ones RDS accepts", len(alphabet))
	}
	seen := map[string]bool{}
	used := map[rune]bool{}
	for range 200 {
		p, err := generatePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != passwordLength || seen[p] {
			t.Fatalf("password %q: length %d, seen before %v", p, len(p), seen[p])
		}
		seen[p] = true
		for _, c := range p {
			if !strings.ContainsRune(alphabet, c) {
				t.Fatalf("password holds %q", c)
			}
			used[c] = true
		}
	}
	// 6400 draws from 91 characters: every character should turn up.
	if len(used) != len(alphabet) {
		t.Errorf("only %d of %d characters ever drawn", len(used), len(alphabet))
	}
}
