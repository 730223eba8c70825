// Package secrets is the guide's "Secrets" step: the database URL (and,
// when configured, GitHub OAuth settings) in Secrets Manager, each named
// coder/<deployment>/<leaf> so deployments side by side never share one; an
// IRSA role that only coderd's service account can assume and that may only
// read its own deployment's coder/<deployment>/* secrets; the Secrets Store CSI driver and its AWS provider as helm
// releases whose DaemonSets run on every node, tainted ones included; and a
// SecretProviderClass that syncs those secrets into the Kubernetes secret
// coder-secrets while coderd mounts it.
//
// No secret value is ever written to the state file, printed, logged or
// quoted in an error: only ARNs and names are recorded.
package secrets

import (
	"sync"
	"time"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = names.StageSecrets

// Input keys of the users' values files, in coder-infra.env (the chart
// repositories and versions are config.KeyCSI*).
const (
	KeyDriverValuesFile   = "CSI_DRIVER_VALUES_FILE"
	KeyProviderValuesFile = "CSI_AWS_PROVIDER_VALUES_FILE"
)

// Process environment variables holding the optional GitHub OAuth
// settings. They are secrets (or sit next to one), so they are read from
// the environment on each run and never stored in coder-infra.env; the
// names are the ones Coder itself reads.
const (
	EnvGitHubClientID     = "CODER_OAUTH2_GITHUB_CLIENT_ID"
	EnvGitHubClientSecret = "CODER_OAUTH2_GITHUB_CLIENT_SECRET"
	EnvGitHubAllowedOrgs  = "CODER_OAUTH2_GITHUB_ALLOWED_ORGS"
)

// Helm releases, named as in the AWS documentation's install commands.
const (
	ReleaseNamespace = "kube-system"
	DriverRelease    = "csi-secrets-store"
	DriverChart      = "secrets-store-csi-driver"
	ProviderRelease  = "secrets-provider-aws"
	ProviderChart    = "secrets-store-csi-driver-provider-aws"
)

// Step names; other stages and tests refer to them as "secrets/<name>".
const (
	StepDatabaseURL = "database-url-secret"
	StepOAuth       = "oauth-secrets"
	StepRole        = "irsa-role"
	StepDriver      = "csi-driver"
	StepProvider    = "csi-aws-provider"
	StepSPC         = "secret-provider-class"
)

// New builds the secrets stage with d's helm cache, reading OAuth
// settings from d's environment.
func New(d *deploy.Deps) engine.Stage {
	return (&stage{d: d}).definition()
}

// stage holds the stage's dependencies and what it learns once per run.
type stage struct {
	d *deploy.Deps

	kubeMu sync.Mutex
	kube   *kubeAccess
}

// Typical durations on real AWS and EKS.
const (
	typicalSecret  = 2 * time.Second
	typicalRole    = 5 * time.Second
	typicalRelease = 60 * time.Second
	typicalSPC     = 2 * time.Second
)

func (s *stage) definition() engine.Stage {
	return engine.Stage{
		Name:    Name,
		Summary: "database URL in Secrets Manager, IRSA role, Secrets Store CSI driver + AWS provider, SecretProviderClass",
		// prereqs: the OAuth secrets need nothing else, and a step without
		// needs would wait for every stage this one needs.
		Needs:  []string{names.StagePrereqs, names.StageRDS, names.StageEKS, names.StageNodeGroups},
		Reads:  []string{names.KeyMasterSecretARN, names.KeyRDSEndpoint, names.KeyRDSPort, names.KeyOIDCProviderARN},
		Writes: []string{names.KeyDatabaseURLSecretARN, names.KeySecretsRoleARN},
		Steps: []engine.Step{
			{Name: StepDatabaseURL, Needs: []string{engine.StepID(names.StageRDS, names.RDSStepInstance)}, Typical: typicalSecret,
				Plan: s.planDatabaseURL, Apply: s.applyDatabaseURL, Destroy: s.destroyDatabaseURL},
			{Name: StepOAuth, Needs: []string{names.StagePrereqs}, Typical: typicalSecret,
				Plan: s.planOAuth, Apply: s.applyOAuth, Destroy: s.destroyOAuth},
			{Name: StepRole, Needs: []string{engine.StepID(names.StageEKS, names.EKSStepOIDCProvider)}, Typical: typicalRole,
				Plan: s.planRole, Apply: s.applyRole, Destroy: s.destroyRole},
			s.releaseStep(StepDriver, []string{names.StageNodeGroups}, driverSpec()),
			s.releaseStep(StepProvider, []string{engine.StepID(Name, StepDriver)}, providerSpec()),
			{Name: StepSPC, Typical: typicalSPC,
				Needs: []string{engine.StepID(Name, StepDriver), engine.StepID(Name, StepDatabaseURL), engine.StepID(Name, StepOAuth)},
				Plan:  s.planSPC, Apply: s.applySPC, Destroy: s.destroySPC},
		},
		Verify:   s.verify,
		Validate: s.validate,
	}
}
