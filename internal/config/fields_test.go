package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
	"github.com/weaveworks/eksctl/pkg/utils/ipnet"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
)

// baseDoc is a valid cluster config with two node groups and one add-on,
// so that a field set on managedNodeGroups[1] shows that messages carry the
// list index.
const baseDoc = `apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata:
  name: base
  region: us-west-2
addons:
  - name: vpc-cni
managedNodeGroups:
  - name: first
    instanceType: m7i.large
  - name: second
    instanceType: m7i.large
`

// TestEveryFieldActedOnOrRefused walks eksctl's ClusterConfig type tree:
// every field path is either on ActedOn or, set in a valid file, refused
// with exit 2 naming the field with its list indexes. A field a new eksctl
// adds fails here until someone decides which.
func TestEveryFieldActedOnOrRefused(t *testing.T) {
	rules := newFieldRules(ActedOn())
	var neither []string
	checked := 0
	clusterSchema().leaves(func(leaf *schemaNode) {
		if rules.covers(leaf.path) {
			return
		}
		checked++
		if problem := refusedProblem(t, rules, leaf); problem != "" {
			neither = append(neither, leaf.path+": "+problem)
		}
	})
	if len(neither) > 0 {
		t.Errorf("%d fields of eksctl's ClusterConfig are neither acted on (ActedOn in fields.go) nor refused:\n  %s",
			len(neither), strings.Join(neither, "\n  "))
	}
	// The tree really was walked: v1alpha5 has hundreds of fields.
	if checked < 300 {
		t.Errorf("only %d refused fields found; the schema walk lost most of ClusterConfig", checked)
	}
}

// refusedProblem sets the leaf's field on baseDoc and says what is wrong
// with the answer, "" when it is a refusal naming the right path.
func refusedProblem(t *testing.T, rules fieldRules, leaf *schemaNode) string {
	doc, concrete := docSetting(t, leaf)
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal %s: %v", leaf.path, err)
	}
	_, err = ParseCluster("cluster-config.yaml", data)
	var ie *fault.InputError
	if !asInput(err, &ie) || fault.ExitCode(err) != fault.ExitInput {
		return fmt.Sprintf("set to a valid value, got %v (want exit 2 naming the field)", err)
	}
	want := refusedUnit(rules, leaf.path, concrete)
	if ie.Source != "cluster-config.yaml" || ie.Field != want {
		return fmt.Sprintf("error %q names %q, want %q", err, ie.Field, want)
	}
	if ie.Hint == "" || strings.Contains(ie.Msg, "\n") {
		return fmt.Sprintf("error %q says nothing about what to do", err)
	}
	return ""
}

func asInput(err error, ie **fault.InputError) bool {
	return err != nil && errors.As(err, ie)
}

// refusedUnit is the concrete path the refusal must name: the shortest
// prefix of the field's path below which nothing is acted on.
func refusedUnit(rules fieldRules, pattern, concrete string) string {
	pSegs, cSegs := pathSegments(pattern), pathSegments(concrete)
	for i := range pSegs {
		if !rules.actsBelow(joinSegments(pSegs[:i+1])) {
			return joinSegments(cSegs[:i+1])
		}
	}
	return concrete
}

// pathSegments splits "a[1].b.c[]" into "a", "[1]", "b", "c", "[]".
func pathSegments(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		name, idx, _ := strings.Cut(part, "[")
		segs = append(segs, name)
		if idx != "" {
			for _, i := range strings.Split("["+idx, "]") {
				if i != "" {
					segs = append(segs, i+"]")
				}
			}
		}
	}
	return segs
}

func joinSegments(segs []string) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// docSetting returns baseDoc with the leaf's field set to a value of its
// type, and the concrete path it set: list elements the base has are
// reused (managedNodeGroups[1]), others created at index 0.
func docSetting(t *testing.T, leaf *schemaNode) (map[string]any, string) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(baseDoc), &doc); err != nil {
		t.Fatal(err)
	}
	out, concrete := setPath(doc, splitPattern(leaf.path), valueFor(t, leaf), "")
	return out.(map[string]any), concrete
}

