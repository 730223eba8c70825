package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
)

// upgradeResult is `coderctl up` after raising metadata.version by one
// minor, beside the profile's update durations: all node groups at once
// (the bound) and one after another.
type upgradeResult struct {
	From, To     string     `json:"-"`
	Versions     string     `json:"versions"`
	WallMS       int64      `json:"wall_ms"`
	RunMS        int64      `json:"run_ms"`
	Groups       int        `json:"node_groups"`
	ControlMS    int64      `json:"control_plane_ms"`
	AddonsMS     int64      `json:"addons_ms"`
	GroupMS      int64      `json:"node_group_ms"`
	ParallelMS   int64      `json:"groups_in_parallel_ms"`
	SequentialMS int64      `json:"groups_one_after_another_ms"`
	BoundMS      int64      `json:"critical_path_ms"`
	BoundPath    []string   `json:"critical_path"`
	BoundSeqMS   int64      `json:"critical_path_groups_in_sequence_ms"`
	AWSCalls     callCounts `json:"calls"`
}

// versionLineRE finds metadata.version in the shipped cluster-config.yaml
// (two-space indent under metadata, quoted).
var versionLineRE = regexp.MustCompile(`(?m)^(  version:\s*")(\d+)\.(\d+)(")`)

// raiseVersion rewrites metadata.version to the next minor, which must be
// one coderctl (and so the EKS stand-in) offers.
func raiseVersion(yaml []byte) (out []byte, from, to string, err error) {
	m := versionLineRE.FindSubmatch(yaml)
	if m == nil {
		return nil, "", "", fmt.Errorf("cluster-config.yaml: no metadata.version line to raise")
	}
	minor, _ := strconv.Atoi(string(m[3]))
	from = string(m[2]) + "." + string(m[3])
	to = string(m[2]) + "." + strconv.Itoa(minor+1)
	if !slices.Contains(config.SupportedEKSVersions(), to) {
		return nil, "", "", fmt.Errorf("cluster-config.yaml: metadata.version %s has no next minor coderctl offers (%v)", from, config.SupportedEKSVersions())
	}
	out = versionLineRE.ReplaceAll(yaml, []byte("${1}"+to+"${4}"))
	return out, from, to, nil
}

// upgradeModel is the upgrade's time from the profile alone: the control
// plane, then the add-ons (in parallel, one duration), then the node
// groups, all at once or one after another.
func upgradeModel(p awsproxy.Profile, groups int) (parallel, sequential time.Duration) {
	head := p.Create[awsproxy.EKSVersionUpdate] + p.Create[awsproxy.EKSAddonUpdate]
	ng := p.Create[awsproxy.EKSNodegroupUpdate]
	if groups == 0 {
		return head, head
	}
	return head + ng, head + time.Duration(groups)*ng
}

// upgradeLimits is the upgrade's critical path, weighed as boundWeights
// weighs up's: eks/cluster (control plane, then add-ons) weighs the
// profile's two update durations and each node group step the group
// update's, never more than it measured; every other step and checkpoint
// what it measured (helm releases whose values name the version, waits).
// seq is the same path with the node groups' updates one after another:
// the path's longest group replaced by all of them in turn.
func upgradeLimits(g *stepGraph, tl *timeline, p awsproxy.Profile) (bound time.Duration, path []string, seq time.Duration) {
	w := weights{}
	var groups []time.Duration
	for _, id := range g.nodes() {
		m := tl.stepDuration(id)
		switch {
		case isCheckpoint(id):
			w[id] = tl.checkpointDuration(id, stageSteps(g, id))
		case id == "eks/cluster":
			w[id] = min(m, p.Create[awsproxy.EKSVersionUpdate]+p.Create[awsproxy.EKSAddonUpdate])
		case g.kinds[id] == awsproxy.EKSNodegroup:
			w[id] = min(m, p.Create[awsproxy.EKSNodegroupUpdate])
			groups = append(groups, w[id])
		default:
			w[id] = m
		}
	}
	bound, path = longestPath(g, g.nodes(), w, nil)
	seq = bound
	for _, id := range path {
		if g.kinds[id] == awsproxy.EKSNodegroup {
			seq -= w[id]
			for _, d := range groups {
				seq += d
			}
			break
		}
	}
	return bound, path, seq
}

