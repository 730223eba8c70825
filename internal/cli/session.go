package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
	"github.com/coderctl/coderctl/internal/kube"
	"github.com/coderctl/coderctl/internal/output"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/stages"
)

// session is one command's loaded world: the locked state file, the inputs,
// the cluster configuration, AWS clients and the stage graph.
type session struct {
	f     *Factory
	g     *globalOptions
	lock  state.Releaser
	store *state.Store
	deps  *deploy.Deps
	graph *engine.Graph
	// afterRun, when set, runs after the graph whatever its outcome.
	afterRun func(ctx context.Context)
}

// sessionNeeds says how much of the world a command needs.
type sessionNeeds struct {
	command string // for the lock holder line
	lock    bool   // the command may change state
	aws     bool   // the command talks to AWS
}

// openSession loads everything a command needs, validating all inputs
// before anything can change. The caller must Close it.
func openSession(ctx context.Context, f *Factory, g *globalOptions, need sessionNeeds) (_ *session, err error) {
	s := &session{f: f, g: g}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	be, err := openBackend(ctx, f, g)
	if err != nil {
		return nil, err
	}
	if err := requireState(ctx, be); err != nil {
		return nil, err
	}
	if need.lock {
		// Before any other AWS call: a run that could not record what it
		// creates must not create it (Lock checks a local file is
		// writable first).
		if s.lock, err = be.Lock(ctx, need.command); err != nil {
			return nil, err
		}
	}
	if s.store, err = be.Open(ctx); err != nil {
		return nil, err
	}
	if err := checkKubeconfig(g, f); err != nil {
		return nil, err
	}
	cfgPath := g.cfgPath(f)
	cluster, err := loadCluster(cfgPath)
	if err != nil {
		return nil, err
	}
	inputs, err := config.ResolveInputs(be.Name(), s.store.Snapshot(), f.LookupEnv, cluster, cfgPath)
	if err != nil {
		return nil, err
	}
	s.deps = &deploy.Deps{Inputs: inputs, Cluster: cluster, ConfigPath: cfgPath, State: s.store,
		Opts: deploy.Options{Version: f.Build.Version}, Now: f.Now, LookupEnv: f.LookupEnv}
	if s.deps.Opts.Wait, err = waitPolicy(f); err != nil {
		return nil, err
	}
	if need.aws {
		if err = s.connectAWS(ctx); err != nil {
			return nil, err
		}
		s.deps.Kube = kube.Factory(g.kubePath(f), s.deps.AWS, inputs.ClusterName())
	}
	if s.graph, err = engine.NewGraph(stages.Build(s.deps), engine.WithInputKeys(config.IsInputKey)); err != nil {
		return nil, fmt.Errorf("internal: stage graph: %w", err)
	}
	return s, nil
}

// stateLocation is where the state lives: --state (an s3:// URL or a path)
// or --env-file, then $CODERCTL_STATE or $CODERCTL_ENV_FILE, then
// ./coder-infra.env. A flag beats the environment; two flags, or two
// variables, naming the state are refused rather than one guessed. A bad
// URL is reported before a conflict, as the more specific mistake.
func stateLocation(f *Factory, g *globalOptions) (state.Location, error) {
	if g.state != "" {
		loc, err := state.ParseLocation("flag --state", g.state)
		if err == nil && g.envFile != "" {
			return state.Location{}, usageErr("--state and --env-file both name the state: give one of them")
		}
		return loc, err
	}
	if g.envFile != "" {
		return state.Location{Path: g.envFile}, nil
	}
	if v := f.getenv("CODERCTL_STATE"); v != "" {
		loc, err := state.ParseLocation("environment CODERCTL_STATE", v)
		if err == nil && f.getenv("CODERCTL_ENV_FILE") != "" {
			return state.Location{}, fault.Input("environment", "CODERCTL_STATE", "unset one of them, or pass --state or --env-file",
				"CODERCTL_STATE and CODERCTL_ENV_FILE both name the state")
		}
		return loc, err
	}
	return state.Location{Path: g.envPath(f)}, nil
}

// openBackend reaches the state (for remote state: the bucket, checked)
// and says once on stderr what the bucket lacks (versioning).
func openBackend(ctx context.Context, f *Factory, g *globalOptions) (*state.Backend, error) {
	loc, err := stateLocation(f, g)
	if err != nil {
		return nil, err
	}
	be, err := state.OpenBackend(ctx, loc, f.Build.Version)
	if err != nil {
		return nil, err
	}
	for _, w := range be.Warnings {
		fmt.Fprintf(f.IO.ErrOut, "warning: %s\n", w)
	}
	return be, nil
}

// requireState refuses state that does not exist: the local file, or the
// remote object.
func requireState(ctx context.Context, be *state.Backend) error {
	if r := be.Remote(); r != nil {
		return r.Require(ctx)
	}
	return requireStateFile(be.Location().Path)
}

// requireStateFile refuses a state file path that does not exist: the
// inputs live there, and a mistyped --env-file would otherwise be reported
// as a list of missing keys (or, with every input in the environment,
// start a deployment whose outputs land in a file nobody looks at).
func requireStateFile(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fault.Input(path, "", "run 'coderctl init' to write it, or pass --env-file with the right path", "file not found")
	}
	return nil
}

