package deploy

import "os"

// StageOptions are what a run may set for a stage beyond Deps. The stages
// that install charts and read secrets from the process environment
// (secrets, coder, provisioners) take the same two; tests set them to keep
// helm's cache in a temporary directory and to feed the environment.
type StageOptions struct {
	// HelmCacheDir is helm's repository cache; empty means
	// helmx.DefaultCacheDir().
	HelmCacheDir string
	// LookupEnv reads the process environment (CODER_SESSION_TOKEN, the
	// GitHub OAuth variables); nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// StageOptions are the options a stage built by the registry gets: the
// run's LookupEnv.
func (d *Deps) StageOptions() StageOptions { return StageOptions{LookupEnv: d.LookupEnv} }

// Resolved fills what is unset with its default.
func (o StageOptions) Resolved() StageOptions {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	return o
}
