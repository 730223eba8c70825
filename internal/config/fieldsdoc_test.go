package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
)

const clusterConfigDoc = "../../docs/cluster-config.md"

// The generated parts of docs/cluster-config.md sit between these markers.
const (
	docBegin = "<!-- BEGIN %s: generated from internal/config/fields.go; go test ./internal/config -run TestClusterConfigDoc -update -->\n"
	docEnd   = "<!-- END %s -->\n"
)

// fieldsTable renders ActedOn as the doc's table.
func fieldsTable() string {
	var b strings.Builder
	b.WriteString("| Field | Acted on by | What coderctl does with it |\n|---|---|---|\n")
	for _, f := range ActedOn() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Path, stageWords(f.Stage), mdEscape(f.Does))
	}
	return b.String()
}

func stageWords(stage string) string {
	switch stage {
	case "config":
		return "the loader"
	case "all":
		return "every stage"
	}
	return "stage " + stage
}

// refusalsTable renders the refusals that say more than "remove it".
func refusalsTable() string {
	paths := make([]string, 0, len(refusals))
	for p := range refusals {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString("| Field | Message | What to do |\n|---|---|---|\n")
	for _, p := range paths {
		r := refusals[p]
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", p, mdEscape(r.msg), mdEscape(r.hint))
	}
	return b.String()
}

// mdEscape keeps table cells literal: "|" would end the cell, "<x>" would
// be taken for HTML and "*" for emphasis.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", "*", `\*`).Replace(s)
}

// TestClusterConfigDoc: the doc's tables are the list and the refusals,
// so the doc cannot say coderctl acts on a field it refuses, or the reverse.
func TestClusterConfigDoc(t *testing.T) {
	data, err := os.ReadFile(clusterConfigDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, part := range []struct{ name, body string }{{"fields", fieldsTable()}, {"refusals", refusalsTable()}} {
		begin, end := fmt.Sprintf(docBegin, part.name), fmt.Sprintf(docEnd, part.name)
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s lacks the %q and %q markers", clusterConfigDoc, strings.TrimSpace(begin), strings.TrimSpace(end))
		}
		doc = doc[:i+len(begin)] + part.body + doc[j:]
	}
	if *update {
		if err := os.WriteFile(clusterConfigDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != string(data) {
		t.Errorf("%s's tables differ from ActedOn and refusals in fields.go; run: go test ./internal/config -run TestClusterConfigDoc -update", clusterConfigDoc)
	}
}

// TestActedOnFollowsShippedFile: the list (and so the doc) is in the order
// of the shipped cluster-config.yaml, and every field the shipped file sets
// is on it.
func TestActedOnFollowsShippedFile(t *testing.T) {
	var root yamlv3.Node
	if err := yamlv3.Unmarshal([]byte(readShipped(t)), &root); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	seen := map[string]bool{}
	collectLeafPaths(root.Content[0], "", func(p string) {
		if !seen[p] {
			seen[p] = true
			inFile = append(inFile, p)
		}
	})
	pos := map[string]int{}
	for i, f := range ActedOn() {
		pos[f.Path] = i
	}
	last := -1
	for _, p := range inFile {
		i, ok := pos[p]
		switch {
		case !ok:
			t.Errorf("the shipped file sets %s, which is not on ActedOn", p)
		case i < last:
			t.Errorf("%s comes before %s in the shipped file but after it in ActedOn", p, ActedOn()[last].Path)
		default:
			last = i
		}
	}
	if len(inFile) < 20 {
		t.Errorf("found only %d fields in the shipped file: %v", len(inFile), inFile)
	}
}

// collectLeafPaths reports, in file order, the schema path of every value
// the document sets: mapping keys along eksctl's struct fields, "[]" for
// list items, and the whole value at a schema leaf.
func collectLeafPaths(n *yamlv3.Node, path string, fn func(string)) {
	if node := clusterSchema().lookup(path); path != "" && (node == nil || node.shape == shapeLeaf) {
		fn(path)
		return
	}
	switch n.Kind {
	case yamlv3.MappingNode:
		node := clusterSchema().lookup(path)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if node != nil && node.shape == shapeMap {
				key = "*"
			}
			collectLeafPaths(n.Content[i+1], joinPath(path, key), fn)
		}
	case yamlv3.SequenceNode:
		for _, item := range n.Content {
			collectLeafPaths(item, path+"[]", fn)
		}
	default:
		fn(path)
	}
}

// TestCorpusConfigs: every cluster config of the bad-input corpus either
// loads (the cases about a stage's check or the env file, which need a
// valid config) or is refused naming a field the case expects: neither the
// field check nor any other steals another case's error.
func TestCorpusConfigs(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/bad/*")
	if err != nil {
		t.Fatal(err)
	}
	shipped := readShipped(t)
	valid, refused := 0, 0
	for _, dir := range dirs {
		doc, ok := corpusConfig(t, dir, shipped)
		if !ok {
			continue
		}
		_, err := ParseCluster("cluster-config.yaml", []byte(doc))
		if err == nil {
			valid++
			continue
		}
		refused++
		if missing := unexpected(t, dir, err); missing != "" {
			t.Errorf("%s: its config does not load (%v), but the case expects %q", filepath.Base(dir), err, missing)
		}
	}
	// Cases 38, 67, 68, 144, 151 at least fail later, in a stage.
	if valid < 5 || refused < 30 {
		t.Errorf("%d corpus configs load and %d are refused; the corpus was not found or not read", valid, refused)
	}
}

// unexpected returns the first line of the case's expect file (after the
// exit code) that err does not contain, "" when err is the case's error.
func unexpected(t *testing.T, dir string, err error) string {
	expect, readErr := os.ReadFile(filepath.Join(dir, "expect"))
	if readErr != nil {
		t.Fatal(readErr)
	}
	lines := strings.Split(strings.TrimSpace(string(expect)), "\n")
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(err.Error(), l) {
			return l
		}
	}
	return ""
}

// corpusConfig builds a corpus case's cluster-config.yaml the way
// internal/cli's corpus test does: the case's own file, or the shipped one
// with its patch lines ("old => new", \n for a newline) applied.
func corpusConfig(t *testing.T, dir, shipped string) (string, bool) {
	if data, err := os.ReadFile(filepath.Join(dir, "cluster-config.yaml")); err == nil {
		return string(data), true
	}
	patch, err := os.ReadFile(filepath.Join(dir, "cluster-config.patch"))
	if err != nil {
		return "", false
	}
	doc := shipped
	for _, line := range strings.Split(string(patch), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		old, new, ok := strings.Cut(line, " => ")
		if !ok {
			old, ok = strings.CutSuffix(line, " =>")
		}
		if !ok {
			t.Fatalf("%s: patch line %q has no ' => '", dir, line)
		}
		old, new = strings.ReplaceAll(old, `\n`, "\n"), strings.ReplaceAll(new, `\n`, "\n")
		doc = strings.Replace(doc, old, new, 1)
	}
	return doc, true
}
