// Package stagetest gives stage tests a real world to run in: moto over
// HTTP, a temporary coder-infra.env, the shipped cluster-config.yaml and
// resolved inputs, wired into a deploy.Deps exactly as the CLI wires it.
package stagetest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"

	"github.com/coderctl/coderctl/internal/awsx"
	cfgpkg "github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// Env is one stage test's world.
type Env struct {
	Moto    *moto.Server
	Deps    *deploy.Deps
	Dir     string
	Calls   *awsx.CallCounter
	EnvFile string
}

// DefaultInputs are the env-file values every stage test starts from.
func DefaultInputs() map[string]string {
	return map[string]string{"CODER_DOMAIN": "coder.example.com", "USERS": "500"}
}

// New starts (or reuses) moto, resets it, and builds Deps over a fresh
// state file holding inputs (DefaultInputs when nil). The test binary's
// TestMain must call moto.Main.
func New(t testing.TB, inputs map[string]string) *Env {
	t.Helper()
	srv := moto.Require(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "coder-infra.env")
	if inputs == nil {
		inputs = DefaultInputs()
	}
	f, err := state.Parse(envFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range inputs {
		if err := f.Set(k, v); err != nil {
			t.Fatalf("input %s: %v", k, err)
		}
	}
	if err := state.WriteAtomic(envFile, f.Bytes()); err != nil {
		t.Fatal(err)
	}
	e := &Env{Moto: srv, Dir: dir, EnvFile: envFile, Calls: awsx.NewCallCounter()}
	e.Deps = e.build(t)
	return e
}

// ClusterConfigPath is the repository's shipped cluster-config.yaml.
func ClusterConfigPath(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "cluster-config.yaml")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// build wires Deps the way the CLI does, with fast waiter polling.
func (e *Env) build(t testing.TB) *deploy.Deps {
	t.Helper()
	cfgPath := ClusterConfigPath(t)
	cluster, err := cfgpkg.LoadCluster(cfgPath)
	if err != nil {
		t.Fatalf("cluster config: %v", err)
	}
	store, err := state.Open(e.EnvFile)
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	inputs, err := cfgpkg.ResolveInputs(e.EnvFile, store.Snapshot(), noEnv, cluster, cfgPath)
	if err != nil {
		t.Fatalf("inputs: %v", err)
	}
	awsCfg, err := e.awsConfig(inputs.Region())
	if err != nil {
		t.Fatal(err)
	}
	return &deploy.Deps{
		Inputs: inputs, Cluster: cluster, ConfigPath: cfgPath, State: store,
		AWS:  awsx.NewClients(awsCfg),
		Opts: deploy.Options{Version: "test", Wait: awsx.WaitPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Timeout: time.Minute}},
		Now:  time.Now,
	}
}

func (e *Env) awsConfig(region string) (aws.Config, error) {
	return config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithBaseEndpoint(e.Moto.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		config.WithAPIOptions([]func(*middleware.Stack) error{e.Calls.Middleware}),
	)
}

// Reload rebuilds Deps from the state file on disk, as a new process would.
func (e *Env) Reload(t testing.TB) { e.Deps = e.build(t) }

// MustRun is Run for a run that must succeed: it fails the test, naming
// the failed checks and step errors, when the run errs or is not OK.
func (e *Env) MustRun(t testing.TB, stages []engine.Stage, opts engine.Options) (*engine.Summary, []engine.Event) {
	t.Helper()
	sum, events, err := e.Run(t, stages, opts)
	if err != nil || !sum.OK {
		t.Fatalf("%s: err=%v\n%s", opts.Mode, err, Failures(sum, events))
	}
	return sum, events
}

// Run builds the graph of stages and runs it; stages must include every
// stage the run's stages need (their steps count as done when not selected).
func (e *Env) Run(t testing.TB, stages []engine.Stage, opts engine.Options) (*engine.Summary, []engine.Event, error) {
	t.Helper()
	g, err := engine.NewGraph(stages)
	if err != nil {
		t.Fatalf("graph: %v", err)
	}
	var mu sync.Mutex
	var events []engine.Event
	sink := engine.SinkFunc(func(ev engine.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, ev)
	})
	sum, err := g.Run(context.Background(), sink, opts)
	return sum, events, err
}