// setPath sets value at the pattern segments below node, creating what is
// missing, and returns the new node and the concrete path.
func setPath(node any, segs []string, value any, at string) (any, string) {
	if len(segs) == 0 {
		return value, at
	}
	if segs[0] == "[]" {
		list, _ := node.([]any)
		idx := min(len(list), 2) - 1 // the second element when there is one
		if idx < 0 {
			list, idx = append(list, nil), 0
		}
		elem, concrete := setPath(list[idx], segs[1:], value, fmt.Sprintf("%s[%d]", at, idx))
		list[idx] = elem
		return list, concrete
	}
	m, _ := node.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	key := segs[0]
	if key == "*" {
		key = "us-west-2a"
	}
	child, concrete := setPath(m[key], segs[1:], value, joinPath(at, key))
	m[key] = child
	return m, concrete
}

// valueFor is a value of the leaf's type that the strict decoder and the
// raw checks accept.
func valueFor(t *testing.T, leaf *schemaNode) any {
	name := leaf.path[strings.LastIndexAny(leaf.path, ".]")+1:]
	if slices.Contains(cidrKeys, name) {
		if leaf.typ.Kind() == reflect.Slice {
			return []any{"10.1.0.0/16"}
		}
		return "10.1.0.0/16"
	}
	switch leaf.typ {
	case reflect.TypeOf(api.ARN{}):
		return "arn:aws:iam::123456789012:role/example"
	case reflect.TypeOf(ipnet.IPNet{}):
		return "10.1.0.0/16"
	case reflect.TypeOf([]api.IdentityProvider{}):
		return []any{map[string]any{"type": "oidc", "name": "example", "issuerURL": "https://example.com", "clientID": "example"}}
	}
	switch leaf.typ.Kind() {
	case reflect.String:
		return "example"
	case reflect.Bool:
		return true
	case reflect.Int, reflect.Int32, reflect.Int64:
		return 1
	case reflect.Float32, reflect.Float64:
		return 1.5
	case reflect.Slice:
		if leaf.typ.Elem().Kind() == reflect.String {
			return []any{"example"}
		}
	case reflect.Map:
		return map[string]any{"example": "example"}
	}
	t.Fatalf("no test value for %s (%s): add one to valueFor", leaf.path, leaf.typ)
	return nil
}

// knownStages are the names ActedOn may give as the place a field is
// acted on ("config": the loader's own checks; "all": every stage).
var knownStages = []string{"config", "all", "prereqs", "network", "eks", "nodegroups"}

// TestActedOnFieldsAreEksctlFields keeps the list from rotting: every entry
// is a field of eksctl's ClusterConfig (a leaf, so that a field eksctl adds
// inside it is not accepted unseen), listed once, with a stage and a note.
func TestActedOnFieldsAreEksctlFields(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range ActedOn() {
		n := clusterSchema().lookup(f.Path)
		switch {
		case n == nil:
			t.Errorf("%s is not a field of eksctl's ClusterConfig", f.Path)
		case n.shape != shapeLeaf:
			t.Errorf("%s has fields of its own: list those coderctl acts on instead", f.Path)
		case seen[f.Path]:
			t.Errorf("%s is listed twice", f.Path)
		case !slices.Contains(knownStages, f.Stage) || f.Does == "":
			t.Errorf("%s: stage %q or note %q missing (stages: %v)", f.Path, f.Stage, f.Does, knownStages)
		}
		seen[f.Path] = true
	}
}

// TestActedOnFieldsPassTheFieldCheck: setting any listed field is not
// refused (its value is checked elsewhere), including inside an existing
// VPC's subnets, whose keys the user chooses.
func TestActedOnFieldsPassTheFieldCheck(t *testing.T) {
	for _, f := range ActedOn() {
		leaf := clusterSchema().lookup(f.Path)
		if leaf == nil {
			continue // reported by TestActedOnFieldsAreEksctlFields
		}
		doc, concrete := docSetting(t, leaf)
		data, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkFields("cluster-config.yaml", data); err != nil {
			t.Errorf("%s (set as %s) is refused: %v", f.Path, concrete, err)
		}
	}
}

