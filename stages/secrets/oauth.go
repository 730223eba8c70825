package secrets

import (
	"context"
	"strings"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// The GitHub OAuth secrets' leaves: each is coder/<deployment>/<leaf>
// (names.SecretName).
const (
	GitHubClientIDLeaf     = "github-client-id"
	GitHubClientSecretLeaf = "github-client-secret"
	GitHubAllowedOrgsLeaf  = "github-allowed-orgs"
)

// optionalSecret is a secret stored only when its environment variable is
// set: the secret, the key it gets in coder-secrets (also its
// objectAlias), and the variable.
type optionalSecret struct {
	managed
	key, env string
}

// oauthSecrets are the GitHub OAuth settings, in the order they are listed.
func (s *stage) oauthSecrets() []optionalSecret {
	return []optionalSecret{
		{managed: s.managedSecret(GitHubClientIDLeaf), key: names.SecretKeyGitHubClientID, env: EnvGitHubClientID},
		{managed: s.managedSecret(GitHubClientSecretLeaf), key: names.SecretKeyGitHubClientSecret, env: EnvGitHubClientSecret},
		{managed: s.managedSecret(GitHubAllowedOrgsLeaf), key: names.SecretKeyGitHubAllowedOrgs, env: EnvGitHubAllowedOrgs},
	}
}

// envValue is the variable's value with surrounding spaces (a paste
// artefact) dropped; "" means unset.
func (s *stage) envValue(name string) string {
	v, _ := s.d.Getenv(name)
	return strings.TrimSpace(v)
}

// unsetState is what an OAuth secret whose variable is unset has: the
// secret under the deployment's name (nil when missing) and this
// deployment's legacy-named one (nil when none is left to move).
func (s *stage) unsetState(ctx context.Context, o optionalSecret) (sec, legacy *remoteSecret, err error) {
	if sec, err = s.findSecret(ctx, o.name, ""); err != nil {
		return nil, nil, err
	}
	if legacy, err = s.findLegacy(ctx, o.managed); err != nil || !movable(legacy) {
		return sec, nil, err
	}
	return sec, legacy, nil
}

// planOAuth: a secret whose variable is set is created or updated; one
// whose variable is unset is left as it is (kept in the
// SecretProviderClass when it exists), so a run from a shell without the
// variables does not turn GitHub login off; for the same reason one still
// under its legacy name moves, with its value, to the deployment's name.
func (s *stage) planOAuth(ctx context.Context) ([]engine.Action, error) {
	var acts []engine.Action
	for _, o := range s.oauthSecrets() {
		value := s.envValue(o.env)
		if value != "" {
			act, err := s.secretPlan(ctx, o.managed, "", value)
			if err != nil {
				return nil, err
			}
			acts = append(acts, act...)
			continue
		}
		sec, legacy, err := s.unsetState(ctx, o)
		if err != nil {
			return nil, err
		}
		if sec == nil && legacy != nil {
			act, err := s.secretPlan(ctx, o.managed, "", "")
			if err != nil {
				return nil, err
			}
			acts = append(acts, act...)
			continue
		}
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: "secret " + o.name,
			Reason: o.env + " is not set: left as it is"})
		acts = append(acts, retirePlan(o.managed, sec != nil, legacy)...)
	}
	return acts, nil
}

func (s *stage) applyOAuth(ctx context.Context, r engine.Reporter) error {
	for _, o := range s.oauthSecrets() {
		value := s.envValue(o.env)
		if value == "" {
			sec, legacy, err := s.unsetState(ctx, o)
			switch {
			case err != nil:
				return err
			case legacy == nil:
				continue
			case sec != nil:
				if err := s.retireLegacy(ctx, r, o.managed, legacy); err != nil {
					return err
				}
				continue
			}
			if value, _, err = s.currentValue(ctx, legacy.arn); err != nil {
				return err
			}
			if value == "" {
				continue
			}
		}
		if err := s.convergeSecret(ctx, r, o.managed, "", value, func(string) error { return nil }); err != nil {
			return err
		}
	}
	return nil
}

func (s *stage) destroyOAuth(ctx context.Context, r engine.Reporter) error {
	for _, o := range s.oauthSecrets() {
		if err := s.destroySecret(ctx, r, o.managed, ""); err != nil {
			return err
		}
	}
	return nil
}

// syncedObject is one Secrets Manager secret the SecretProviderClass lists.
type syncedObject struct {
	arn, key string
}

// syncedObjects are the secrets coder-secrets gets: the database URL and
// each OAuth secret that exists (and is not scheduled for deletion). ok is
// false when the database URL secret is not recorded yet.
func (s *stage) syncedObjects(ctx context.Context) (objs []syncedObject, ok bool, err error) {
	dbARN := s.d.State.Get(names.KeyDatabaseURLSecretARN)
	if dbARN == "" {
		return nil, false, nil
	}
	objs = append(objs, syncedObject{arn: dbARN, key: names.SecretKeyDatabaseURL})
	for _, o := range s.oauthSecrets() {
		sec, err := s.findSecret(ctx, o.name, "")
		if isForeign(err) {
			continue // another deployment's: never exposed to this one
		}
		if err != nil {
			return nil, false, err
		}
		if sec != nil && !sec.deleted {
			objs = append(objs, syncedObject{arn: sec.arn, key: o.key})
		}
	}
	return objs, true, nil
}
