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
	"github.com/coderctl/coderctl/internal/names"
)

// Waiting for RDS: creation takes 15-35 minutes, Multi-AZ longer; poll
// every 30-60 s (the SDK's own maximum of 30 minutes between polls would
// hide progress), give up after 90 minutes.
var instanceWait = awsx.WaitPolicy{MinDelay: 30 * time.Second, MaxDelay: 60 * time.Second, Timeout: 90 * time.Minute}

// findInstance looks the instance up by the ID in state, then by its
// deterministic identifier (RDS cannot filter instances by tag). nil when
// it does not exist; an instance tagged for another deployment is an error.
func (s *stage) findInstance(ctx context.Context) (*rdstypes.DBInstance, error) {
	ids := []string{s.name()}
	if id := s.d.State.Get(names.KeyDBInstanceID); id != "" && id != s.name() {
		ids = []string{id, s.name()}
	}
	for _, id := range ids {
		out, err := s.d.AWS.RDS.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
		if awsx.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, awsx.Describe("describe DB instance "+id, err)
		}
		if len(out.DBInstances) == 0 {
			continue
		}
		inst := &out.DBInstances[0]
		if other := rdsTagMap(inst.TagList)[awsx.TagDeployment]; other != "" && other != s.d.Deployment() {
			return nil, fmt.Errorf("DB instance %s belongs to deployment %q, not %q", id, other, s.d.Deployment())
		}
		return inst, nil
	}
	return nil, nil
}

// change is one difference between the instance and what the deployment
// wants. Safety settings apply at once; size and engine changes wait for
// the maintenance window unless --apply-immediately, so an apply never
// causes a surprise failover. A major engine upgrade is preceded by a
// snapshot.
type change struct {
	what      string
	immediate bool
	// sized marks class, storage and engine changes: the ones
	// --apply-immediately moves out of the maintenance window.
	sized bool
	major bool
	set   func(*rds.ModifyDBInstanceInput)
}

// drift lists the changes that would bring inst to the wanted settings; vc
// is the engine version change the Validator worked out (nil: none).
func (s *stage) drift(inst *rdstypes.DBInstance, vc *versionChange) []change {
	var out []change
	if !aws.ToBool(inst.MultiAZ) && !pendingMultiAZ(inst) {
		out = append(out, change{what: "MultiAZ false -> true", immediate: true, set: func(in *rds.ModifyDBInstanceInput) { in.MultiAZ = aws.Bool(true) }})
	}
	if !aws.ToBool(inst.DeletionProtection) {
		out = append(out, change{what: "deletion protection off -> on", immediate: true, set: func(in *rds.ModifyDBInstanceInput) { in.DeletionProtection = aws.Bool(true) }})
	}
	if aws.ToInt32(inst.BackupRetentionPeriod) < backupRetentionDays {
		out = append(out, change{what: fmt.Sprintf("backup retention %d -> %d days", aws.ToInt32(inst.BackupRetentionPeriod), backupRetentionDays), immediate: true,
			set: func(in *rds.ModifyDBInstanceInput) { in.BackupRetentionPeriod = aws.Int32(backupRetentionDays) }})
	}
	if aws.ToBool(inst.PubliclyAccessible) {
		out = append(out, change{what: "publicly accessible -> private", immediate: true, set: func(in *rds.ModifyDBInstanceInput) { in.PubliclyAccessible = aws.Bool(false) }})
	}
	if sg := s.d.State.Get(names.KeyDBSecurityGroupID); sg != "" && !onlySecurityGroup(inst, sg) {
		out = append(out, change{what: "security groups -> only " + sg, immediate: true, set: func(in *rds.ModifyDBInstanceInput) { in.VpcSecurityGroupIds = []string{sg} }})
	}
	return append(out, s.sizeChanges(inst, vc)...)
}

func pendingMultiAZ(inst *rdstypes.DBInstance) bool {
	return inst.PendingModifiedValues != nil && aws.ToBool(inst.PendingModifiedValues.MultiAZ)
}

func effectiveClass(inst *rdstypes.DBInstance) string {
	if p := inst.PendingModifiedValues; p != nil && p.DBInstanceClass != nil {
		return aws.ToString(p.DBInstanceClass)
	}
	return aws.ToString(inst.DBInstanceClass)
}

func effectiveStorage(inst *rdstypes.DBInstance) int32 {
	if p := inst.PendingModifiedValues; p != nil && p.AllocatedStorage != nil {
		return aws.ToInt32(p.AllocatedStorage)
	}
	return aws.ToInt32(inst.AllocatedStorage)
}

