package provisioners

import (
	"context"
	"time"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/helmx"
)

// tokenCheckTimeout bounds asking coderd whether the token is valid.
const tokenCheckTimeout = 5 * time.Second

// validate refuses bad input before anything changes: a CODER_VERSION
// older than the provisioner key routes, no session token (or, when coderd
// already answers, one it refuses or whose user may not manage provisioner
// keys), a values file that is not YAML or undoes a key coderctl owns, an
// unreadable CA bundle, a chart version the repository does not have.
func (s *stage) validate(ctx context.Context) error {
	if err := s.checkVersionInput(); err != nil {
		return err
	}
	token := s.token()
	if token == "" && s.coderDeployed() && !s.hasOwnerSource() {
		return fault.Input(config.SourceEnvironment, coderapi.EnvSessionToken, tokenHint,
			"not set: the provisioners stage creates its provisioner key through the Coder API as an owner")
	}
	if _, _, err := s.release(""); err != nil {
		return err // a values file that is not YAML or undoes an owned key
	}
	if err := coderapi.ValidateCAFile(s.d.Inputs); err != nil {
		return err
	}
	if err := helmx.CheckChart(ctx, s.d.Inputs, s.chart(), s.d.HelmCacheDir, KeyChartRepo, KeyChartVersion); err != nil {
		return err
	}
	if token == "" {
		return nil // Coder is deployed by this run: the key step waits (pending) for a token
	}
	return s.checkToken(ctx, token)
}

// coderDeployed says whether the coder stage has been applied before: only
// then can the user have an owner's session token. On a first `up` there is
// no Coder to log in to yet, so a missing token leaves this stage pending
// (with the same instructions) instead of refusing the whole run.
func (s *stage) coderDeployed() bool {
	return s.d.State.Get("STAGE_CODER_APPLIED_AT") != ""
}

// checkToken asks coderd, when it already answers, whether it accepts the
// token and lets its user manage provisioner keys. A coderd not deployed
// yet (a first `up`) is not an error here.
func (s *stage) checkToken(ctx context.Context, token string) error {
	client, err := coderapi.ForInputs(s.d.Inputs, token)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, tokenCheckTimeout)
	defer cancel()
	me, err := client.Me(ctx)
	if coderapi.IsUnauthorized(err) {
		return fault.Input(config.SourceEnvironment, coderapi.EnvSessionToken, tokenHint,
			"coderd at %s refuses it (expired, revoked, or from another deployment)", s.d.Inputs.CoderURL())
	}
	if err != nil {
		return nil
	}
	return checkKeyRights(ctx, client, me)
}
