// Package stages is the registry of every stage coderctl runs, in the
// guide's order. The CLI generates `coderctl stage <name> ...` from it.
package stages

import (
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/stages/acm"
	"github.com/coderctl/coderctl/stages/autoscaler"
	"github.com/coderctl/coderctl/stages/coder"
	"github.com/coderctl/coderctl/stages/eks"
	"github.com/coderctl/coderctl/stages/network"
	"github.com/coderctl/coderctl/stages/nodegroups"
	"github.com/coderctl/coderctl/stages/prereqs"
	"github.com/coderctl/coderctl/stages/provisioners"
	"github.com/coderctl/coderctl/stages/rds"
	"github.com/coderctl/coderctl/stages/secrets"
	"github.com/coderctl/coderctl/stages/storage"
	"github.com/coderctl/coderctl/stages/template"
)

// Factory builds a stage from the run's dependencies. Name and Summary are
// the stage value's own, so the CLI can list stages before it has inputs.
type Factory struct {
	Name    string
	Summary string
	New     func(*deploy.Deps) engine.Stage
}

// constructors are the stages that exist, in the guide's order.
var constructors = []func(*deploy.Deps) engine.Stage{
	prereqs.New,
	network.New,
	eks.New,
	nodegroups.New,
	storage.New,
	autoscaler.New,
	rds.New,
	acm.New,
	secrets.New,
	coder.New,
	provisioners.New,
	template.New,
}

// Registry lists the stages that exist, in the guide's order. It reads each
// stage's name and summary from a stage built over empty dependencies:
// constructors only assemble values and call nothing, so that is safe.
func Registry() []Factory {
	out := make([]Factory, 0, len(constructors))
	for _, build := range constructors {
		s := build(&deploy.Deps{})
		out = append(out, Factory{Name: s.Name, Summary: s.Summary, New: build})
	}
	return out
}

// Build constructs every registered stage.
func Build(d *deploy.Deps) []engine.Stage {
	out := make([]engine.Stage, 0, len(constructors))
	for _, build := range constructors {
		out = append(out, build(d))
	}
	return out
}
