package helmx

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
)

// Owned says which keys of a release's values coderctl guarantees, so that
// a user's override file can extend them but never undo them
// (decisions.md 12). The zero value guards nothing.
type Owned struct {
	// Key is the input naming the override file (CODER_VALUES_FILE); errors
	// and notes name it.
	Key string
	// Lists are lists the file extends instead of replacing.
	Lists []OwnedList
	// Values are values the file may only repeat (or set to one of Allow).
	Values []OwnedValue
}

// Paths lists the values paths of every owned list and value.
func (o Owned) Paths() [][]string {
	var paths [][]string
	for _, l := range o.Lists {
		paths = append(paths, l.Path)
	}
	for _, v := range o.Values {
		paths = append(paths, v.Path)
	}
	return paths
}

// OwnedList is a list coderctl fills that a user may add to.
type OwnedList struct {
	Path []string
	// ByName merges entries by their "name" field (env, volumes,
	// volumeMounts): the user's new names are appended after coderctl's,
	// and coderctl's entry is kept, with a note, where both set a name.
	// Otherwise (tolerations) the user's entries are added to coderctl's,
	// equal ones once.
	ByName bool
	// Refuse names entries a user may not add, with the reason (ByName only).
	Refuse map[string]string
}

// OwnedValue is a value coderctl's guarantees depend on.
type OwnedValue struct {
	Path []string
	// Allow lists values the file may set besides coderctl's own (for
	// instance an explicit empty list where coderctl sets nothing).
	Allow []any
	// Why is the hint given when the file changes the value.
	Why string
}

// MergeValues builds a release's values in layers, each deep-merged over
// the one before (maps merge key by key; lists and scalars replace):
// the embedded YAML defaults, then the values coderctl computed from state,
// then the user's override file when overrideFile is not empty. A null is
// kept: helm then drops the chart's default for that key, as with
// `helm --values`.
//
// The override file is held to owned: its owned lists are merged with
// coderctl's, and a file that changes an owned value, or is not a YAML
// mapping, is bad input naming the file, owned.Key and the YAML path.
// Notes say where coderctl's entry was kept over the file's.
//
// The result holds only JSON types (map[string]any, []any, string,
// float64, bool, nil), as helm stores values, so typed Kubernetes structs in
// computed (e.g. []corev1.Toleration) become their API field names.
func MergeValues(base []byte, computed map[string]any, overrideFile string, owned Owned) (map[string]any, []string, error) {
	if overrideFile == "" {
		values, err := coderctlValues(base, computed)
		return values, nil, err
	}
	data, err := fsx.ReadRegular(overrideFile, fsx.MaxInputFile)
	if err != nil {
		msg, hint := fsx.Describe(err)
		return nil, nil, fault.Input(overrideFile, owned.Key, hint, "cannot read values file: %s", msg)
	}
	return mergeOverride(base, computed, overrideFile, data, owned)
}

// coderctlValues is what coderctl wants before any user file: the embedded
// defaults with the computed values over them.
func coderctlValues(base []byte, computed map[string]any) (map[string]any, error) {
	merged := map[string]any{}
	defaults, err := parseValues(base)
	if err != nil {
		return nil, fmt.Errorf("embedded default values: %w", err)
	}
	mergeInto(merged, defaults)
	normalized, err := normalize(computed)
	if err != nil {
		return nil, fmt.Errorf("computed values: %w", err)
	}
	mergeInto(merged, normalized)
	return merged, nil
}

// mergeOverride merges the override file's contents (named source) over
// coderctl's values, holding it to owned.
func mergeOverride(base []byte, computed map[string]any, source string, data []byte, owned Owned) (map[string]any, []string, error) {
	ours, err := coderctlValues(base, computed)
	if err != nil {
		return nil, nil, err
	}
	override, err := parseValues(data)
	if err != nil {
		return nil, nil, fault.Input(source, owned.Key, "the file must be a YAML mapping of helm values, like a chart's values.yaml",
			"not a YAML mapping: %v", err)
	}
	g := guard{owned: owned, source: source}
	if err := g.checkParents(override); err != nil {
		return nil, nil, err
	}
	notes, err := g.mergeLists(ours, override)
	if err != nil {
		return nil, nil, err
	}
	merged := map[string]any{}
	mergeInto(merged, ours)
	mergeInto(merged, override)
	if err := g.checkValues(ours, merged); err != nil {
		return nil, nil, err
	}
	return merged, notes, nil
}

