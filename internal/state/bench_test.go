package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stateFile200 is a realistic 200-key state file: comments, exports, quoted
// and plain values, and the outputs section.
func stateFile200() string {
	var b strings.Builder
	b.WriteString("# coder-infra.env\n\n")
	for i := 0; i < 100; i++ {
		if i%10 == 0 {
			fmt.Fprintf(&b, "# group %d\n", i/10)
		}
		fmt.Fprintf(&b, "export INPUT_%03d='value with spaces %d' # note\n", i, i)
	}
	b.WriteString("\n" + OutputsMarker + "\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "OUTPUT_%03d=arn:aws:iam::123456789012:role/coder-%d\n", i, i)
	}
	return b.String()
}

func BenchmarkLoad200(b *testing.B) {
	path := filepath.Join(b.TempDir(), "coder-infra.env")
	if err := os.WriteFile(path, []byte(stateFile200()), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := Load(path)
		if err != nil || len(f.Keys()) != 200 {
			b.Fatalf("Load: %v", err)
		}
	}
}

// BenchmarkSave200 is one Store.Set of a changed output in a 200-key file:
// quoting, rendering and the atomic write with its two fsyncs.
func BenchmarkSave200(b *testing.B) {
	path := filepath.Join(b.TempDir(), "coder-infra.env")
	if err := os.WriteFile(path, []byte(stateFile200()), 0o600); err != nil {
		b.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := s.Set("OUTPUT_050", fmt.Sprintf("vpc-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}
