// Command bench measures coderctl against its targets (`make bench`): a
// full `up` on the proving ground behind the realistic (scaled) AWS profile
// compared with the step graph's critical path and with the guide's stage
// order; the polling lag on every long wait; the AWS and Kubernetes calls
// of an idempotent second `up` and of `verify`; an EKS upgrade by one minor
// against the profile's update durations with the node groups at once and
// one after another; `down` against the destroy critical path and against
// destroying stage by stage; start-up time and binary
// size; and the Go benchmarks of the in-process hot paths. It prints a table
// (figure, value, target, ok/over) and writes every figure as JSON.
// Targets are reported, never asserted: the bench does not fail on "over".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
)

type options struct {
	bin       string
	root      string
	out       string
	scale     float64
	poll      time.Duration
	runs      int
	benchtime string
	gobench   string
	goTool    string
	deploy    bool
	keep      bool
}

// settings record how the figures were made.
type settings struct {
	Scale         string           `json:"scale"`
	PollInterval  string           `json:"poll_interval"`
	ProfileCreate map[string]int64 `json:"profile_create_ms"`
	StartupRuns   int              `json:"startup_runs"`
	Binary        string           `json:"binary"`
	GoVersion     string           `json:"go_version"`
	Platform      string           `json:"platform"`
	CPUs          int              `json:"cpus"`
	LoadAvg       string           `json:"load_average_at_start"`
}