// guard applies an Owned description to one override file.
type guard struct {
	owned  Owned
	source string
}

// refuse is bad input about the YAML path at: the file, the key naming it
// and the path are all in the message.
func (g guard) refuse(at []string, hint, format string, args ...any) error {
	return fault.Input(g.source, g.owned.Key+" "+PathString(at), hint, format, args...)
}

// checkParents refuses a file that puts a non-mapping (null included) where
// an owned key's parent mapping is: that would erase coderctl's key.
func (g guard) checkParents(override map[string]any) error {
	paths := make([][]string, 0, len(g.owned.Lists)+len(g.owned.Values))
	for _, l := range g.owned.Lists {
		paths = append(paths, l.Path)
	}
	for _, v := range g.owned.Values {
		paths = append(paths, v.Path)
	}
	for _, path := range paths {
		node := override
		for i, k := range path[:len(path)-1] {
			v, ok := node[k]
			if !ok {
				break
			}
			m, isMap := v.(map[string]any)
			if !isMap {
				return g.refuse(path[:i+1], "give a mapping here, or leave the key out",
					"is %s, not a mapping; it would remove %s, which coderctl owns", describe(v), PathString(path))
			}
			node = m
		}
	}
	return nil
}

// mergeLists replaces each owned list the override sets by its merge with
// coderctl's, in place, and returns the notes.
func (g guard) mergeLists(ours, override map[string]any) ([]string, error) {
	var notes []string
	for _, l := range g.owned.Lists {
		v, set := lookup(override, l.Path)
		if !set {
			continue
		}
		theirs, isList := v.([]any)
		if !isList {
			return nil, g.refuse(l.Path, "give a list; coderctl's entries are kept and yours added",
				"is %s, not a list", describe(v))
		}
		mine, _ := lookup(ours, l.Path)
		mineList, _ := mine.([]any)
		var merged []any
		var err error
		if l.ByName {
			merged, notes, err = g.mergeByName(l, mineList, theirs, notes)
		} else {
			merged = union(mineList, theirs)
		}
		if err != nil {
			return nil, err
		}
		setPath(override, l.Path, merged)
	}
	return notes, nil
}

// mergeByName appends the user's entries with new names after coderctl's;
// where a name is coderctl's, coderctl's entry stays and a note says so.
// Environment order matters: coderctl's come first so that the user's
// variables can refer to them as $(NAME).
func (g guard) mergeByName(l OwnedList, mine, theirs []any, notes []string) ([]any, []string, error) {
	byName := map[string]any{}
	for _, e := range mine {
		if name, ok := entryName(e); ok {
			byName[name] = e
		}
	}
	merged := slices.Clone(mine)
	seen := map[string]bool{}
	for i, e := range theirs {
		name, ok := entryName(e)
		switch {
		case !ok:
			return nil, nil, g.refuse(l.Path, "each entry is a mapping with a name, e.g. {name: MY_VAR, value: \"x\"}",
				"entry %d has no name", i+1)
		case l.Refuse[name] != "":
			return nil, nil, g.refuse(l.Path, l.Refuse[name], "sets %s", name)
		case seen[name]:
			return nil, nil, g.refuse(l.Path, "list each name once", "lists %s twice", name)
		}
		seen[name] = true
		if ours, isOurs := byName[name]; isOurs {
			if !reflect.DeepEqual(ours, e) {
				notes = append(notes, fmt.Sprintf("%s sets %s %s: coderctl's value is kept", g.owned.Key, PathString(l.Path), name))
			}
			continue
		}
		merged = append(merged, e)
	}
	return merged, notes, nil
}

// union is coderctl's entries followed by the user's that are not already
// there.
func union(mine, theirs []any) []any {
	merged := slices.Clone(mine)
	for _, e := range theirs {
		if !slices.ContainsFunc(merged, func(m any) bool { return reflect.DeepEqual(m, e) }) {
			merged = append(merged, e)
		}
	}
	return merged
}

