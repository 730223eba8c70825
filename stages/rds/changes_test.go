package rds

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/sizing"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// moto (5.2) applies every ModifyDBInstance at once, whatever
// ApplyImmediately says, never reports PendingModifiedValues, and does not
// implement DescribeDBEngineVersions (so no ValidUpgradeTarget). The tests
// below therefore assert on the requests the stage sends (reqRecorder),
// answer the version lookups with upgradeVersions as real RDS does, and
// where a deferred change matters, rewrite moto's DescribeDBInstances
// answers into what RDS shows until the maintenance window (deferView).

// reqRecorder keeps the RDS requests that change things, in order, and can
// rewrite DescribeDBInstances answers.
type reqRecorder struct {
	mu       sync.Mutex
	ops      []string
	modifies []*rds.ModifyDBInstanceInput
	creates  []*rds.CreateDBInstanceInput
	snaps    []*rds.CreateDBSnapshotInput
	view     func(*rdstypes.DBInstance)
}

func (rec *reqRecorder) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("rdsRequestRecorder",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			rec.mu.Lock()
			switch p := in.Parameters.(type) {
			case *rds.ModifyDBInstanceInput:
				rec.modifies = append(rec.modifies, p)
			case *rds.CreateDBInstanceInput:
				rec.creates = append(rec.creates, p)
			case *rds.CreateDBSnapshotInput:
				rec.snaps = append(rec.snaps, p)
			}
			if !awsx.IsRead("RDS." + op) {
				rec.ops = append(rec.ops, op)
			}
			view := rec.view
			rec.mu.Unlock()
			out, md, err := next.HandleInitialize(ctx, in)
			if d, ok := out.Result.(*rds.DescribeDBInstancesOutput); ok && err == nil && view != nil {
				for i := range d.DBInstances {
					view(&d.DBInstances[i])
				}
			}
			return out, md, err
		}), middleware.After)
}

func (rec *reqRecorder) reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.ops, rec.modifies, rec.creates, rec.snaps = nil, nil, nil, nil
}

// deferView makes moto's answers look like real RDS's while a deferred
// change waits for the window: the instance still has was's class,
// storage and version, and what moto already applied is pending.
func deferView(wasClass string, wasStorage int32, wasVersion string) func(*rdstypes.DBInstance) {
	return func(inst *rdstypes.DBInstance) {
		p := &rdstypes.PendingModifiedValues{}
		if c := aws.ToString(inst.DBInstanceClass); c != wasClass {
			p.DBInstanceClass, inst.DBInstanceClass = aws.String(c), aws.String(wasClass)
		}
		if n := aws.ToInt32(inst.AllocatedStorage); n != wasStorage {
			p.AllocatedStorage, inst.AllocatedStorage = aws.Int32(n), aws.Int32(wasStorage)
		}
		if v := aws.ToString(inst.EngineVersion); v != wasVersion {
			p.EngineVersion, inst.EngineVersion = aws.String(v), aws.String(wasVersion)
		}
		inst.PendingModifiedValues = p
	}
}

// upgradeVersions answers DescribeDBEngineVersions as RDS does: every
// version, or the one asked for with its ValidUpgradeTarget list.
type upgradeVersions struct {
	versions []string
	targets  map[string][]string
}

func (f *upgradeVersions) DescribeDBEngineVersions(_ context.Context, in *rds.DescribeDBEngineVersionsInput, _ ...func(*rds.Options)) (*rds.DescribeDBEngineVersionsOutput, error) {
	out := &rds.DescribeDBEngineVersionsOutput{}
	for _, v := range f.versions {
		if in.EngineVersion != nil && aws.ToString(in.EngineVersion) != v {
			continue
		}
		ev := rdstypes.DBEngineVersion{Engine: in.Engine, EngineVersion: aws.String(v)}
		for _, t := range f.targets[v] {
			ev.ValidUpgradeTarget = append(ev.ValidUpgradeTarget, rdstypes.UpgradeTarget{Engine: in.Engine, EngineVersion: aws.String(t),
				IsMajorVersionUpgrade: aws.Bool(pgMajor(t) != pgMajor(v))})
		}
		out.DBEngineVersions = append(out.DBEngineVersions, ev)
	}
	return out, nil
}

