package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measured or computed value, with its target when the
// issue sets one. Targets are printed, never asserted.
type figure struct {
	Key     string  `json:"key"`
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Target  string  `json:"target,omitempty"`
	OK      *bool   `json:"ok,omitempty"`
	// Display overrides the formatted value (Go benchmarks show three).
	Display string `json:"display,omitempty"`
}

// within sets the figure's target "≤ limit" ("< limit" when strict, "= 0"
// for a count that must be zero) and whether the value meets it.
func (f figure) within(limit float64, strict bool) figure {
	ok := f.Value <= limit
	op := "≤"
	switch {
	case strict:
		ok, op = f.Value < limit, "<"
	case limit == 0:
		op = "="
	}
	f.Target = op + " " + formatValue(limit, f.Unit)
	f.OK = &ok
	return f
}

// unitFormats prints each unit a figure may have.
var unitFormats = map[string]string{
	"s": "%.2f s", "ms": "%.1f ms", "ratio": "%.2f", "%": "%.2f %%",
	"calls": "%.0f", "MB": "%.1f MB", "min": "%.1f min",
}

func formatValue(v float64, unit string) string {
	if f, ok := unitFormats[unit]; ok {
		return fmt.Sprintf(f, v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

func seconds(d time.Duration) float64 { return d.Seconds() }
func millis(d time.Duration) float64  { return float64(d.Microseconds()) / 1000 }

// printTable writes the figures grouped by section: figure, value, target,
// ok/over.
func printTable(w io.Writer, figs []figure) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\tresult")
	section := ""
	for _, f := range figs {
		if f.Section != section {
			section = f.Section
			fmt.Fprintf(tw, "== %s\t\t\t\n", section)
		}
		val := f.Display
		if val == "" {
			val = formatValue(f.Value, f.Unit)
		}
		target, result := "-", ""
		if f.Target != "" {
			target, result = f.Target, "over"
			if f.OK != nil && *f.OK {
				result = "ok"
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Name, val, target, result)
	}
	_ = tw.Flush()
}

// writeJSON writes v indented to path, creating its directory.
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// benchFigure shows a Go benchmark as time, bytes and allocations per op.
func benchFigure(b goBenchmark) figure {
	pkg := b.Package[strings.LastIndexByte(b.Package, '/')+1:]
	return figure{Key: "go_" + pkg + "_" + strings.TrimPrefix(b.Name, "Benchmark"), Section: "Go benchmarks (-benchmem)",
		Name: pkg + "." + b.Name, Value: b.NsPerOp, Unit: "ns/op",
		Display: fmt.Sprintf("%s/op  %s/op  %d allocs/op", humanNs(b.NsPerOp), humanBytes(b.BytesPerOp), b.AllocsPerOp)}
}

func humanNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
