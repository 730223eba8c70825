package config

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/joho/godotenv"
)

const shippedEnvExample = "../../coder-infra.env.example"

var update = flag.Bool("update", false, "rewrite coder-infra.env.example from the input table")

// The shipped example is generated from the key table, so docs and
// validation cannot drift apart.
func TestEnvExampleIsGenerated(t *testing.T) {
	if *update {
		if err := os.WriteFile(shippedEnvExample, []byte(EnvExample()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(shippedEnvExample)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != EnvExample() {
		t.Errorf("%s differs from EnvExample(); run: go test ./internal/config -run TestEnvExampleIsGenerated -update", shippedEnvExample)
	}
}

func TestEnvExampleListsEveryKey(t *testing.T) {
	data, err := os.ReadFile(shippedEnvExample)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, k := range InputKeys() {
		want := "# " + k.Key + "=" + k.Default
		if k.Required {
			want = k.Key + "="
		}
		i := indexOf(lines, want)
		if i < 1 {
			t.Errorf("%s: no line %q", k.Key, want)
			continue
		}
		if !strings.Contains(lines[i-1], k.Doc) {
			t.Errorf("%s: line above is %q, want its doc", k.Key, lines[i-1])
		}
	}
}

func indexOf(lines []string, want string) int {
	for i, l := range lines {
		if l == want {
			return i
		}
	}
	return -1
}

// Copied as is, the example parses with godotenv, resolves, and asks for
// exactly the required keys.
func TestEnvExampleAsEnvFile(t *testing.T) {
	values, err := godotenv.Read(shippedEnvExample)
	if err != nil {
		t.Fatalf("godotenv: %v", err)
	}
	in, err := ResolveInputs("coder-infra.env", values, nil, cluster("coder-prod", "us-west-2"), "cluster-config.yaml")
	if err != nil {
		t.Fatalf("ResolveInputs: %v", err)
	}
	var required []string
	for _, k := range InputKeys() {
		if k.Required {
			required = append(required, k.Key)
		}
	}
	err = in.Require(required...)
	if err == nil || !strings.Contains(err.Error(), "CODER_DOMAIN: not set") {
		t.Errorf("Require on the bare example = %v, want CODER_DOMAIN not set", err)
	}
}
