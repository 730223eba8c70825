package rds

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
)

// Changes to an existing instance's size and engine. RDS applies a class,
// storage or engine version change in the instance's weekly maintenance
// window unless the request says ApplyImmediately; until then the instance
// reports it in PendingModifiedValues, which counts as converged here (a
// second apply must not modify again). Storage only grows on RDS, the
// engine only moves up, and a major version needs AllowMajorVersionUpgrade.

// Snapshot waits: a manual snapshot of a small database takes minutes, a
// large one can take an hour.
var snapshotWait = awsx.WaitPolicy{MinDelay: 15 * time.Second, MaxDelay: 60 * time.Second, Timeout: 2 * time.Hour}

// versionChange is an engine version move the inputs ask of an existing
// instance.
type versionChange struct {
	from, to string
	major    bool
}

// pgMajor is a PostgreSQL version's major: "17" of 17.5, "9.6" of 9.6.24
// (before PostgreSQL 10 the major had two parts).
func pgMajor(v string) string {
	parts := strings.Split(v, ".")
	if n, err := strconv.Atoi(parts[0]); err == nil && n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// majorOnly says the input names a major alone ("17"): any of its minors
// satisfies it, and minor upgrades are left to RDS's auto minor version
// upgrade rather than made by every apply after a new minor is released.
func majorOnly(v string) bool { return pgMajor(v) == v }

// effectiveVersion is the engine version the instance runs or will run
// once its pending modifications are applied.
func effectiveVersion(inst *rdstypes.DBInstance) string {
	if p := inst.PendingModifiedValues; p != nil && p.EngineVersion != nil {
		return aws.ToString(p.EngineVersion)
	}
	return aws.ToString(inst.EngineVersion)
}

// checkExisting refuses what RDS cannot do to the existing instance (shrink
// its storage, downgrade its engine) and a major upgrade without
// --allow-major-version-upgrade, and works out the version change to make.
// It runs in the Validator, so a refusal comes before anything changes.
func (s *stage) checkExisting(ctx context.Context, in dbInputs, choice *engineChoice, inst *rdstypes.DBInstance) error {
	id := aws.ToString(inst.DBInstanceIdentifier)
	want, _ := strconv.Atoi(in.storage)
	if have := max(aws.ToInt32(inst.AllocatedStorage), effectiveStorage(inst)); int32(want) < have {
		return fault.Input(in.source(config.KeyDBAllocatedStorage), config.KeyDBAllocatedStorage,
			fmt.Sprintf("set DB_ALLOCATED_STORAGE=%d or more: RDS storage can grow but never shrink", have),
			"%d GiB is less than the %d GiB DB instance %s has", want, have, id)
	}
	cur := effectiveVersion(inst)
	if cur == "" {
		return nil
	}
	src := in.source(config.KeyDBEngineVersion)
	wantMajor, curMajor := pgMajor(in.version), pgMajor(cur)
	downgrade := func(keep string) error {
		return fault.Input(src, config.KeyDBEngineVersion,
			fmt.Sprintf("set DB_ENGINE_VERSION=%s (RDS cannot downgrade; to go back, restore a snapshot into a new instance)", keep),
			"PostgreSQL %s is older than the %s DB instance %s runs", in.version, cur, id)
	}
	change := &versionChange{from: cur, major: wantMajor != curMajor}
	switch {
	case versionLess(wantMajor, curMajor):
		return downgrade(curMajor)
	case !change.major && majorOnly(in.version):
		return nil
	case !change.major && in.version == cur:
		return nil
	case !change.major && versionLess(in.version, cur):
		return downgrade(cur + " or " + curMajor)
	case change.major && !s.d.Opts.AllowMajorVersionUpgrade:
		return fault.Input(src, config.KeyDBEngineVersion,
			fmt.Sprintf("pass --allow-major-version-upgrade to upgrade (a snapshot is taken first), or set DB_ENGINE_VERSION=%s", curMajor),
			"PostgreSQL %s -> %s on DB instance %s is a major version upgrade", cur, in.version, id)
	}
	to, warning, err := upgradeTarget(ctx, s.versions, in, cur, wantMajor, choice)
	if err != nil {
		return err
	}
	if warning != "" {
		choice.warnings = append(choice.warnings, warning)
	}
	change.to = to
	choice.change = change
	return nil
}

// upgradeTarget picks the version to move to and checks it is among the
// current version's upgrade targets (DescribeDBEngineVersions lists them as
// ValidUpgradeTarget; a major upgrade is only offered to some versions of
// the next majors). A major-only input takes the newest target of that
// major. When RDS cannot list them (moto does not implement the call), the
// input goes to RDS as is, which for a major alone upgrades to its default
// minor, and a warning says the target was not checked.
func upgradeTarget(ctx context.Context, client rds.DescribeDBEngineVersionsAPIClient, in dbInputs, cur, wantMajor string, choice *engineChoice) (string, string, error) {
	fallback := in.version
	if choice.resolved && !majorOnly(in.version) {
		fallback = choice.version
	}
	if client == nil {
		return fallback, "", nil
	}
	out, err := client.DescribeDBEngineVersions(ctx, &rds.DescribeDBEngineVersionsInput{Engine: aws.String(dbEngine),
		EngineVersion: aws.String(cur), IncludeAll: aws.Bool(true)}, func(o *rds.Options) { o.RetryMaxAttempts = lookupAttempts })
	if err != nil || len(out.DBEngineVersions) == 0 {
		reason := "not listed"
		if err != nil {
			reason = shortError(err)
		}
		return fallback, fmt.Sprintf("could not list the upgrade targets of PostgreSQL %s (%s): DB_ENGINE_VERSION %s goes to RDS unchecked", cur, reason, in.version), nil
	}
	var targets []string
	for _, t := range out.DBEngineVersions[0].ValidUpgradeTarget {
		targets = append(targets, aws.ToString(t.EngineVersion))
	}
	to := ""
	if majorOnly(in.version) {
		for _, t := range targets {
			if pgMajor(t) == wantMajor && (to == "" || versionLess(to, t)) {
				to = t
			}
		}
	} else if slices.Contains(targets, in.version) {
		to = in.version
	}
	if to == "" {
		slices.SortFunc(targets, func(a, b string) int {
			if versionLess(a, b) {
				return -1
			}
			return 1
		})
		return "", "", fault.Input(in.source(config.KeyDBEngineVersion), config.KeyDBEngineVersion,
			"RDS upgrades PostgreSQL "+cur+" to "+strings.Join(targets, ", "),
			"PostgreSQL %s is not an upgrade target of the %s the DB instance runs", in.version, cur)
	}
	return to, "", nil
}

func maintenanceWindow(inst *rdstypes.DBInstance) string {
	if w := aws.ToString(inst.PreferredMaintenanceWindow); w != "" {
		return "in the maintenance window " + w + " (UTC)"
	}
	return "in the next maintenance window"
}

// pending lists the class, storage and engine changes RDS holds for the
// maintenance window.
func pending(inst *rdstypes.DBInstance) []string {
	p := inst.PendingModifiedValues
	if p == nil {
		return nil
	}
	var out []string
	if p.DBInstanceClass != nil {
		out = append(out, fmt.Sprintf("class %s -> %s", aws.ToString(inst.DBInstanceClass), aws.ToString(p.DBInstanceClass)))
	}
	if p.AllocatedStorage != nil {
		out = append(out, fmt.Sprintf("storage %d -> %d GiB", aws.ToInt32(inst.AllocatedStorage), aws.ToInt32(p.AllocatedStorage)))
	}
	if p.EngineVersion != nil {
		out = append(out, fmt.Sprintf("PostgreSQL %s -> %s", aws.ToString(inst.EngineVersion), aws.ToString(p.EngineVersion)))
	}
	return out
}

// sizeChanges are the class, storage and engine version changes, applied
// in the maintenance window unless --apply-immediately. With that flag,
// changes already pending are sent again: a request with ApplyImmediately
// applies the instance's pending modifications too.
func (s *stage) sizeChanges(inst *rdstypes.DBInstance, vc *versionChange) []change {
	now := s.d.Opts.ApplyImmediately
	var out []change
	if want, have := s.instanceClass(), effectiveClass(inst); want != have {
		out = append(out, change{what: fmt.Sprintf("class %s -> %s", have, want), immediate: now, sized: true,
			set: func(in *rds.ModifyDBInstanceInput) { in.DBInstanceClass = aws.String(want) }})
	} else if now && want != aws.ToString(inst.DBInstanceClass) {
		out = append(out, change{what: "pending class -> " + want, immediate: true, sized: true,
			set: func(in *rds.ModifyDBInstanceInput) { in.DBInstanceClass = aws.String(want) }})
	}
	if want, have := s.storage(), effectiveStorage(inst); want > have {
		out = append(out, change{what: fmt.Sprintf("storage %d -> %d GiB", have, want), immediate: now, sized: true,
			set: func(in *rds.ModifyDBInstanceInput) { in.AllocatedStorage = aws.Int32(want) }})
	} else if now && have > aws.ToInt32(inst.AllocatedStorage) {
		out = append(out, change{what: fmt.Sprintf("pending storage -> %d GiB", have), immediate: true, sized: true,
			set: func(in *rds.ModifyDBInstanceInput) { in.AllocatedStorage = aws.Int32(have) }})
	}
	if vc != nil {
		what := fmt.Sprintf("PostgreSQL %s -> %s", vc.from, vc.to)
		if vc.major {
			what = fmt.Sprintf("PostgreSQL %s -> %s (major upgrade, after snapshot %s)", vc.from, vc.to, s.preUpgradeSnapshotID(inst, vc))
		}
		out = append(out, change{what: what, immediate: now, sized: true, major: vc.major, set: func(in *rds.ModifyDBInstanceInput) {
			in.EngineVersion = aws.String(vc.to)
			if vc.major {
				in.AllowMajorVersionUpgrade = aws.Bool(true)
			}
		}})
	} else if p := inst.PendingModifiedValues; now && p != nil && p.EngineVersion != nil {
		v := aws.ToString(p.EngineVersion)
		out = append(out, change{what: "pending PostgreSQL -> " + v, immediate: true, sized: true, set: func(in *rds.ModifyDBInstanceInput) {
			in.EngineVersion = aws.String(v)
			if pgMajor(v) != pgMajor(aws.ToString(inst.EngineVersion)) {
				in.AllowMajorVersionUpgrade = aws.Bool(true)
			}
		}})
	}
	return out
}

// preUpgradeSnapshotID is "<instance>-pre-upgrade-<from>-<to>" with the
// versions' dots as hyphens: snapshot identifiers hold only letters,
// digits and single hyphens.
func (s *stage) preUpgradeSnapshotID(inst *rdstypes.DBInstance, vc *versionChange) string {
	dashed := func(v string) string { return strings.ReplaceAll(v, ".", "-") }
	return aws.ToString(inst.DBInstanceIdentifier) + "-pre-upgrade-" + dashed(vc.from) + "-" + dashed(vc.to)
}

// preUpgradeSnapshot takes a manual snapshot before a major upgrade and
// waits until it is available. A snapshot of that name left by an
// interrupted run is waited for, not taken again.
func (s *stage) preUpgradeSnapshot(ctx context.Context, r engine.Reporter, inst *rdstypes.DBInstance, vc *versionChange) error {
	id, snap := aws.ToString(inst.DBInstanceIdentifier), s.preUpgradeSnapshotID(inst, vc)
	// RDS snapshots only an available instance (InvalidDBInstanceState
	// otherwise): one still backing up or modifying is waited for first.
	if aws.ToString(inst.DBInstanceStatus) != "available" {
		if _, err := s.awaitAvailable(ctx, r, id, "DB instance "+id+" before its snapshot"); err != nil {
			return fmt.Errorf("DB instance %s did not become available for its pre-upgrade snapshot: %w", id, err)
		}
	}
	r.Notice(fmt.Sprintf("taking snapshot %s of DB instance %s before its major upgrade to PostgreSQL %s", snap, id, vc.to),
		map[string]any{"snapshot": snap})
	_, err := s.d.AWS.RDS.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String(id),
		DBSnapshotIdentifier: aws.String(snap), Tags: rdsTags(s.tags(snap))})
	if err != nil && !strings.HasPrefix(awsx.ErrorCode(err), "DBSnapshotAlreadyExists") {
		return awsx.Describe("snapshot DB instance "+id, err)
	}
	wait := s.d.Opts.Wait.For(snapshotWait)
	w := rds.NewDBSnapshotAvailableWaiter(s.d.AWS.RDS, func(o *rds.DBSnapshotAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "snapshot "+snap, snapshotStatus, o.Retryable)
	})
	if err := w.Wait(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(snap)}, wait.Timeout); err != nil {
		return fmt.Errorf("snapshot %s did not become available, so DB instance %s was not upgraded: %w", snap, id, err)
	}
	return nil
}

