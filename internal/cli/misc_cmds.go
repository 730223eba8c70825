package cli

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/state"

	coderctl "github.com/coderctl/coderctl"
)

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print coderctl's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(f.IO.Out, "coderctl %s (commit %s, %s %s/%s)\n", f.Build.Version, f.Build.Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// newInitCmd writes the default cluster-config.yaml and a documented
// coder-infra.env, setting the KEY=VALUE inputs given; it never overwrites.
func newInitCmd(f *Factory, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init [KEY=VALUE...]",
		Short: "Write the default cluster-config.yaml and coder-infra.env (never overwrites)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return initFiles(f, g, args)
		},
	}
}

func initFiles(f *Factory, g *globalOptions, args []string) error {
	envPath, cfgPath := g.envPath(f), g.cfgPath(f)
	file, err := state.Parse(envPath, coderctl.DefaultEnvFile)
	if err != nil {
		return fmt.Errorf("internal: embedded env example: %w", err)
	}
	given := map[string]bool{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return usageErr("%q is not KEY=VALUE", a)
		}
		if given[k] {
			return usageErr("%s is given twice: set each key once", k)
		}
		given[k] = true
		// Input keys get the checks the env file gets when it is read.
		normalized, err := config.CheckInput("argument", k, v)
		if err != nil {
			return err
		}
		if err := file.Set(k, normalized); err != nil {
			return err
		}
	}
	wrote := 0
	for _, w := range []struct {
		path string
		data []byte
	}{{cfgPath, coderctl.DefaultClusterConfig}, {envPath, file.Bytes()}} {
		if _, err := os.Stat(w.path); err == nil {
			fmt.Fprintf(f.IO.ErrOut, "%s exists, left as it is\n", w.path)
			continue
		}
		if err := state.WriteAtomic(w.path, w.data); err != nil {
			return fault.Input(w.path, "", "check the directory is writable", "cannot write: %v", err)
		}
		fmt.Fprintf(f.IO.Out, "wrote %s\n", w.path)
		wrote++
	}
	if wrote > 0 {
		fmt.Fprintf(f.IO.Out, "next: edit %s (CODER_DOMAIN at least), then 'coderctl plan' and 'coderctl up'\n", envPath)
	}
	return nil
}