// benchUpgrade raises metadata.version by one minor and runs up.
func (d *deployment) benchUpgrade(ctx context.Context, w *world, p awsproxy.Profile, progress func(string)) error {
	path := filepath.Join(w.dir, "cluster-config.yaml")
	yaml, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	raised, from, to, err := raiseVersion(yaml)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raised, 0o600); err != nil {
		return err
	}
	g, err := loadGraph(w.dir)
	if err != nil {
		return err
	}
	groups := 0
	for _, k := range g.kinds {
		if k == awsproxy.EKSNodegroup {
			groups++
		}
	}
	progress("coderctl up: Kubernetes " + from + " → " + to)
	w.resetCounts()
	up, err := w.succeed(ctx, "up", "--yes", "-o", "json")
	if err != nil {
		return err
	}
	tl, err := parseTimeline(strings.NewReader(up.stdout))
	if err != nil {
		return fmt.Errorf("coderctl up -o json (upgrade): %w", err)
	}
	bound, cpPath, boundSeq := upgradeLimits(g, tl, p)
	parallel, sequential := upgradeModel(p, groups)
	r := upgradeResult{From: from, To: to, Versions: from + " → " + to, WallMS: up.wall.Milliseconds(), RunMS: tl.runDuration.Milliseconds(),
		Groups: groups, ControlMS: p.Create[awsproxy.EKSVersionUpdate].Milliseconds(), AddonsMS: p.Create[awsproxy.EKSAddonUpdate].Milliseconds(),
		GroupMS: p.Create[awsproxy.EKSNodegroupUpdate].Milliseconds(), ParallelMS: parallel.Milliseconds(), SequentialMS: sequential.Milliseconds(),
		BoundMS: bound.Milliseconds(), BoundPath: cpPath, BoundSeqMS: boundSeq.Milliseconds(),
		AWSCalls: w.counts(up)}
	d.upgrade = &r
	d.figures = append(d.figures, upgradeFigures(r)...)
	return nil
}

// upgradeFigures are the upgrade section's rows.
func upgradeFigures(u upgradeResult) []figure {
	sec := func(ms int64) float64 { return float64(ms) / 1000 }
	const s4 = "4. EKS upgrade by one minor (up after raising metadata.version)"
	return []figure{
		{Key: "upgrade_wall_s", Section: s4, Name: fmt.Sprintf("coderctl up, Kubernetes %s, wall time", u.Versions), Value: sec(u.WallMS), Unit: "s"},
		{Key: "upgrade_critical_path_s", Section: s4, Name: "critical path (profile updates + measured local work)", Value: sec(u.BoundMS), Unit: "s"},
		{Key: "upgrade_over_critical_path", Section: s4, Name: "upgrade / critical path", Value: msRatio(u.WallMS, u.BoundMS), Unit: "ratio"},
		{Key: "upgrade_critical_path_groups_in_sequence_s", Section: s4, Name: "same path, node groups one after another", Value: sec(u.BoundSeqMS), Unit: "s"},
		{Key: "upgrade_over_groups_in_sequence", Section: s4, Name: "upgrade / same path with groups one after another", Value: msRatio(u.WallMS, u.BoundSeqMS), Unit: "ratio"},
		{Key: "upgrade_groups_parallel_s", Section: s4, Name: fmt.Sprintf("profile: control plane + add-ons + %d node groups at once", u.Groups), Value: sec(u.ParallelMS), Unit: "s"},
		{Key: "upgrade_over_parallel", Section: s4, Name: "upgrade / groups at once", Value: msRatio(u.WallMS, u.ParallelMS), Unit: "ratio"},
		{Key: "upgrade_groups_sequential_s", Section: s4, Name: fmt.Sprintf("profile: control plane + add-ons + %d node groups one after another", u.Groups), Value: sec(u.SequentialMS), Unit: "s"},
		{Key: "upgrade_over_sequential", Section: s4, Name: "upgrade / groups one after another", Value: msRatio(u.WallMS, u.SequentialMS), Unit: "ratio"},
	}
}
