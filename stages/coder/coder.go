// Package coder is the guide's "Install Coder" step: the Coder helm release
// in namespace coder (two replicas on the coderd nodes, external
// provisioners only, the database URL and GitHub OAuth from the
// coder-secrets secret that the Secrets Store CSI driver syncs while coderd
// mounts it), the public Service coder-lb that the AWS cloud controller turns
// into a network load balancer terminating TLS with the ACM certificate,
// Route53 alias records for CODER_DOMAIN and *.CODER_DOMAIN, and a wait
// until GET /healthz answers through the public URL.
package coder

import (
	"time"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/sizing"
)

// Name is the stage's registry name.
const Name = names.StageCoder

// Step names; other stages refer to them as "coder/<name>".
const (
	StepRelease     = "release"
	StepService     = "service"
	StepDNSRecords  = "dns-records"
	StepWaitHealthy = "wait-healthy"
)

// Kubernetes names.
const (
	ReleaseName = "coder"
	ChartName   = "coder"
	// ServiceName is coderctl's public Service, the NLB. The chart's own
	// Service "coder" stays ClusterIP for in-cluster clients.
	ServiceName = "coder-lb"
)

// The secrets stage's objects coderd mounts (coder-secrets, its
// SecretProviderClass, the service account the IRSA role trusts, the
// secret's keys) are names.CoderSecret, names.SecretProviderClass,
// names.CoderServiceAccount and names.SecretKey*.

// Inputs this stage reads, and the acm step it waits for.
const (
	KeyValuesFile = "CODER_VALUES_FILE"
	acmIssuedStep = names.StageACM + "/" + names.ACMStepIssued
)

// Typical real durations.
const (
	typicalRelease = 3 * time.Minute // image pulls, two replicas rolling
	typicalService = 3 * time.Minute // NLB provisioning
	typicalDNS     = time.Minute     // Route53 INSYNC
	typicalHealthy = 2 * time.Minute // NLB target health, DNS
	// releaseTimeout bounds helm's wait for the pods.
	releaseTimeout = 10 * time.Minute
	// lbTimeout bounds waiting for the NLB to appear or to go.
	lbTimeout = 10 * time.Minute
	// healthTimeout bounds waiting for /healthz through the public URL.
	healthTimeout = 10 * time.Minute
)

// New builds the coder stage with d's helm cache and the environment
// CODER_SESSION_TOKEN is read from.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "Coder helm release on coderd nodes, NLB terminating TLS with the certificate, DNS",
		Needs:   []string{names.StageSecrets, names.StageACM, names.StageNodeGroups},
		Reads: []string{config.KeyDomain, config.KeyHostedZoneID, config.KeyCoderVersion, config.KeyUsers, config.KeyCoderURL,
			config.KeyCoderChartRepo, config.KeyCoderChartVersion, KeyValuesFile, coderapi.KeyCAFile, names.KeyCertARN, names.KeySecretsRoleARN},
		// CODER_URL is recorded too (see recordOutputs) but not listed: it is
		// also an input, and a destroyed stage's write keys are unset.
		Writes: []string{names.KeyNLBHostname},
		Steps: []engine.Step{
			{Name: StepRelease, Needs: []string{names.StageSecrets, acmIssuedStep, names.StageNodeGroups}, Typical: typicalRelease,
				Plan: s.planRelease, Apply: s.applyRelease, Destroy: s.destroyRelease},
			// The Service does not wait for the release: the NLB's minutes of
			// provisioning overlap the pods starting.
			{Name: StepService, Needs: []string{names.StageSecrets, acmIssuedStep, names.StageNodeGroups}, Typical: typicalService,
				Plan: s.planService, Apply: s.applyService, Destroy: s.destroyService},
			{Name: StepDNSRecords, Needs: []string{stepID(StepService)}, Typical: typicalDNS,
				Plan: s.planDNS, Apply: s.applyDNS, Destroy: s.destroyDNS},
			{Name: StepWaitHealthy, Needs: []string{stepID(StepRelease), stepID(StepDNSRecords)}, Typical: typicalHealthy,
				Plan: s.planHealthy, Apply: s.applyHealthy},
		},
		Verify:   s.verify,
		Validate: s.validate,
	}
}

func stepID(step string) string { return engine.StepID(Name, step) }

type stage struct {
	d *deploy.Deps
}

// chart is the Coder chart as the inputs pin it.
func (s *stage) chart() helmx.Chart {
	in := s.d.Inputs
	return helmx.Chart{Name: ChartName, Repo: in.Get(config.KeyCoderChartRepo), Version: in.Get(config.KeyCoderChartVersion)}
}

// sizing is the deployment's sizing for USERS.
func (s *stage) sizing() sizing.Sizing {
	ws, _ := sizing.GroupFor(s.d.NodeGroups(), sizing.RoleWorkspace)
	return sizing.For(s.d.Inputs.Users(), ws.InstanceType)
}

// token is the owner's session token from the process environment, or "".
func (s *stage) token() string { return coderapi.SessionToken(s.d.Getenv) }
