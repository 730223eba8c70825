package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
)

// The apiVersion and kind cluster-config.yaml must declare.
var (
	wantAPIVersion = api.SchemeGroupVersion.String() // eksctl.io/v1alpha5
	wantKind       = api.ClusterConfigKind
)

// checkRaw looks at the document as plain YAML before the typed decode, for
// the mistakes the typed decoder reports badly: not YAML at all, a wrong
// apiVersion or kind (reported as "no kind is registered"), an unparsable
// CIDR (reported without its field path) and an unquoted version number
// (1.30 becomes 1.3).
func checkRaw(name string, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fault.Input(name, "", "start from the cluster-config.yaml shipped with coderctl", "file is empty")
	}
	if n := countDocuments(data); n > 1 {
		return fault.Input(name, "", "keep one ClusterConfig per file; remove the '---' and what follows, or split the file",
			"holds %d YAML documents; coderctl reads exactly one", n)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fault.Input(name, "", "", "not valid YAML: %s", yamlMessage(err))
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return fault.Input(name, "", "expected an eksctl ClusterConfig with apiVersion, kind, metadata, ...",
			"not a YAML mapping (found %s)", describe(doc))
	}
	if err := checkTypeMeta(name, root); err != nil {
		return err
	}
	if err := checkVersionIsText(name, root); err != nil {
		return err
	}
	return checkCIDRStrings(name, "", root)
}

// countDocuments counts the YAML documents in data that hold more than
// comments: sigs.k8s.io/yaml decodes the first and silently drops the rest.
func countDocuments(data []byte) int {
	n := 0
	for _, doc := range splitDocuments(data) {
		for _, l := range strings.Split(doc, "\n") {
			if t := strings.TrimSpace(l); t != "" && t[0] != '#' {
				n++
				break
			}
		}
	}
	return n
}

// splitDocuments splits at document markers ("---" at the start of a line,
// alone or before a comment or content) and end markers ("...").
func splitDocuments(data []byte) []string {
	var docs []string
	var cur strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if isDocumentMarker(l) {
			docs = append(docs, cur.String())
			cur.Reset()
			if rest := strings.TrimSpace(l[3:]); rest != "" && rest[0] != '#' {
				cur.WriteString(rest + "\n")
			}
			continue
		}
		cur.WriteString(l + "\n")
	}
	return append(docs, cur.String())
}

func isDocumentMarker(l string) bool {
	if !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "...") {
		return false
	}
	return len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r'
}

// yamlMessage strips the converter's prefixes from a YAML syntax error.
func yamlMessage(err error) string {
	msg := oneLine(err.Error())
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	return strings.TrimPrefix(msg, "yaml: ")
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case []any:
		return "a list"
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("the text %q", v)
	default:
		return fmt.Sprintf("the value %v", v)
	}
}

func checkTypeMeta(name string, root map[string]any) error {
	for _, f := range []struct{ key, want string }{{"apiVersion", wantAPIVersion}, {"kind", wantKind}} {
		got, present := root[f.key]
		hint := fmt.Sprintf("set %s: %s", f.key, f.want)
		switch {
		case !present || got == nil || got == "":
			return fault.Input(name, f.key, hint, "missing")
		case got != f.want:
			return fault.Input(name, f.key, hint, "%v is not supported (coderctl reads eksctl's %s %s)", got, wantAPIVersion, wantKind)
		}
	}
	return nil
}

func checkVersionIsText(name string, root map[string]any) error {
	meta, _ := root["metadata"].(map[string]any)
	if v, isNumber := meta["version"].(float64); isNumber {
		text := strconv.FormatFloat(v, 'f', -1, 64)
		return fault.Input(name, "metadata.version", fmt.Sprintf("quote it, e.g. version: %q", "1.30"),
			"%s is a YAML number, which drops trailing zeros", text)
	}
	return nil
}

// cidrKeys are the ClusterConfig fields that hold a CIDR or a list of them.
var cidrKeys = []string{"cidr", "extraCIDRs", "publicAccessCIDRs", "extraIPv6CIDRs"}

// checkCIDRStrings walks the document and checks that every CIDR field
// parses, so the message can name the field. Range rules come later, on the
// typed config.
func checkCIDRStrings(name, path string, node any) error {
	switch node := node.(type) {
	case map[string]any:
		keys := make([]string, 0, len(node))
		for k := range node {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			child := joinPath(path, k)
			if slices.Contains(cidrKeys, k) {
				if err := checkCIDRValue(name, child, node[k]); err != nil {
					return err
				}
				continue
			}
			if err := checkCIDRStrings(name, child, node[k]); err != nil {
				return err
			}
		}
	case []any:
		for i, item := range node {
			if err := checkCIDRStrings(name, fmt.Sprintf("%s[%d]", path, i), item); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkCIDRValue(name, path string, v any) error {
	switch v := v.(type) {
	case string:
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fault.Input(name, path, "write an address and a prefix length, e.g. 10.0.0.0/16", "%q is not a CIDR block", v)
		}
		if p != p.Masked() {
			return fault.Input(name, path, fmt.Sprintf("did you mean %s?", p.Masked()), "%q has bits set after the prefix length", v)
		}
	case []any:
		for i, item := range v {
			if err := checkCIDRValue(name, fmt.Sprintf("%s[%d]", path, i), item); err != nil {
				return err
			}
		}
	case nil:
	default:
		return fault.Input(name, path, "write it as text, e.g. 10.0.0.0/16", "%v is not a CIDR block", v)
	}
	return nil
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
