package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// refuseRepeatedFlags makes every flag of cmd and its subcommands refuse a
// second occurrence. pflag's default is last-wins for scalars and append for
// lists, so `--env-file a --env-file b` silently used b and `--only rds
// --only eks` ran both: a repeated flag is almost always a script bug, and a
// deployment tool should say so rather than guess.
func refuseRepeatedFlags(cmd *cobra.Command) {
	wrap := func(f *pflag.Flag) {
		if _, done := f.Value.(onceFlag); done {
			return
		}
		if b, ok := f.Value.(boolFlag); ok && b.IsBoolFlag() {
			f.Value = &onceBoolValue{onceValue{Value: f.Value, name: f.Name}}
			return
		}
		f.Value = &onceValue{Value: f.Value, name: f.Name}
	}
	cmd.LocalFlags().VisitAll(wrap)
	cmd.PersistentFlags().VisitAll(wrap)
	for _, c := range cmd.Commands() {
		refuseRepeatedFlags(c)
	}
}

// boolFlag is pflag's (unexported) test for flags that take no argument.
type boolFlag interface {
	pflag.Value
	IsBoolFlag() bool
}

type onceFlag interface{ once() }

// onceValue passes the first Set through and refuses any later one.
type onceValue struct {
	pflag.Value
	name  string
	given bool
	first string
}

func (o *onceValue) once() {}

func (o *onceValue) Set(v string) error {
	if o.given {
		return fmt.Errorf("--%s given twice (first %q): give it once", o.name, o.first)
	}
	o.given, o.first = true, v
	return o.Value.Set(v)
}

// onceBoolValue keeps pflag treating a wrapped bool flag as argument-less.
type onceBoolValue struct{ onceValue }

func (o *onceBoolValue) IsBoolFlag() bool { return true }

// stageSelection is what --only and --skip say, checked before anything is
// loaded: an empty or contradictory selection is bad input, never "every
// stage" (an empty --only used to deploy all nine).
type stageSelection struct {
	only, skip []string
	// onlyGiven and skipGiven say the flag was on the command line, even
	// when its value parsed to an empty list (--only '').
	onlyGiven, skipGiven bool
}

// selectionFlags registers --only and --skip on cmd and returns a function
// that reads them once cobra has parsed the command line.
func selectionFlags(cmd *cobra.Command, f *Factory, verb string) func() (stageSelection, error) {
	var sel stageSelection
	cmd.Flags().StringSliceVar(&sel.only, "only", nil, verb+" only these stages (comma-separated)")
	cmd.Flags().StringSliceVar(&sel.skip, "skip", nil, "skip these stages (comma-separated)")
	return func() (stageSelection, error) {
		sel.onlyGiven = cmd.Flags().Changed("only")
		sel.skipGiven = cmd.Flags().Changed("skip")
		return sel, sel.check(stageNames(f))
	}
}

// check refuses empty names, repeated names, names not in known, a stage
// both selected and skipped, and a selection that leaves no stage to run.
func (s stageSelection) check(known []string) error {
	for _, f := range []struct {
		flag  string
		given bool
		names []string
	}{{"--only", s.onlyGiven, s.only}, {"--skip", s.skipGiven, s.skip}} {
		if f.given && len(f.names) == 0 {
			return usageErr("%s is empty: name at least one stage, or leave the flag out", f.flag)
		}
		if err := checkNameList(f.flag, f.names, known); err != nil {
			return err
		}
	}
	for _, n := range s.only {
		if slices.Contains(s.skip, n) {
			return usageErr("stage %q is in both --only and --skip: name it in one of them", n)
		}
	}
	if len(s.selected(known)) == 0 {
		return usageErr("--skip %s leaves no stage to run: skip fewer stages", strings.Join(s.skip, ","))
	}
	return nil
}

// checkNameList refuses blank and repeated stage names in one list.
func checkNameList(flag string, names, known []string) error {
	for i, n := range names {
		switch {
		case strings.TrimSpace(n) == "":
			return usageErr("%s has an empty stage name (position %d): write names separated by single commas", flag, i+1)
		case slices.Contains(names[:i], n):
			return usageErr("%s names stage %q twice: name it once", flag, n)
		case !slices.Contains(known, n):
			return usageErr("%s: unknown stage %q (stages: %s)", flag, n, strings.Join(known, ", "))
		}
	}
	return nil
}

// selected lists, in registry order, the stages the selection runs.
func (s stageSelection) selected(known []string) []string {
	var out []string
	for _, n := range known {
		if (len(s.only) == 0 || slices.Contains(s.only, n)) && !slices.Contains(s.skip, n) {
			out = append(out, n)
		}
	}
	return out
}
