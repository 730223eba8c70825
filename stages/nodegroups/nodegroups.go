// Package nodegroups is the guide's "Create the node groups" step: the node
// IAM role and the managed node groups of cluster-config.yaml (system,
// coder-coderd, coder-provisioner, coder-workspace), created in parallel
// with their labels and taints set by EKS at creation, so no pod can land
// on a coder node before it is tainted. After the groups, a taints step
// checks the registered nodes and re-adds a taint a node has lost (the
// guide's `kubectl taint` step, done only where needed).
package nodegroups

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/state"
)

// Name is the stage's registry name.
const Name = names.StageNodeGroups

// The eks steps the node role and the groups wait for.
var (
	eksClusterStep = engine.StepID(names.StageEKS, names.EKSStepCluster)
	eksRoleStep    = engine.StepID(names.StageEKS, names.EKSStepClusterRole)
)

// Typical real-AWS durations: IAM is quick, a managed node group takes
// about three minutes to launch and join its nodes.
const (
	typicalNodeRole = 5 * time.Second
	typicalGroup    = 3 * time.Minute
	typicalTaints   = 5 * time.Second
)

// New builds the nodegroups stage: node-role, one step per node group, then
// taints.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d}
	steps := []engine.Step{{
		// The role needs nothing from the cluster; hanging it on the cluster
		// role lets it overlap the ~13 minutes of control-plane creation.
		Name: config.NodeGroupsRoleStep, Needs: []string{eksRoleStep}, Typical: typicalNodeRole,
		Plan: s.planRole, Apply: s.applyRole, Destroy: s.destroyRole,
	}}
	var groupSteps []string
	for _, g := range d.NodeGroups() {
		steps = append(steps, engine.Step{
			Name:    g.Name,
			Needs:   []string{engine.StepID(Name, config.NodeGroupsRoleStep), eksClusterStep},
			Typical: typicalGroup,
			Plan:    func(ctx context.Context) ([]engine.Action, error) { return s.planGroup(ctx, g) },
			Apply:   func(ctx context.Context, r engine.Reporter) error { return s.applyGroup(ctx, reporter(r), g) },
			Destroy: func(ctx context.Context, r engine.Reporter) error { return s.destroyGroup(ctx, reporter(r), g.Name) },
		})
		groupSteps = append(groupSteps, engine.StepID(Name, g.Name))
	}
	steps = append(steps, engine.Step{
		Name: config.NodeGroupsTaintsStep, Needs: groupSteps, Typical: typicalTaints,
		Plan: s.planTaints, Apply: s.applyTaints,
	})
	return engine.Stage{
		Name:     Name,
		Summary:  "node role and the four tainted managed node groups, created in parallel",
		Needs:    []string{names.StageEKS},
		Reads:    []string{config.KeyRegion, config.KeyClusterName, names.KeyPrivateSubnetIDs, names.KeyPublicSubnetIDs, names.KeyNodeRoleARN, names.KeyNodeGroups},
		Writes:   []string{names.KeyNodeRoleARN, names.KeyNodeGroups},
		Steps:    steps,
		Verify:   s.verify,
		Validate: s.validate,
	}
}

// stage holds the run's dependencies. mu serialises the read-modify-write
// of NODEGROUPS by the group steps, which run in parallel.
type stage struct {
	d  *deploy.Deps
	mu sync.Mutex
}

// clusterName is the EKS cluster's name: the deployment's name.
func (s *stage) clusterName() string { return s.d.Deployment() }

// nodeRoleName is the IAM role of every group's instances.
func (s *stage) nodeRoleName() string { return s.clusterName() + "-node" }

// tags are the tags of every resource of this stage.
func (s *stage) tags(name string) map[string]string {
	return s.d.Tags(Name, map[string]string{"Name": name})
}

// ownedBy reports whether tags mark a resource as this deployment's.
func (s *stage) ownedBy(tags map[string]string) bool {
	return tags["coderctl/deployment"] == s.d.Deployment()
}

// clientToken derives an idempotency token from the deployment and the
// resource, so a run killed after a create call and started again sends
// the same token. incarnation tells a resource from its successor after a
// destroy, whose token AWS may still remember.
func (s *stage) clientToken(resource, incarnation string) string {
	return awsx.ClientToken(s.d.Deployment(), Name, resource, incarnation)
}

// spec returns the configured node group of that name.
func (s *stage) spec(name string) (config.NodeGroupSpec, bool) {
	for _, g := range s.d.NodeGroups() {
		if g.Name == name {
			return g, true
		}
	}
	return config.NodeGroupSpec{}, false
}

// recordGroup adds (present) or removes a group from NODEGROUPS, keeping
// cluster-config.yaml's order, and writes only when the list changes.
func (s *stage) recordGroup(name string, present bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	have := state.SplitList(s.d.State.Get(names.KeyNodeGroups))
	set := map[string]bool{}
	for _, n := range have {
		set[n] = true
	}
	set[name] = present
	var next []string
	for _, g := range s.d.NodeGroups() {
		if set[g.Name] {
			next = append(next, g.Name)
			delete(set, g.Name)
		}
	}
	for _, n := range have { // groups no longer configured stay listed while they exist
		if set[n] {
			next = append(next, n)
		}
	}
	if slices.Equal(next, have) {
		return nil
	}
	if len(next) == 0 {
		return s.d.State.Unset(names.KeyNodeGroups)
	}
	return s.d.Record(map[string]string{names.KeyNodeGroups: strings.Join(next, ",")})
}

// recordIfChanged writes one output, skipping the write when the state
// already holds it.
func (s *stage) recordIfChanged(key, value string) error {
	if s.d.State.Get(key) == value {
		return nil
	}
	return s.d.Record(map[string]string{key: value})
}

// action builds a one-action plan.
func action(kind engine.ActionKind, resource, format string, args ...any) []engine.Action {
	return []engine.Action{{Kind: kind, Resource: resource, Reason: fmt.Sprintf(format, args...)}}
}

func reporter(r engine.Reporter) engine.Reporter {
	if r == nil {
		return engine.Discard
	}
	return r
}
