package ci

import (
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v4"
)

const (
	workflowPath = "coderctl-smoke.yml"
	docPath      = "../ci.md"
	report       = "verify.xml"
	// upOnMain is the whole condition of the up step: a push (never a pull
	// request, which can edit this file) to main.
	upOnMain = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
	// junitAction is the one action actionlint has no metadata for; its real
	// action.yml is in testdata.
	junitAction     = "mikepenz/action-junit-report"
	junitActionMeta = "testdata/mikepenz-action-junit-report-v6.4.2-action.yml"
)

// fullTag is how every action is pinned: a full version tag, so the pin
// names one release and actionlint can check the inputs against that
// major version's metadata.
var fullTag = regexp.MustCompile(`^(v\d+)\.\d+\.\d+$`)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWorkflowLints runs actionlint (its Go API, the rules of the actionlint
// command) on the workflow and fails naming each error.
func TestWorkflowLints(t *testing.T) {
	content := readFile(t, workflowPath)
	for _, e := range lint(t, content) {
		t.Errorf("actionlint: %s", e)
	}
}

// TestWorkflowContract checks what docs/ci.md promises about the workflow.
func TestWorkflowContract(t *testing.T) {
	for _, p := range contractProblems(readFile(t, workflowPath)) {
		t.Errorf("%s: %s", workflowPath, p)
	}
}

// TestWorkflowActionsChecked makes sure no action escapes actionlint's
// input check: each is pinned to a full tag whose major version actionlint
// has metadata for (or, for the JUnit action, the copy in testdata).
func TestWorkflowActionsChecked(t *testing.T) {
	registerJUnitAction(t)
	w, errs := actionlint.Parse(readFile(t, workflowPath))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs[0])
	}
	for _, s := range steps(w) {
		if s.uses == "" {
			continue
		}
		if major, ok := majorSpec(s.uses); !ok {
			t.Errorf("step %q: %s is not pinned to a full version tag (vX.Y.Z)", s.name, s.uses)
		} else if _, ok := actionlint.PopularActions[major]; !ok {
			t.Errorf("step %q: actionlint has no metadata for %s, so its inputs would not be checked", s.name, major)
		}
	}
}

// TestDocQuotesWorkflow keeps docs/ci.md from drifting from the file: one of
// its yaml blocks is the workflow, byte for byte.
func TestDocQuotesWorkflow(t *testing.T) {
	want := string(readFile(t, workflowPath))
	blocks := yamlBlocks(string(readFile(t, docPath)))
	if !slices.Contains(blocks, want) {
		t.Errorf("%s has %d yaml blocks, none is %s verbatim: paste the file into it again", docPath, len(blocks), workflowPath)
	}
}