// checkKubeconfig refuses a --kubeconfig (or CODERCTL_KUBECONFIG) that is
// not a readable regular file, before client-go reports it mid-run.
func checkKubeconfig(g *globalOptions, f *Factory) error {
	path := g.kubePath(f)
	if path == "" {
		return nil
	}
	if _, err := fsx.ReadRegular(path, fsx.MaxInputFile); err != nil {
		msg, hint := fsx.Describe(err)
		source := "flag --kubeconfig"
		if g.kubeconfig == "" {
			source = "environment CODERCTL_KUBECONFIG"
		}
		return fault.Input(source, path, hint, "%s", msg)
	}
	return nil
}

func loadCluster(path string) (*api.ClusterConfig, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fault.Input(path, "", "run 'coderctl init' to write the default, or pass --config", "cluster config not found")
	}
	return config.LoadCluster(path)
}

// waitPolicy reads CODERCTL_POLL_INTERVAL, which tests and benchmarks use to
// poll faster than the SDK waiters' defaults.
func waitPolicy(f *Factory) (awsx.WaitPolicy, error) {
	v := f.getenv("CODERCTL_POLL_INTERVAL")
	if v == "" {
		return awsx.WaitPolicy{}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return awsx.WaitPolicy{}, fault.Input("environment", "CODERCTL_POLL_INTERVAL", "use a duration such as 2s", "%q is not a positive duration", v)
	}
	return awsx.WaitPolicy{MinDelay: d, MaxDelay: d}, nil
}

// connectAWS builds the clients and proves, with two reads, that the
// credentials work and the region exists: both are bad input, reported
// before anything changes.
func (s *session) connectAWS(ctx context.Context) error {
	clients, err := awsx.Connect(ctx, s.deps.Region(), s.deps.Inputs.Source("AWS_REGION"), s.f.Build.Version)
	if err != nil {
		return err
	}
	s.deps.AWS = clients
	return nil
}

// Close releases the lock.
func (s *session) Close() {
	if s.lock != nil {
		release(s.f, s.lock)
		s.lock = nil
	}
}

// release gives the run lock up. A remote lock that could not be deleted
// stays and refuses the next run, so the user hears of it now.
func release(f *Factory, lock state.Releaser) {
	if err := lock.Release(); err != nil {
		fmt.Fprintf(f.IO.ErrOut, "warning: %v\n", err)
	}
}

// sink returns the renderer for this command's output and a function that
// flushes it.
func (s *session) sink() (engine.Sink, func()) {
	return newSink(s.f, s.g)
}

func newSink(f *Factory, g *globalOptions) (engine.Sink, func()) {
	if g.output == "json" {
		return output.NewJSON(f.IO.Out), func() {}
	}
	t := output.NewText(f.IO.Out, output.TextOptions{
		Live:    f.IO.IsTerminal && f.getenv("CI") == "",
		Color:   f.IO.IsTerminal && !g.noColor && f.getenv("NO_COLOR") == "",
		Verbose: g.verbose,
		Now:     f.Now,
	})
	return t, t.Close
}

// run executes the graph in a mode, records stage timestamps and maps the
// outcome to an error the CLI can turn into an exit code.
func (s *session) run(ctx context.Context, opts engine.Options) (*engine.Summary, error) {
	opts.Now = s.f.Now
	opts.OnStageApplied = func(stage string) error {
		return s.store.Set(appliedKey(stage), s.f.Now().UTC().Format(time.RFC3339))
	}
	opts.OnStageDestroyed = func(stage string) error {
		st, _ := s.graph.Stage(stage)
		return s.store.Unset(append(st.Writes, appliedKey(stage))...)
	}
	sink, flush := s.sink()
	sum, err := s.graph.Run(ctx, sink, opts)
	flush()
	if sum == nil {
		return nil, usageErr("%v", err)
	}
	if err != nil {
		return sum, &runError{msg: failureLine(sum, err)}
	}
	return sum, nil
}

// appliedKey is the state key recording when a stage was last applied.
func appliedKey(stage string) string {
	return "STAGE_" + strings.ToUpper(strings.ReplaceAll(stage, "-", "_")) + "_APPLIED_AT"
}

// recordInputs writes AWS_REGION and CLUSTER_NAME into the state file when
// they came from cluster-config.yaml, so a shell that sources the file has
// them too.
func (s *session) recordInputs() error {
	kv := map[string]string{}
	for _, k := range []string{"AWS_REGION", "CLUSTER_NAME"} {
		if _, ok := s.store.Lookup(k); !ok {
			kv[k] = s.deps.Inputs.Get(k)
		}
	}
	if len(kv) == 0 {
		return nil
	}
	return s.store.SetMany(kv)
}

// failureLine says in one line which stages and checks failed.
func failureLine(sum *engine.Summary, err error) string {
	if len(sum.FailedChecks) > 0 {
		return fmt.Sprintf("%s failed: checks %s did not pass (run 'coderctl verify' for details)", sum.Mode, strings.Join(sum.FailedChecks, ", "))
	}
	return strings.TrimPrefix(err.Error(), engine.ErrFailed.Error()+": ")
}
