// Package testenv ties the proving ground's pieces together for tests that
// need more than one of them.
package testenv

import (
	"os"
	"testing"

	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// Main runs the tests, then stops the shared moto server and Kubernetes
// control plane (whichever were started). Use it as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	moto.StopShared()
	if err := kubeground.StopShared(code != 0); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}
