package rds

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// legacyName is the master secret's name before deployments had their
// own prefix.
const legacyName = "coder/db-master"

// TestTwoDeploymentsSideBySide applies two deployments' rds stages at the
// same time in one account and region: each gets its own instance, subnet
// group, security group and master secret with its own password; then
// one is torn down and the other is untouched.
func TestTwoDeploymentsSideBySide(t *testing.T) {
	ctx := context.Background()
	ws := newWorlds(t, "coder-prod", "coder-staging")
	var wg sync.WaitGroup
	errs := make([]error, len(ws))
	logs := make([]string, len(ws))
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, evs, err := w.run(t, engine.ModeApply)
			errs[i], logs[i] = err, stagetest.EventLog(evs)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("apply %s: %v\n%s", ws[i].Deps.Deployment(), err, logs[i])
		}
	}

	prod, staging := ws[0], ws[1]
	passwords := map[string]bool{}
	for _, w := range ws {
		d := w.Deps.Deployment()
		out := w.outputs()
		if out[names.KeyDBInstanceID] != InstanceIdentifier(d) {
			t.Errorf("%s: %s = %q, want %q", d, names.KeyDBInstanceID, out[names.KeyDBInstanceID], InstanceIdentifier(d))
		}
		if want := ":secret:coder/" + d + "/db-master-"; !strings.Contains(out[names.KeyMasterSecretARN], want) {
			t.Errorf("%s: %s = %q, want an ARN with %q", d, names.KeyMasterSecretARN, out[names.KeyMasterSecretARN], want)
		}
		doc := w.secret(t)
		if doc.Host != out[names.KeyRDSEndpoint] {
			t.Errorf("%s: its secret names host %q, its instance is %q", d, doc.Host, out[names.KeyRDSEndpoint])
		}
		passwords[doc.Password] = true
		sec, err := w.Deps.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(w.secretName())})
		if err != nil {
			t.Fatal(err)
		}
		if owner := awsx.SecretsManagerTagMap(sec.Tags)[awsx.TagDeployment]; owner != d {
			t.Errorf("%s: secret %s tagged for %q", d, w.secretName(), owner)
		}
		if inst := w.instance(t); aws.ToString(inst.DBSubnetGroup.DBSubnetGroupName) != InstanceIdentifier(d) ||
			aws.ToString(inst.VpcSecurityGroups[0].VpcSecurityGroupId) != out[names.KeyDBSecurityGroupID] {
			t.Errorf("%s: instance in subnet group %s, security group %s", d,
				aws.ToString(inst.DBSubnetGroup.DBSubnetGroupName), aws.ToString(inst.VpcSecurityGroups[0].VpcSecurityGroupId))
		}
	}
	if len(passwords) != 2 {
		t.Error("the two deployments share one master password")
	}

	// Each sees its own resources as up to date, the other's not at all.
	for _, w := range ws {
		w.reload(t)
		w.Calls.Reset()
		w.apply(t)
		if m := w.Calls.Mutations(); len(m) != 0 {
			t.Errorf("%s: second apply changed things: %v", w.Deps.Deployment(), m)
		}
	}

	prodBefore := prod.secret(t)
	staging.Deps.Opts.DeleteDatabase, staging.Deps.Opts.SkipFinalSnapshot = true, true
	if _, evs, err := staging.run(t, engine.ModeDestroy); err != nil {
		t.Fatalf("destroy %s: %v\n%s", staging.Deps.Deployment(), err, stagetest.EventLog(evs))
	}
	if _, err := staging.Deps.AWS.RDS.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(staging.instanceID())}); !awsx.IsNotFound(err) {
		t.Errorf("%s's instance: %v, want not found", staging.Deps.Deployment(), err)
	}
	if inst := prod.instance(t); aws.ToString(inst.DBInstanceStatus) != "available" {
		t.Errorf("%s's instance is %s after the other deployment's destroy", prod.Deps.Deployment(), aws.ToString(inst.DBInstanceStatus))
	}
	sec, err := prod.Deps.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(prod.secretName())})
	if err != nil || sec.DeletedDate != nil {
		t.Errorf("%s's secret after the other deployment's destroy: %v, deleted %v", prod.Deps.Deployment(), err, sec != nil && sec.DeletedDate != nil)
	}
	if prod.secret(t).Password != prodBefore.Password {
		t.Errorf("%s's password changed", prod.Deps.Deployment())
	}
	if f := stagetest.Failed(New(prod.Deps).Verify(ctx)); len(f) != 0 {
		t.Errorf("%s's verify after the other deployment's destroy: %v", prod.Deps.Deployment(), f)
	}
}

// makeLegacy stores value as coder/db-master with tags (nil: untagged), as
// an older coderctl (or a person following the guide) left it, and points
// the state file at it.
func (w *world) makeLegacy(t *testing.T, value string, tags map[string]string) string {
	t.Helper()
	out, err := w.Deps.AWS.SecretsManager.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(legacyName), SecretString: aws.String(value), Tags: awsx.SecretsManagerTags(tags)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// secretString reads a secret's value; its errors never quote it.
func (w *world) secretString(t *testing.T, id string) string {
	t.Helper()
	out, err := w.Deps.AWS.SecretsManager.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("read secret %s: %v", id, err)
	}
	return aws.ToString(out.SecretString)
}

