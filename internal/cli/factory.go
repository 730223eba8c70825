// Package cli is coderctl's command line: cobra commands that parse flags,
// build a run and render it. Commands are thin; they take their IO streams,
// environment and stage registry from a Factory so tests can run them with
// fake streams.
package cli

import (
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/coderctl/coderctl/stages"
)

// IOStreams are a command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTerminal says Out is a terminal: live progress instead of lines.
	IsTerminal bool
}

// BuildInfo describes the binary.
type BuildInfo struct {
	Version string
	Commit  string
}

// Factory supplies what commands need from the outside world.
type Factory struct {
	IO        IOStreams
	LookupEnv func(string) (string, bool)
	Registry  func() []stages.Factory
	Build     BuildInfo
	Now       func() time.Time
}

// NewFactory returns the factory for the real process.
func NewFactory(build BuildInfo) *Factory {
	return &Factory{
		IO: IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
			IsTerminal: term.IsTerminal(int(os.Stdout.Fd()))},
		LookupEnv: os.LookupEnv,
		Registry:  stages.Registry,
		Build:     build,
		Now:       time.Now,
	}
}

func (f *Factory) getenv(key string) string {
	v, _ := f.LookupEnv(key)
	return v
}