func onlySecurityGroup(inst *rdstypes.DBInstance, sg string) bool {
	return len(inst.VpcSecurityGroups) == 1 && aws.ToString(inst.VpcSecurityGroups[0].VpcSecurityGroupId) == sg
}

func (s *stage) instanceClass() string { return s.d.Inputs.Get(config.KeyDBInstanceClass) }

func (s *stage) storage() int32 {
	n, _ := strconv.Atoi(s.d.Inputs.Get(config.KeyDBAllocatedStorage))
	return int32(n)
}

func (s *stage) planInstance(ctx context.Context) ([]engine.Action, error) {
	res := "DB instance " + s.name()
	inst, err := s.findInstance(ctx)
	if err != nil {
		return nil, err
	}
	if inst == nil {
		choice, err := s.checkedInputs(ctx)
		if err != nil {
			return nil, err
		}
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: fmt.Sprintf(
			"PostgreSQL %s on %s, Multi-AZ, %d GiB gp3 encrypted, private, %d-day backups, deletion protection",
			choice.version, s.instanceClass(), s.storage(), backupRetentionDays)}}, nil
	}
	choice, err := s.checkedInputs(ctx)
	if err != nil {
		return nil, err
	}
	var acts []engine.Action
	if !aws.ToBool(inst.StorageEncrypted) {
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: res,
			Reason: "storage is NOT encrypted and cannot be encrypted in place: restore an encrypted copy of a snapshot"})
	}
	// Pending changes are shown with the window they wait for, unless
	// --apply-immediately turns them into changes of this run.
	var held string
	if p := pending(inst); len(p) > 0 && !s.d.Opts.ApplyImmediately {
		held = "; pending " + maintenanceWindow(inst) + ": " + strings.Join(p, ", ")
	}
	if changes := s.drift(inst, choice.change); len(changes) > 0 {
		acts = append(acts, engine.Action{Kind: engine.Update, Resource: res, Reason: s.describeTimed(inst, changes) + held})
	}
	if len(acts) == 0 {
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: res, Reason: "exists (" + aws.ToString(inst.DBInstanceStatus) + ") as configured" + held})
	}
	return acts, nil
}

func describeChanges(changes []change) string {
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = c.what
	}
	return strings.Join(parts, ", ")
}

// describeTimed groups changes by when they take effect: "X, Y now; Z in
// the maintenance window ...".
func (s *stage) describeTimed(inst *rdstypes.DBInstance, changes []change) string {
	var now, later []change
	for _, c := range changes {
		if c.immediate {
			now = append(now, c)
		} else {
			later = append(later, c)
		}
	}
	var parts []string
	if len(now) > 0 {
		when := " now"
		if slices.ContainsFunc(now, func(c change) bool { return c.sized }) {
			when = " now (--apply-immediately)"
		}
		parts = append(parts, describeChanges(now)+when)
	}
	if len(later) > 0 {
		parts = append(parts, describeChanges(later)+" "+maintenanceWindow(inst))
	}
	return strings.Join(parts, "; ")
}

func (s *stage) applyInstance(ctx context.Context, r engine.Reporter) error {
	inst, err := s.findInstance(ctx)
	if err != nil {
		return err
	}
	id := s.name()
	if inst == nil {
		if err := s.createInstance(ctx, r); err != nil {
			return err
		}
	} else {
		id = aws.ToString(inst.DBInstanceIdentifier)
		modified, err := s.convergeInstance(ctx, r, inst)
		if err != nil {
			return err
		}
		if modified {
			inst = nil // what was described is stale: wait and describe again
		}
	}
	return s.waitAvailable(ctx, r, id, inst)
}

// createInstance creates the instance with the password from the secret
// and records DB_INSTANCE_ID before waiting. RDS has no client token: the
// identifier is the idempotency key (a retried create finds it).
func (s *stage) createInstance(ctx context.Context, r engine.Reporter) error {
	choice, err := s.checkedInputs(ctx)
	if err != nil {
		return err
	}
	for _, w := range choice.warnings {
		r.Notice(w, nil)
	}
	sg, err := s.d.Output(names.KeyDBSecurityGroupID, Name)
	if err != nil {
		return err
	}
	_, doc, err := s.recordedMasterSecret(ctx)
	if err != nil {
		return err
	}
	r.Progress(fmt.Sprintf("creating DB instance %s (PostgreSQL %s, %s, Multi-AZ)", s.name(), choice.version, s.instanceClass()))
	_, err = s.d.AWS.RDS.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{
		DBInstanceIdentifier:  aws.String(s.name()),
		Engine:                aws.String(dbEngine),
		EngineVersion:         aws.String(choice.version),
		DBInstanceClass:       aws.String(s.instanceClass()),
		MultiAZ:               aws.Bool(true),
		AllocatedStorage:      aws.Int32(s.storage()),
		StorageType:           aws.String(storageType),
		StorageEncrypted:      aws.Bool(true),
		PubliclyAccessible:    aws.Bool(false),
		BackupRetentionPeriod: aws.Int32(backupRetentionDays),
		DeletionProtection:    aws.Bool(true),
		CopyTagsToSnapshot:    aws.Bool(true),
		DBName:                aws.String(names.DatabaseName),
		MasterUsername:        aws.String(names.MasterUsername),
		MasterUserPassword:    aws.String(doc.Password),
		Port:                  aws.Int32(Port),
		DBSubnetGroupName:     aws.String(s.name()),
		VpcSecurityGroupIds:   []string{sg},
		Tags:                  rdsTags(s.tags(s.name())),
	})
	if err != nil && awsx.ErrorCode(err) != "DBInstanceAlreadyExists" && awsx.ErrorCode(err) != "DBInstanceAlreadyExistsFault" {
		return awsx.Describe("create DB instance "+s.name(), err)
	}
	return s.d.Record(map[string]string{names.KeyDBInstanceID: s.name()})
}

