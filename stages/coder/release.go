package coder

import (
	"context"
	"fmt"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
)

// release is the wanted release and the notes of its values merge.
func (s *stage) release(ctx context.Context) (helmx.Release, []string, error) {
	roleARN, err := s.d.Output(names.KeySecretsRoleARN, names.StageSecrets)
	if err != nil {
		return helmx.Release{}, nil, err
	}
	values, notes, err := s.values(roleARN)
	if err != nil {
		return helmx.Release{}, nil, err
	}
	return helmx.Release{Name: ReleaseName, Namespace: names.CoderNamespace, Chart: s.chart(), Values: values,
		Wait: true, Timeout: releaseTimeout, Strategies: Strategies(), RolledOut: []string{DeploymentName}}, notes, nil
}

// DeploymentName is the chart's coderd Deployment.
const DeploymentName = ChartName

// Strategies is how coderd's pods are replaced on an upgrade (decisions.md,
// "Coder upgrades"): the chart sets no rollout strategy, and Kubernetes'
// default surges one extra pod, which the shipped coderd group (two
// m7i.xlarge, one 2-vCPU coderd per node beside the DaemonSets) cannot
// schedule, so helm's wait ran out. One pod at a time without a surge keeps the other replica Ready.
func Strategies() helmx.Strategies {
	return helmx.Strategies{DeploymentName: helmx.NoSurge}
}

// rolloutNote says, for an upgrade's plan line, which Coder version is
// replaced by which and how the pods roll.
func (s *stage) rolloutNote(ctx context.Context, helm *helmx.Client, rel helmx.Release) string {
	replicas := int32(s.sizing().Coderd.Replicas)
	if c, ok := rel.Values["coder"].(map[string]any); ok {
		switch n := c["replicaCount"].(type) {
		case int:
			replicas = int32(n)
		case int64:
			replicas = int32(n)
		case float64:
			replicas = int32(n)
		}
	}
	how := "coderd pods replaced by " + helmx.DescribeStrategy(helmx.NoSurge(replicas), replicas)
	want := imageTagOf(rel.Values)
	if last, err := helm.Status(ctx, ReleaseName, names.CoderNamespace); err == nil && last != nil {
		if was := imageTagOf(last.Config); was != "" && was != want {
			return fmt.Sprintf("Coder %s -> %s; %s", was, want, how)
		}
	}
	return how
}

// imageTagOf reads coder.image.tag from release values.
func imageTagOf(values map[string]any) string {
	c, _ := values["coder"].(map[string]any)
	img, _ := c["image"].(map[string]any)
	tag, _ := img["tag"].(string)
	return tag
}

func (s *stage) planRelease(ctx context.Context) ([]engine.Action, error) {
	resource := fmt.Sprintf("helm release %s/%s", names.CoderNamespace, ReleaseName)
	notes := s.noteActions()
	helm, err := s.d.Helm(ctx)
	if err != nil {
		return append([]engine.Action{{Kind: engine.Create, Resource: resource,
			Reason: fmt.Sprintf("install chart %s (cluster not reachable yet: %v)", s.chart(), err)}}, notes...), nil
	}
	if s.d.State.Get(names.KeySecretsRoleARN) == "" {
		return append([]engine.Action{{Kind: engine.Create, Resource: resource,
			Reason: fmt.Sprintf("install chart %s once the %s stage has recorded %s", s.chart(), names.StageSecrets, names.KeySecretsRoleARN)}}, notes...), nil
	}
	rel, _, err := s.release(ctx)
	if err != nil {
		return nil, err
	}
	action, err := helm.PlanAction(ctx, resource, rel)
	if err != nil {
		return nil, err
	}
	if action.Kind == engine.Update {
		action.Reason += "; " + s.rolloutNote(ctx, helm, rel)
	}
	return append([]engine.Action{action}, notes...), nil
}

func (s *stage) applyRelease(ctx context.Context, r engine.Reporter) error {
	rel, notes, err := s.release(ctx)
	if err != nil {
		return err
	}
	helmx.ReportNotes(r, KeyValuesFile, notes)
	helm, err := s.d.Helm(ctx)
	if err != nil {
		return err
	}
	r.Progress(fmt.Sprintf("installing or upgrading %s (%d replicas)", rel.Chart, s.sizing().Coderd.Replicas))
	_, _, err = helm.Apply(ctx, rel, r.Progress)
	return err
}

func (s *stage) destroyRelease(ctx context.Context, r engine.Reporter) error {
	return s.d.UninstallRelease(ctx, r.Progress, names.CoderNamespace, ReleaseName)
}
