package helmx

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"

	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
)

// MergeValues builds a release's values in layers, each deep-merged over
// the one before (maps merge key by key; lists and scalars replace):
// the embedded YAML defaults, then the values coderctl computed from state,
// then the user's override file when overrideFile is not empty. A null is
// kept: helm then drops the chart's default for that key, as with
// `helm --values`.
//
// The result holds only JSON types (map[string]any, []any, string,
// float64, bool, nil), as helm stores values, so typed Kubernetes structs in
// computed (e.g. []corev1.Toleration) become their API field names.
func MergeValues(base []byte, computed map[string]any, overrideFile string) (map[string]any, error) {
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

	if overrideFile != "" {
		data, err := os.ReadFile(overrideFile)
		if err != nil {
			return nil, fault.Input(overrideFile, "", "check the values file path", "cannot read values file: %v", err)
		}
		override, err := parseValues(data)
		if err != nil {
			return nil, fault.Input(overrideFile, "", "the file must be a YAML mapping of helm values, like a chart's values.yaml",
				"not a YAML mapping: %v", err)
		}
		mergeInto(merged, override)
	}
	return merged, nil
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
