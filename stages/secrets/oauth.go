package secrets

import (
	"context"
	"strings"

	"github.com/coderctl/coderctl/internal/engine"
)

// optionalSecret is a secret stored only when its environment variable is
// set: Secrets Manager name, the key it gets in coder-secrets (also its
// objectAlias), and the variable.
type optionalSecret struct {
	name, key, env string
}

// oauthSecrets are the GitHub OAuth settings, in the order they are listed.
func oauthSecrets() []optionalSecret {
	return []optionalSecret{
		{name: "coder/github-client-id", key: SecretKeyGitHubClientID, env: EnvGitHubClientID},
		{name: "coder/github-client-secret", key: SecretKeyGitHubClientSecret, env: EnvGitHubClientSecret},
		{name: "coder/github-allowed-orgs", key: SecretKeyGitHubAllowedOrgs, env: EnvGitHubAllowedOrgs},
	}
}

// envValue is the variable's value with surrounding spaces (a paste
// artefact) dropped; "" means unset.
func (s *stage) envValue(name string) string {
	v, _ := s.opts.LookupEnv(name)
	return strings.TrimSpace(v)
}

// planOAuth: a secret whose variable is set is created or updated; one
// whose variable is unset is left as it is (kept in the
// SecretProviderClass when it exists), so a run from a shell without the
// variables does not turn GitHub login off.
func (s *stage) planOAuth(ctx context.Context) ([]engine.Action, error) {
	var acts []engine.Action
	for _, o := range oauthSecrets() {
		value := s.envValue(o.env)
		if value == "" {
			acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: "secret " + o.name,
				Reason: o.env + " is not set: left as it is"})
			continue
		}
		act, err := s.secretPlan(ctx, o.name, "", value)
		if err != nil {
			return nil, err
		}
		acts = append(acts, act)
	}
	return acts, nil
}

func (s *stage) applyOAuth(ctx context.Context, r engine.Reporter) error {
	for _, o := range oauthSecrets() {
		value := s.envValue(o.env)
		if value == "" {
			continue
		}
		if err := s.convergeSecret(ctx, r, o.name, "", value, func(string) error { return nil }); err != nil {
			return err
		}
	}
	return nil
}

func (s *stage) destroyOAuth(ctx context.Context, r engine.Reporter) error {
	for _, o := range oauthSecrets() {
		if err := s.deleteSecret(ctx, r, o.name, ""); err != nil {
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
	dbARN := s.d.State.Get(KeyDatabaseURLSecretARN)
	if dbARN == "" {
		return nil, false, nil
	}
	objs = append(objs, syncedObject{arn: dbARN, key: SecretKeyDatabaseURL})
	for _, o := range oauthSecrets() {
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
