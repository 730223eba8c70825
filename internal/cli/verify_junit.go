package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/junit"
)

// checkJUnitPath refuses, before any check runs, a --junit path the report
// could not be written to, or one that names coderctl's own state file or
// cluster config (the report would replace it).
func checkJUnitPath(f *Factory, g *globalOptions, path string) error {
	const hint = "name a file in an existing, writable directory, e.g. --junit verify-report.xml"
	if err := junit.CheckPath(path); err != nil {
		return fault.Input("flag --junit", "", hint, "%q: %v", path, err)
	}
	report, err := os.Stat(path)
	if err != nil {
		return nil // a new file cannot be one of the inputs
	}
	for _, in := range []struct{ what, path string }{{"the state file", g.envPath(f)}, {"the cluster config", g.cfgPath(f)}} {
		if other, err := os.Stat(in.path); err == nil && os.SameFile(report, other) {
			return fault.Input("flag --junit", "", hint, "%q: is %s; the report would replace it", path, in.what)
		}
	}
	return nil
}

// verifyWithReport is verify --junit: the run as without the flag (same
// output, same exit code), and the report written whatever the outcome —
// a failing verify is when CI needs it most. Bad input (exit 2) writes
// none: nothing ran, and bad input changes nothing.
func verifyWithReport(ctx context.Context, f *Factory, g *globalOptions, names []string, smoke smokeOptions, path string) error {
	rep := junit.Report{Name: "coderctl verify", Timestamp: f.Now()}
	var smokeCases []junit.Case
	smoke.onCheck = func(c engine.Check, d time.Duration) {
		jc := junit.FromCheck(c)
		jc.Time = d
		if smoke.keep && c.Name == phaseDelete {
			jc.Outcome, jc.Message = junit.Skipped, c.Reason
		}
		smokeCases = append(smokeCases, jc)
	}
	sum, err := verifySummaryOf(ctx, f, g, names)
	if sum == nil && fault.IsInput(err) {
		return err
	}
	for _, st := range summaryStages(sum) {
		for _, c := range st.Checks {
			rep.Cases = append(rep.Cases, junit.FromCheck(c))
		}
	}
	if sum == nil && err != nil {
		rep.Cases = append(rep.Cases, junit.Case{Class: "coderctl", Name: "verify", Outcome: junit.Errored, Message: err.Error(), Detail: err.Error()})
	}
	switch {
	case smoke.enabled && err != nil:
		rep.Cases = append(rep.Cases, skippedPhases(nil, "not run: the checkpoints did not pass")...)
	case smoke.enabled:
		err = runSmoke(ctx, f, g, smoke)
		rep.Cases = append(rep.Cases, smokeReport(smokeCases, err)...)
	}
	rep.Duration = f.Now().Sub(rep.Timestamp)
	werr := junit.Write(path, rep)
	switch {
	case werr == nil:
		return err
	case err == nil:
		return &runError{msg: fmt.Sprintf("checks passed, but the JUnit report --junit %s could not be written: %v", path, werr)}
	}
	// The checks' own failure decides the exit code; the lost report is
	// said on a line of its own.
	fmt.Fprintf(f.IO.ErrOut, "could not write the JUnit report --junit %s: %v\n", path, werr)
	return err
}

func summaryStages(sum *engine.Summary) []engine.StageResult {
	if sum == nil {
		return nil
	}
	return sum.Stages
}

// smokePhases are the smoke test's checks, in the order they run.
var smokePhases = []string{phaseImport, phaseBuild, phaseAgent, phaseDelete}

// smokeReport is the smoke phases that ran, then those that did not, as
// skipped; a smoke run that broke before any phase (no owner session) is
// one error case.
func smokeReport(ran []junit.Case, smokeErr error) []junit.Case {
	if len(ran) == 0 && smokeErr != nil {
		return []junit.Case{{Class: smokeStage, Name: smokeStage, Outcome: junit.Errored, Message: smokeErr.Error(), Detail: smokeErr.Error()}}
	}
	return skippedPhases(ran, "not run: an earlier phase failed or created no workspace")
}

// skippedPhases is ran followed by every phase not in it, skipped for why.
func skippedPhases(ran []junit.Case, why string) []junit.Case {
	out := slices.Clone(ran)
	for _, phase := range smokePhases {
		if !slices.ContainsFunc(ran, func(c junit.Case) bool { return c.Name == phase }) {
			out = append(out, junit.Case{Class: smokeStage, Name: phase, Outcome: junit.Skipped, Message: why})
		}
	}
	return out
}
