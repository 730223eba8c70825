package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	coderctl "github.com/coderctl/coderctl"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/stages"
)

// corpusDir holds one directory per bad-input case (issue 7, item 7).
const corpusDir = "../../testdata/bad"

// minCorpusCases is the size the issue asks the corpus to have.
const minCorpusCases = 40

// dirPlaceholder in a case's env or environ file stands for the directory
// the case runs in, where its values.yaml is copied.
const dirPlaceholder = "@DIR@"

// corpusCase is one directory of testdata/bad. Files (all optional but expect):
//
//	coder-infra.env        the env file (default: goodEnv)
//	cluster-config.yaml    the whole cluster config (default: the shipped one)
//	cluster-config.patch   lines "old => new" applied to the shipped config,
//	                       first occurrence each; \n in either side is a newline
//	args                   the command line, one argument per line, '' for an empty
//	                       one (default: up --yes);
//	                       --env-file and --config are added unless given here
//	environ                KEY=VALUE lines of process environment coderctl sees
//	values.yaml            copied next to the env file, for *_VALUES_FILE=@DIR@/values.yaml
//	requires               stage names the case needs registered (skipped until they are)
//	setup                  lines run in the case directory before the command:
//	                       "mkfifo NAME", "chmod MODE NAME", "symlink TARGET NAME"
//	expect                 the exit code, then lines that must all appear in stderr
type corpusCase struct {
	name     string
	env      string
	config   []byte
	args     []string
	environ  map[string]string
	values   []byte
	requires []string
	setup    []string
	code     int
	stderr   []string
}

// TestBadInputCorpus runs every case under testdata/bad through the CLI
// in-process, against moto behind a counting proxy. Each must exit with
// its expected code (2) and a one-line error naming the file, key, field
// or flag, leave the state file and the cluster config byte-for-byte as
// they were, and make no mutating AWS call.
func TestBadInputCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < minCorpusCases {
		t.Fatalf("%s holds %d cases, want at least %d", corpusDir, len(cases), minCorpusCases)
	}
	// One moto reset and one proxy for the whole corpus: the cases fail
	// before anything is created, so they cannot disturb each other.
	server := moto.Require(t)
	proxy, err := awsproxy.Start(server.URL, awsproxy.Instant())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	t.Setenv("AWS_ENDPOINT_URL", proxy.URL)
	registered := stageNames(&Factory{Registry: stages.Registry})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, s := range c.requires {
				if !slices.Contains(registered, s) {
					t.Skipf("stage %s is not registered yet", s)
				}
			}
			proxy.ResetCounts()
			c.check(t, proxy)
			// A case that wrongly changed AWS must not change what the
			// next case finds there.
			if proxy.Counts().TotalMutations() > 0 {
				if err := server.Reset(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func (c *corpusCase) check(t *testing.T, proxy *awsproxy.Proxy) {
	h := newHarness(t, "")
	h.write(h.envFile, strings.ReplaceAll(c.env, dirPlaceholder, h.dir))
	h.write(h.cfgFile, string(c.config))
	if c.values != nil {
		h.write(filepath.Join(h.dir, "values.yaml"), string(c.values))
	}
	// coderctl's own lookups go through the harness; stages that read the
	// process environment (CODER_SESSION_TOKEN) see the same values.
	for k, v := range c.environ {
		v = strings.ReplaceAll(v, dirPlaceholder, h.dir)
		h.env[k] = v
		t.Setenv(k, v)
	}
	for _, line := range c.setup {
		if err := setupStep(h.dir, line); err != nil {
			t.Fatalf("setup %q: %v", line, err)
		}
	}
	stateBefore, configBefore := h.stateBytes(), readFile(t, h.cfgFile)
	args := make([]string, len(c.args))
	for i, a := range c.args {
		args[i] = strings.ReplaceAll(a, dirPlaceholder, h.dir)
	}
	entriesBefore := dirEntries(t, h.dir)

	r := h.run(args...)
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))

	if r.code != c.code {
		t.Errorf("exit code %d, want %d; stderr %q", r.code, c.code, r.stderr)
	}
	if n := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n"); n != 0 || r.stderr == "" {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	for _, want := range c.stderr {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not mention %q", r.stderr, want)
		}
	}
	if strings.Contains(r.stderr, "Usage:") || strings.Contains(r.stdout, "Usage:") {
		t.Errorf("flag help dumped after an error:\n%s%s", r.stdout, r.stderr)
	}
	if after := h.stateBytes(); !bytes.Equal(stateBefore, after) {
		t.Errorf("state file changed:\nbefore %q\nafter  %q", stateBefore, after)
	}
	if after := readFile(t, h.cfgFile); !bytes.Equal(configBefore, after) {
		t.Errorf("cluster config changed")
	}
	if counts := proxy.Counts(); counts.TotalMutations() != 0 {
		t.Errorf("%d mutating AWS calls: %v", counts.TotalMutations(), counts.MutationNames())
	}
	// A refused run leaves no file behind: no lock file, no temp file.
	if after := dirEntries(t, h.dir); !slices.Equal(entriesBefore, after) {
		t.Errorf("files in the case directory changed: before %v, after %v", entriesBefore, after)
	}
}