// TestChecksCatchBreakage breaks the workflow one way at a time and expects
// the lint or the contract check to name the break: a check that passes
// everything proves nothing.
func TestChecksCatchBreakage(t *testing.T) {
	good := string(readFile(t, workflowPath))
	cases := []struct {
		name, old, new, want string
	}{
		{name: "typo in a key", old: "runs-on:", new: "runs-onn:", want: `unexpected key "runs-onn" for "job" section`},
		{name: "typo in an action input", old: "role-to-assume:", new: "role-to-asume:", want: `input "role-to-asume" is not defined in action "aws-actions/configure-aws-credentials@v6.2.3"`},
		{name: "typo in the JUnit action's input", old: "report_paths:", new: "report_path:", want: `input "report_path" is not defined in action "mikepenz/action-junit-report@v6.4.2"`},
		{name: "typo in a context property", old: "github.event_name == 'push' && github.ref", new: "github.event_nam == 'push' && github.ref", want: `property "event_nam" is not defined`},
		{name: "up on pull requests too", old: "if: " + upOnMain, new: "if: github.ref == 'refs/heads/main'", want: "the up step runs when"},
		{name: "up without --yes", old: "coderctl up --yes -o json", new: "coderctl up -o json", want: "--yes"},
		{name: "verify without --junit", old: "verify -o json --junit verify.xml\n", new: "verify -o json\n", want: "--junit verify.xml"},
		{name: "verify without -o json", old: "verify -o json --junit verify.xml\n", new: "verify --junit verify.xml\n", want: "-o json"},
		{name: "verify skipped when up fails", old: "if: ${{ !cancelled() && steps.aws.outcome == 'success' && vars.CODERCTL_SMOKE != 'true' }}", new: "if: ${{ steps.aws.outcome == 'success' && vars.CODERCTL_SMOKE != 'true' }}", want: "!cancelled()"},
		{name: "report only when verify passed", old: "      - name: Publish the JUnit report\n        if: always()", new: "      - name: Publish the JUnit report\n        if: success()", want: `step "Publish the JUnit report" runs if "success()", want always()`},
		{name: "no id-token permission", old: "id-token: write", new: "id-token: read", want: "id-token: write"},
		{name: "a secret echoed", old: "run: go build -o coderctl ./cmd/coderctl", new: "run: echo \"${{ secrets.CODER_SESSION_TOKEN }}\"; go build -o coderctl ./cmd/coderctl", want: "secrets."},
		{name: "a secret's variable echoed", old: "run: ./coderctl verify --smoke", new: "run: echo \"$CODER_SESSION_TOKEN\"; ./coderctl verify --smoke", want: "CODER_SESSION_TOKEN"},
		{name: "an action by branch", old: "actions/setup-go@v6.5.0", new: "actions/setup-go@main", want: "actions/setup-go@main is not pinned"},
		{name: "a literal role ARN", old: "vars.CODERCTL_VERIFY_ROLE_ARN }}", new: "'arn:aws:iam::123456789012:role/ci' }}", want: "literal ARN"},
		{name: "concurrency cancels a running up", old: "cancel-in-progress: false", new: "cancel-in-progress: true", want: "cancel-in-progress"},
		{name: "up on every branch", old: "    branches: [main]\n", new: "", want: "push runs on branches"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the workflow no longer contains %q: update this case", tc.old)
			}
			broken := []byte(strings.Replace(good, tc.old, tc.new, 1))
			var found []string
			for _, e := range lint(t, broken) {
				found = append(found, e.Error())
			}
			found = append(found, contractProblems(broken)...)
			if !slices.ContainsFunc(found, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem mentions %q; found %q", tc.want, found)
			}
		})
	}
}

// lint runs actionlint on content as the actionlint command would, minus
// the shellcheck and pyflakes rules: they run external binaries, which this
// machine lacks; an empty command name turns them off (the run: scripts are
// single commands, and the contract checks what they run).
func lint(t *testing.T, content []byte) []*actionlint.Error {
	t.Helper()
	registerJUnitAction(t)
	aliasPinnedActions(content)
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{
		Shellcheck: "",
		Pyflakes:   "",
		Color:      actionlint.ColorOptionKindNever,
	})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(workflowPath, content, nil)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

// majorSpec turns owner/repo@v6.2.3 into owner/repo@v6, the key actionlint
// keeps an action's metadata under.
func majorSpec(uses string) (string, bool) {
	name, ref, ok := strings.Cut(uses, "@")
	if !ok {
		return "", false
	}
	m := fullTag.FindStringSubmatch(ref)
	if m == nil {
		return "", false
	}
	return name + "@" + m[1], true
}

// aliasPinnedActions gives each action pinned to a full tag its major
// version's metadata: actionlint looks the exact spec up and would skip the
// input check of anything but a major tag silently.
func aliasPinnedActions(content []byte) {
	for _, m := range regexp.MustCompile(`uses:\s*(\S+)`).FindAllSubmatch(content, -1) {
		uses := string(m[1])
		if major, ok := majorSpec(uses); ok {
			if meta, known := actionlint.PopularActions[major]; known {
				actionlint.PopularActions[uses] = meta
			}
		}
	}
}

