package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/inventory"
)

func newUpCmd(f *Factory, g *globalOptions) *cobra.Command {
	var dryRun, noWait bool
	changes := newOptionFlags(changeOptions)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Apply every stage in dependency order, verifying each",
		Args:  cobra.NoArgs,
	}
	selection := selectionFlags(cmd, f, "run")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		sel, err := selection()
		if err != nil {
			return err
		}
		mode := engine.ModeApply
		if dryRun {
			mode = engine.ModePlan
		}
		return runGraphWith(cmd.Context(), f, g, "coderctl up", engine.Options{Mode: mode, Only: sel.only, Skip: sel.skip},
			func(s *session) { s.deps.Opts.NoWait = noWait; changes.tune(s) })
	}
	changes.add(cmd)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "leave long outside waits (certificate DNS validation) pending; a later run resumes them")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change; change nothing")
	return cmd
}

func newPlanCmd(f *Factory, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what up would create or change, and the critical path",
		Args:  cobra.NoArgs,
	}
	selection := selectionFlags(cmd, f, "plan")
	// The same switches as up, so the plan shows what up with them does.
	changes := newOptionFlags(changeOptions)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		sel, err := selection()
		if err != nil {
			return err
		}
		return runGraphWith(cmd.Context(), f, g, "coderctl plan", engine.Options{Mode: engine.ModePlan, Only: sel.only, Skip: sel.skip}, changes.tune)
	}
	changes.add(cmd)
	return cmd
}

func newDownCmd(f *Factory, g *globalOptions) *cobra.Command {
	destroy := newOptionFlags(destroyOptions)
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Destroy every stage in reverse order, then list what still carries the deployment tag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(f, g, "Destroy the whole deployment?"); err != nil {
				return err
			}
			return runGraphWith(cmd.Context(), f, g, "coderctl down", engine.Options{Mode: engine.ModeDestroy}, func(s *session) {
				destroy.tune(s)
				s.afterRun = s.reportLeftovers
			})
		},
	}
	destroy.add(cmd)
	return cmd
}

// runGraph opens a session and runs the stage graph in one mode.
func runGraph(ctx context.Context, f *Factory, g *globalOptions, command string, opts engine.Options) error {
	return runGraphWith(ctx, f, g, command, opts, nil)
}

func runGraphWith(ctx context.Context, f *Factory, g *globalOptions, command string, opts engine.Options, tune func(*session)) error {
	mutating := opts.Mode != engine.ModePlan
	s, err := openSession(ctx, f, g, sessionNeeds{command: command, lock: mutating, aws: true})
	if err != nil {
		return err
	}
	defer s.Close()
	if tune != nil {
		tune(s)
	}
	if _, err := s.graph.Selected(opts.Only, opts.Skip); err != nil {
		return usageErr("%v", err)
	}
	// Inputs are checked before anything is created; destroy skips those
	// checks on purpose: a teardown must not be blocked by an input that
	// only matters for creating (an instance type no longer offered, a
	// token for an API that is being deleted). It checks instead what a
	// destroy would refuse halfway (a protected database).
	check := s.graph.ValidateAll
	if opts.Mode == engine.ModeDestroy {
		check = s.graph.CheckDestroyAll
	}
	if err := check(ctx, opts.Only, opts.Skip); err != nil {
		return err
	}
	if opts.Mode == engine.ModeApply {
		if err := s.confirmPlan(ctx, opts); err != nil {
			return err
		}
		if err := s.recordInputs(); err != nil {
			return err
		}
	}
	_, err = s.run(ctx, opts)
	if s.afterRun != nil {
		s.afterRun(ctx)
	}
	return err
}

// reportLeftovers lists every AWS resource still tagged for the deployment
// (a kept database, secrets in their recovery window, or a leak).
func (s *session) reportLeftovers(ctx context.Context) {
	left, err := inventory.Tagged(ctx, s.deps.AWS, s.deps.Deployment())
	if g := s.g; g.output == "json" {
		ev := map[string]any{"type": "leftovers", "time": s.f.Now().UTC().Format(time.RFC3339Nano), "resources": left}
		if err != nil {
			ev["error"] = err.Error()
		}
		_ = writeJSON(s.f.IO.Out, ev)
		return
	}
	switch {
	case err != nil:
		fmt.Fprintf(s.f.IO.Out, "could not list what is left: %v\n", err)
	case len(left) == 0:
		fmt.Fprintf(s.f.IO.Out, "nothing tagged %s=%s is left in AWS\n", awsx.TagDeployment, s.deps.Deployment())
	default:
		fmt.Fprintf(s.f.IO.Out, "still tagged %s=%s in AWS:\n", awsx.TagDeployment, s.deps.Deployment())
		for _, r := range left {
			fmt.Fprintf(s.f.IO.Out, "  %s\n", r)
		}
	}
}

