package autoscaler

import (
	"context"
	"errors"
	"strings"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/helmx"
)

// validate refuses, before anything changes, what would fail later: a role
// name longer than IAM allows, and a chart repository that has no
// cluster-autoscaler release for the cluster's Kubernetes minor. A
// repository that cannot be read now is left for apply to report.
func (s *stage) validate(context.Context) error {
	if !s.enabled() {
		return nil
	}
	if err := s.d.ValidateIRSARoleName(Role); err != nil {
		return err
	}
	if v := s.d.Inputs.Get(config.KeyAutoscalerVersion); v != "" {
		return s.validatePinnedVersion(v)
	}
	if _, err := s.chartVersion(); errors.Is(err, errNoRelease) {
		source, field := s.d.Inputs.Origin(config.KeyAutoscalerVersion)
		return fault.Input(source, field, "set "+config.KeyAutoscalerVersion+" to a release of the cluster-autoscaler chart, or "+
			config.KeyAutoscaler+"="+config.AutoscalerNone, "%v", err)
	}
	return nil
}

// validatePinnedVersion refuses an AUTOSCALER_CHART_VERSION the repository
// does not have, naming the releases of the cluster's minor it does have.
func (s *stage) validatePinnedVersion(v string) error {
	repo := s.d.Inputs.Get(config.KeyAutoscalerChartRepo)
	releases, err := helmx.Releases(repo, Chart, s.d.HelmCacheDir)
	if err != nil {
		return nil // unreadable now: apply reports it
	}
	var forMinor []string
	for _, r := range releases {
		if r.Version == v {
			return nil
		}
		if m, ok := helmx.NewestForMinor([]helmx.ChartVersion{r}, s.kubernetesMinor()); ok {
			forMinor = append(forMinor, m.Version)
		}
	}
	source, field := s.d.Inputs.Origin(config.KeyAutoscalerVersion)
	return fault.Input(source, field, "pick one for Kubernetes "+s.kubernetesMinor()+": "+strings.Join(forMinor, ", "),
		"the %s chart has no version %s in %s", Chart, v, repo)
}
