package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// node is one vertex of the step graph: a step, or a stage's checkpoint.
type node struct {
	id         string
	stage      string
	step       *Step // nil for a checkpoint
	needs      []string
	dependents []string
}

func (n *node) isCheckpoint() bool { return n.step == nil }

// checkpointID names a stage's checkpoint node. Stage names never contain
// "/", so it cannot collide with a step ID.
func checkpointID(stage string) string { return stage }

// Graph is the validated step-level dependency graph of a set of stages.
type Graph struct {
	nodes  map[string]*node
	order  []string // a topological order, stable across runs
	stages map[string]Stage
	names  []string // stage names in registry order
}

// NewGraph builds and validates the graph: every dependency must exist, a
// cross-stage dependency must name a stage the stage declares in Needs, and
// there must be no cycle. A step that declares no Needs depends on the
// checkpoints of every stage its stage needs.
func NewGraph(stages []Stage, opts ...GraphOption) (*Graph, error) {
	var o graphOptions
	for _, opt := range opts {
		opt(&o)
	}
	g := &Graph{nodes: map[string]*node{}, stages: map[string]Stage{}}
	for _, s := range stages {
		if _, dup := g.stages[s.Name]; dup {
			return nil, fmt.Errorf("stage %q registered twice", s.Name)
		}
		g.stages[s.Name] = s
		g.names = append(g.names, s.Name)
	}
	for _, s := range stages {
		if err := g.addStage(s); err != nil {
			return nil, err
		}
	}
	if err := g.link(); err != nil {
		return nil, err
	}
	if o.isInput != nil {
		if err := g.checkReads(o.isInput); err != nil {
			return nil, err
		}
	}
	return g, g.sort()
}

// GraphOption tunes NewGraph.
type GraphOption func(*graphOptions)

type graphOptions struct{ isInput func(key string) bool }

// WithInputKeys makes each stage's Reads a checked contract: every key a
// stage reads must be a user input (isInput) or written by the stage itself
// or by a stage it needs, directly or through others. A read that nothing
// upstream writes would find the key empty on a fresh deployment.
func WithInputKeys(isInput func(key string) bool) GraphOption {
	return func(o *graphOptions) { o.isInput = isInput }
}

func (g *Graph) checkReads(isInput func(string) bool) error {
	for _, name := range g.names {
		written := map[string]bool{}
		for _, up := range append(g.upstream(name), name) {
			for _, k := range g.stages[up].Writes {
				written[k] = true
			}
		}
		for _, k := range g.stages[name].Reads {
			if !isInput(k) && !written[k] {
				return fmt.Errorf("stage %s reads %s, which is not an input and no stage it needs writes", name, k)
			}
		}
	}
	return nil
}

// upstream lists every stage name needs, directly or through others.
func (g *Graph) upstream(name string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		for _, need := range g.stages[n].Needs {
			if !seen[need] {
				seen[need] = true
				walk(need)
			}
		}
	}
	walk(name)
	return sortedKeys(seen)
}

func (g *Graph) addStage(s Stage) error {
	for _, need := range s.Needs {
		if _, ok := g.stages[need]; !ok {
			return fmt.Errorf("stage %s needs unknown stage %q", s.Name, need)
		}
	}
	for _, a := range s.DestroyAlongside {
		if !slices.Contains(s.Needs, a) {
			return fmt.Errorf("stage %s is destroyed alongside %q, which it does not need", s.Name, a)
		}
	}
	cp := &node{id: checkpointID(s.Name), stage: s.Name}
	for i := range s.Steps {
		st := s.Steps[i]
		id := StepID(s.Name, st.Name)
		if _, dup := g.nodes[id]; dup {
			return fmt.Errorf("step %s declared twice", id)
		}
		needs := st.Needs
		if len(needs) == 0 {
			needs = s.Needs
		}
		g.nodes[id] = &node{id: id, stage: s.Name, step: &st, needs: slices.Clone(needs)}
		cp.needs = append(cp.needs, id)
	}
	if len(cp.needs) == 0 {
		cp.needs = slices.Clone(s.Needs)
	}
	g.nodes[cp.id] = cp
	return nil
}

// link checks every dependency and records the reverse edges.
func (g *Graph) link() error {
	for _, id := range sortedKeys(g.nodes) {
		n := g.nodes[id]
		for _, dep := range n.needs {
			target, ok := g.nodes[dep]
			if !ok {
				return fmt.Errorf("%s needs unknown step or stage %q", n.id, dep)
			}
			if target.stage != n.stage && !slices.Contains(g.stages[n.stage].Needs, target.stage) {
				return fmt.Errorf("%s needs %s, but stage %s does not declare that it needs stage %s", n.id, dep, n.stage, target.stage)
			}
			target.dependents = append(target.dependents, n.id)
		}
	}
	return nil
}

