package rds

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func TestApplyFromEmpty(t *testing.T) {
	w := newWorld(t)
	evs := w.apply(t)

	out := w.outputs()
	if out[names.KeyDBInstanceID] != testInstance || out[names.KeyRDSPort] != "5432" || !strings.HasPrefix(out[names.KeyDBSecurityGroupID], "sg-") ||
		!strings.Contains(out[names.KeyMasterSecretARN], ":secret:coder/coder-prod/db-master-") || !strings.HasPrefix(out[names.KeyRDSEndpoint], testInstance+".") {
		t.Fatalf("outputs: %v", out)
	}

	inst := w.instance(t)
	got := map[string]any{
		"MultiAZ": aws.ToBool(inst.MultiAZ), "StorageEncrypted": aws.ToBool(inst.StorageEncrypted),
		"PubliclyAccessible": aws.ToBool(inst.PubliclyAccessible), "DeletionProtection": aws.ToBool(inst.DeletionProtection),
		"BackupRetentionPeriod": aws.ToInt32(inst.BackupRetentionPeriod), "StorageType": aws.ToString(inst.StorageType),
		"AllocatedStorage": aws.ToInt32(inst.AllocatedStorage), "DBInstanceClass": aws.ToString(inst.DBInstanceClass),
		"Engine": aws.ToString(inst.Engine), "DBName": aws.ToString(inst.DBName), "MasterUsername": aws.ToString(inst.MasterUsername),
		"DBSubnetGroup": aws.ToString(inst.DBSubnetGroup.DBSubnetGroupName), "SecurityGroup": aws.ToString(inst.VpcSecurityGroups[0].VpcSecurityGroupId),
	}
	want := map[string]any{
		"MultiAZ": true, "StorageEncrypted": true, "PubliclyAccessible": false, "DeletionProtection": true,
		"BackupRetentionPeriod": int32(7), "StorageType": "gp3", "AllocatedStorage": int32(100), "DBInstanceClass": "db.m7i.large",
		"Engine": "postgres", "DBName": "coder", "MasterUsername": "coder", "DBSubnetGroup": testInstance, "SecurityGroup": out[names.KeyDBSecurityGroupID],
	}
	if !maps.Equal(got, want) {
		t.Errorf("instance:\n got %v\nwant %v", got, want)
	}
	tags := rdsTagMap(inst.TagList)
	if tags[awsx.TagDeployment] != testCluster || tags[awsx.TagStage] != Name {
		t.Errorf("instance tags: %v", tags)
	}

	sng, err := w.Deps.AWS.RDS.DescribeDBSubnetGroups(context.Background(), &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String(testInstance)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subnetGroupIDs(&sng.DBSubnetGroups[0]), slices.Sorted(slices.Values(w.subnets)); !slices.Equal(got, want) {
		t.Errorf("subnet group subnets %v, want %v", got, want)
	}

	rules := w.ingress(t, out[names.KeyDBSecurityGroupID])
	if len(rules) != 1 || !isWantedRule(rules[0], w.clusterSG) {
		t.Errorf("ingress rules: %s", describeRules(rules))
	}

	doc := w.secret(t)
	if doc.Username != "coder" || doc.DBName != "coder" || doc.Port != 5432 || doc.Host != out[names.KeyRDSEndpoint] || len(doc.Password) != passwordLength {
		t.Errorf("secret: user %q db %q host %q port %d password length %d", doc.Username, doc.DBName, doc.Host, doc.Port, len(doc.Password))
	}

	var sawStatus, sawVersionWarning bool
	for _, e := range evs {
		sawStatus = sawStatus || (e.Type == engine.EventProgress && e.Step == names.RDSStepInstance && strings.Contains(e.Message, "waiting for DB instance "+testInstance+": available"))
		sawVersionWarning = sawVersionWarning || (e.Type == engine.EventNotice && strings.Contains(e.Message, "could not list RDS PostgreSQL versions"))
	}
	if !sawStatus {
		t.Errorf("no progress event showing the instance status:\n%s", stagetest.EventLog(evs))
	}
	if !sawVersionWarning {
		t.Errorf("moto cannot list engine versions, but no notice said so:\n%s", stagetest.EventLog(evs))
	}
	if aws.ToString(inst.EngineVersion) != "17" {
		t.Errorf("engine version %q: with versions unknown, the input goes to RDS as is", aws.ToString(inst.EngineVersion))
	}
}

// TestInstanceIDRecordedBeforeWaiting reads the state file from disk, as a
// second process would, the moment the instance step starts waiting.
func TestInstanceIDRecordedBeforeWaiting(t *testing.T) {
	w := newWorld(t)
	steps := map[string]engine.Step{}
	for _, st := range New(w.Deps).Steps {
		steps[st.Name] = st
	}
	ctx := context.Background()
	for _, name := range []string{StepSubnetGroup, StepSecurityGroup, StepMasterSecret} {
		if err := steps[name].Apply(ctx, &enginetest.Recorder{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var onDisk string
	rec := &enginetest.Recorder{OnProgress: func(msg string) {
		if strings.HasPrefix(msg, "waiting for DB instance") && onDisk == "" {
			st, err := state.Open(w.EnvFile)
			if err != nil {
				t.Error(err)
				return
			}
			onDisk = st.Get(names.KeyDBInstanceID) + "|" + st.Get(names.KeyRDSEndpoint)
		}
	}}
	if err := steps[names.RDSStepInstance].Apply(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if onDisk != testInstance+"|" {
		t.Errorf("state file when the wait began: DB_INSTANCE_ID|RDS_ENDPOINT = %q, want %q", onDisk, testInstance+"|")
	}
	if w.Deps.State.Get(names.KeyRDSEndpoint) == "" {
		t.Error("RDS_ENDPOINT not recorded after the wait")
	}
}

func TestReapplyMakesNoChanges(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	before := w.outputs()
	w.Reload(t)
	w.Calls.Reset()
	w.apply(t)
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("second apply made mutating calls: %v", m)
	}
	if after := w.outputs(); !maps.Equal(before, after) {
		t.Errorf("outputs changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestAdoptAfterStateLost(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	before := w.outputs()
	if err := w.Deps.State.Unset(slices.Collect(maps.Keys(before))...); err != nil {
		t.Fatal(err)
	}
	w.Reload(t)
	if w.Deps.State.Get(names.KeyDBInstanceID) != "" {
		t.Fatal("outputs still in the state file")
	}
	w.Calls.Reset()
	w.apply(t)
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("adopting made mutating calls: %v", m)
	}
	if after := w.outputs(); !maps.Equal(before, after) {
		t.Errorf("adopted outputs differ:\nbefore %v\nafter  %v", before, after)
	}
}

func TestPlan(t *testing.T) {
	w := newWorld(t)
	planKinds := func() map[string]engine.ActionKind {
		t.Helper()
		sum, evs, err := w.run(t, engine.ModePlan)
		if err != nil {
			t.Fatalf("plan: %v\n%s", err, stagetest.EventLog(evs))
		}
		kinds := map[string]engine.ActionKind{}
		for _, e := range stagetest.EventsOf(evs, engine.EventPlan) {
			if kinds[e.Step] == "" || e.Action.Kind != engine.Nothing {
				kinds[e.Step] = e.Action.Kind
			}
		}
		if len(sum.Stages) == 0 {
			t.Fatal("no summary")
		}
		return kinds
	}
	steps := []string{StepSubnetGroup, StepSecurityGroup, StepMasterSecret, names.RDSStepInstance, StepIngressRule}
	kinds := planKinds()
	for _, s := range steps {
		if kinds[s] != engine.Create {
			t.Errorf("plan on empty: %s is %q, want create", s, kinds[s])
		}
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("plan made mutating calls: %v", m)
	}
	w.apply(t)
	w.Calls.Reset()
	kinds = planKinds()
	for _, s := range steps {
		if kinds[s] != engine.Nothing {
			t.Errorf("plan after apply: %s is %q, want nothing", s, kinds[s])
		}
	}

	// Drift shows up as an update naming what changed.
	if _, err := w.Deps.AWS.RDS.ModifyDBInstance(context.Background(), &rds.ModifyDBInstanceInput{
		DBInstanceIdentifier: aws.String(testInstance), MultiAZ: aws.Bool(false), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, evs, err := w.run(t, engine.ModePlan)
	if err != nil {
		t.Fatal(err)
	}
	var reason string
	for _, e := range stagetest.EventsOf(evs, engine.EventPlan) {
		if e.Step == names.RDSStepInstance && e.Action.Kind == engine.Update {
			reason = e.Action.Reason
		}
	}
	if !strings.Contains(reason, "MultiAZ false -> true") {
		t.Errorf("plan after MultiAZ drift: %q", reason)
	}
	if m := w.Calls.Mutations(); len(m) != 1 { // the test's own ModifyDBInstance
		t.Errorf("plan made mutating calls: %v", m)
	}
}

func TestStepGraph(t *testing.T) {
	// The graph needs only the stage's declarations, not AWS.
	d := &deploy.Deps{AWS: awsx.NewClients(aws.Config{})}
	g, err := engine.NewGraph(append(stubStages(), New(d)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"rds/subnet-group":   {"network/subnets"},
		"rds/security-group": {"network/vpc"},
		"rds/master-secret":  {"network/vpc"},
		"rds/instance":       {"rds/master-secret", "rds/security-group", "rds/subnet-group"},
		"rds/ingress-rule":   {"eks/cluster", "rds/security-group"},
	}
	for id, needs := range want {
		got := g.Needs(id)
		slices.Sort(got)
		if !slices.Equal(got, needs) {
			t.Errorf("%s needs %v, want %v", id, got, needs)
		}
	}
	if s, _ := g.Stage(Name); !slices.Equal(s.Needs, []string{"network", "eks"}) {
		t.Errorf("stage needs %v", s.Needs)
	}
}

// TestInstanceStartsWhileClusterIsCreating runs the whole graph with an
// eks/cluster stub that only finishes once rds/instance has started: if
// the instance waited for the cluster, the stub would time out.
func TestInstanceStartsWhileClusterIsCreating(t *testing.T) {
	w := newWorld(t)
	instanceStarted := make(chan struct{})
	var once bool
	stubs := stubStages()
	stubs[1] = engine.Stage{Name: "eks", Needs: []string{"network"}, Steps: []engine.Step{{
		Name: "cluster", Needs: []string{"network/subnets"},
		Apply: func(ctx context.Context, r engine.Reporter) error {
			select {
			case <-instanceStarted:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Second):
				return errors.New("rds/instance did not start while the cluster was creating")
			}
		},
	}}}
	g, err := engine.NewGraph(append(stubs, New(w.Deps)))
	if err != nil {
		t.Fatal(err)
	}
	sink := engine.SinkFunc(func(e engine.Event) {
		if e.Type == engine.EventStep && e.Stage == Name && e.Step == names.RDSStepInstance && e.Status == engine.StatusStarted && !once {
			once = true
			close(instanceStarted)
		}
	})
	if _, err := g.Run(context.Background(), sink, engine.Options{Mode: engine.ModeApply}); err != nil {
		t.Fatal(err)
	}
}

func TestInstanceIdentifier(t *testing.T) {
	cases := map[string]string{
		"coder-prod":                         "coder-prod-coder-db",
		"Coder_Prod":                         "coder-prod-coder-db",
		"1st-cluster":                        "db-1st-cluster-coder-db",
		"a__b--c":                            "a-b-c-coder-db",
		strings.Repeat("x", 100):             strings.Repeat("x", 54) + "-coder-db",
		"ab" + strings.Repeat("-", 60) + "z": "ab-z-coder-db",
	}
	for in, want := range cases {
		got := InstanceIdentifier(in)
		if got != want {
			t.Errorf("InstanceIdentifier(%q) = %q, want %q", in, got, want)
		}
		if len(got) > 63 || strings.Contains(got, "--") || got[0] < 'a' || got[0] > 'z' {
			t.Errorf("InstanceIdentifier(%q) = %q is not a valid RDS identifier", in, got)
		}
	}
}
