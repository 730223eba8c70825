package coder

import (
	"context"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
)

// validate refuses, before anything changes, inputs that would make the
// stage fail half-way or break what it guarantees: no domain, a values file
// that is not YAML or undoes an owned key, an unreadable CA bundle, a chart
// version the repository does not have.
func (s *stage) validate(ctx context.Context) error {
	if err := s.d.Inputs.Require(config.KeyDomain); err != nil {
		return err
	}
	if _, _, err := s.values(roleARNStandIn); err != nil {
		return err
	}
	if err := coderapi.ValidateCAFile(s.d.Inputs); err != nil {
		return err
	}
	if err := s.validateNoDowngrade(ctx); err != nil {
		return err
	}
	return helmx.CheckChart(ctx, s.d.Inputs, s.chart(), s.d.HelmCacheDir, config.KeyCoderChartRepo, config.KeyCoderChartVersion)
}

// roleARNStandIn stands for SECRETS_ROLE_ARN when the values are built
// only to be checked: the first `up` validates before the secrets stage has
// recorded the role, and the same values file must pass or fail on every
// run, so a file may not set the annotation at all, not even to the role.
const roleARNStandIn = "<" + names.KeySecretsRoleARN + ">"
