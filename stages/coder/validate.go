package coder

import (
	"context"
	"crypto/x509"
	"errors"
	"os"

	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/helmx"
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
	if err := ValidateCAFile(s.d); err != nil {
		return err
	}
	return CheckChart(ctx, s.d.Inputs, s.chart(), s.opts.HelmCacheDir, config.KeyCoderChartRepo, config.KeyCoderChartVersion)
}

// roleARNStandIn stands for SECRETS_ROLE_ARN when the values are built
// only to be checked: the first `up` validates before the secrets stage has
// recorded the role, and the same values file must pass or fail on every
// run, so a file may not set the annotation at all, not even to the role.
const roleARNStandIn = "<" + keySecretsRoleARN + ">"

// ValidateCAFile checks that CODER_CA_FILE, when set, holds a PEM
// certificate.
func ValidateCAFile(d *deploy.Deps) error {
	path := d.Inputs.Get(KeyCAFile)
	if path == "" {
		return nil
	}
	source := d.Inputs.Source(KeyCAFile)
	pem, err := os.ReadFile(path)
	if err != nil {
		return fault.Input(source, KeyCAFile, "give the path of the PEM CA bundle that signed CODER_URL's certificate", "cannot read %s: %v", path, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fault.Input(source, KeyCAFile, "give a PEM file (-----BEGIN CERTIFICATE-----)", "%s holds no PEM certificate", path)
	}
	return nil
}

// unreachableCluster is a REST config for an address nothing listens on:
// CheckChart's helm client must never reach a real cluster.
const unreachableCluster = "https://127.0.0.1:1"

// CheckChart resolves the chart in its repository without touching any
// cluster, so that an unknown chart or version is bad input before
// anything changes. helmx resolves the chart before it reads the release,
// and the cancelled context stops it there. Errors other than bad input
// (the repository is down) are left for apply to report. A version the
// repository lacks is reported under the input the user set: CODER_VERSION
// when the chart version was derived from it, not the chart's own key.
func CheckChart(ctx context.Context, in *config.Inputs, ch helmx.Chart, cacheDir, repoKey, versionKey string) error {
	client, err := helmx.New(&rest.Config{Host: unreachableCluster}, helmx.Options{CacheDir: cacheDir})
	if err != nil {
		return nil
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	_, err = client.Plan(stopped, helmx.Release{Name: "coderctl-validate", Namespace: "coderctl-validate", Chart: ch})
	var unknown *helmx.UnknownVersionError
	if errors.As(err, &unknown) {
		source, field := in.Origin(versionKey)
		return fault.Input(source, field, unknown.Hint+", or set "+versionKey,
			"%s: the %s chart has no version %s in %s (available: %s)", in.Get(field), ch.Name, ch.Version, ch.Repo, unknown.Available)
	}
	var ie *fault.InputError
	if !errors.As(err, &ie) {
		return nil
	}
	hint := "set " + repoKey + " and " + versionKey
	if ie.Hint != "" {
		hint = ie.Hint + "; " + hint
	}
	return fault.Input(ie.Source, versionKey, hint, "%s: %s", ie.Field, ie.Msg)
}