// registerJUnitAction adds the JUnit action's real inputs, read from its
// action.yml, to actionlint's metadata.
func registerJUnitAction(t *testing.T) {
	t.Helper()
	var meta actionlint.ActionMetadata
	if err := yaml.Unmarshal(readFile(t, junitActionMeta), &meta); err != nil {
		t.Fatalf("%s: %v", junitActionMeta, err)
	}
	if len(meta.Inputs) == 0 {
		t.Fatalf("%s: no inputs read", junitActionMeta)
	}
	actionlint.PopularActions[junitAction+"@v6"] = &meta
}

// step is what the contract looks at in one step.
type step struct {
	index                 int
	name, cond, run, uses string
	inputs, env           map[string]string
}

func steps(w *actionlint.Workflow) []step {
	var out []step
	for _, j := range w.Jobs {
		for i, s := range j.Steps {
			st := step{index: i, name: str(s.Name), cond: condition(s.If), inputs: map[string]string{}, env: map[string]string{}}
			switch e := s.Exec.(type) {
			case *actionlint.ExecRun:
				st.run = str(e.Run)
			case *actionlint.ExecAction:
				st.uses = str(e.Uses)
				for _, in := range e.Inputs {
					st.inputs[in.Name.Value] = str(in.Value)
				}
			}
			if st.name == "" {
				st.name = st.uses + st.run
			}
			if s.Env != nil {
				for _, v := range s.Env.Vars {
					st.env[v.Name.Value] = str(v.Value)
				}
			}
			out = append(out, st)
		}
	}
	return out
}

func str(s *actionlint.String) string {
	if s == nil {
		return ""
	}
	return s.Value
}

// condition is an if: without the optional ${{ }}.
func condition(s *actionlint.String) string {
	c := strings.TrimSpace(str(s))
	if strings.HasPrefix(c, "${{") && strings.HasSuffix(c, "}}") {
		c = strings.TrimSpace(c[3 : len(c)-2])
	}
	return c
}

// contractProblems lists every way content breaks docs/ci.md's promises.
func contractProblems(content []byte) []string {
	w, errs := actionlint.Parse(content)
	if w == nil || len(errs) > 0 {
		var out []string
		for _, e := range errs {
			out = append(out, "parse: "+e.Error())
		}
		return append(out, "the workflow does not parse")
	}
	if len(w.Jobs) != 1 {
		return []string{fmt.Sprintf("%d jobs, want one (the contract is about its steps)", len(w.Jobs))}
	}
	var job *actionlint.Job
	for _, j := range w.Jobs {
		job = j
	}
	all := steps(w)
	var p []string
	p = append(p, triggerProblems(w)...)
	p = append(p, permissionProblems(w, job)...)
	p = append(p, concurrencyProblems(w, job)...)
	p = append(p, stepProblems(all)...)
	p = append(p, secretProblems(content, all)...)
	return p
}

func triggerProblems(w *actionlint.Workflow) []string {
	var p []string
	hooks := map[string]*actionlint.WebhookEvent{}
	for _, e := range w.On {
		if h, ok := e.(*actionlint.WebhookEvent); ok {
			hooks[h.Hook.Value] = h
		} else {
			p = append(p, fmt.Sprintf("trigger %s: want only pull_request and push", e.EventName()))
		}
	}
	if _, ok := hooks["pull_request"]; !ok || len(hooks) != 2 {
		p = append(p, fmt.Sprintf("triggers %v, want pull_request and push", slices.Sorted(maps.Keys(hooks))))
	}
	if push, ok := hooks["push"]; ok {
		var branches []string
		if push.Branches != nil {
			for _, b := range push.Branches.Values {
				branches = append(branches, b.Value)
			}
		}
		if !slices.Equal(branches, []string{"main"}) {
			p = append(p, fmt.Sprintf("push runs on branches %q, want only main", branches))
		}
	}
	return p
}

