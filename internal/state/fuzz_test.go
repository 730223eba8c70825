package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/joho/godotenv"

	"github.com/coderctl/coderctl/internal/fault"
)

// FuzzRoundTrip: any value Set accepts reads back identically through Parse,
// godotenv and bash, both as a plain line and on a line that keeps a trailing
// comment; anything refused is refused as bad input, never as an internal
// error (which would mean the quoting rule wrote something godotenv misreads).
func FuzzRoundTrip(f *testing.F) {
	for _, v := range trickyValues {
		f.Add(v)
	}
	for _, u := range unrepresentable {
		f.Add(u.value)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, value string) {
		checkRoundTrip(t, dir, value)
		// Random bytes are mostly refused as control characters or bad
		// UTF-8; also try the printable rest, so that the quoting rule
		// and bash see many accepted values.
		if printable := printableOnly(value); printable != value {
			checkRoundTrip(t, dir, printable)
		}
	})
}

// printableOnly drops invalid UTF-8 and control characters other than tab.
func printableOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (r < 0x20 && r != '\t') || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

func checkRoundTrip(t *testing.T, dir, value string) {
	t.Helper()
	file, err := Parse("fuzz.env", []byte("export COMMENTED=old # keep me\n"))
	if err != nil {
		t.Fatal(err)
	}
	errPlain := file.Set("PLAIN", value)
	errCommented := file.Set("COMMENTED", value)
	if (errPlain == nil) != (errCommented == nil) {
		t.Fatalf("Set accepts %q on one line but not the other: %v / %v", value, errPlain, errCommented)
	}
	if errPlain != nil {
		if !fault.IsInput(errPlain) || !fault.IsInput(errCommented) {
			t.Fatalf("Set(%q) failed with a non-input error: %v / %v", value, errPlain, errCommented)
		}
		return
	}
	data := file.Bytes()
	want := map[string]string{"PLAIN": value, "COMMENTED": value}

	parsed, err := Parse("fuzz.env", data)
	if err != nil {
		t.Fatalf("Parse of what Set wrote: %v\n%s", err, data)
	}
	if got := parsed.Map(); got["PLAIN"] != value || got["COMMENTED"] != value {
		t.Fatalf("Parse reads %q, want %q\n%s", got, want, data)
	}
	viaGodotenv, err := godotenv.UnmarshalBytes(data)
	if err != nil || viaGodotenv["PLAIN"] != value || viaGodotenv["COMMENTED"] != value {
		t.Fatalf("godotenv reads %q (%v), want %q\n%s", viaGodotenv, err, want, data)
	}
	path := filepath.Join(dir, "fuzz.env")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	viaBash := bashRead(t, path, "PLAIN", "COMMENTED")
	if viaBash["PLAIN"] != value || viaBash["COMMENTED"] != value {
		t.Fatalf("bash reads %q, want %q\n%s", viaBash, want, data)
	}
}
