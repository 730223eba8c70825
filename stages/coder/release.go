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
	return helmx.Release{Name: ReleaseName, Namespace: Namespace, Chart: s.chart(), Values: values,
		Wait: true, Timeout: releaseTimeout}, notes, nil
}

func (s *stage) planRelease(ctx context.Context) ([]engine.Action, error) {
	resource := fmt.Sprintf("helm release %s/%s", Namespace, ReleaseName)
	notes := s.noteActions()
	helm, err := s.d.Helm(ctx, s.opts.HelmCacheDir)
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
	change, err := helm.Plan(ctx, rel)
	if err != nil {
		return nil, err
	}
	return append([]engine.Action{helmx.ActionFor(resource, change)}, notes...), nil
}

func (s *stage) applyRelease(ctx context.Context, r engine.Reporter) error {
	rel, notes, err := s.release(ctx)
	if err != nil {
		return err
	}
	helmx.ReportNotes(r, KeyValuesFile, notes)
	helm, err := s.d.Helm(ctx, s.opts.HelmCacheDir)
	if err != nil {
		return err
	}
	r.Progress(fmt.Sprintf("installing or upgrading %s (%d replicas)", rel.Chart, s.sizing().Coderd.Replicas))
	rev, changed, err := helm.Apply(ctx, rel, r.Progress)
	if err != nil {
		return err
	}
	if changed {
		r.Progress(fmt.Sprintf("release %s/%s at revision %d", Namespace, ReleaseName, rev))
	} else {
		r.Progress(fmt.Sprintf("release %s/%s unchanged at revision %d", Namespace, ReleaseName, rev))
	}
	return nil
}

func (s *stage) destroyRelease(ctx context.Context, r engine.Reporter) error {
	return s.d.UninstallRelease(ctx, r.Progress, s.opts.HelmCacheDir, Namespace, ReleaseName)
}
