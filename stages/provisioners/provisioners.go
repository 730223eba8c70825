// Package provisioners is the guide's "Deploy external provisioners" step:
// a provisioner key created through the Coder API with an owner's session
// token from the environment (never stored), kept only in the Kubernetes
// secret coder-provisioner-key, and the coder-provisioner helm release on
// the provisioner nodes, with one replica per concurrent build for USERS.
package provisioners

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
const Name = names.StageProvisioners

// Step names.
const (
	StepKey     = "key"
	StepRelease = "release"
)

// Names in Coder and Kubernetes.
const (
	// KeyName is the provisioner key in Coder's default organization.
	KeyName = "eks-provisioner"
	// KeySecretName holds the key's secret in namespace coder, under KeySecretKey.
	KeySecretName = "coder-provisioner-key"
	KeySecretKey  = "key"
	ReleaseName   = "coder-provisioner"
	ChartName     = "coder-provisioner"
	ValuesFile    = "provisioner-values.yaml"
	// annKeyID on the key secret (and the pods) is the ID of the key the
	// secret holds: not secret, and it changes when the key is rotated,
	// which rolls the pods onto the new key.
	annKeyID = "coderctl.dev/provisioner-key-id"
)

// KeyTags scope the key to the organization: daemons started with it take
// any organization-wide job. Tags come from the key, never from
// CODER_PROVISIONERD_TAGS.
func KeyTags() map[string]string { return map[string]string{"scope": "organization"} }

// Inputs.
const (
	KeyValuesFile   = "PROVISIONER_VALUES_FILE"
	KeyChartRepo    = "PROVISIONER_CHART_REPO"
	KeyChartVersion = "PROVISIONER_CHART_VERSION"
)

// Typical real durations.
const (
	typicalKey     = 5 * time.Second
	typicalRelease = 2 * time.Minute
	releaseTimeout = 10 * time.Minute
)

// New builds the provisioners stage with d's helm cache and the
// environment CODER_SESSION_TOKEN is read from.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "provisioner key and external provisioners sized by USERS",
		Needs:   []string{names.StageCoder},
		Reads: []string{config.KeyUsers, config.KeyCoderURL, config.KeyCoderVersion, coderapi.KeyCAFile,
			KeyChartRepo, KeyChartVersion, KeyValuesFile},
		Steps: []engine.Step{
			// The key needs coderd answering: the coder stage's checkpoint.
			{Name: StepKey, Needs: []string{names.StageCoder}, Typical: typicalKey, Plan: s.planKey, Apply: s.applyKey, Destroy: s.destroyKey},
			{Name: StepRelease, Needs: []string{engine.StepID(Name, StepKey)}, Typical: typicalRelease,
				Plan: s.planRelease, Apply: s.applyRelease, Destroy: s.destroyRelease},
		},
		Verify:   s.verify,
		Validate: s.validate,
	}
}

type stage struct {
	d *deploy.Deps
}

func (s *stage) token() string { return coderapi.SessionToken(s.d.Getenv) }

func (s *stage) chart() helmx.Chart {
	in := s.d.Inputs
	return helmx.Chart{Name: ChartName, Repo: in.Get(KeyChartRepo), Version: in.Get(KeyChartVersion)}
}

func (s *stage) sizing() sizing.Sizing {
	ws, _ := sizing.GroupFor(s.d.NodeGroups(), sizing.RoleWorkspace)
	return sizing.For(s.d.Inputs.Users(), ws.InstanceType)
}