// convergeInstance records the adopted instance and fixes what drifted; it
// reports whether it modified the instance.
func (s *stage) convergeInstance(ctx context.Context, r engine.Reporter, inst *rdstypes.DBInstance) (bool, error) {
	id := aws.ToString(inst.DBInstanceIdentifier)
	status := aws.ToString(inst.DBInstanceStatus)
	if status == "deleting" || status == "deleted" {
		return false, fmt.Errorf("DB instance %s is being deleted: wait for it to go (or restore its final snapshot), then apply again", id)
	}
	if s.d.State.Get(names.KeyDBInstanceID) != id {
		if err := s.d.Record(map[string]string{names.KeyDBInstanceID: id}); err != nil {
			return false, err
		}
	}
	choice, err := s.checkedInputs(ctx)
	if err != nil {
		return false, err
	}
	if choice.change != nil {
		for _, w := range choice.warnings {
			r.Notice(w, nil)
		}
	}
	changes := s.drift(inst, choice.change)
	if slices.ContainsFunc(changes, func(c change) bool { return c.major }) {
		if err := s.preUpgradeSnapshot(ctx, r, inst, choice.change); err != nil {
			return false, err
		}
	}
	modified := false
	for _, immediate := range []bool{true, false} {
		in := &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String(id), ApplyImmediately: aws.Bool(immediate)}
		var applied []change
		for _, c := range changes {
			if c.immediate == immediate {
				c.set(in)
				applied = append(applied, c)
			}
		}
		if len(applied) == 0 {
			continue
		}
		r.Notice("DB instance "+id+" drifted, modifying: "+s.describeTimed(inst, applied), nil)
		if _, err := s.d.AWS.RDS.ModifyDBInstance(ctx, in); err != nil {
			return modified, awsx.Describe("modify DB instance "+id, err)
		}
		modified = true
	}
	return modified, nil
}

// awaitAvailable waits with the SDK's waiter until instance id is
// available, reporting its status at each poll as what, and returns it.
func (s *stage) awaitAvailable(ctx context.Context, r engine.Reporter, id, what string) (*rdstypes.DBInstance, error) {
	wait := s.d.Opts.Wait.For(instanceWait)
	w := rds.NewDBInstanceAvailableWaiter(s.d.AWS.RDS, func(o *rds.DBInstanceAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, what, instanceStatus, o.Retryable)
	})
	out, err := w.WaitForOutput(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)}, wait.Timeout)
	if err != nil {
		return nil, err
	}
	return &out.DBInstances[0], nil
}

// waitAvailable waits for the instance, reporting its status at each
// poll, then records its endpoint and puts it in the secret.
func (s *stage) waitAvailable(ctx context.Context, r engine.Reporter, id string, known *rdstypes.DBInstance) error {
	inst := known
	if inst == nil || aws.ToString(inst.DBInstanceStatus) != "available" || inst.Endpoint == nil {
		var err error
		if inst, err = s.awaitAvailable(ctx, r, id, "DB instance "+id); err != nil {
			return fmt.Errorf("DB instance %s did not become available: %w", id, err)
		}
	}
	if inst.Endpoint == nil {
		return fmt.Errorf("DB instance %s is available but has no endpoint", id)
	}
	host, port := aws.ToString(inst.Endpoint.Address), aws.ToInt32(inst.Endpoint.Port)
	want := map[string]string{names.KeyRDSEndpoint: host, names.KeyRDSPort: strconv.Itoa(int(port))}
	if s.d.State.Get(names.KeyRDSEndpoint) != want[names.KeyRDSEndpoint] || s.d.State.Get(names.KeyRDSPort) != want[names.KeyRDSPort] {
		if err := s.d.Record(want); err != nil {
			return err
		}
	}
	return s.syncSecretEndpoint(ctx, r, host, port)
}

