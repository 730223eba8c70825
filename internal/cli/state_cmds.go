package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
	"github.com/coderctl/coderctl/internal/state"
)

func newStateCmd(f *Factory, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state show|get KEY|set KEY=VALUE..|unset KEY..|pull [FILE]|push FILE|unlock LOCK_ID",
		Short: "Read or edit the state (coder-infra.env, or the S3 object named by --state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr("state needs an action: show, get, set, unset, pull, push or unlock")
		},
	}
	unlock := &cobra.Command{Use: "unlock LOCK_ID", Short: "Remove a remote lock whose run is gone (asks first; --yes does not)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return stateUnlock(cmd.Context(), f, g, args[0]) }}
	push := &cobra.Command{Use: "push FILE", Short: "Upload a pulled copy to the remote state, refused if the remote changed since the pull", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return statePush(cmd.Context(), f, g, args[0]) }}
	cmd.AddCommand(
		&cobra.Command{Use: "show", Aliases: []string{"list"}, Short: "Print every key in the state", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return stateShow(cmd.Context(), f, g) }},
		&cobra.Command{Use: "get KEY", Short: "Print one key's value", Args: exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return stateGet(cmd.Context(), f, g, args[0]) }},
		&cobra.Command{Use: "set KEY=VALUE...", Short: "Set keys (validated, written atomically under the lock)", Args: minArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return stateSet(cmd.Context(), f, g, args) }},
		&cobra.Command{Use: "unset KEY...", Short: "Remove keys", Args: minArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return stateUnset(cmd.Context(), f, g, args) }},
		&cobra.Command{Use: "pull [FILE]", Short: "Write a copy of the remote state a shell can source (stdout without FILE)", Args: maxArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return statePull(cmd.Context(), f, g, args) }},
		push, unlock,
	)
	return cmd
}

// loadState reads the state once, wherever it lives, for read-only commands.
func loadState(ctx context.Context, f *Factory, g *globalOptions) (*state.Backend, *state.File, error) {
	be, err := openBackend(ctx, f, g)
	if err != nil {
		return nil, nil, err
	}
	if err := requireState(ctx, be); err != nil {
		return nil, nil, err
	}
	file, err := be.Load(ctx)
	return be, file, err
}

func stateShow(ctx context.Context, f *Factory, g *globalOptions) error {
	_, file, err := loadState(ctx, f, g)
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

func stateGet(ctx context.Context, f *Factory, g *globalOptions, key string) error {
	if err := checkKeyArg(key); err != nil {
		return err
	}
	be, file, err := loadState(ctx, f, g)
	if err != nil {
		return err
	}
	v, ok := file.Get(key)
	if !ok {
		return fault.Input(be.Name(), key, "see 'coderctl state show'", "key is not set")
	}
	fmt.Fprintln(f.IO.Out, v)
	return nil
}

// stateSet parses every KEY=VALUE first, so one bad pair changes nothing.
func stateSet(ctx context.Context, f *Factory, g *globalOptions, pairs []string) error {
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
	return withLockedStore(ctx, f, g, "coderctl state set", func(s *state.Store) error { return s.SetMany(kv) })
}

func stateUnset(ctx context.Context, f *Factory, g *globalOptions, keys []string) error {
	for i, k := range keys {
		if err := checkKeyArg(k); err != nil {
			return err
		}
		if slices.Contains(keys[:i], k) {
			return usageErr("%s is given twice: unset each key once", k)
		}
	}
	return withLockedStore(ctx, f, g, "coderctl state unset", func(s *state.Store) error { return s.Unset(keys...) })
}

// checkKeyArg refuses a key given on the command line that is not an
// upper-case shell name: bad input (exit 2), like a bad key in the file.
func checkKeyArg(key string) error {
	if err := state.ValidateKey(key); err != nil {
		return fault.Input("argument", "", "state keys are upper-case shell names", "%v", err)
	}
	return nil
}

func withLockedStore(ctx context.Context, f *Factory, g *globalOptions, command string, fn func(*state.Store) error) error {
	be, err := openBackend(ctx, f, g)
	if err != nil {
		return err
	}
	if err := requireState(ctx, be); err != nil {
		return err
	}
	lock, err := be.Lock(ctx, command)
	if err != nil {
		return err
	}
	defer release(f, lock)
	s, err := be.Open(ctx)
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

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErr("%s takes at most %d argument(s), got %d", cmd.CommandPath(), n, len(args))
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

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func nilContext() context.Context { return context.Background() }

// remoteOnly resolves the state location for pull, push and unlock, which
// act on remote state: a local file is already a file a shell can source,
// and its flock lock is dropped by the kernel when its holder exits.
func remoteOnly(f *Factory, g *globalOptions, action string) error {
	loc, err := stateLocation(f, g)
	if err != nil {
		return err
	}
	if !loc.Remote() {
		return usageErr("state %s works on remote state: pass --state s3://BUCKET/KEY or set CODERCTL_STATE (the state here is the local file %s)", action, loc.Path)
	}
	return nil
}

// statePull writes the remote state, preceded by a comment line recording
// its ETag (state.PulledCopy), to FILE or stdout.
func statePull(ctx context.Context, f *Factory, g *globalOptions, args []string) error {
	if err := remoteOnly(f, g, "pull"); err != nil {
		return err
	}
	if len(args) == 1 {
		if err := state.CheckWritable(args[0]); err != nil {
			return err
		}
	}
	be, err := openBackend(ctx, f, g)
	if err != nil {
		return err
	}
	r := be.Remote()
	if err := r.Require(ctx); err != nil {
		return err
	}
	data, etag, err := r.Read(ctx)
	if err != nil {
		return err
	}
	pulled := state.PulledCopy(r.Location(), etag, data, f.Now())
	if len(args) == 0 {
		_, err := f.IO.Out.Write(pulled)
		return err
	}
	if err := state.WriteAtomic(args[0], pulled); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "pulled %s (ETag %s) to %s: edit it, then 'coderctl state push %s'\n", r.Location(), etag, args[0], args[0])
	return nil
}

// statePush checks FILE as the state is checked (syntax, secrets, input
// values) before anything else, then uploads it under the run lock.
func statePush(ctx context.Context, f *Factory, g *globalOptions, path string) error {
	pulled, err := readPushFile(path)
	if err != nil {
		return err
	}
	if err := remoteOnly(f, g, "push"); err != nil {
		return err
	}
	be, err := openBackend(ctx, f, g)
	if err != nil {
		return err
	}
	r := be.Remote()
	if err := r.CheckPush(ctx, path, pulled); err != nil {
		return err
	}
	lock, err := r.Lock(ctx, "coderctl state push")
	if err != nil {
		return err
	}
	defer release(f, lock)
	etag, err := r.Push(ctx, path, pulled)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "pushed %s to %s (ETag %s); pull again before the next edit\n", path, r.Location(), etag)
	return nil
}

