package rds

import (
	"context"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

const applyHint = "run 'coderctl stage rds apply'"

// verify is the stage's checkpoint. MultiAZ is checked on its own because
// an instance can end up single-AZ without any error having been shown.
func (s *stage) verify(ctx context.Context) []engine.Check {
	inst, err := s.findInstance(ctx)
	if err != nil {
		return []engine.Check{engine.Failf("instance", "check RDS permissions", "cannot describe the database: %v", err)}
	}
	if inst == nil {
		return []engine.Check{engine.Failf("instance", applyHint, "DB instance %s does not exist", s.name())}
	}
	checks := []engine.Check{
		checkAvailable(inst),
		checkFlag("multi-az", aws.ToBool(inst.MultiAZ), "Multi-AZ: a standby in another zone",
			"the instance is single-AZ: "+applyHint+" to modify it back to Multi-AZ", "the instance is NOT Multi-AZ"),
		checkFlag("encrypted", aws.ToBool(inst.StorageEncrypted), "storage encrypted",
			"restore an encrypted copy of a snapshot into a new instance", "storage is NOT encrypted"),
		checkFlag("private", !aws.ToBool(inst.PubliclyAccessible), "not publicly accessible",
			applyHint+" to make it private", "the instance is publicly accessible"),
		checkFlag("deletion-protection", aws.ToBool(inst.DeletionProtection), "deletion protection on",
			applyHint+" to turn it back on", "deletion protection is off"),
		checkBackups(inst),
		s.checkSize(inst),
		s.checkEndpoint(inst),
		s.checkIngress(ctx),
		s.checkSecret(ctx, inst),
	}
	return checks
}

func checkFlag(name string, ok bool, pass, hint, fail string) engine.Check {
	if ok {
		return engine.Passf(name, "%s", pass)
	}
	return engine.Failf(name, hint, "%s", fail)
}

func checkAvailable(inst *rdstypes.DBInstance) engine.Check {
	id, status := aws.ToString(inst.DBInstanceIdentifier), aws.ToString(inst.DBInstanceStatus)
	if status != "available" {
		return engine.Failf("instance", "wait for it, or see the RDS console's events for "+id, "%s is %s, not available", id, status)
	}
	return engine.Passf("instance", "%s available: PostgreSQL %s on %s", id, aws.ToString(inst.EngineVersion), aws.ToString(inst.DBInstanceClass))
}

func checkBackups(inst *rdstypes.DBInstance) engine.Check {
	days := aws.ToInt32(inst.BackupRetentionPeriod)
	if days < backupRetentionDays {
		return engine.Failf("backups", applyHint, "backup retention is %d days, want at least %d", days, backupRetentionDays)
	}
	return engine.Passf("backups", "automated backups kept %d days", days)
}

func (s *stage) checkEndpoint(inst *rdstypes.DBInstance) engine.Check {
	if inst.Endpoint == nil {
		return engine.Failf("endpoint", "wait for the instance to be available", "the instance has no endpoint yet")
	}
	host, port := aws.ToString(inst.Endpoint.Address), strconv.Itoa(int(aws.ToInt32(inst.Endpoint.Port)))
	if s.d.State.Get(names.KeyRDSEndpoint) != host || s.d.State.Get(names.KeyRDSPort) != port {
		return engine.Failf("endpoint", applyHint+" to record it", "state says %s:%s, the instance is at %s:%s",
			s.d.State.Get(names.KeyRDSEndpoint), s.d.State.Get(names.KeyRDSPort), host, port)
	}
	return engine.Passf("endpoint", "%s:%s recorded", host, port)
}

// checkIngress wants exactly one ingress rule: 5432 from the cluster.
func (s *stage) checkIngress(ctx context.Context) engine.Check {
	clusterSG := s.d.State.Get(names.KeyClusterSecurityGroupID)
	sg, err := s.findSecurityGroup(ctx)
	switch {
	case err != nil:
		return engine.Failf("ingress-rule", "", "cannot read the database security group: %v", err)
	case sg == nil:
		return engine.Failf("ingress-rule", applyHint, "security group %s does not exist", s.name())
	case clusterSG == "":
		return engine.Failf("ingress-rule", "run 'coderctl stage eks apply'", "CLUSTER_SECURITY_GROUP_ID is not in %s", s.d.State.Path())
	}
	want, extra, err := s.ingressRules(ctx, aws.ToString(sg.GroupId), clusterSG)
	switch {
	case err != nil:
		return engine.Failf("ingress-rule", "", "%v", err)
	case want == nil:
		return engine.Failf("ingress-rule", applyHint, "no rule lets %d/tcp in from the cluster security group %s", Port, clusterSG)
	case len(extra) > 0:
		return engine.Failf("ingress-rule", applyHint+" to revoke them",
			"the database security group %s also lets in: %s", aws.ToString(sg.GroupId), describeRules(extra))
	}
	return engine.Passf("ingress-rule", "only %d/tcp from %s", Port, clusterSG)
}

// checkSecret proves the secret exists and describes the instance; the
// password itself is never shown.
func (s *stage) checkSecret(ctx context.Context, inst *rdstypes.DBInstance) engine.Check {
	name := s.secretName()
	sec, err := s.findSecret(ctx)
	switch {
	case err != nil:
		return engine.Failf("master-secret", "", "%v", err)
	case sec == nil:
		if legacy, _, err := s.legacySecret(ctx); err == nil && legacy != nil {
			return engine.Failf("master-secret", applyHint+" to move it (the password does not change)",
				"secret %s does not exist; the deployment's credentials are still in %s", name, legacySecretName)
		}
		return engine.Failf("master-secret", applyHint+" to reset the master password into a new secret", "secret %s does not exist", name)
	case sec.DeletedDate != nil:
		return engine.Failf("master-secret", applyHint+" to restore it", "secret %s is scheduled for deletion", name)
	}
	doc, err := s.readMasterSecret(ctx, aws.ToString(sec.ARN))
	if err != nil {
		return engine.Failf("master-secret", "", "%v", err)
	}
	if inst.Endpoint != nil && (doc.Host != aws.ToString(inst.Endpoint.Address) || doc.Port != aws.ToInt32(inst.Endpoint.Port)) {
		return engine.Failf("master-secret", applyHint, "secret %s points at %s:%d, the instance is at %s:%d", name,
			doc.Host, doc.Port, aws.ToString(inst.Endpoint.Address), aws.ToInt32(inst.Endpoint.Port))
	}
	if doc.Username != aws.ToString(inst.MasterUsername) {
		return engine.Failf("master-secret", "", "secret %s names user %q, the instance's master user is %q", name, doc.Username, aws.ToString(inst.MasterUsername))
	}
	return engine.Passf("master-secret", "%s holds the credentials for %s:%d", name, doc.Host, doc.Port)
}
