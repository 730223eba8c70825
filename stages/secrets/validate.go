package secrets

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
)

// githubOrgRE is GitHub's organization login alphabet.
var githubOrgRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)

// validate is the stage's Validate func: bad inputs are refused before
// anything changes. Messages name variables, never their values.
func (s *stage) validate(context.Context) error {
	if err := s.d.ValidateIRSARoleName(Role); err != nil {
		return err
	}
	if err := s.validateOAuth(); err != nil {
		return err
	}
	for _, spec := range []releaseSpec{driverSpec(), providerSpec()} {
		if err := s.validateValuesFile(spec); err != nil {
			return err
		}
	}
	return nil
}

// validateOAuth wants the client ID and secret together, and allowed
// organizations only with them.
func (s *stage) validateOAuth() error {
	id, secret, orgs := s.envValue(EnvGitHubClientID), s.envValue(EnvGitHubClientSecret), s.envValue(EnvGitHubAllowedOrgs)
	const hint = "set both CODER_OAUTH2_GITHUB_CLIENT_ID and CODER_OAUTH2_GITHUB_CLIENT_SECRET for GitHub login, or neither"
	switch {
	case id != "" && secret == "":
		return fault.Input(config.SourceEnvironment, EnvGitHubClientSecret, hint, "not set, but %s is", EnvGitHubClientID)
	case id == "" && secret != "":
		return fault.Input(config.SourceEnvironment, EnvGitHubClientID, hint, "not set, but %s is", EnvGitHubClientSecret)
	case orgs != "" && id == "":
		return fault.Input(config.SourceEnvironment, EnvGitHubAllowedOrgs, hint, "set, but GitHub OAuth is not configured")
	}
	if orgs == "" {
		return nil
	}
	for i, org := range strings.Split(orgs, ",") {
		if !githubOrgRE.MatchString(strings.TrimSpace(org)) {
			return fault.Input(config.SourceEnvironment, EnvGitHubAllowedOrgs,
				"give GitHub organization names separated by commas, e.g. my-org,other-org",
				"entry %d is not a GitHub organization name", i+1)
		}
	}
	return nil
}

// validateValuesFile reads and parses the user's values file, if any.
func (s *stage) validateValuesFile(spec releaseSpec) error {
	path := s.d.Inputs.Get(spec.valuesKey)
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil || st.IsDir() {
		why := "it is a directory"
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = "no such file"
		case errors.As(err, &pe):
			why = pe.Err.Error()
		case err != nil:
			why = err.Error()
		}
		return fault.Input(s.d.Inputs.Source(spec.valuesKey), spec.valuesKey, "give the path of a YAML helm values file",
			"cannot read %s: %s", path, why)
	}
	_, err = s.release(spec)
	// MergeValues names the file; say which key pointed at it.
	var ie *fault.InputError
	if errors.As(err, &ie) && ie.Field == "" {
		ie.Field = spec.valuesKey
	}
	return err
}
