package coder

import (
	"context"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/release"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// validateNoDowngrade refuses a CODER_VERSION lower than the version the
// installed release runs, unless --allow-downgrade: Coder migrates its
// database forward on start and does not support running an older coderd
// on it (going back means restoring a database snapshot taken before the
// upgrade). On a first run there is no cluster or release yet, and nothing
// to compare.
func (s *stage) validateNoDowngrade(ctx context.Context) error {
	if s.d.Opts.AllowDowngrade {
		return nil
	}
	want, err := semver.NewVersion(s.d.Inputs.Get(config.KeyCoderVersion))
	if err != nil {
		return nil // the input's own check reports it
	}
	helm, err := s.d.Helm(ctx)
	if err != nil {
		return nil
	}
	last, err := helm.Status(ctx, ReleaseName, names.CoderNamespace)
	if err != nil || last == nil {
		return nil
	}
	have, err := semver.NewVersion(runningVersion(last))
	if err != nil || !want.LessThan(have) {
		return nil
	}
	return fault.Input(s.d.Inputs.Source(config.KeyCoderVersion), config.KeyCoderVersion,
		fmt.Sprintf("set CODER_VERSION=%s or later; to go back, restore a database snapshot taken before the upgrade and pass --allow-downgrade", have),
		"%s is lower than the Coder version the release %s/%s runs, %s: Coder's database migrations only go forward", want, names.CoderNamespace, ReleaseName, have)
}

// runningVersion is the Coder version a release runs: its image tag when
// the values pin one, else the chart's app version.
func runningVersion(r *release.Release) string {
	if tag := imageTagOf(r.Config); tag != "" {
		return strings.TrimPrefix(tag, "v")
	}
	if r.Chart != nil && r.Chart.Metadata != nil {
		return strings.TrimPrefix(r.Chart.Metadata.AppVersion, "v")
	}
	return ""
}