func entryName(e any) (string, bool) {
	m, ok := e.(map[string]any)
	if !ok {
		return "", false
	}
	name, ok := m["name"].(string)
	return name, ok && name != ""
}

// checkValues refuses a merge that changed an owned value. checkParents
// has run, so the file set the value at its own path.
func (g guard) checkValues(ours, merged map[string]any) error {
	for _, v := range g.owned.Values {
		want, wantSet := lookup(ours, v.Path)
		got, gotSet := lookup(merged, v.Path)
		if gotSet == wantSet && reflect.DeepEqual(got, want) {
			continue
		}
		if gotSet && slices.ContainsFunc(v.Allow, func(a any) bool { return reflect.DeepEqual(a, got) }) {
			continue
		}
		return g.refuse(v.Path, v.Why, "%s", changed(got, gotSet, want, wantSet))
	}
	return nil
}

// changed words what the file did to an owned value.
func changed(got any, gotSet bool, want any, wantSet bool) string {
	did := "removed"
	if gotSet {
		did = "set to " + describe(got)
	}
	if !wantSet {
		return did + "; coderctl leaves it unset"
	}
	return did + "; coderctl keeps it " + describe(want)
}

// describe quotes a value for a one-line message, shortened.
func describe(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	const max = 60
	if r := []rune(string(b)); len(r) > max {
		return string(r[:max]) + "…"
	}
	return string(b)
}

// PathString writes a values path the way helm's --set does, bracketing
// keys that hold dots or slashes: coder.serviceAccount.annotations["eks.amazonaws.com/role-arn"].
func PathString(path []string) string {
	var b strings.Builder
	for i, k := range path {
		if strings.ContainsAny(k, "./[]") {
			fmt.Fprintf(&b, "[%q]", k)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
	}
	return b.String()
}

// lookup finds path in values; ok is false when a key along it is missing
// or not a mapping.
func lookup(values map[string]any, path []string) (any, bool) {
	var node any = values
	for _, k := range path {
		m, isMap := node.(map[string]any)
		if !isMap {
			return nil, false
		}
		v, ok := m[k]
		if !ok {
			return nil, false
		}
		node = v
	}
	return node, true
}

// setPath puts v at path, whose parents are mappings (checkParents).
func setPath(values map[string]any, path []string, v any) {
	node := values
	for _, k := range path[:len(path)-1] {
		node = node[k].(map[string]any)
	}
	node[path[len(path)-1]] = v
}

// parseValues reads a YAML mapping; empty input is an empty mapping.
func parseValues(data []byte) (map[string]any, error) {
	out := map[string]any{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	if out == nil { // a document holding only "null" or comments
		out = map[string]any{}
	}
	return out, nil
}

// mergeInto merges src over dst, copying src's maps so that later merges
// never write into the caller's data.
func mergeInto(dst, src map[string]any) {
	for k, sv := range src {
		sm, srcIsMap := sv.(map[string]any)
		dm, dstIsMap := dst[k].(map[string]any)
		switch {
		case srcIsMap && dstIsMap:
			mergeInto(dm, sm)
		case srcIsMap:
			fresh := map[string]any{}
			mergeInto(fresh, sm)
			dst[k] = fresh
		default:
			dst[k] = sv
		}
	}
}

// normalize round-trips values through JSON, the form helm stores them in,
// so values compare equal to a deployed release's.
func normalize(values map[string]any) (map[string]any, error) {
	if values == nil {
		return map[string]any{}, nil
	}
	data, err := json.Marshal(values)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// changedKeys lists the dotted paths whose values differ between two value
// trees, descending into maps; a list that differs is reported as a whole.
func changedKeys(old, updated map[string]any) []string {
	var out []string
	collectChanges("", old, updated, &out)
	slices.Sort(out)
	return out
}

func collectChanges(prefix string, old, updated map[string]any, out *[]string) {
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range updated {
		keys[k] = true
	}
	for k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		ov, inOld := old[k]
		nv, inNew := updated[k]
		om, oldIsMap := ov.(map[string]any)
		nm, newIsMap := nv.(map[string]any)
		switch {
		case inOld && inNew && oldIsMap && newIsMap:
			collectChanges(path, om, nm, out)
		case inOld != inNew || !reflect.DeepEqual(ov, nv):
			*out = append(*out, path)
		}
	}
}