// confirmPlan shows, on a terminal and without --yes, what apply will do
// and asks before doing it — Terraform's plan/apply in one command. A pipe
// or CI job proceeds: it asked for `up`.
func (s *session) confirmPlan(ctx context.Context, opts engine.Options) error {
	if s.g.yes || !s.f.IO.IsTerminal || s.g.output == "json" {
		return nil
	}
	plan := opts
	plan.Mode = engine.ModePlan
	sum, err := s.run(ctx, plan)
	if err != nil {
		return err
	}
	if !hasChanges(sum) {
		return nil
	}
	fmt.Fprint(s.f.IO.ErrOut, "Apply these changes? Type 'yes' to continue: ")
	answer, _ := bufio.NewReader(s.f.IO.In).ReadString('\n')
	if strings.TrimSpace(answer) != "yes" {
		return fault.Input("confirmation", "", "", "not confirmed; nothing was changed")
	}
	return nil
}

func hasChanges(sum *engine.Summary) bool {
	for _, st := range sum.Stages {
		for _, a := range st.Actions {
			if a.Kind != engine.Nothing {
				return true
			}
		}
	}
	return false
}

// confirm asks before destroying, unless --yes. Without a terminal to ask
// on, --yes is required.
func confirm(f *Factory, g *globalOptions, question string) error {
	if g.yes {
		return nil
	}
	if !f.IO.IsTerminal {
		return fault.Input("flag --yes", "", "pass --yes to confirm in a non-interactive run", "refusing to destroy without confirmation")
	}
	fmt.Fprintf(f.IO.ErrOut, "%s Type 'yes' to continue: ", question)
	answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
	if strings.TrimSpace(answer) != "yes" {
		return fault.Input("confirmation", "", "", "not confirmed; nothing was changed")
	}
	return nil
}

func newVerifyCmd(f *Factory, g *globalOptions) *cobra.Command {
	var smoke smokeOptions
	var junitPath string
	cmd := &cobra.Command{
		Use:   "verify [STAGE...]",
		Short: "Run every stage's checkpoint; exit 1 if any check fails",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNameList("verify", args, stageNames(f)); err != nil {
				return err
			}
			if !cmd.Flags().Changed("junit") {
				return verifyAndSmoke(cmd.Context(), f, g, args, smoke)
			}
			if err := checkJUnitPath(f, g, junitPath); err != nil {
				return err
			}
			return verifyWithReport(cmd.Context(), f, g, args, smoke, junitPath)
		},
	}
	smoke.addFlags(cmd, true)
	cmd.Flags().StringVar(&junitPath, "junit", "", "also write a JUnit XML report (one test case per check) to `FILE`, pass or fail")
	return cmd
}

// verifyAndSmoke runs the checkpoints, then the smoke test when asked and
// the checkpoints passed.
func verifyAndSmoke(ctx context.Context, f *Factory, g *globalOptions, names []string, smoke smokeOptions) error {
	if _, err := verifySummaryOf(ctx, f, g, names); err != nil || !smoke.enabled {
		return err
	}
	return runSmoke(ctx, f, g, smoke)
}

// verifyStages runs the named checkpoints (all when none are named) and
// prints a checklist and a summary.
func verifyStages(ctx context.Context, f *Factory, g *globalOptions, names []string) error {
	_, err := verifySummaryOf(ctx, f, g, names)
	return err
}

// verifySummaryOf is verifyStages returning the summary too: nil when the
// run broke before any check ran.
func verifySummaryOf(ctx context.Context, f *Factory, g *globalOptions, names []string) (*engine.Summary, error) {
	s, err := openSession(ctx, f, g, sessionNeeds{aws: true})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.graph.Selected(names, nil); err != nil {
		return nil, usageErr("%v", err)
	}
	sink, flush := s.sink()
	start := f.Now()
	checks, err := s.graph.VerifyStages(ctx, names, sink)
	if err != nil {
		flush()
		return nil, err
	}
	sum := verifySummary(s.graph, names, checks)
	sum.Duration = f.Now().Sub(start)
	sink.Emit(engine.Event{Type: engine.EventSummary, Time: f.Now(), Status: statusWord(sum.OK), Duration: sum.Duration, Summary: sum})
	flush()
	if !sum.OK {
		return sum, &runError{msg: fmt.Sprintf("verify failed: %s", strings.Join(sum.FailedChecks, ", "))}
	}
	return sum, nil
}

func verifySummary(g *engine.Graph, names []string, checks []engine.Check) *engine.Summary {
	sum := &engine.Summary{Mode: "verify", OK: true}
	sel, _ := g.Selected(names, nil)
	for _, st := range g.Stages() {
		if !sel[st.Name] {
			continue
		}
		res := engine.StageResult{Stage: st.Name, Status: engine.StatusDone}
		for _, c := range checks {
			if c.Stage != st.Name {
				continue
			}
			res.Checks = append(res.Checks, c)
			if c.Status == engine.Fail {
				res.Status = engine.StatusFailed
				sum.OK = false
				sum.FailedChecks = append(sum.FailedChecks, c.Stage+"/"+c.Name)
			}
		}
		sum.Stages = append(sum.Stages, res)
	}
	return sum
}

func statusWord(ok bool) string {
	if ok {
		return engine.StatusDone
	}
	return engine.StatusFailed
}
