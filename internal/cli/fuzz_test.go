package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/stages"
)

// FuzzStageSelection: any --only/--skip command line either is refused as
// usage (exit 2) or selects at least one stage, each known, each named by
// --only when it is given and none named by --skip. An empty or
// contradictory selection never means "every stage".
func FuzzStageSelection(f *testing.F) {
	for _, seed := range [][2]string{
		{"--only=", ""}, {"--only=rds", "--skip=rds"}, {"--only=rds,", ""}, {"--only=rds\x00--only=eks", ""},
		{"", "--skip=prereqs,network,eks,nodegroups,rds,acm,secrets,coder,provisioners"},
		{"--only=rds,acm", "--skip=eks"}, {"--only= rds", ""}, {"--only=rds,rds", ""}, {"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	fac := &Factory{Registry: stages.Registry}
	known := stageNames(fac)
	f.Fuzz(func(t *testing.T, a, b string) {
		args := append(splitArgs(a), splitArgs(b)...)
		sel, err := parseSelection(fac, args)
		if err != nil {
			if code := fault.ExitCode(classify(err)); code != fault.ExitInput {
				t.Fatalf("args %q: exit %d for %v, want 2", args, code, err)
			}
			return
		}
		got := sel.selected(known)
		if len(got) == 0 {
			t.Fatalf("args %q: accepted a selection of no stage", args)
		}
		for _, s := range got {
			if len(sel.only) > 0 && !slices.Contains(sel.only, s) || slices.Contains(sel.skip, s) {
				t.Fatalf("args %q: selected %s against only=%q skip=%q", args, s, sel.only, sel.skip)
			}
		}
		if sel.onlyGiven && len(sel.only) == 0 || sel.skipGiven && len(sel.skip) == 0 {
			t.Fatalf("args %q: an empty flag was accepted", args)
		}
	})
}

// FuzzRepeatedFlags: whatever the command line, no flag of any command has
// its value set twice: the second occurrence is refused, not last-wins.
func FuzzRepeatedFlags(f *testing.F) {
	f.Add("up", "--yes\x00--yes")
	f.Add("plan", "-o\x00json\x00--output=text")
	f.Add("verify", "--kubeconfig=a\x00--kubeconfig=b")
	f.Add("down", "--delete-database\x00--delete-database=false")
	f.Add("up", "--only\x00--only\x00--only=x")
	f.Fuzz(func(t *testing.T, command, rest string) {
		root := newRootCmd(&Factory{Registry: stages.Registry}, &globalOptions{})
		cmd, _, err := root.Find([]string{command})
		if err != nil {
			return
		}
		sets := map[string]int{}
		wrapped := map[*pflag.Flag]bool{}
		count := func(fl *pflag.Flag) {
			if !wrapped[fl] {
				wrapped[fl], fl.Value = true, countSets(fl, sets)
			}
		}
		cmd.Flags().VisitAll(count)
		cmd.InheritedFlags().VisitAll(count)
		args := splitArgs(rest)
		_ = cmd.ParseFlags(args)
		for name, n := range sets {
			if n > 1 {
				t.Fatalf("%s %q: --%s set %d times", command, args, name, n)
			}
		}
	})
}

// countSets wraps a flag's value to count the Sets that succeed.
func countSets(fl *pflag.Flag, sets map[string]int) pflag.Value {
	c := &countingValue{Value: fl.Value, name: fl.Name, sets: sets}
	if b, ok := fl.Value.(boolFlag); ok && b.IsBoolFlag() {
		return &countingBool{c}
	}
	return c
}

type countingValue struct {
	pflag.Value
	name string
	sets map[string]int
}

func (c *countingValue) Set(v string) error {
	if err := c.Value.Set(v); err != nil {
		return err
	}
	c.sets[c.name]++
	return nil
}

type countingBool struct{ *countingValue }

func (c *countingBool) IsBoolFlag() bool { return true }

// parseSelection runs the up command's flag parsing and selection check.
func parseSelection(f *Factory, args []string) (stageSelection, error) {
	cmd := &cobra.Command{Use: "up"}
	selection := selectionFlags(cmd, f, "run")
	refuseRepeatedFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		return stageSelection{}, usageErr("%v", err)
	}
	return selection()
}

func splitArgs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}