// TestRefusedFieldMessages: the refusals users are likely to meet say what
// to do instead, name the field with its index, and count the others.
func TestRefusedFieldMessages(t *testing.T) {
	shipped := readShipped(t)
	tests := []struct {
		name, doc, field, msg string
	}{
		{"spot", edit(t, shipped, "instanceType: c7i.2xlarge", "instanceType: c7i.2xlarge\n    spot: true"),
			"managedNodeGroups[2].spot", "spot capacity is not supported by coderctl (remove it; coderctl creates on-demand groups"},
		{"spot false is still set", edit(t, shipped, "instanceType: c7i.2xlarge", "instanceType: c7i.2xlarge\n    spot: false"),
			"managedNodeGroups[2].spot", "spot capacity is not supported"},
		{"launch template", edit(t, shipped, "instanceType: t3.medium", "instanceType: t3.medium\n    launchTemplate: {id: lt-0123456789abcdef0}"),
			"managedNodeGroups[0].launchTemplate", "coderctl builds each group's launch template"},
		{"custom AMI", edit(t, shipped, "instanceType: m7i.xlarge", "instanceType: m7i.xlarge\n    ami: ami-0123456789abcdef0"),
			"managedNodeGroups[1].ami", "custom AMIs are not supported"},
		{"instance type list", edit(t, shipped, "instanceType: m7i.12xlarge", "instanceTypes: [m7i.12xlarge, m6i.12xlarge]"),
			"managedNodeGroups[3].instanceTypes", "set a single instanceType"},
		{"max pods", edit(t, shipped, "instanceType: m7i.xlarge", "instanceType: m7i.xlarge\n    maxPodsPerNode: 50"),
			"managedNodeGroups[1].maxPodsPerNode", "coderctl does not act on this field (remove it; docs/cluster-config.md lists"},
		{"a whole block once", edit(t, shipped, "instanceType: m7i.xlarge", "instanceType: m7i.xlarge\n    ssh: {allow: true, publicKeyName: mine}"),
			"managedNodeGroups[1].ssh", "coderctl does not act on this field ("},
		{"fargate", edit(t, shipped, "iam:", "fargateProfiles:\n  - name: fp\n    selectors: [{namespace: default}]\niam:"),
			"fargateProfiles", "Fargate profiles are not supported"},
		{"self-managed and managed", edit(t, shipped, "managedNodeGroups:", "nodeGroups:\n  - name: old\n    instanceType: m5.large\nmanagedNodeGroups:"),
			"nodeGroups", "move them under managedNodeGroups"},
		{"cluster annotations", edit(t, shipped, `  version: "1.34"`, `  version: "1.34"`+"\n  annotations: {team: platform}"),
			"metadata.annotations", "coderctl does not act on this field"},
		{"add-on field", edit(t, shipped, "  - name: kube-proxy", "  - name: kube-proxy\n    resolveConflicts: preserve"),
			"addons[2].resolveConflicts", "coderctl does not act on this field"},
		{"several", edit(t, shipped, "instanceType: m7i.xlarge", "instanceType: m7i.xlarge\n    spot: true\n    maxPodsPerNode: 50\n    ebsOptimized: true"),
			"managedNodeGroups[1].maxPodsPerNode", "; 2 more fields coderctl does not act on: managedNodeGroups[1].ebsOptimized, managedNodeGroups[1].spot"},
		{"OIDC off", edit(t, shipped, "withOIDC: true", "withOIDC: false"),
			"iam.withOIDC", "coderctl always creates the IAM OIDC provider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCluster("cluster-config.yaml", []byte(tc.doc))
			ie := asInputError(t, err)
			if ie.Field != tc.field || fault.ExitCode(err) != fault.ExitInput {
				t.Errorf("error %v names %q (exit %d), want %q and exit 2", err, ie.Field, fault.ExitCode(err), tc.field)
			}
			if !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line containing %q", err, tc.msg)
			}
		})
	}
}

// TestUnsetFieldsAreNotRefused: null, [] and {} set nothing, and eksctl's
// defaults (which fill in refused fields such as volumeName or
// ssh.allow) are not the user's to answer for.
func TestUnsetFieldsAreNotRefused(t *testing.T) {
	shipped := readShipped(t)
	doc := edit(t, shipped,
		"iam:", "fargateProfiles: []\nkarpenter:\nnodeGroups: []\naccessConfig: {}\niam:",
		"instanceType: m7i.xlarge", "instanceType: m7i.xlarge\n    ssh: {}\n    spot: null")
	cfg, err := ParseCluster("cluster-config.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("ParseCluster: %v", err)
	}
	if ng := cfg.ManagedNodeGroups[1]; ng.SSH == nil || ng.VolumeType == nil {
		t.Errorf("eksctl's defaults did not fill in the group (ssh %v, volumeType %v): the check must run on what the user wrote", ng.SSH, ng.VolumeType)
	}
}