var upgradeRDS = &upgradeVersions{
	versions: []string{"13.20", "14.15", "15.10", "16.6", "16.9", "17.2", "17.9", "17.10"},
	targets: map[string][]string{
		"13.20": {"14.15", "15.10", "16.6"},
		"16.9":  {"17.9", "17.10"},
		"17.2":  {"17.9", "17.10"},
	},
}

// sizedOrderable offers the sizing's classes (and one other) for PostgreSQL
// Multi-AZ on gp3.
var sizedOrderable = fakeOrderable{
	"db.m7i.large":   {option("db.m7i.large", "gp3", true, 20)},
	"db.m7i.xlarge":  {option("db.m7i.xlarge", "gp3", true, 20)},
	"db.m7i.2xlarge": {option("db.m7i.2xlarge", "gp3", true, 20)},
	"db.r7g.large":   {option("db.r7g.large", "gp3", true, 20)},
}

// changeWorld is a world whose RDS client records requests and whose stage
// answers the engine version and orderable lookups as RDS does (moto's
// HTTP 500 for them would also cost seconds of retries per run).
type changeWorld struct {
	*world
	rec      *reqRecorder
	versions rds.DescribeDBEngineVersionsAPIClient
}

func newChangeWorld(t *testing.T, inputs map[string]string, versions rds.DescribeDBEngineVersionsAPIClient) *changeWorld {
	t.Helper()
	all := map[string]string{"CODER_DOMAIN": "coder.example.com", "USERS": "500"}
	for k, v := range inputs {
		all[k] = v
	}
	cw := &changeWorld{world: newWorldWith(t, all), rec: &reqRecorder{}, versions: versions}
	cw.wire()
	return cw
}

// wire gives Deps an RDS client with the recorder (Reload builds new Deps).
func (cw *changeWorld) wire() {
	cw.Deps.AWS.RDS = rds.NewFromConfig(cw.Deps.AWS.Config, func(o *rds.Options) {
		o.APIOptions = append(o.APIOptions, cw.rec.middleware)
	})
}

