package config

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
)

// schemaNode is one field path of eksctl's ClusterConfig, built by
// reflection over the v1alpha5 types so that a field a new eksctl adds is
// part of the tree without anyone listing it.
type schemaNode struct {
	// path in eksctl's JSON names: "[]" marks a list element, "*" a key the
	// user chooses (vpc.subnets.private.us-west-2a), "" is the document.
	path string
	typ  reflect.Type
	// fields are a struct's YAML keys in declaration order (inlined structs
	// flattened), for a deterministic walk.
	fields []string
	field  map[string]*schemaNode
	// elem is the node of a list's items ("[]") or a map's values ("*"),
	// when those are structs; nil for leaves.
	elem  *schemaNode
	shape nodeShape
}

type nodeShape int

const (
	shapeLeaf   nodeShape = iota // a value coderctl takes whole: text, number, list of text, labels
	shapeStruct                  // a mapping of eksctl fields
	shapeList                    // a list of structs
	shapeMap                     // a mapping of user-chosen keys to structs
)

// clusterSchema is the tree of ClusterConfig, built once.
var clusterSchema = sync.OnceValue(func() *schemaNode {
	return buildSchema(reflect.TypeOf(api.ClusterConfig{}), "", map[reflect.Type]bool{})
})

var (
	jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// decodesItself reports a struct that parses its own YAML (an ARN, a CIDR,
// an identity provider): its inside is not made of eksctl fields.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler)
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// buildSchema builds the node at path for type t. seen guards against a
// type that contains itself (none in v1alpha5 today): it becomes a leaf.
func buildSchema(t reflect.Type, path string, seen map[reflect.Type]bool) *schemaNode {
	t = derefType(t)
	n := &schemaNode{path: path, typ: t}
	switch t.Kind() {
	case reflect.Struct:
		if decodesItself(t) || seen[t] {
			return n
		}
		seen[t] = true
		defer delete(seen, t)
		n.shape, n.field = shapeStruct, map[string]*schemaNode{}
		addStructFields(n, t, seen)
		if len(n.fields) == 0 {
			// Nothing to walk into: a leaf, so the test still sees it.
			n.shape, n.field = shapeLeaf, nil
		}
	case reflect.Slice:
		if e := derefType(t.Elem()); e.Kind() == reflect.Struct && !decodesItself(e) {
			n.shape, n.elem = shapeList, buildSchema(e, path+"[]", seen)
		}
	case reflect.Map:
		if e := derefType(t.Elem()); e.Kind() == reflect.Struct && !decodesItself(e) {
			n.shape, n.elem = shapeMap, buildSchema(e, joinPath(path, "*"), seen)
		}
	}
	return n
}

// addStructFields adds t's YAML keys to n, flattening inlined structs
// (TypeMeta, NodeGroupBase, ScalingConfig) as the decoder does.
func addStructFields(n *schemaNode, t reflect.Type, seen map[reflect.Type]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		switch {
		case name == "" && f.Anonymous:
			addStructFields(n, derefType(f.Type), seen)
		case name == "" || name == "-" || !f.IsExported():
		default:
			n.fields = append(n.fields, name)
			n.field[name] = buildSchema(f.Type, joinPath(n.path, name), seen)
		}
	}
}

// leaves calls fn for every leaf below n, in declaration order.
func (n *schemaNode) leaves(fn func(*schemaNode)) {
	switch n.shape {
	case shapeLeaf:
		fn(n)
	case shapeStruct:
		for _, name := range n.fields {
			n.field[name].leaves(fn)
		}
	default:
		n.elem.leaves(fn)
	}
}

// lookup finds the node of a path pattern ("managedNodeGroups[].taints[].key").
func (n *schemaNode) lookup(pattern string) *schemaNode {
	cur := n
	for _, seg := range splitPattern(pattern) {
		switch {
		case seg == "[]" && cur.shape == shapeList, seg == "*" && cur.shape == shapeMap:
			cur = cur.elem
		case cur.shape == shapeStruct && cur.field[seg] != nil:
			cur = cur.field[seg]
		default:
			return nil
		}
	}
	return cur
}

// splitPattern splits "a.b[].c" into "a", "b", "[]", "c".
func splitPattern(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		name, lists := part, 0
		for strings.HasSuffix(name, "[]") {
			name, lists = name[:len(name)-2], lists+1
		}
		if name != "" {
			segs = append(segs, name)
		}
		for range lists {
			segs = append(segs, "[]")
		}
	}
	return segs
}