// permissionProblems: the token gets id-token: write (OIDC) and contents:
// read; the only other write is checks (the JUnit check run).
func permissionProblems(w *actionlint.Workflow, job *actionlint.Job) []string {
	var p []string
	if w.Permissions != nil && (w.Permissions.All != nil || len(w.Permissions.Scopes) > 0) {
		p = append(p, "workflow-level permissions grant something; want {} and the job's own")
	}
	if job.Permissions == nil || job.Permissions.All != nil {
		return append(p, "the job must list its permissions scope by scope (id-token: write, contents: read)")
	}
	scopes := map[string]string{}
	for _, s := range job.Permissions.Scopes {
		scopes[s.Name.Value] = s.Value.Value
	}
	if scopes["id-token"] != "write" {
		p = append(p, fmt.Sprintf("permissions id-token is %q, want id-token: write (the OIDC token)", scopes["id-token"]))
	}
	if scopes["contents"] != "read" {
		p = append(p, fmt.Sprintf("permissions contents is %q, want read", scopes["contents"]))
	}
	for name, v := range scopes {
		if v == "write" && name != "id-token" && name != "checks" {
			p = append(p, fmt.Sprintf("permissions %s: write is more than the run needs", name))
		}
	}
	return p
}

// concurrencyProblems: one group per state object, and a running up is
// never cancelled by the next run.
func concurrencyProblems(w *actionlint.Workflow, job *actionlint.Job) []string {
	c := job.Concurrency
	if c == nil {
		c = w.Concurrency
	}
	if c == nil || !strings.Contains(str(c.Group), "vars.CODERCTL_STATE") {
		return []string{"no concurrency group keyed on vars.CODERCTL_STATE: two runs could work on one state"}
	}
	if c.CancelInProgress != nil && (c.CancelInProgress.Value || c.CancelInProgress.Expression != nil) {
		return []string{"concurrency cancel-in-progress must be false: a cancelled up stops half-way"}
	}
	return nil
}

// stepProblems checks the order and conditions of the steps that matter.
func stepProblems(all []step) []string {
	var p []string
	find := func(match func(step) bool) []step {
		var out []step
		for _, s := range all {
			if match(s) {
				out = append(out, s)
			}
		}
		return out
	}
	runs := func(cmd string) func(step) bool { return func(s step) bool { return strings.Contains(s.run, cmd) } }
	uses := func(action string) func(step) bool {
		return func(s step) bool { return strings.HasPrefix(s.uses, action+"@") }
	}

	for _, s := range all {
		if s.uses == "" {
			continue
		}
		if _, ok := majorSpec(s.uses); !ok {
			p = append(p, fmt.Sprintf("step %q: %s is not pinned to a full version tag", s.name, s.uses))
		}
	}
	if len(find(func(s step) bool {
		return strings.Contains(s.run, "go build") && strings.Contains(s.run, "./cmd/coderctl")
	})) != 1 {
		p = append(p, "no step builds coderctl with go build ./cmd/coderctl")
	}
	if g := find(uses("actions/setup-go")); len(g) != 1 || g[0].inputs["go-version-file"] != "go.mod" {
		p = append(p, "actions/setup-go must take the Go version from go.mod (go-version-file: go.mod)")
	}

	aws := find(uses("aws-actions/configure-aws-credentials"))
	if len(aws) != 1 {
		return append(p, "want exactly one aws-actions/configure-aws-credentials step")
	}
	for _, in := range []string{"role-to-assume", "aws-region"} {
		if !strings.Contains(aws[0].inputs[in], "vars.") {
			p = append(p, fmt.Sprintf("configure-aws-credentials %s must come from a repository variable, is %q", in, aws[0].inputs[in]))
		}
	}
	for _, in := range []string{"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} {
		if _, ok := aws[0].inputs[in]; ok {
			p = append(p, fmt.Sprintf("configure-aws-credentials has %s: use the OIDC role, not keys", in))
		}
	}

	up := find(runs("coderctl up"))
	switch {
	case len(up) != 1:
		p = append(p, fmt.Sprintf("%d steps run coderctl up, want one", len(up)))
	default:
		if up[0].cond != upOnMain {
			p = append(p, fmt.Sprintf("the up step runs when %q, want exactly %q", up[0].cond, upOnMain))
		}
		for _, flag := range []string{"--yes", "-o json"} {
			if !strings.Contains(up[0].run, flag) {
				p = append(p, "the up step must run with "+flag)
			}
		}
		if up[0].index < aws[0].index {
			p = append(p, "up runs before the AWS role is assumed")
		}
	}

	verify := find(runs("coderctl verify"))
	if len(verify) == 0 {
		return append(p, "no step runs coderctl verify")
	}
	for _, v := range verify {
		for _, flag := range []string{"-o json", "--junit " + report} {
			if !strings.Contains(v.run, flag) {
				p = append(p, fmt.Sprintf("step %q must run verify with %s", v.name, flag))
			}
		}
		// Every run verifies, including when up failed: no event or branch
		// in the condition, and !cancelled() instead of the implicit success().
		if !strings.Contains(v.cond, "!cancelled()") {
			p = append(p, fmt.Sprintf("step %q runs if %q: want !cancelled() so a failed up is still verified", v.name, v.cond))
		}
		if strings.Contains(v.cond, "github.event_name") || strings.Contains(v.cond, "github.ref") {
			p = append(p, fmt.Sprintf("step %q depends on the event (%q): verify runs on every run", v.name, v.cond))
		}
		if len(up) == 1 && v.index < up[0].index {
			p = append(p, fmt.Sprintf("step %q runs before up", v.name))
		}
	}

	reports := []struct{ action, input string }{{"actions/upload-artifact", "path"}, {junitAction, "report_paths"}}
	for _, r := range reports {
		s := find(uses(r.action))
		if len(s) != 1 {
			p = append(p, fmt.Sprintf("want one %s step for the JUnit report", r.action))
			continue
		}
		if s[0].cond != "always()" {
			p = append(p, fmt.Sprintf("step %q runs if %q, want always(): a failing verify is when the report matters", s[0].name, s[0].cond))
		}
		if s[0].inputs[r.input] != report {
			p = append(p, fmt.Sprintf("step %q %s is %q, want %s", s[0].name, r.input, s[0].inputs[r.input], report))
		}
		if s[0].index < verify[len(verify)-1].index {
			p = append(p, fmt.Sprintf("step %q runs before verify", s[0].name))
		}
	}
	return p
}