// set changes inputs in the env file and rebuilds Deps as a new run would,
// with opts for its flags.
func (cw *changeWorld) set(t *testing.T, opts deploy.Options, inputs map[string]string) {
	t.Helper()
	for k, v := range inputs {
		if err := cw.Deps.State.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	cw.Reload(t)
	cw.Deps.Opts.ApplyImmediately, cw.Deps.Opts.AllowMajorVersionUpgrade = opts.ApplyImmediately, opts.AllowMajorVersionUpgrade
	cw.wire()
	cw.rec.reset()
	cw.Calls.Reset()
}

func (cw *changeWorld) stage() *stage {
	st := newStage(cw.Deps)
	if cw.versions != nil {
		st.versions, st.orderable = cw.versions, sizedOrderable
	}
	return st
}

func (cw *changeWorld) graph(t *testing.T) *engine.Graph {
	t.Helper()
	g, err := engine.NewGraph(append(stubStages(), cw.stage().definition()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// run validates, then runs the stage, as the CLI does.
func (cw *changeWorld) run(t *testing.T, mode engine.Mode) ([]engine.Event, error) {
	t.Helper()
	if err := cw.graph(t).ValidateAll(context.Background(), []string{Name}, nil); err != nil {
		return nil, err
	}
	_, evs, err := cw.RunOnly(t, append(stubStages(), cw.stage().definition()), mode, Name)
	return evs, err
}

func (cw *changeWorld) mustRun(t *testing.T, mode engine.Mode) []engine.Event {
	t.Helper()
	evs, err := cw.run(t, mode)
	if err != nil {
		t.Fatalf("%s: %v\n%s", mode, err, stagetest.EventLog(evs))
	}
	return evs
}

// planReason is the instance step's planned action.
func (cw *changeWorld) planReason(t *testing.T) (engine.ActionKind, string) {
	t.Helper()
	for _, e := range stagetest.EventsOf(cw.mustRun(t, engine.ModePlan), engine.EventPlan) {
		if e.Step == names.RDSStepInstance {
			return e.Action.Kind, e.Action.Reason
		}
	}
	t.Fatal("no plan for the instance")
	return "", ""
}

// TestDefaultClassFromSizing: DB_INSTANCE_CLASS unset takes the class
// `coderctl size` gives for USERS; set, it wins.
func TestDefaultClassFromSizing(t *testing.T) {
	cluster, err := config.LoadCluster(stagetest.ClusterConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		users, class, want string
	}{
		{"500", "", "db.m7i.large"},
		{"2000", "", "db.m7i.xlarge"},
		{"3000", "", "db.m7i.2xlarge"},
		{"2000", "db.r7g.large", "db.r7g.large"},
	}
	for _, tc := range cases {
		file := map[string]string{"CODER_DOMAIN": "coder.example.com", config.KeyUsers: tc.users, config.KeyDBInstanceClass: tc.class}
		in, err := config.ResolveInputs("coder-infra.env", file, nil, cluster, "cluster-config.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if got := in.Get(config.KeyDBInstanceClass); got != tc.want {
			t.Errorf("USERS=%s DB_INSTANCE_CLASS=%q: class %s, want %s", tc.users, tc.class, got, tc.want)
		}
		users := in.Users()
		if sized := sizing.For(users, "").Database.InstanceClass; tc.class == "" && sized != tc.want {
			t.Errorf("USERS=%s: coderctl size says %s, the input default %s", tc.users, sized, tc.want)
		}
	}

	// And up builds it: USERS=2000, no class set.
	cw := newChangeWorld(t, map[string]string{config.KeyUsers: "2000"}, upgradeRDS)
	cw.mustRun(t, engine.ModeApply)
	if len(cw.rec.creates) != 1 || aws.ToString(cw.rec.creates[0].DBInstanceClass) != "db.m7i.xlarge" {
		t.Fatalf("CreateDBInstance requests %d, class %v", len(cw.rec.creates), cw.rec.creates)
	}
	if c := aws.ToString(cw.instance(t).DBInstanceClass); c != "db.m7i.xlarge" {
		t.Errorf("instance class %s", c)
	}
}

// TestSizeChangeTiming changes the class and grows the storage of an
// existing instance: deferred to the maintenance window by default, now
// with --apply-immediately; plan says which; a second apply does nothing.
func TestSizeChangeTiming(t *testing.T) {
	cases := []struct {
		name      string
		immediate bool
		when      string
	}{
		{"maintenance window", false, "in the maintenance window wed:06:38-wed:07:08 (UTC)"},
		{"apply immediately", true, "now (--apply-immediately)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cw := newChangeWorld(t, nil, upgradeRDS)
			cw.mustRun(t, engine.ModeApply)
			opts := deploy.Options{ApplyImmediately: tc.immediate}
			cw.set(t, opts, map[string]string{config.KeyDBInstanceClass: "db.m7i.xlarge", config.KeyDBAllocatedStorage: "200"})

			kind, reason := cw.planReason(t)
			if want := "class db.m7i.large -> db.m7i.xlarge, storage 100 -> 200 GiB " + tc.when; kind != engine.Update || !strings.Contains(reason, want) {
				t.Errorf("plan: %s %q, want update with %q", kind, reason, want)
			}
			if m := cw.Calls.Mutations(); len(m) != 0 {
				t.Errorf("plan made mutating calls: %v", m)
			}

			cw.mustRun(t, engine.ModeApply)
			if len(cw.rec.modifies) != 1 {
				t.Fatalf("ModifyDBInstance requests: %d, want 1", len(cw.rec.modifies))
			}
			m := cw.rec.modifies[0]
			if aws.ToString(m.DBInstanceClass) != "db.m7i.xlarge" || aws.ToInt32(m.AllocatedStorage) != 200 ||
				m.ApplyImmediately == nil || *m.ApplyImmediately != tc.immediate || m.EngineVersion != nil {
				t.Errorf("ModifyDBInstance class %v storage %v ApplyImmediately %v engine %v", aws.ToString(m.DBInstanceClass),
					aws.ToInt32(m.AllocatedStorage), aws.ToBool(m.ApplyImmediately), aws.ToString(m.EngineVersion))
			}

			cw.set(t, opts, nil)
			cw.mustRun(t, engine.ModeApply)
			if m := cw.Calls.Mutations(); len(m) != 0 {
				t.Errorf("second apply: %v", m)
			}
		})
	}
}

// TestPendingCountsAsConverged: while RDS holds the change for the window
// (PendingModifiedValues; moto's answers rewritten, see deferView), a
// second apply does not modify again, plan and verify say it is pending,
// and --apply-immediately sends it again to apply it now.
func TestPendingCountsAsConverged(t *testing.T) {
	ctx := context.Background()
	cw := newChangeWorld(t, nil, upgradeRDS)
	cw.mustRun(t, engine.ModeApply)
	cw.set(t, deploy.Options{}, map[string]string{config.KeyDBInstanceClass: "db.m7i.xlarge"})
	cw.mustRun(t, engine.ModeApply)
	if len(cw.rec.modifies) != 1 || aws.ToBool(cw.rec.modifies[0].ApplyImmediately) {
		t.Fatalf("want one deferred ModifyDBInstance, got %d", len(cw.rec.modifies))
	}

	cw.set(t, deploy.Options{}, nil)
	cw.rec.view = deferView("db.m7i.large", 100, "17.10")
	cw.mustRun(t, engine.ModeApply)
	if m := cw.Calls.Mutations(); len(m) != 0 {
		t.Errorf("apply with the change pending: %v", m)
	}
	kind, reason := cw.planReason(t)
	if want := "pending in the maintenance window wed:06:38-wed:07:08 (UTC): class db.m7i.large -> db.m7i.xlarge"; kind != engine.Nothing || !strings.Contains(reason, want) {
		t.Errorf("plan: %s %q, want nothing with %q", kind, reason, want)
	}
	checks := New(cw.Deps).Verify(ctx)
	if c := stagetest.ChecksByName(checks)["size"]; c.Status != engine.Warn || !strings.Contains(c.Reason, "pending in the maintenance window") {
		t.Errorf("verify size: %+v", c)
	}
	if f := stagetest.Failed(checks); len(f) != 0 {
		t.Errorf("verify failed %v", f)
	}

	cw.set(t, deploy.Options{ApplyImmediately: true}, nil)
	cw.rec.view = deferView("db.m7i.large", 100, "17.10")
	if kind, reason := cw.planReason(t); kind != engine.Update || !strings.Contains(reason, "pending class -> db.m7i.xlarge now") {
		t.Errorf("plan --apply-immediately: %s %q", kind, reason)
	}
	cw.mustRun(t, engine.ModeApply)
	if len(cw.rec.modifies) != 1 || !aws.ToBool(cw.rec.modifies[0].ApplyImmediately) || aws.ToString(cw.rec.modifies[0].DBInstanceClass) != "db.m7i.xlarge" {
		t.Errorf("--apply-immediately with a pending change: %d requests %+v", len(cw.rec.modifies), cw.rec.modifies)
	}

	// Without the view, the instance is as wanted: verify passes outright.
	cw.rec.view = nil
	if c := stagetest.ChecksByName(New(cw.Deps).Verify(ctx))["size"]; c.Status != engine.Pass {
		t.Errorf("verify size once applied: %+v", c)
	}
}

// TestEngineVersionChanges starts an instance at one version, changes
// DB_ENGINE_VERSION and runs as `up` would, with and without
// --allow-major-version-upgrade.
func TestEngineVersionChanges(t *testing.T) {
	cases := []struct {
		name     string
		from, to string
		allow    bool
		// refused names the input of an exit-2 refusal ("" when accepted).
		refused  string
		mentions []string
		// wantTo is the version ModifyDBInstance asks for ("" for none).
		wantTo   string
		major    bool
		snapshot string
	}{
		{name: "major without the flag", from: "16.9", to: "17", refused: config.KeyDBEngineVersion,
			mentions: []string{"16.9 -> 17", "major version upgrade", "--allow-major-version-upgrade"}},
		{name: "major with the flag", from: "16.9", to: "17", allow: true, wantTo: "17.10", major: true,
			snapshot: testInstance + "-pre-upgrade-16-9-17-10"},
		{name: "major to a named minor", from: "16.9", to: "17.9", allow: true, wantTo: "17.9", major: true,
			snapshot: testInstance + "-pre-upgrade-16-9-17-9"},
		{name: "major not an upgrade target", from: "13.20", to: "17", allow: true, refused: config.KeyDBEngineVersion,
			mentions: []string{"not an upgrade target of the 13.20", "14.15, 15.10, 16.6"}},
		{name: "minor", from: "17.2", to: "17.10", wantTo: "17.10"},
		{name: "major only, same major", from: "17.2", to: "17"},
		{name: "major downgrade", from: "17.2", to: "16", allow: true, refused: config.KeyDBEngineVersion,
			mentions: []string{"older than the 17.2", "DB_ENGINE_VERSION=17"}},
		{name: "minor downgrade", from: "17.10", to: "17.2", refused: config.KeyDBEngineVersion,
			mentions: []string{"older than the 17.10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cw := newChangeWorld(t, map[string]string{config.KeyDBEngineVersion: tc.from}, upgradeRDS)
			cw.mustRun(t, engine.ModeApply)
			if v := aws.ToString(cw.instance(t).EngineVersion); v != tc.from {
				t.Fatalf("instance created at %s, want %s", v, tc.from)
			}
			cw.set(t, deploy.Options{AllowMajorVersionUpgrade: tc.allow}, map[string]string{config.KeyDBEngineVersion: tc.to})
			stateBefore, err := os.ReadFile(cw.EnvFile)
			if err != nil {
				t.Fatal(err)
			}

			if tc.refused != "" {
				for _, mode := range []engine.Mode{engine.ModePlan, engine.ModeApply} {
					_, err := cw.run(t, mode)
					assertInputError(t, err, tc.refused, tc.mentions...)
					if fault.ExitCode(err) != 2 {
						t.Errorf("%s: exit code %d, want 2", mode, fault.ExitCode(err))
					}
				}
				if m := cw.Calls.Mutations(); len(m) != 0 {
					t.Errorf("a refused change made mutating calls: %v", m)
				}
				if after, _ := os.ReadFile(cw.EnvFile); string(after) != string(stateBefore) {
					t.Errorf("a refused change wrote the state file")
				}
				if v := aws.ToString(cw.instance(t).EngineVersion); v != tc.from {
					t.Errorf("instance now at %s", v)
				}
				return
			}

			kind, reason := cw.planReason(t)
			if tc.wantTo == "" {
				if kind != engine.Nothing {
					t.Errorf("plan: %s %q, want nothing", kind, reason)
				}
			} else if want := "PostgreSQL " + tc.from + " -> " + tc.wantTo; kind != engine.Update || !strings.Contains(reason, want) ||
				!strings.Contains(reason, "in the maintenance window") || tc.major != strings.Contains(reason, "after snapshot "+tc.snapshot) {
				t.Errorf("plan: %s %q, want update with %q", kind, reason, want)
			}

			cw.mustRun(t, engine.ModeApply)
			wantOps := []string{}
			if tc.snapshot != "" {
				wantOps = append(wantOps, "CreateDBSnapshot")
			}
			if tc.wantTo != "" {
				wantOps = append(wantOps, "ModifyDBInstance")
			}
			if !slices.Equal(cw.rec.ops, wantOps) {
				t.Fatalf("mutating RDS calls %v, want %v (in order)", cw.rec.ops, wantOps)
			}
			if tc.wantTo != "" {
				m := cw.rec.modifies[0]
				if aws.ToString(m.EngineVersion) != tc.wantTo || aws.ToBool(m.AllowMajorVersionUpgrade) != tc.major ||
					m.ApplyImmediately == nil || *m.ApplyImmediately || m.DBInstanceClass != nil {
					t.Errorf("ModifyDBInstance engine %s AllowMajorVersionUpgrade %v ApplyImmediately %v class %v",
						aws.ToString(m.EngineVersion), aws.ToBool(m.AllowMajorVersionUpgrade), aws.ToBool(m.ApplyImmediately), aws.ToString(m.DBInstanceClass))
				}
			}
			if tc.snapshot != "" {
				s := cw.rec.snaps[0]
				if aws.ToString(s.DBSnapshotIdentifier) != tc.snapshot || aws.ToString(s.DBInstanceIdentifier) != testInstance {
					t.Errorf("CreateDBSnapshot %s of %s, want %s", aws.ToString(s.DBSnapshotIdentifier), aws.ToString(s.DBInstanceIdentifier), tc.snapshot)
				}
				out, err := cw.Deps.AWS.RDS.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(tc.snapshot)})
				if err != nil {
					t.Fatal(err)
				}
				snap := out.DBSnapshots[0]
				if aws.ToString(snap.Status) != "available" || aws.ToString(snap.SnapshotType) != "manual" {
					t.Errorf("snapshot %s: %s, %s", tc.snapshot, aws.ToString(snap.Status), aws.ToString(snap.SnapshotType))
				}
				if tags := rdsTagMap(snap.TagList); tags[awsx.TagDeployment] != testCluster || tags["Name"] != tc.snapshot {
					t.Errorf("snapshot tags %v", tags)
				}
			}

			// Converged: a second run changes nothing and verify passes.
			cw.set(t, deploy.Options{AllowMajorVersionUpgrade: tc.allow}, nil)
			cw.mustRun(t, engine.ModeApply)
			if m := cw.Calls.Mutations(); len(m) != 0 {
				t.Errorf("second apply: %v", m)
			}
			if f := stagetest.Failed(New(cw.Deps).Verify(ctx)); len(f) != 0 {
				t.Errorf("verify after the change: %v", f)
			}
		})
	}
}

// TestStorageCannotShrink: a DB_ALLOCATED_STORAGE below the instance's is
// refused before anything changes; growing it is a change.
func TestStorageCannotShrink(t *testing.T) {
	cw := newChangeWorld(t, map[string]string{config.KeyDBAllocatedStorage: "200"}, upgradeRDS)
	cw.mustRun(t, engine.ModeApply)
	cases := []struct {
		storage string
		refused bool
	}{
		{"100", true},
		{"199", true},
		{"200", false},
	}
	for _, tc := range cases {
		t.Run(tc.storage, func(t *testing.T) {
			cw.set(t, deploy.Options{ApplyImmediately: true}, map[string]string{config.KeyDBAllocatedStorage: tc.storage})
			_, err := cw.run(t, engine.ModeApply)
			if !tc.refused {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			assertInputError(t, err, config.KeyDBAllocatedStorage, tc.storage+" GiB is less than the 200 GiB", "never shrink")
			if fault.ExitCode(err) != 2 {
				t.Errorf("exit code %d", fault.ExitCode(err))
			}
			if m := cw.Calls.Mutations(); len(m) != 0 {
				t.Errorf("mutating calls: %v", m)
			}
		})
	}
	if n := aws.ToInt32(cw.instance(t).AllocatedStorage); n != 200 {
		t.Errorf("storage now %d", n)
	}
}

// TestMajorUpgradeWhereRDSCannotList: moto does not implement
// DescribeDBEngineVersions, so the upgrade target cannot be checked; the
// input goes to RDS as is (a major alone: RDS picks its default minor)
// after the snapshot, and a notice says it was not checked.
func TestMajorUpgradeWhereRDSCannotList(t *testing.T) {
	cw := newChangeWorld(t, map[string]string{config.KeyDBEngineVersion: "16"}, nil)
	cw.mustRun(t, engine.ModeApply)
	cw.set(t, deploy.Options{AllowMajorVersionUpgrade: true}, map[string]string{config.KeyDBEngineVersion: "17"})
	evs := cw.mustRun(t, engine.ModeApply)
	if !slices.Equal(cw.rec.ops, []string{"CreateDBSnapshot", "ModifyDBInstance"}) {
		t.Fatalf("mutating RDS calls %v", cw.rec.ops)
	}
	if s := aws.ToString(cw.rec.snaps[0].DBSnapshotIdentifier); s != testInstance+"-pre-upgrade-16-17" {
		t.Errorf("snapshot %s", s)
	}
	if m := cw.rec.modifies[0]; aws.ToString(m.EngineVersion) != "17" || !aws.ToBool(m.AllowMajorVersionUpgrade) {
		t.Errorf("ModifyDBInstance engine %s AllowMajorVersionUpgrade %v", aws.ToString(m.EngineVersion), aws.ToBool(m.AllowMajorVersionUpgrade))
	}
	var noticed bool
	for _, e := range stagetest.EventsOf(evs, engine.EventNotice) {
		noticed = noticed || strings.Contains(e.Message, "could not list the upgrade targets of PostgreSQL 16")
	}
	if !noticed {
		t.Errorf("no notice that the target was not checked:\n%s", stagetest.EventLog(evs))
	}
}
