// Package rds is the guide's "Database" step: a PostgreSQL instance for
// Coder, Multi-AZ, encrypted, private, backed up and protected from
// deletion, reachable on 5432 only from the EKS cluster's security group.
// Its master password is generated here and lives only in Secrets Manager.
//
// The instance needs only the network, so its 15-35 minute creation runs
// while the EKS cluster is still being created; only the ingress rule waits
// for the cluster's security group.
package rds

import (
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = names.StageRDS

// Port is the database's port, as Coder connects to it.
const Port = 5432

// Fixed properties of the instance.
const (
	dbEngine            = "postgres"
	storageType         = "gp3"
	backupRetentionDays = 7
)

// Step names; other stages and tests refer to them as "rds/<name>".
const (
	StepSubnetGroup   = "subnet-group"
	StepSecurityGroup = "security-group"
	StepMasterSecret  = "master-secret"
	StepIngressRule   = "ingress-rule"
)

// New builds the rds stage.
func New(d *deploy.Deps) engine.Stage { return newStage(d).definition() }

// stage holds the stage's dependencies. The two RDS lookups are interfaces
// so tests can answer them where moto cannot (moto does not implement
// DescribeDBEngineVersions and knows no orderable options for postgres).
type stage struct {
	d         *deploy.Deps
	versions  rds.DescribeDBEngineVersionsAPIClient
	orderable rds.DescribeOrderableDBInstanceOptionsAPIClient

	// choice caches the resolved engine version for the run: the Validator,
	// plan and apply all need it, and the lookup is slow where it fails.
	mu     sync.Mutex
	choice *engineChoice
}

// newStage builds the stage without touching AWS: commands that only read
// the state file (status) build every stage with no AWS clients.
func newStage(d *deploy.Deps) *stage {
	s := &stage{d: d}
	if d.AWS != nil {
		s.versions, s.orderable = d.AWS.RDS, d.AWS.RDS
	}
	return s
}

func (s *stage) definition() engine.Stage {
	return engine.Stage{
		Name:    Name,
		Summary: "PostgreSQL multi-AZ, encrypted, private; master password only in Secrets Manager",
		Needs:   []string{names.StageNetwork, names.StageEKS},
		// Of the cluster, the database uses only its security group, in
		// the ingress rule, whose step edge to eks/cluster has the rule
		// revoked before the cluster goes: the cluster's deletion need not
		// wait for the instance's (each takes minutes on AWS). The network
		// still waits for the whole stage (the instance's interfaces).
		DestroyAlongside: []string{names.StageEKS},
		Reads: []string{config.KeyClusterName, config.KeyRegion, config.KeyDBInstanceClass, config.KeyDBEngineVersion,
			config.KeyDBAllocatedStorage, names.KeyVPCID, names.KeyPrivateSubnetIDs, names.KeyClusterSecurityGroupID},
		Writes: []string{names.KeyDBSecurityGroupID, names.KeyRDSEndpoint, names.KeyRDSPort, names.KeyMasterSecretARN, names.KeyDBInstanceID},
		Steps: []engine.Step{
			{Name: StepSubnetGroup, Needs: []string{engine.StepID(names.StageNetwork, names.NetworkStepSubnets)}, Typical: 5 * time.Second,
				Plan: s.planSubnetGroup, Apply: s.applySubnetGroup, Destroy: s.destroySubnetGroup},
			{Name: StepSecurityGroup, Needs: []string{engine.StepID(names.StageNetwork, names.NetworkStepVPC)}, Typical: 5 * time.Second,
				Plan: s.planSecurityGroup, Apply: s.applySecurityGroup, Destroy: s.destroySecurityGroup},
			// The secret depends on nothing, but an empty Needs would mean
			// "after the network and eks checkpoints"; network/vpc is the
			// earliest point the stage may start from.
			{Name: StepMasterSecret, Needs: []string{engine.StepID(names.StageNetwork, names.NetworkStepVPC)}, Typical: 2 * time.Second,
				Plan: s.planMasterSecret, Apply: s.applyMasterSecret, Destroy: s.destroyMasterSecret},
			{Name: names.RDSStepInstance, Needs: []string{stepID(StepSubnetGroup), stepID(StepSecurityGroup), stepID(StepMasterSecret)},
				Typical: 20 * time.Minute, Plan: s.planInstance, Apply: s.applyInstance, Destroy: s.destroyInstance},
			{Name: StepIngressRule, Needs: []string{stepID(StepSecurityGroup), engine.StepID(names.StageEKS, names.EKSStepCluster)}, Typical: 5 * time.Second,
				Plan: s.planIngressRule, Apply: s.applyIngressRule, Destroy: s.destroyIngressRule},
		},
		Verify:       s.verify,
		Validate:     s.validate,
		CheckDestroy: s.checkDestroy,
	}
}

func stepID(step string) string { return engine.StepID(Name, step) }

// name is the identifier of the instance, its subnet group and its
// security group.
func (s *stage) name() string { return InstanceIdentifier(s.d.Deployment()) }

// secretName is the Secrets Manager secret holding MasterSecret,
// coder/<deployment>/db-master.
func (s *stage) secretName() string { return names.MasterSecretName(s.d.Deployment()) }

// legacySecretName is the master secret's name before deployments had
// their own prefix; a secret of this name tagged for this deployment is
// moved to secretName (see moveLegacySecret).
var legacySecretName = names.LegacySecretName(names.MasterSecretLeaf)

// tags are the stage's tags for a resource called name.
func (s *stage) tags(name string) map[string]string {
	return s.d.Tags(Name, map[string]string{"Name": name})
}

// maxIdentifierLen is RDS's limit on DB instance identifiers.
const maxIdentifierLen = 63

// InstanceIdentifier is "<cluster>-coder-db", made a valid RDS identifier:
// lower case, letters, digits and single hyphens, starting with a letter,
// at most 63 characters. EKS cluster names may hold '_' and start with a
// digit; RDS identifiers may not.
func InstanceIdentifier(cluster string) string {
	const suffix = "-coder-db"
	var b strings.Builder
	for _, r := range strings.ToLower(cluster) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	base := b.String()
	for strings.Contains(base, "--") {
		base = strings.ReplaceAll(base, "--", "-")
	}
	base = strings.Trim(base, "-")
	if base == "" || base[0] < 'a' || base[0] > 'z' {
		base = strings.TrimSuffix("db-"+base, "-")
	}
	if limit := maxIdentifierLen - len(suffix); len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	return base + suffix
}
