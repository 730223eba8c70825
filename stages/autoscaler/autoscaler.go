// Package autoscaler grows the node groups as workspaces and provisioners
// need room: the Kubernetes cluster-autoscaler, installed with the helm SDK
// from its official chart at the release line of the cluster's Kubernetes
// minor, running on the system nodes, with an IRSA role that may describe
// Auto Scaling groups but resize only this cluster's. It finds the groups
// by the tags EKS puts on every managed node group's Auto Scaling group,
// grows a group up to its maxSize when pods cannot be scheduled, balances
// similar groups, and scales down only nodes whose pods may be evicted
// (workspaces are annotated not safe to evict). A group with
// minSize == maxSize keeps its size. AUTOSCALER=none removes it.
package autoscaler

import (
	"sync"
	"time"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = "autoscaler"

// KeyRoleARN is the state key the stage records its role's ARN under (the
// provider ARN it reads is the eks stage's names.KeyOIDCProviderARN).
const KeyRoleARN = "AUTOSCALER_ROLE_ARN"

// Kubernetes and helm names, as the chart's documentation uses them.
const (
	Namespace      = "kube-system"
	ServiceAccount = "cluster-autoscaler"
	Release        = "cluster-autoscaler"
	Chart          = "cluster-autoscaler"
	// Deployment is the chart's Deployment, named by fullnameOverride.
	Deployment = "cluster-autoscaler"
)

// Step names; tests refer to them as "autoscaler/<name>".
const (
	StepRole    = "irsa-role"
	StepRelease = "release"
)

// Check names of the checkpoint.
const (
	CheckRunning      = "autoscaler-running"
	CheckRole         = "autoscaler-role"
	CheckDiscoveryTag = "autoscaler-discovery-tags"
	CheckDisabled     = "autoscaler"
)

// Discovery tags: EKS puts both on the Auto Scaling group of every managed
// node group; the autoscaler manages the groups that carry both.
const (
	TagEnabled       = "k8s.io/cluster-autoscaler/enabled"
	tagClusterPrefix = "k8s.io/cluster-autoscaler/"
)

// TagCluster is the discovery tag naming cluster.
func TagCluster(cluster string) string { return tagClusterPrefix + cluster }

// Typical durations on real AWS and EKS.
const (
	typicalRole    = 5 * time.Second
	typicalRelease = 45 * time.Second
)

// New builds the autoscaler stage with d's helm cache.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "cluster-autoscaler (helm, IRSA role) growing node groups up to maxSize; AUTOSCALER=none removes it",
		Needs:   []string{names.StageEKS, names.StageNodeGroups},
		Reads:   []string{names.KeyOIDCProviderARN},
		Writes:  []string{KeyRoleARN},
		Steps: []engine.Step{
			{Name: StepRole, Needs: []string{engine.StepID(names.StageEKS, names.EKSStepOIDCProvider)}, Typical: typicalRole,
				Plan: s.planRole, Apply: s.applyRole, Destroy: s.destroyRole},
			{Name: StepRelease, Needs: []string{engine.StepID(Name, StepRole), names.StageNodeGroups}, Typical: typicalRelease,
				Plan: s.planRelease, Apply: s.applyRelease, Destroy: s.destroyRelease},
		},
		Verify:   s.verify,
		Validate: s.validate,
	}
}

// stage holds the stage's dependencies and the chart version it resolved.
type stage struct {
	d *deploy.Deps

	versionMu sync.Mutex
	version   string
}

// enabled reports whether AUTOSCALER asks for the cluster-autoscaler.
func (s *stage) enabled() bool { return s.d.Inputs.Autoscaling() }