// secretProblems: a secret reaches a step only as an environment variable
// (so GitHub masks it and no command line carries it), no script names
// such a variable (so none echoes it), and no credential or account-specific
// ARN is written in the file.
func secretProblems(content []byte, all []step) []string {
	var p []string
	inStepEnv := 0
	var fromSecrets []string
	for _, s := range all {
		for name, v := range s.env {
			if n := strings.Count(v, "secrets."); n > 0 {
				inStepEnv += n
				fromSecrets = append(fromSecrets, name)
			}
		}
	}
	if total := strings.Count(string(content), "secrets."); total != inStepEnv {
		p = append(p, fmt.Sprintf("%d secrets. references outside a step's env: a secret may only be given to a step as an environment variable", total-inStepEnv))
	}
	for _, s := range all {
		for _, name := range fromSecrets {
			if strings.Contains(s.run, name) {
				p = append(p, fmt.Sprintf("step %q names %s, which holds a secret: never print it", s.name, name))
			}
		}
	}
	for _, lit := range []*regexp.Regexp{regexp.MustCompile(`arn:aws[a-z-]*:`), regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)} {
		if loc := lit.FindIndex(content); loc != nil {
			p = append(p, fmt.Sprintf("literal ARN or key %q: take it from a repository variable", content[loc[0]:min(loc[1]+16, len(content))]))
		}
	}
	return p
}

// yamlBlocks returns the bodies of the ```yaml fences in a markdown text.
func yamlBlocks(md string) []string {
	var blocks []string
	rest := md
	for {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			return blocks
		}
		body, tail, ok := strings.Cut(after, "\n```")
		if !ok {
			return blocks
		}
		blocks = append(blocks, body+"\n")
		rest = tail
	}
}
