package cli

import (
	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/deploy"
)

// optionFlag is a boolean flag that turns on one of the run's options.
type optionFlag struct {
	name, usage string
	option      func(*deploy.Options) *bool
}

// changeOptions let up (or one stage's apply) make the changes it refuses
// or defers by default; plan takes them too, to show what up with them does.
var changeOptions = []optionFlag{
	{"apply-immediately", "apply database class and storage changes now, not in the maintenance window",
		func(o *deploy.Options) *bool { return &o.ApplyImmediately }},
	{"allow-major-version-upgrade", "let the database engine move to a new major version (a snapshot is taken first)",
		func(o *deploy.Options) *bool { return &o.AllowMajorVersionUpgrade }},
	{"allow-downgrade", "let CODER_VERSION go below the running version (restore the database from before the upgrade first)",
		func(o *deploy.Options) *bool { return &o.AllowDowngrade }},
}

// destroyOptions let down (or one stage's destroy) delete what it keeps by
// default.
var destroyOptions = []optionFlag{
	{"delete-database", "turn off deletion protection and delete the database",
		func(o *deploy.Options) *bool { return &o.DeleteDatabase }},
	{"skip-final-snapshot", "delete the database without a final snapshot",
		func(o *deploy.Options) *bool { return &o.SkipFinalSnapshot }},
	{"force-delete-secrets", "delete secrets without the 7-day recovery window",
		func(o *deploy.Options) *bool { return &o.ForceDeleteSecrets }},
	{"delete-volumes", "delete the EBS volumes of workspace claims (home directories); listed and kept otherwise",
		func(o *deploy.Options) *bool { return &o.DeleteVolumes }},
}

// optionFlags holds what one command's option flags were given. The values
// live here, not in package variables, so each command (and each test's
// command tree) has its own.
type optionFlags struct {
	defs []optionFlag
	on   []bool
}

func newOptionFlags(defs []optionFlag) *optionFlags {
	return &optionFlags{defs: defs, on: make([]bool, len(defs))}
}

// add declares the flags on cmd. Commands that share an optionFlags (a
// stage's plan and apply) share the values; only one of them runs.
func (o *optionFlags) add(cmd *cobra.Command) {
	for i, d := range o.defs {
		cmd.Flags().BoolVar(&o.on[i], d.name, false, d.usage)
	}
}

// tune sets the session's options from the flags.
func (o *optionFlags) tune(s *session) {
	for i, d := range o.defs {
		*d.option(&s.deps.Opts) = o.on[i]
	}
}