func instanceStatus(out *rds.DescribeDBInstancesOutput) string {
	if len(out.DBInstances) == 0 {
		return "not found"
	}
	return aws.ToString(out.DBInstances[0].DBInstanceStatus)
}

// checkDestroy refuses, before a destroy changes anything, to go on towards
// a database with deletion protection without --delete-database: the
// instance step would refuse it after the stages built on the database and
// the cluster were gone.
func (s *stage) checkDestroy(ctx context.Context) error {
	if s.d.Opts.DeleteDatabase || s.d.AWS == nil {
		return nil
	}
	inst, err := s.findInstance(ctx)
	if err != nil || inst == nil || !aws.ToBool(inst.DeletionProtection) {
		return err
	}
	id := aws.ToString(inst.DBInstanceIdentifier)
	return fault.Input("flag --delete-database", "",
		fmt.Sprintf("pass --delete-database to delete it (a final snapshot %s-final-<timestamp> is taken unless --skip-final-snapshot), or destroy other stages alone with 'coderctl stage NAME destroy'", id),
		"DB instance %s has deletion protection on; nothing was deleted", id)
}

// refuseProtectedDelete is destroy's guard: a database with deletion
// protection is deleted only when the user said --delete-database.
func (s *stage) refuseProtectedDelete(ctx context.Context) error {
	if s.d.Opts.DeleteDatabase {
		return nil
	}
	inst, err := s.findInstance(ctx)
	if err != nil || inst == nil || !aws.ToBool(inst.DeletionProtection) {
		return err
	}
	id := aws.ToString(inst.DBInstanceIdentifier)
	return fmt.Errorf("DB instance %s has deletion protection on and is kept: pass --delete-database to delete it "+
		"(a final snapshot %s-final-<timestamp> is taken unless --skip-final-snapshot)", id, id)
}

func (s *stage) destroyInstance(ctx context.Context, r engine.Reporter) error {
	if err := s.refuseProtectedDelete(ctx); err != nil {
		return err
	}
	inst, err := s.findInstance(ctx)
	if err != nil {
		return err
	}
	if inst != nil {
		if err := s.deleteInstance(ctx, r, inst); err != nil {
			return err
		}
	}
	return s.d.State.Unset(names.KeyDBInstanceID, names.KeyRDSEndpoint, names.KeyRDSPort)
}

func (s *stage) deleteInstance(ctx context.Context, r engine.Reporter, inst *rdstypes.DBInstance) error {
	id := aws.ToString(inst.DBInstanceIdentifier)
	if aws.ToString(inst.DBInstanceStatus) != "deleting" {
		if aws.ToBool(inst.DeletionProtection) {
			r.Progress("turning off deletion protection of " + id + " (--delete-database)")
			_, err := s.d.AWS.RDS.ModifyDBInstance(ctx, &rds.ModifyDBInstanceInput{
				DBInstanceIdentifier: aws.String(id), DeletionProtection: aws.Bool(false), ApplyImmediately: aws.Bool(true),
			})
			if err != nil {
				return awsx.Describe("turn off deletion protection of "+id, err)
			}
		}
		in := &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id)}
		if s.d.Opts.SkipFinalSnapshot {
			in.SkipFinalSnapshot = aws.Bool(true)
			r.Notice("deleting DB instance "+id+" WITHOUT a final snapshot (--skip-final-snapshot)", nil)
		} else {
			snap := FinalSnapshotID(id, s.d.Clock())
			in.FinalDBSnapshotIdentifier = aws.String(snap)
			r.Notice("deleting DB instance "+id+"; its data is kept in final snapshot "+snap, map[string]any{"snapshot": snap})
		}
		if _, err := s.d.AWS.RDS.DeleteDBInstance(ctx, in); err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("delete DB instance "+id, err)
		}
	}
	wait := s.d.Opts.Wait.For(instanceWait)
	w := rds.NewDBInstanceDeletedWaiter(s.d.AWS.RDS, func(o *rds.DBInstanceDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "DB instance "+id+" to be deleted", instanceStatus, o.Retryable)
	})
	if err := w.Wait(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)}, wait.Timeout); err != nil {
		return fmt.Errorf("DB instance %s was not deleted: %w", id, err)
	}
	return nil
}

// FinalSnapshotID names the snapshot destroy takes: "<id>-final-<UTC time>".
func FinalSnapshotID(instanceID string, now time.Time) string {
	return instanceID + "-final-" + now.UTC().Format("20060102-150405")
}
