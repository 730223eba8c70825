package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/ground"
)

// The deployment the bench makes: the e2e test's, so the figures describe
// the run CI proves correct.
const (
	benchCluster = "coder-prod"
	benchRegion  = "us-west-2"
	benchCoder   = "2.36.1"
	benchUsers   = "50"
)

// world is the proving ground behind the slow proxy, a counting proxy in
// front of its kube-apiserver, and a deployment directory.
type world struct {
	g    *ground.Ground
	kube *kubeCounter
	bin  string
	dir  string
	env  []string
	runs int
}

// run is one coderctl invocation.
type run struct {
	code           int
	start          time.Time
	wall           time.Duration
	stdout, stderr string
}

func startWorld(ctx context.Context, bin string, profile awsproxy.Profile, poll time.Duration, workDir string) (_ *world, err error) {
	w := &world{bin: bin, dir: filepath.Join(workDir, "deployment")}
	for _, dir := range []string{w.dir, filepath.Join(workDir, "ground")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	logf, err := os.Create(filepath.Join(workDir, "ground.log"))
	if err != nil {
		return nil, err
	}
	w.g, err = ground.Start(ctx, ground.Options{WorkDir: filepath.Join(workDir, "ground"), Profile: &profile,
		Cluster: benchCluster, Region: benchRegion, CoderVersion: benchCoder, Log: logf})
	if err != nil {
		return nil, fmt.Errorf("proving ground: %w", err)
	}
	defer func() {
		if err != nil {
			w.Stop()
		}
	}()
	if w.kube, err = startKubeCounter(w.g.Kube.RESTConfig()); err != nil {
		return nil, fmt.Errorf("kube counter: %w", err)
	}
	kubeconfig, err := w.kube.WriteKubeconfig(workDir)
	if err != nil {
		return nil, err
	}
	// Later entries win in exec's environment: the counted kubeconfig and
	// the bench's poll interval replace the ground's.
	w.env = append(append(filteredEnviron(), w.g.Environ()...),
		"CODERCTL_KUBECONFIG="+kubeconfig, "CODERCTL_POLL_INTERVAL="+poll.String(), "CI=true")
	args := append([]string{"init", "CODER_DOMAIN=coder.bench.example", "USERS=" + benchUsers}, w.g.InitArgs()...)
	if r := w.run(ctx, args...); r.code != 0 {
		return nil, fmt.Errorf("coderctl init: exit %d: %s", r.code, r.stderr)
	}
	// The shipped cluster-config.yaml, unedited: the autoscaler grows the
	// provisioner group for the provisioners benchUsers need.
	return w, nil
}

// Stop stops the counter and the ground.
func (w *world) Stop() {
	if w.kube != nil {
		w.kube.Stop()
	}
	if w.g != nil {
		w.g.Stop()
	}
}

// run runs coderctl in the deployment directory and keeps its output
// beside it (<n>-<command>.out/.err), for a look with -keep.
func (w *world) run(ctx context.Context, args ...string) run {
	r := runCommand(ctx, w.bin, w.dir, w.env, args...)
	w.runs++
	base := filepath.Join(filepath.Dir(w.dir), fmt.Sprintf("%02d-%s", w.runs, args[0]))
	_ = os.WriteFile(base+".out", []byte(r.stdout), 0o600)
	_ = os.WriteFile(base+".err", []byte(r.stderr), 0o600)
	return r
}

func runCommand(ctx context.Context, bin, dir string, env []string, args ...string) run {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := run{start: start, wall: time.Since(start), stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code, r.stderr = -1, err.Error()
	}
	return r
}

// filteredEnviron drops what would aim coderctl elsewhere.
func filteredEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "CODER") || k == "KUBECONFIG" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// event is the part of a `-o json` line the bench reads.
type event struct {
	Type           string    `json:"type"`
	Time           time.Time `json:"time"`
	Stage          string    `json:"stage"`
	Step           string    `json:"step"`
	Status         string    `json:"status"`
	DurationMS     int64     `json:"duration_ms"`
	CriticalPath   []string  `json:"critical_path"`
	CriticalPathMS int64     `json:"critical_path_ms"`
	OK             *bool     `json:"ok"`
}

// timeline is when each step and stage of a run started and finished.
type timeline struct {
	runStart     time.Time
	runDuration  time.Duration
	summaryTime  time.Time
	ok           bool
	criticalPath []string // the binary's own, from Typical
	stepStart    map[string]time.Time
	stepEnd      map[string]time.Time
	stepStatus   map[string]string
	stageStart   map[string]time.Time
	stageEnd     map[string]time.Time
}

func parseTimeline(r io.Reader) (*timeline, error) {
	tl := &timeline{stepStart: map[string]time.Time{}, stepEnd: map[string]time.Time{}, stepStatus: map[string]string{},
		stageStart: map[string]time.Time{}, stageEnd: map[string]time.Time{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	sawSummary := false
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("not a JSON event: %q", sc.Text())
		}
		id := ev.Stage + "/" + ev.Step
		switch {
		case ev.Type == "run":
			tl.runStart, tl.criticalPath = ev.Time, ev.CriticalPath
		case ev.Type == "step" && ev.Status == "started":
			tl.stepStart[id] = ev.Time
		case ev.Type == "step":
			tl.stepEnd[id], tl.stepStatus[id] = ev.Time, ev.Status
		case ev.Type == "stage" && ev.Status == "started":
			tl.stageStart[ev.Stage] = ev.Time
		case ev.Type == "stage":
			tl.stageEnd[ev.Stage] = ev.Time
		case ev.Type == "summary":
			sawSummary, tl.summaryTime = true, ev.Time
			tl.runDuration = time.Duration(ev.DurationMS) * time.Millisecond
			tl.ok = ev.OK != nil && *ev.OK
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !sawSummary {
		return nil, fmt.Errorf("no summary line: the run did not finish")
	}
	return tl, nil
}

// stepDuration is how long a finished step ran (0 when it did not run).
func (tl *timeline) stepDuration(id string) time.Duration {
	s, ok1 := tl.stepStart[id]
	e, ok2 := tl.stepEnd[id]
	if !ok1 || !ok2 {
		return 0
	}
	return e.Sub(s)
}

// checkpointDuration is how long a stage's checkpoint (its verify) ran:
// from the later of the stage's start and its last step's end, to the
// stage's end.
func (tl *timeline) checkpointDuration(stage string, steps []string) time.Duration {
	end, ok := tl.stageEnd[stage]
	if !ok {
		return 0
	}
	start := tl.stageStart[stage]
	for _, id := range steps {
		if t := tl.stepEnd[id]; t.After(start) {
			start = t
		}
	}
	if end.Before(start) {
		return 0
	}
	return end.Sub(start)
}
