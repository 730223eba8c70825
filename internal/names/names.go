// Package names declares, once, every name that one stage produces and
// another stage (or the CLI, or a test) uses: stage and step names, state
// keys, and the names of AWS and Kubernetes objects. Stages may not import
// one another (decisions.md 14), so a producer's names live here, grouped
// by producer, and every package (the producing stage included) uses them
// from here: no second constant for the same name. A name that only its own
// stage uses stays in that stage.
package names

// Stage names, in the guide's order.
const (
	StagePrereqs      = "prereqs"
	StageNetwork      = "network"
	StageEKS          = "eks"
	StageNodeGroups   = "nodegroups"
	StageRDS          = "rds"
	StageACM          = "acm"
	StageSecrets      = "secrets"
	StageCoder        = "coder"
	StageProvisioners = "provisioners"
)

// Produced by the network stage.
const (
	KeyVPCID            = "VPC_ID"
	KeyPublicSubnetIDs  = "PUBLIC_SUBNET_IDS"
	KeyPrivateSubnetIDs = "PRIVATE_SUBNET_IDS"

	NetworkStepVPC     = "vpc"
	NetworkStepSubnets = "subnets"
)

// Produced by the eks stage.
const (
	KeyClusterRoleARN         = "CLUSTER_ROLE_ARN"
	KeyClusterEndpoint        = "CLUSTER_ENDPOINT"
	KeyClusterSecurityGroupID = "CLUSTER_SECURITY_GROUP_ID"
	KeyOIDCProviderARN        = "OIDC_PROVIDER_ARN"
	KeyEBSCSIRoleARN          = "EBS_CSI_ROLE_ARN"

	EKSStepClusterRole  = "cluster-role"
	EKSStepCluster      = "cluster"
	EKSStepOIDCProvider = "oidc-provider"
)

// Produced by the nodegroups stage.
const (
	// KeyNodeRoleARN is the node IAM role every group's instances assume.
	KeyNodeRoleARN = "NODE_ROLE_ARN"
	// KeyNodeGroups lists the created node groups, comma-separated, in
	// cluster-config.yaml order.
	KeyNodeGroups = "NODEGROUPS"
)

// Produced by the rds stage.
const (
	KeyDBSecurityGroupID = "DB_SECURITY_GROUP_ID"
	KeyRDSEndpoint       = "RDS_ENDPOINT"
	KeyRDSPort           = "RDS_PORT"
	KeyMasterSecretARN   = "DB_MASTER_SECRET_ARN"
	KeyDBInstanceID      = "DB_INSTANCE_ID"

	RDSStepInstance = "instance"

	// MasterSecretLeaf names the Secrets Manager secret holding the master
	// user's connection document: MasterSecretName.
	MasterSecretLeaf = "db-master"
	DatabaseName     = "coder"
	MasterUsername   = "coder"
)

// MasterSecretName is the deployment's database master secret,
// coder/<deployment>/db-master.
func MasterSecretName(deployment string) string { return SecretName(deployment, MasterSecretLeaf) }

// Produced by the acm stage.
const (
	// KeyCertARN is the certificate's ARN; a user may set it to an ISSUED
	// certificate of their own.
	KeyCertARN = "CERT_ARN"

	ACMStepIssued = "issued"
)

// Produced by the secrets stage: the database URL in Secrets Manager, the
// IRSA role coderd assumes, and the Kubernetes objects coderd mounts.
const (
	KeyDatabaseURLSecretARN = "DATABASE_URL_SECRET_ARN"
	KeySecretsRoleARN       = "SECRETS_ROLE_ARN"

	// DatabaseURLSecretLeaf names the Secrets Manager secret with Coder's
	// PostgreSQL connection URL: DatabaseURLSecretName.
	DatabaseURLSecretLeaf = "database-url"
	// CoderServiceAccount is coderd's service account, the only one the
	// IRSA role trusts.
	CoderServiceAccount = "coder"
	// SecretProviderClass is the class coderd's CSI volume names.
	SecretProviderClass = "coder-secrets"
	// CoderSecret is the Kubernetes secret the CSI driver syncs, with the
	// keys below.
	CoderSecret = "coder-secrets"

	SecretKeyDatabaseURL        = "database-url"
	SecretKeyGitHubClientID     = "github-client-id"
	SecretKeyGitHubClientSecret = "github-client-secret"
	SecretKeyGitHubAllowedOrgs  = "github-allowed-orgs"

	// CSIDriver is the driver name pods' CSI volumes use.
	CSIDriver = "secrets-store.csi.k8s.io"
)

// DatabaseURLSecretName is the deployment's database URL secret,
// coder/<deployment>/database-url.
func DatabaseURLSecretName(deployment string) string {
	return SecretName(deployment, DatabaseURLSecretLeaf)
}

// Secrets Manager names. Secrets Manager names are unique per account and
// region, so every secret coderctl stores for a deployment is named
// coder/<deployment>/<leaf>: two deployments side by side never share one,
// and coderd's IRSA role is granted SecretPrefix(deployment)+"*" only. The
// leaves are declared by the stage that produces each secret (above, or in
// the stage when no other one uses it).

// secretRoot is the common root of every coderctl secret.
const secretRoot = "coder/"

// SecretPrefix is what every secret of the deployment starts with,
// "coder/<deployment>/". Cluster names hold no '/', so one deployment's
// prefix never matches another's secrets.
func SecretPrefix(deployment string) string { return secretRoot + deployment + "/" }

// SecretName is the deployment's secret called leaf.
func SecretName(deployment, leaf string) string { return SecretPrefix(deployment) + leaf }

// LegacySecretName is leaf's name before deployments had their own prefix
// (coder/<leaf>, one per account and region). The rds and secrets stages
// move a secret of this name to SecretName when it is tagged for their
// deployment, and never touch one that is not.
func LegacySecretName(leaf string) string { return secretRoot + leaf }

// Produced by the coder stage (the namespace is created by whichever of
// secrets and coder runs first).
const (
	// CoderNamespace is where Coder runs: coderd, its secrets and the
	// external provisioners.
	CoderNamespace = "coder"
	// CoderInClusterURL is coderd through the chart's ClusterIP Service.
	CoderInClusterURL = "http://coder." + CoderNamespace + ".svc.cluster.local"
	// KeyNLBHostname is the state key of the public load balancer's name.
	KeyNLBHostname = "NLB_HOSTNAME"
)
