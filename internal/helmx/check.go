package helmx

import (
	"context"
	"errors"

	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
)

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
func CheckChart(ctx context.Context, in *config.Inputs, ch Chart, cacheDir, repoKey, versionKey string) error {
	client, err := New(&rest.Config{Host: unreachableCluster}, Options{CacheDir: cacheDir})
	if err != nil {
		return nil
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	_, err = client.Plan(stopped, Release{Name: "coderctl-validate", Namespace: "coderctl-validate", Chart: ch})
	var unknown *UnknownVersionError
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