// setupStep prepares what a file in testdata cannot hold: a FIFO, a file
// mode, a symlink.
func setupStep(dir, line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "mkfifo":
		return syscall.Mkfifo(filepath.Join(dir, f[1]), 0o600)
	case len(f) == 3 && f[0] == "chmod":
		mode, err := strconv.ParseUint(f[1], 8, 32)
		if err != nil {
			return err
		}
		return os.Chmod(filepath.Join(dir, f[2]), os.FileMode(mode))
	case len(f) == 3 && f[0] == "symlink":
		return os.Symlink(f[1], filepath.Join(dir, f[2]))
	}
	return errors.New("want mkfifo NAME, chmod MODE NAME or symlink TARGET NAME")
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadCorpus reads every case directory, failing on a malformed case so
// that a typo cannot turn a case into one that tests nothing.
func loadCorpus(t *testing.T) []*corpusCase {
	t.Helper()
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []*corpusCase
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := loadCase(filepath.Join(corpusDir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		cases = append(cases, c)
	}
	return cases
}

func loadCase(dir string) (*corpusCase, error) {
	c := &corpusCase{name: filepath.Base(dir), env: goodEnv, config: coderctl.DefaultClusterConfig,
		args: []string{"up", "--yes"}, environ: map[string]string{}}
	read := func(name string) (string, bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			return "", false, nil
		}
		return string(b), err == nil, err
	}
	var steps = []struct {
		file  string
		apply func(string) error
	}{
		{"coder-infra.env", func(s string) error { c.env = s; return nil }},
		{"cluster-config.yaml", func(s string) error { c.config = []byte(s); return nil }},
		{"cluster-config.patch", c.applyPatch},
		{"args", func(s string) error { c.args = argLines(s); return nil }},
		{"environ", c.parseEnviron},
		{"values.yaml", func(s string) error { c.values = []byte(s); return nil }},
		{"requires", func(s string) error { c.requires = nonBlankLines(s); return nil }},
		{"setup", func(s string) error { c.setup = nonBlankLines(s); return nil }},
		{"expect", c.parseExpect},
	}
	for _, step := range steps {
		s, ok, err := read(step.file)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := step.apply(s); err != nil {
				return nil, err
			}
		}
	}
	if c.code == 0 {
		return nil, errors.New("expect is missing or gives no exit code")
	}
	return c, nil
}

// applyPatch edits the shipped cluster config; an "old" text that is not
// there is an error, not a silently good config.
func (c *corpusCase) applyPatch(patch string) error {
	cfg := string(c.config)
	for _, line := range nonBlankLines(patch) {
		old, replacement, ok := strings.Cut(line, " => ")
		if !ok {
			old, ok = strings.CutSuffix(line, " =>")
		}
		if !ok {
			return fmt.Errorf("cluster-config.patch: want 'old => new', got %q", line)
		}
		old, replacement = unescapeNewlines(old), unescapeNewlines(replacement)
		if !strings.Contains(cfg, old) {
			return fmt.Errorf("cluster-config.patch: %q is not in the shipped cluster-config.yaml", old)
		}
		cfg = strings.Replace(cfg, old, replacement, 1)
	}
	c.config = []byte(cfg)
	return nil
}

func (c *corpusCase) parseEnviron(s string) error {
	for _, line := range nonBlankLines(s) {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("environ: want KEY=VALUE, got %q", line)
		}
		c.environ[k] = v
	}
	return nil
}

func (c *corpusCase) parseExpect(s string) error {
	lines := nonBlankLines(s)
	if len(lines) < 2 {
		return errors.New("expect: want the exit code and at least one line naming the file, key, field or flag")
	}
	code, err := strconv.Atoi(lines[0])
	if err != nil {
		return fmt.Errorf("expect: first line must be the exit code, got %q", lines[0])
	}
	c.code, c.stderr = code, lines[1:]
	return nil
}

func nonBlankLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// argLines reads an args file: one argument per line, ” for an empty one.
func argLines(s string) []string {
	args := nonBlankLines(s)
	for i, a := range args {
		if a == "''" {
			args[i] = ""
		}
	}
	return args
}

func unescapeNewlines(s string) string { return strings.ReplaceAll(s, `\n`, "\n") }
