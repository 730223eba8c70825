package kubeground

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// shared is the one ground a test binary starts through Require. A control
// plane takes seconds to start and ~0.5 GiB of memory, so the tests of a
// package share it and isolate themselves by namespace.
var shared struct {
	once   sync.Once
	ground *Ground
	err    error
}

// Require returns the test binary's shared ground, starting it on first use.
// Missing binaries fail the test with the command that builds them: a test
// that needs Kubernetes must not pass by skipping. Call Main from TestMain
// to stop the ground when the tests end.
func Require(t testing.TB) *Ground {
	t.Helper()
	shared.once.Do(func() {
		shared.ground, shared.err = Start(context.Background(), Options{})
		if shared.err == nil {
			t.Logf("kubeground %s up in %s (work dir %s)", KubeVersion,
				shared.ground.StartDuration().Round(1e6), shared.ground.WorkDir())
		}
	})
	if shared.err != nil {
		t.Fatalf("kubeground: %v", shared.err)
	}
	return shared.ground
}

// Main runs the package's tests and then stops the shared ground, keeping
// its work directory (logs, etcd data) when a test failed. Use it as
//
//	func TestMain(m *testing.M) { kubeground.Main(m) }
//
// Without it the components still die with the test binary on Linux
// (Pdeathsig), but the temporary work directory stays behind.
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(code != 0); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// StopShared stops the shared ground if one was started, keeping its work
// directory when failed is set. For TestMains that combine several grounds.
func StopShared(failed bool) error {
	g := shared.ground
	if g == nil {
		return nil
	}
	if failed {
		g.keepWorkDir = true
		fmt.Fprintf(os.Stderr, "kubeground: tests failed; component logs kept in %s\n", g.WorkDir())
	}
	if err := g.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "kubeground: stop: %v\n", err)
		return err
	}
	return nil
}