func (w *world) describe(t *testing.T, id string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	out, err := w.Deps.AWS.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("describe secret %s: %v", id, err)
	}
	return out
}

// planOf returns the actions planned for one step.
func (w *world) planOf(t *testing.T, step string) []engine.Action {
	t.Helper()
	_, evs, err := w.run(t, engine.ModePlan)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, stagetest.EventLog(evs))
	}
	var out []engine.Action
	for _, e := range stagetest.EventsOf(evs, engine.EventPlan) {
		if e.Step == step && e.Action != nil {
			out = append(out, *e.Action)
		}
	}
	return out
}

// TestLegacyMasterSecret: a deployment made before secrets had the
// deployment's prefix keeps its database password. Its coder/db-master,
// tagged for it, moves to coder/<deployment>/db-master with the same value
// and is scheduled for deletion; an untagged one or another deployment's
// is never adopted nor touched (the database then gets a new password, as
// when its secret is lost).
func TestLegacyMasterSecret(t *testing.T) {
	ours := map[string]string{awsx.TagDeployment: testCluster, awsx.TagStage: Name, "Name": legacyName}
	cases := []struct {
		name string
		tags map[string]string
		// scheduled: the legacy secret is in its recovery window.
		scheduled bool
		moved     bool
		// planSays is in the plan of the new secret.
		planSays string
	}{
		{"tagged for this deployment", ours, false, true, "move from coder/db-master"},
		{"tagged for this deployment, scheduled for deletion", ours, true, true, "restore it"},
		{"untagged", nil, false, false, "coder/db-master exists untagged and is not adopted"},
		{"another deployment's", map[string]string{awsx.TagDeployment: "coder-staging", awsx.TagStage: Name}, false, false, "reset it on the instance"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			w.apply(t)
			// Back to the layout an older coderctl left: the credentials
			// only under the legacy name, the state file pointing there.
			value := w.secretString(t, w.secretName())
			var doc MasterSecret
			if err := json.Unmarshal([]byte(value), &doc); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Deps.AWS.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
				SecretId: aws.String(w.secretName()), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
				t.Fatal(err)
			}
			legacyARN := w.makeLegacy(t, value, tc.tags)
			if tc.scheduled {
				if _, err := w.Deps.AWS.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
					SecretId: aws.String(legacyARN), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Deps.State.SetMany(map[string]string{names.KeyMasterSecretARN: legacyARN}); err != nil {
				t.Fatal(err)
			}
			w.reload(t)
			w.Calls.Reset()

			plan := w.planOf(t, StepMasterSecret)
			if m := w.Calls.Mutations(); len(m) != 0 {
				t.Errorf("plan changed things: %v", m)
			}
			kinds := map[string]engine.ActionKind{}
			var reason string
			for _, a := range plan {
				kinds[a.Resource] = a.Kind
				if a.Resource == "secret "+w.secretName() {
					reason = a.Reason
				}
			}
			if kinds["secret "+w.secretName()] != engine.Create || !strings.Contains(reason, tc.planSays) {
				t.Errorf("plan of %s: %v, reason %q; want create saying %q", w.secretName(), kinds, reason, tc.planSays)
			}
			if tc.moved != (kinds["secret "+legacyName] == engine.Delete) {
				t.Errorf("plan of %s: %q, want delete: %v", legacyName, kinds["secret "+legacyName], tc.moved)
			}

			w.Calls.Reset()
			evs := w.apply(t)
			if strings.Contains(stagetest.EventLog(evs), doc.Password) {
				t.Error("the password is in the run's events")
			}
			now := w.secret(t)
			if tc.moved != (now.Password == doc.Password) {
				t.Errorf("password kept: %v, want %v", now.Password == doc.Password, tc.moved)
			}
			if reset := slices.Contains(w.Calls.Mutations(), "RDS.ModifyDBInstance"); reset == tc.moved {
				t.Errorf("instance password reset: %v, want %v (mutations %v)", reset, !tc.moved, w.Calls.Mutations())
			}
			if arn := w.Deps.State.Get(names.KeyMasterSecretARN); arn != aws.ToString(w.describe(t, w.secretName()).ARN) {
				t.Errorf("%s = %q, not the ARN of %s", names.KeyMasterSecretARN, arn, w.secretName())
			}
			legacy := w.describe(t, legacyARN)
			if tc.moved != (legacy.DeletedDate != nil) {
				t.Errorf("%s scheduled for deletion: %v, want %v", legacyName, legacy.DeletedDate != nil, tc.moved)
			}
			if !tc.moved {
				if w.secretString(t, legacyARN) != value || !awsx.HasTags(awsx.SecretsManagerTagMap(legacy.Tags), tc.tags) ||
					len(legacy.Tags) != len(tc.tags) {
					t.Errorf("%s was changed (value or tags %v)", legacyName, awsx.SecretsManagerTagMap(legacy.Tags))
				}
			}
			if f := stagetest.Failed(New(w.Deps).Verify(ctx)); len(f) != 0 {
				t.Errorf("verify after the move: %v", f)
			}
			w.Calls.Reset()
			w.apply(t)
			if m := w.Calls.Mutations(); len(m) != 0 {
				t.Errorf("apply after the move changed things: %v", m)
			}
		})
	}
}

