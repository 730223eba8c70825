package secrets

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("secrets: policy does not encode: %v", err)) // built from maps of strings
	}
	return string(b)
}

// samePolicy compares a policy document as IAM returns it (URL-encoded
// JSON) with the wanted one, as parsed JSON: formatting, key order, a
// one-element list versus its element, and the order of string lists do
// not count.
func samePolicy(doc string, want map[string]any) bool {
	have, ok := parsePolicy(doc)
	if !ok {
		return false
	}
	return reflect.DeepEqual(canonical(have), canonical(roundTrip(want)))
}

// parsePolicy decodes a policy document, URL-decoding it first when it is
// not plain JSON (IAM returns documents URL-encoded).
func parsePolicy(doc string) (any, bool) {
	text := strings.TrimSpace(doc)
	if !strings.HasPrefix(text, "{") {
		decoded, err := url.QueryUnescape(text)
		if err != nil {
			return nil, false
		}
		text = decoded
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, false
	}
	return v, true
}

func roundTrip(v any) any {
	var out any
	_ = json.Unmarshal([]byte(mustJSON(v)), &out)
	return out
}

// canonical rewrites a parsed policy so that equivalent spellings compare
// equal: lists of one element become the element, lists of strings are
// sorted.
func canonical(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = canonical(e)
		}
		return out
	case []any:
		if len(t) == 1 {
			return canonical(t[0])
		}
		out := make([]any, len(t))
		strs := make([]string, 0, len(t))
		for i, e := range t {
			out[i] = canonical(e)
			if s, ok := out[i].(string); ok {
				strs = append(strs, s)
			}
		}
		if len(strs) == len(out) {
			slices.Sort(strs)
			for i, s := range strs {
				out[i] = s
			}
		}
		return out
	}
	return v
}