// sort computes a stable topological order (Kahn, ties broken by registry
// order then ID) and reports a cycle by naming its members.
func (g *Graph) sort() error {
	indeg := map[string]int{}
	for id, n := range g.nodes {
		indeg[id] = len(n.needs)
	}
	rank := map[string]int{}
	for i, name := range g.names {
		rank[name] = i
	}
	less := func(a, b string) bool {
		na, nb := g.nodes[a], g.nodes[b]
		if rank[na.stage] != rank[nb.stage] {
			return rank[na.stage] < rank[nb.stage]
		}
		return a < b
	}
	var ready []string
	for id, d := range indeg {
		if d == 0 {
			ready = append(ready, id)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return less(ready[i], ready[j]) })
		id := ready[0]
		ready = ready[1:]
		g.order = append(g.order, id)
		for _, dep := range g.nodes[id].dependents {
			indeg[dep]--
			if indeg[dep] == 0 {
				ready = append(ready, dep)
			}
		}
	}
	if len(g.order) != len(g.nodes) {
		return fmt.Errorf("dependency cycle among %s", strings.Join(g.cycleMembers(indeg), ", "))
	}
	return nil
}

// cycleMembers narrows the nodes Kahn's algorithm could not order to those on
// a cycle, by peeling off nodes that nothing unordered depends on (they are
// only downstream of a cycle).
func (g *Graph) cycleMembers(indeg map[string]int) []string {
	left := map[string]bool{}
	for id, d := range indeg {
		if d > 0 {
			left[id] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for id := range left {
			feeds := false
			for _, dep := range g.nodes[id].dependents {
				feeds = feeds || left[dep]
			}
			if !feeds {
				delete(left, id)
				changed = true
			}
		}
	}
	return sortedKeys(left)
}

// Stages returns the stages in registry order.
func (g *Graph) Stages() []Stage {
	out := make([]Stage, 0, len(g.names))
	for _, n := range g.names {
		out = append(out, g.stages[n])
	}
	return out
}

// Stage looks a stage up by name.
func (g *Graph) Stage(name string) (Stage, bool) {
	s, ok := g.stages[name]
	return s, ok
}

// StepIDs lists every step in topological order.
func (g *Graph) StepIDs() []string {
	var ids []string
	for _, id := range g.order {
		if !g.nodes[id].isCheckpoint() {
			ids = append(ids, id)
		}
	}
	return ids
}

// Needs returns the direct dependencies of a step or checkpoint.
func (g *Graph) Needs(id string) []string {
	if n, ok := g.nodes[id]; ok {
		return slices.Clone(n.needs)
	}
	return nil
}

// DestroyNeeds returns what a step or checkpoint waits for when destroying:
// the step edges reversed (what was made from it goes first) and every node
// of each stage that needs its stage, unless that stage is destroyed
// alongside it (Stage.DestroyAlongside). A step edge says what a resource
// was made from, not all that blocks its deletion: a VPC's internet
// gateway cannot go while a load balancer a later stage made still holds
// public addresses in it.
func (g *Graph) DestroyNeeds(id string) []string {
	n, ok := g.nodes[id]
	if !ok {
		return nil
	}
	needs := slices.Clone(n.dependents)
	for _, name := range g.names {
		other := g.stages[name]
		if slices.Contains(other.Needs, n.stage) && !slices.Contains(other.DestroyAlongside, n.stage) {
			needs = append(needs, g.stageNodes(name)...)
		}
	}
	return needs
}

// stageNodes lists a stage's steps and checkpoint in topological order.
func (g *Graph) stageNodes(stage string) []string {
	var ids []string
	for _, id := range g.order {
		if g.nodes[id].stage == stage {
			ids = append(ids, id)
		}
	}
	return ids
}

// CriticalPath is the longest chain of Typical durations through the graph:
// the time no scheduler can beat. It returns the total and the step IDs on it.
// weight, when non-nil, overrides Typical (benchmarks use a profile's figures).
func (g *Graph) CriticalPath(weight func(stepID string, typical time.Duration) time.Duration) (time.Duration, []string) {
	finish := map[string]time.Duration{}
	via := map[string]string{}
	for _, id := range g.order {
		n := g.nodes[id]
		var start time.Duration
		for _, dep := range n.needs {
			if finish[dep] >= start {
				start = finish[dep]
				via[id] = dep
			}
		}
		var d time.Duration
		if !n.isCheckpoint() {
			d = n.step.Typical
			if weight != nil {
				d = weight(id, d)
			}
		}
		finish[id] = start + d
	}
	var end string
	for _, id := range g.order {
		if end == "" || finish[id] > finish[end] {
			end = id
		}
	}
	var path []string
	for id := end; id != ""; id = via[id] {
		if !g.nodes[id].isCheckpoint() {
			path = append(path, id)
		}
	}
	slices.Reverse(path)
	return finish[end], path
}

// DependencyClosure returns the named stages plus every stage they need,
// transitively.
func (g *Graph) DependencyClosure(names []string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		if s, ok := g.stages[n]; ok {
			for _, d := range s.Needs {
				visit(d)
			}
		}
	}
	for _, n := range names {
		visit(n)
	}
	var out []string
	for _, n := range g.names {
		if seen[n] {
			out = append(out, n)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
