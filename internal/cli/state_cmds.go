package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/state"
)

func newStateCmd(f *Factory, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state show|get KEY|set KEY=VALUE..|unset KEY..",
		Short: "Read or edit coder-infra.env",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr("state needs an action: show, get, set or unset")
		},
	}
	cmd.AddCommand(
		&cobra.Command{Use: "show", Short: "Print every key in the state file", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return stateShow(f, g) }},
		&cobra.Command{Use: "get KEY", Short: "Print one key's value", Args: exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return stateGet(f, g, args[0]) }},
		&cobra.Command{Use: "set KEY=VALUE...", Short: "Set keys (validated, written atomically under the lock)", Args: minArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return stateSet(f, g, args) }},
		&cobra.Command{Use: "unset KEY...", Short: "Remove keys", Args: minArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return stateUnset(f, g, args) }},
	)
	return cmd
}

func stateShow(f *Factory, g *globalOptions) error {
	if err := requireStateFile(g.envPath(f)); err != nil {
		return err
	}
	file, err := state.Load(g.envPath(f))
	if err != nil {
		return err
	}
	if g.output == "json" {
		return writeJSON(f.IO.Out, map[string]any{"type": "state", "values": file.Map()})
	}
	for _, k := range file.Keys() {
		v, _ := file.Get(k)
		fmt.Fprintf(f.IO.Out, "%s=%s\n", k, v)
	}
	return nil
}

func stateGet(f *Factory, g *globalOptions, key string) error {
	if err := checkKeyArg(key); err != nil {
		return err
	}
	if err := requireStateFile(g.envPath(f)); err != nil {
		return err
	}
	file, err := state.Load(g.envPath(f))
	if err != nil {
		return err
	}
	v, ok := file.Get(key)
	if !ok {
		return fault.Input(g.envPath(f), key, "see 'coderctl state show'", "key is not set")
	}
	fmt.Fprintln(f.IO.Out, v)
	return nil
}

// stateSet parses every KEY=VALUE first, so one bad pair changes nothing.
func stateSet(f *Factory, g *globalOptions, pairs []string) error {
	kv := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return usageErr("%q is not KEY=VALUE", p)
		}
		if err := checkKeyArg(k); err != nil {
			return err
		}
		if _, twice := kv[k]; twice {
			return usageErr("%s is given twice: set each key once", k)
		}
		if state.IsSecretKey(k) {
			return fault.Input("argument", k, "keep secrets in AWS Secrets Manager or the process environment", "refusing to store a secret-looking key in the state file")
		}
		// Input keys get the checks the env file gets, so that a bad value
		// is refused here rather than by the next run.
		normalized, err := config.CheckInput("argument", k, v)
		if err != nil {
			return err
		}
		kv[k] = normalized
	}
	return withLockedStore(f, g, "coderctl state set", func(s *state.Store) error { return s.SetMany(kv) })
}

func stateUnset(f *Factory, g *globalOptions, keys []string) error {
	for i, k := range keys {
		if err := checkKeyArg(k); err != nil {
			return err
		}
		if slices.Contains(keys[:i], k) {
			return usageErr("%s is given twice: unset each key once", k)
		}
	}
	return withLockedStore(f, g, "coderctl state unset", func(s *state.Store) error { return s.Unset(keys...) })
}

// checkKeyArg refuses a key given on the command line that is not an
// upper-case shell name: bad input (exit 2), like a bad key in the file.
func checkKeyArg(key string) error {
	if err := state.ValidateKey(key); err != nil {
		return fault.Input("argument", "", "state keys are upper-case shell names", "%v", err)
	}
	return nil
}

func withLockedStore(f *Factory, g *globalOptions, command string, fn func(*state.Store) error) error {
	path := g.envPath(f)
	if err := requireStateFile(path); err != nil {
		return err
	}
	if err := state.CheckWritable(path); err != nil {
		return err
	}
	lock, err := state.AcquireLock(path, command)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release() }()
	s, err := state.Open(path)
	if err != nil {
		return err
	}
	return fn(s)
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErr("%s needs at least %d argument(s)", cmd.CommandPath(), n)
		}
		return nil
	}
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nilContext() context.Context { return context.Background() }