type results struct {
	GeneratedAt  time.Time             `json:"generated_at"`
	Settings     settings              `json:"settings"`
	Figures      []figure              `json:"figures"`
	Up           *upResult             `json:"up,omitempty"`
	Upgrade      *upgradeResult        `json:"upgrade,omitempty"`
	Down         *downResult           `json:"down,omitempty"`
	Waits        []waitResult          `json:"waits,omitempty"`
	Calls        map[string]callCounts `json:"calls,omitempty"`
	GoBenchmarks []goBenchmark         `json:"go_benchmarks,omitempty"`
	Errors       map[string]string     `json:"errors,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.bin, "coderctl", "bin/coderctl", "the coderctl binary to measure (make build strips it)")
	flag.StringVar(&o.root, "root", ".", "the repository root (for go test -bench)")
	flag.StringVar(&o.out, "out", "bench/results.json", "where to write every figure as JSON")
	flag.Float64Var(&o.scale, "scale", 1.0/50, "the realistic profile's scale (1/50: EKS's 13 min take 15.6 s)")
	flag.DurationVar(&o.poll, "poll", 0, "CODERCTL_POLL_INTERVAL for coderctl's waiters (0: 10 s scaled like the profile)")
	flag.IntVar(&o.runs, "runs", 20, "start-up runs per command (the median is reported)")
	flag.StringVar(&o.benchtime, "benchtime", "1s", "go test -benchtime")
	flag.StringVar(&o.gobench, "gobench", "./internal/state/,./internal/engine/", "packages whose Go benchmarks to run (comma-separated; empty: none)")
	flag.BoolVar(&o.deploy, "deploy", true, "run the proving-ground sections (up, waits, re-run, verify)")
	flag.BoolVar(&o.keep, "keep", false, "keep the deployment's work directory")
	flag.StringVar(&o.goTool, "go", "go", "the go command (for go test -bench)")
	flag.Parse()
	if o.poll <= 0 {
		// A 10-second poll on real AWS, scaled like the waits it polls.
		o.poll = time.Duration(float64(10*time.Second) * o.scale)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := measure(ctx, o, os.Stderr)
	if res != nil {
		st := res.Settings
		fmt.Printf("\ncoderctl bench: realistic AWS profile ×%s, CODERCTL_POLL_INTERVAL=%s, %s, %d CPUs, load average %s\n\n",
			st.Scale, st.PollInterval, st.GoVersion, st.CPUs, st.LoadAvg)
		printTable(os.Stdout, res.Figures)
		if werr := writeJSON(o.out, res); werr != nil {
			err = errors.Join(err, werr)
		} else {
			fmt.Printf("\nwrote %s (targets are reported, not asserted)\n", o.out)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// measure runs every section. A section that fails is recorded and the
// others still run, so one broken piece does not hide the rest.
func measure(ctx context.Context, o options, log io.Writer) (*results, error) {
	progress := func(msg string) { fmt.Fprintf(log, "bench: %s\n", msg) }
	// coderctl runs in other directories: its path must not be relative.
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("coderctl binary: %w (run make build)", err)
	}
	o.bin = bin
	res := newResults(o)
	var errs []error
	fail := func(section string, err error) {
		res.Errors[section] = err.Error()
		errs = append(errs, fmt.Errorf("%s: %w", section, err))
	}

	// Quiet sections first, before the proving ground loads the machine.
	progress(fmt.Sprintf("start-up: %d runs each of coderctl version and coderctl --help", o.runs))
	startup, err := startupFigures(ctx, o)
	if err != nil {
		fail("startup", err)
	}
	if o.gobench != "" {
		progress("go test -bench " + o.gobench)
		benches, err := runGoBenchmarks(ctx, o.goTool, o.root, strings.Split(o.gobench, ","), o.benchtime, log)
		if err != nil {
			fail("go benchmarks", err)
		}
		res.GoBenchmarks = benches
	}
	if o.deploy {
		d, err := benchDeployment(ctx, o, progress)
		if err != nil {
			fail("deployment", err)
		}
		// A late section's failure (down) keeps the earlier sections' figures.
		if d != nil && d.up.WallMS > 0 {
			res.Figures = append(res.Figures, d.figures...)
			res.Up, res.Waits = &d.up, d.waits
			res.Calls["up"], res.Calls["verify"], res.Calls["second_up"] = d.up.AWSCalls, d.verify, d.secondUp
			if d.upgrade != nil {
				res.Upgrade, res.Calls["upgrade"] = d.upgrade, d.upgrade.AWSCalls
			}
			if d.down != nil {
				res.Down, res.Calls["down"] = d.down, d.down.AWSCalls
			}
		}
	}
	res.Figures = append(res.Figures, startup...)
	for _, b := range res.GoBenchmarks {
		res.Figures = append(res.Figures, benchFigure(b))
	}
	return res, errors.Join(errs...)
}

// newResults records how the figures are made.
func newResults(o options) *results {
	res := &results{GeneratedAt: time.Now().UTC(), Calls: map[string]callCounts{}, Errors: map[string]string{},
		Settings: settings{Scale: scaleText(o.scale), PollInterval: o.poll.String(), ProfileCreate: map[string]int64{},
			StartupRuns: o.runs, Binary: o.bin, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
			CPUs: runtime.NumCPU(), LoadAvg: loadAverage()}}
	for k, v := range awsproxy.Realistic(o.scale).Create {
		res.Settings.ProfileCreate[string(k)] = v.Milliseconds()
	}
	return res
}

// startupFigures are section 4: median start-up of two commands that touch
// neither AWS nor the state file, and the stripped binary's size.
func startupFigures(ctx context.Context, o options) ([]figure, error) {
	const s6 = "6. start-up and size"
	info, err := os.Stat(o.bin)
	if err != nil {
		return nil, err
	}
	figs := []figure{}
	for _, args := range [][]string{{"version"}, {"--help"}} {
		m, err := medianStartup(ctx, o.bin, o.runs, args...)
		if err != nil {
			return figs, err
		}
		key := "startup_" + strings.TrimLeft(args[0], "-") + "_ms"
		figs = append(figs, figure{Key: key, Section: s6, Name: fmt.Sprintf("coderctl %s, median of %d", args[0], o.runs),
			Value: millis(m), Unit: "ms"}.within(100, true))
	}
	figs = append(figs, figure{Key: "binary_size_mb", Section: s6, Name: "binary size (-ldflags \"-s -w\")",
		Value: float64(info.Size()) / 1e6, Unit: "MB"})
	return figs, nil
}

// loadAverage is /proc/loadavg's first three fields, for context ("" off
// Linux): the figures of a loaded machine read differently.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