func snapshotStatus(out *rds.DescribeDBSnapshotsOutput) string {
	if len(out.DBSnapshots) == 0 {
		return "not found"
	}
	return aws.ToString(out.DBSnapshots[0].Status)
}

// checkSize is verify's view of the class, storage and engine version:
// what RDS holds for the maintenance window is a warning that says so, not
// a failure.
func (s *stage) checkSize(inst *rdstypes.DBInstance) engine.Check {
	in := s.inputs()
	class, storage, version := aws.ToString(inst.DBInstanceClass), aws.ToInt32(inst.AllocatedStorage), aws.ToString(inst.EngineVersion)
	var wrong []string
	if class != in.class {
		wrong = append(wrong, fmt.Sprintf("class %s, want %s", class, in.class))
	}
	if want := s.storage(); storage < want {
		wrong = append(wrong, fmt.Sprintf("storage %d GiB, want %d", storage, want))
	}
	if !versionSatisfies(version, in.version) {
		wrong = append(wrong, fmt.Sprintf("PostgreSQL %s, want %s", version, in.version))
	}
	have := fmt.Sprintf("%s, %d GiB, PostgreSQL %s", class, storage, version)
	if len(wrong) == 0 {
		return engine.Passf("size", "%s as configured", have)
	}
	p := pending(inst)
	settled := (class == in.class || effectiveClass(inst) == in.class) && effectiveStorage(inst) >= s.storage() &&
		versionSatisfies(effectiveVersion(inst), in.version)
	if len(p) > 0 && settled {
		return engine.Warnf("size", "it applies by itself; `coderctl up --apply-immediately` applies it now",
			"pending %s: %s (now %s)", maintenanceWindow(inst), strings.Join(p, ", "), have)
	}
	return engine.Failf("size", applyHint+" (a major version upgrade also needs --allow-major-version-upgrade)",
		"%s", strings.Join(wrong, "; "))
}

// versionSatisfies says whether an instance running have meets the input
// want: the same version, or any minor of a major-only input.
func versionSatisfies(have, want string) bool {
	if majorOnly(want) {
		return pgMajor(have) == want
	}
	return have == want
}
