package cli

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/state"
)

// newStageCmd builds `coderctl stage <name> <action>` from the registry, so
// a new stage package gets its commands by registering itself.
func newStageCmd(f *Factory, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stage STAGE plan|apply|verify|destroy|status",
		Short: "Run one stage's plan, apply, verify, destroy or status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErr("name a stage: %s", strings.Join(stageNames(f), ", "))
		},
	}
	for _, sf := range f.Registry() {
		cmd.AddCommand(newOneStageCmd(f, g, sf.Name, sf.Summary))
	}
	return cmd
}

func newOneStageCmd(f *Factory, g *globalOptions, name, summary string) *cobra.Command {
	sc := &cobra.Command{
		Use:   name + " plan|apply|verify|destroy|status",
		Short: summary,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErr("stage %s needs an action: plan, apply, verify, destroy or status", name)
		},
	}
	only := []string{name}
	changes := newOptionFlags(changeOptions)
	destroy := newOptionFlags(destroyOptions)
	plan := &cobra.Command{Use: "plan", Short: "Show what apply would do", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGraphWith(cmd.Context(), f, g, "coderctl stage "+name+" plan", engine.Options{Mode: engine.ModePlan, Only: only}, changes.tune)
		}}
	changes.add(plan)
	apply := &cobra.Command{Use: "apply", Short: "Apply this stage, then run its checkpoint", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGraphWith(cmd.Context(), f, g, "coderctl stage "+name+" apply", engine.Options{Mode: engine.ModeApply, Only: only}, changes.tune)
		}}
	changes.add(apply)
	destroyCmd := &cobra.Command{Use: "destroy", Short: "Destroy what this stage created", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(f, g, "Destroy stage "+name+"?"); err != nil {
				return err
			}
			return runGraphWith(cmd.Context(), f, g, "coderctl stage "+name+" destroy", engine.Options{Mode: engine.ModeDestroy, Only: only}, destroy.tune)
		}}
	destroy.add(destroyCmd)
	sc.AddCommand(
		plan,
		apply,
		&cobra.Command{Use: "verify", Short: "Run this stage's checkpoint", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return verifyStages(cmd.Context(), f, g, only)
			}},
		destroyCmd,
		&cobra.Command{Use: "status", Short: "Show when this stage was applied and what it recorded", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return showStatus(f, g, only)
			}},
	)
	return sc
}

func stageNames(f *Factory) []string {
	var names []string
	for _, sf := range f.Registry() {
		names = append(names, sf.Name)
	}
	return names
}

func newStatusCmd(f *Factory, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each stage's last apply and the outputs it recorded",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showStatus(f, g, nil)
		},
	}
}

// showStatus prints, per stage, when it was applied and its recorded
// outputs, from the state file alone (no AWS call).
func showStatus(f *Factory, g *globalOptions, names []string) error {
	s, err := openSession(nilContext(), f, g, sessionNeeds{})
	if err != nil {
		return err
	}
	defer s.Close()
	type stageStatus struct {
		Stage     string            `json:"stage"`
		AppliedAt string            `json:"applied_at,omitempty"`
		Outputs   map[string]string `json:"outputs"`
	}
	var rows []stageStatus
	for _, st := range s.graph.Stages() {
		if len(names) > 0 && !slices.Contains(names, st.Name) {
			continue
		}
		row := stageStatus{Stage: st.Name, AppliedAt: s.store.Get(appliedKey(st.Name)), Outputs: map[string]string{}}
		for _, k := range st.Writes {
			row.Outputs[k] = s.store.Get(k)
		}
		rows = append(rows, row)
	}
	if g.output == "json" {
		return writeJSON(f.IO.Out, map[string]any{"type": "status", "time": f.Now().UTC(), "state_file": absPath(s.store.Path()), "stages": rows})
	}
	fmt.Fprintf(f.IO.Out, "state file: %s\n", absPath(s.store.Path()))
	for _, r := range rows {
		applied := r.AppliedAt
		if applied == "" {
			applied = "never applied"
		}
		fmt.Fprintf(f.IO.Out, "%-14s %s\n", r.Stage, applied)
		for _, k := range sortedKeys(r.Outputs) {
			v := r.Outputs[k]
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(f.IO.Out, "    %-28s %s\n", k, v)
		}
	}
	return nil
}

func absPath(p string) string {
	if state.IsRemote(p) {
		return p // an s3:// URL
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
