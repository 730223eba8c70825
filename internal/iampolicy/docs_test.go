package iampolicy

import (
	"os"
	"strings"
	"testing"
)

// TestDocsExample: docs/iam.md shows the policy the code prints for the
// shipped configuration (`coderctl init CODER_DOMAIN=coder.example.com
// HOSTED_ZONE_ID=Z0123456789ABC`, then `iam-policy --account 123456789012`).
func TestDocsExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/iam.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- example: coderctl iam-policy --account 123456789012 -->\n```json\n"
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("docs/iam.md has no example block (%q)", marker)
	}
	shown, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatal("docs/iam.md: the example block is not closed")
	}
	want, err := build(t, shipped, Selection{}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	if shown != string(want) {
		t.Errorf("docs/iam.md's example differs from what iam-policy prints for the shipped config; replace it with:\n%s", want)
	}
	for a := range Dependent {
		if !strings.Contains(string(b), "`"+a+"`") {
			t.Errorf("docs/iam.md does not name the dependent action %s", a)
		}
	}
}
