package deploy

import "os"

// StageOptions are the parts of Deps a stage acts on beyond clients and
// state: the helm cache of the stages that install charts (secrets,
// autoscaler, coder, provisioners) and the process environment the stages
// read secrets from (secrets, coder, provisioners, template).
type StageOptions struct {
	// HelmCacheDir is helm's repository cache; empty means
	// helmx.DefaultCacheDir().
	HelmCacheDir string
	// LookupEnv reads the process environment (CODER_SESSION_TOKEN, the
	// GitHub OAuth variables); nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// With returns a copy of d carrying o instead of d's stage options, for a
// stage built with its own (tests: a temporary helm cache, a fake
// environment) without touching the Deps others use. The copy shares d's
// state store, clients and configuration: Deps holds them by pointer, and
// its value fields (run options, paths) hold no lock or per-run state.
func (d *Deps) With(o StageOptions) *Deps {
	c := *d
	c.HelmCacheDir, c.LookupEnv = o.HelmCacheDir, o.LookupEnv
	return &c
}

// Getenv reads the process environment through LookupEnv, os.LookupEnv
// when unset. Its values are read, never stored.
func (d *Deps) Getenv(name string) (string, bool) {
	if d.LookupEnv == nil {
		return os.LookupEnv(name)
	}
	return d.LookupEnv(name)
}