// readPushFile reads and checks a file to push: a regular file of bounded
// size, valid state, and input values a run would accept.
func readPushFile(path string) (*state.Pulled, error) {
	data, err := fsx.ReadRegular(path, fsx.MaxInputFile)
	if err != nil {
		msg, hint := fsx.Describe(err)
		return nil, fault.Input(path, "", hint, "%s", msg)
	}
	pulled, err := state.ReadPulled(path, data)
	if err != nil {
		return nil, err
	}
	file, err := state.Parse(path, pulled.Body)
	if err != nil {
		return nil, err
	}
	for _, k := range file.Keys() {
		v, _ := file.Get(k)
		if _, err := config.CheckInput(path, k, v); err != nil {
			return nil, err
		}
	}
	return pulled, nil
}

// stateUnlock removes a remote lock left by a run that is gone, after the
// holder is shown and the user confirms; only the lock named by id, and
// only if it is still the one shown.
func stateUnlock(ctx context.Context, f *Factory, g *globalOptions, id string) error {
	if strings.TrimSpace(id) == "" {
		return usageErr("state unlock needs the lock ID that the refusal named")
	}
	if err := remoteOnly(f, g, "unlock"); err != nil {
		return err
	}
	be, err := openBackend(ctx, f, g)
	if err != nil {
		return err
	}
	r := be.Remote()
	held, etag, err := r.CurrentLock(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		return fault.Input(be.Name(), "", "", "is not locked; nothing to unlock")
	}
	if err != nil {
		return err
	}
	if held.ID != id {
		return fault.Input(be.Name(), "", "pass the ID of the current lock, after checking that its run is gone",
			"lock ID %s is not the current lock, which is held by %s", id, held)
	}
	if err := confirmUnlock(f, g, be.Name(), held); err != nil {
		return err
	}
	if err := r.Unlock(ctx, id, etag); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "removed lock %s from %s\n", id, be.Name())
	return nil
}

// confirmUnlock asks before removing a lock, unless --yes: a lock removed
// under a live run lets a second run in beside it.
func confirmUnlock(f *Factory, g *globalOptions, name string, held *state.LockInfo) error {
	if g.yes {
		return nil
	}
	if !f.IO.IsTerminal {
		return fault.Input("flag --yes", "", "check that the run is gone, then pass --yes", "refusing to remove a lock without confirmation")
	}
	fmt.Fprintf(f.IO.ErrOut, "%s is locked by %s.\nRemove the lock only if that run is gone: a live run would go on without it. Type 'yes' to continue: ", name, held)
	answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
	if strings.TrimSpace(answer) != "yes" {
		return fault.Input("confirmation", "", "", "not confirmed; the lock was left")
	}
	return nil
}
