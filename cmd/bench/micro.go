package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// medianStartup runs coderctl with args n times and returns the median wall
// time; any failed run is an error (a crash is not fast start-up).
func medianStartup(ctx context.Context, bin string, n int, args ...string) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "coderctl-startup-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	env := append(filteredEnviron(), "CI=true")
	times := make([]time.Duration, 0, n)
	for range n {
		r := runCommand(ctx, bin, dir, env, args...)
		if r.code != 0 {
			return 0, fmt.Errorf("coderctl %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		times = append(times, r.wall)
	}
	return median(times), nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// goBenchmark is one line of `go test -bench -benchmem` output.
type goBenchmark struct {
	Package     string  `json:"package"`
	Name        string  `json:"name"`
	Iterations  int64   `json:"iterations"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
}

// runGoBenchmarks runs the in-process benchmarks of pkgs (no tests) and
// parses their figures; log receives go test's output as it comes.
func runGoBenchmarks(ctx context.Context, goTool, root string, pkgs []string, benchtime string, log io.Writer) ([]goBenchmark, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime, "-count", "1"}, pkgs...)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	results, perr := parseGoBench(io.TeeReader(out, log))
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", goTool, strings.Join(args, " "), err)
	}
	return results, perr
}

// parseGoBench reads the standard benchmark format: "pkg: ..." lines name
// the package of the "BenchmarkX-N  iters  v ns/op  v B/op  v allocs/op"
// lines that follow.
func parseGoBench(r io.Reader) ([]goBenchmark, error) {
	var out []goBenchmark
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := goBenchmark{Package: pkg, Name: trimProcs(f[0])}
		var err error
		if b.Iterations, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return nil, fmt.Errorf("benchmark line %q: %v", line, err)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, unit := f[i], f[i+1]
			switch unit {
			case "ns/op":
				b.NsPerOp, err = strconv.ParseFloat(v, 64)
			case "B/op":
				b.BytesPerOp, err = strconv.ParseInt(v, 10, 64)
			case "allocs/op":
				b.AllocsPerOp, err = strconv.ParseInt(v, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %v", line, err)
			}
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

// trimProcs drops the -GOMAXPROCS suffix: BenchmarkLoad200-2 -> BenchmarkLoad200.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}
