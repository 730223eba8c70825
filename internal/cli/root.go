package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/fault"
)

// globalOptions are the persistent flags every command shares.
type globalOptions struct {
	envFile    string
	state      string // --state: an s3:// URL or a path (session.go)
	configPath string
	kubeconfig string
	output     string
	yes        bool
	noColor    bool
	verbose    bool
}

// Main runs coderctl with args and returns the process exit code.
func Main(f *Factory, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globalOptions{}
	// Commands and stages are listed in the order they are used and run
	// (up, plan, verify…; prereqs, network, eks…), not alphabetically.
	cobra.EnableCommandSorting = false
	root := newRootCmd(f, g)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return fault.ExitOK
	}
	err = classify(err)
	code := fault.ExitCode(err)
	reportError(f, g, err, code)
	return code
}

// runError is a failed run or check whose details the renderer already
// showed, in JSON as the summary event.
type runError struct{ msg string }

func (e *runError) Error() string { return e.msg }

// reportError prints one line saying what failed and what to do; in JSON
// mode it is also an event on stdout so a CI job sees it in one stream.
func reportError(f *Factory, g *globalOptions, err error, code int) {
	msg := fault.FirstLine(err.Error())
	fmt.Fprintf(f.IO.ErrOut, "Error: %s\n", msg)
	var re *runError
	if g.output == "json" && !errors.As(err, &re) {
		b, _ := json.Marshal(map[string]any{"type": "error", "time": f.Now().UTC().Format(time.RFC3339Nano), "error": msg, "exit_code": code})
		fmt.Fprintln(f.IO.Out, string(b))
	}
}

// classify turns cobra's usage errors into bad input (exit 2).
func classify(err error) error {
	var re *runError
	if fault.IsInput(err) || fault.IsLocked(err) || errors.As(err, &re) {
		return err
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "accepts ", "requires ", "flag needs an argument", "bad flag syntax"} {
		if strings.HasPrefix(msg, p) {
			return &fault.InputError{Source: "usage", Msg: msg, Hint: "see 'coderctl --help'"}
		}
	}
	return err
}

func usageErr(format string, args ...any) error {
	return &fault.InputError{Source: "usage", Msg: fmt.Sprintf(format, args...), Hint: "see 'coderctl --help'"}
}

func newRootCmd(f *Factory, g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "coderctl",
		Short: "Deploy Coder on AWS EKS in ordered, verifiable stages",
		Long: `coderctl takes an AWS account to a production Coder deployment on EKS sized for
~500 concurrent workspaces, stage by stage (plan, apply, verify, destroy), keeping
its state in coder-infra.env.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Libraries (helm, client-go) write warnings through Go's global
			// logger; keep them out of the output unless -v asks for them.
			if g.verbose {
				log.SetOutput(f.IO.ErrOut)
			} else {
				log.SetOutput(io.Discard)
			}
			return g.validate(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.envFile, "env-file", "", "state and inputs file (default ./coder-infra.env, or $CODERCTL_ENV_FILE)")
	pf.StringVar(&g.state, "state", "", "where the state lives: s3://BUCKET/KEY for remote state, or a path like --env-file (or $CODERCTL_STATE)")
	pf.StringVar(&g.configPath, "config", "", "eksctl ClusterConfig (default ./cluster-config.yaml, or $CODERCTL_CONFIG)")
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig to use instead of the EKS cluster's (or $CODERCTL_KUBECONFIG)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.BoolVar(&g.yes, "yes", false, "do not ask for confirmation")
	pf.BoolVar(&g.noColor, "no-color", false, "disable colors")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "show every progress message")

	root.AddCommand(
		newUpCmd(f, g), newPlanCmd(f, g), newVerifyCmd(f, g), newStageCmd(f, g), newDownCmd(f, g),
		newStatusCmd(f, g), newStateCmd(f, g), newInitCmd(f, g), newKubeconfigCmd(f, g), newTokenCmd(f, g), newAccessCmd(f, g), newSizeCmd(f, g), newTemplateCmd(f, g), newSmokeCmd(f, g), newIAMPolicyCmd(f, g), newVersionCmd(f),
	)
	refuseRepeatedFlags(root)
	return root
}

func (g *globalOptions) validate(cmd *cobra.Command) error {
	if g.output != "text" && g.output != "json" {
		return fault.Input("flag -o", "", "use -o text or -o json", "unknown output format %q", g.output)
	}
	// An empty path flag is a script bug (an unset variable), not a request
	// for the default: one `--config ''` run deployed the default config.
	for _, name := range []string{"env-file", "state", "config", "kubeconfig"} {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed && strings.TrimSpace(fl.Value.String()) == "" {
			return fault.Input("flag --"+name, "", "give a path, or leave the flag out to use the default", "is empty")
		}
	}
	return nil
}

// resolvePath applies the precedence flag > environment > default.
func resolvePath(flagValue, envKey, def string, lookup func(string) (string, bool)) string {
	if flagValue != "" {
		return flagValue
	}
	if v, ok := lookup(envKey); ok && v != "" {
		return v
	}
	return def
}

func (g *globalOptions) envPath(f *Factory) string {
	return resolvePath(g.envFile, "CODERCTL_ENV_FILE", "coder-infra.env", f.LookupEnv)
}

func (g *globalOptions) cfgPath(f *Factory) string {
	return resolvePath(g.configPath, "CODERCTL_CONFIG", "cluster-config.yaml", f.LookupEnv)
}

func (g *globalOptions) kubePath(f *Factory) string {
	return resolvePath(g.kubeconfig, "CODERCTL_KUBECONFIG", "", f.LookupEnv)
}