// TestLegacyLeftOverFromMove: a run killed between creating the new
// secret and retiring coder/db-master leaves both; the next apply
// schedules the legacy one for deletion when it holds the same password,
// and leaves it with a notice when it does not.
func TestLegacyLeftOverFromMove(t *testing.T) {
	ours := map[string]string{awsx.TagDeployment: testCluster, awsx.TagStage: Name}
	cases := []struct {
		name         string
		samePassword bool
	}{{"same password: retired", true}, {"another password: kept", false}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.apply(t)
			doc := w.secret(t)
			if !tc.samePassword {
				doc.Password = "an-older-password-someone-may-use"
			}
			body, _ := json.Marshal(doc)
			legacyARN := w.makeLegacy(t, string(body), ours)
			w.Calls.Reset()
			evs := w.apply(t)
			deleted := w.describe(t, legacyARN).DeletedDate != nil
			if deleted != tc.samePassword {
				t.Errorf("%s scheduled for deletion: %v, want %v", legacyName, deleted, tc.samePassword)
			}
			var noticed bool
			for _, e := range stagetest.EventsOf(evs, engine.EventNotice) {
				noticed = noticed || strings.Contains(e.Message, legacyName+" is tagged for deployment "+testCluster+" but does not hold the password")
			}
			if noticed == tc.samePassword {
				t.Errorf("notice about the differing password: %v, want %v\n%s", noticed, !tc.samePassword, stagetest.EventLog(evs))
			}
			if strings.Contains(stagetest.EventLog(evs), doc.Password) {
				t.Error("a password is in the run's events")
			}
		})
	}
}

// TestDestroyRemovesLegacyLeftOver: destroy leaves nothing tagged for the
// deployment, a legacy-named secret of its own included, and nothing of
// anyone else's.
func TestDestroyRemovesLegacyLeftOver(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	body, _ := json.Marshal(w.secret(t))
	// Differing passwords would be kept by apply; destroy removes it anyway.
	ours := w.makeLegacy(t, strings.Replace(string(body), `"password":"`, `"password":"x`, 1),
		map[string]string{awsx.TagDeployment: testCluster})
	w.Deps.Opts.DeleteDatabase, w.Deps.Opts.SkipFinalSnapshot = true, true
	if _, evs, err := w.run(t, engine.ModeDestroy); err != nil {
		t.Fatalf("destroy: %v\n%s", err, stagetest.EventLog(evs))
	}
	if w.describe(t, ours).DeletedDate == nil {
		t.Errorf("%s tagged for %s survived its destroy", legacyName, testCluster)
	}
	w.assertNothingLeft(t)
}

// TestSubnetGroupOfAnotherDeploymentIsNeverAdopted: two cluster names that
// clean up to the same RDS name (Coder_Prod, coder-prod): the second
// deployment neither adopts, changes nor deletes the first's subnet group.
func TestSubnetGroupOfAnotherDeploymentIsNeverAdopted(t *testing.T) {
	ctx := context.Background()
	ws := newWorlds(t, "coder-prod", "Coder_Prod")
	prod, other := ws[0], ws[1]
	if InstanceIdentifier(prod.Deps.Deployment()) != InstanceIdentifier(other.Deps.Deployment()) {
		t.Fatalf("the names do not collide: %s, %s", InstanceIdentifier(prod.Deps.Deployment()), InstanceIdentifier(other.Deps.Deployment()))
	}
	prod.apply(t)
	name := InstanceIdentifier(prod.Deps.Deployment())
	before, err := prod.Deps.AWS.RDS.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []engine.Mode{engine.ModePlan, engine.ModeApply, engine.ModeDestroy} {
		other.Calls.Reset()
		_, evs, err := other.run(t, mode)
		log := stagetest.EventLog(evs)
		if err == nil && !strings.Contains(log, `belongs to deployment "coder-prod"`) {
			t.Errorf("%s as Coder_Prod: no refusal\n%s", mode, log)
		}
		for _, m := range other.Calls.Mutations() {
			if strings.Contains(m, "DBSubnetGroup") {
				t.Errorf("%s as Coder_Prod changed the subnet group: %s", mode, m)
			}
		}
	}
	after, err := prod.Deps.AWS.RDS.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String(name)})
	if err != nil || len(after.DBSubnetGroups) != 1 || !slices.Equal(subnetGroupIDs(&after.DBSubnetGroups[0]), subnetGroupIDs(&before.DBSubnetGroups[0])) {
		t.Errorf("coder-prod's subnet group after the other deployment's runs: %v %+v", err, after)
	}
}
