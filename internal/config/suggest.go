package config

import (
	"reflect"
	"regexp"
	"strings"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
)

// suggestField returns eksctl's spelling of the last element of an unknown
// field path ("managedNodeGroups[0].instancetype" -> "instanceType") when
// the schema has a near miss at that place, or "".
func suggestField(path string) string {
	segs := strings.Split(indexRE.ReplaceAllString(path, ""), ".")
	t := reflect.TypeOf(api.ClusterConfig{})
	for _, seg := range segs[:len(segs)-1] {
		if t = childType(t, seg); t == nil {
			return ""
		}
	}
	return closest(segs[len(segs)-1], jsonNames(t))
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// elemType strips pointers and slices down to the element a path walks into.
func elemType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}

// childType is the type found under key in t: a map's values, or the
// struct field whose JSON name is key (looking into inlined structs).
func childType(t reflect.Type, key string) reflect.Type {
	t = elemType(t)
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name := jsonName(f)
			if name == "" && f.Anonymous {
				if found := childType(f.Type, key); found != nil {
					return found
				}
			}
			if name == key {
				return f.Type
			}
		}
	}
	return nil
}

// jsonNames lists the YAML keys a struct type accepts.
func jsonNames(t reflect.Type) []string {
	t = elemType(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		switch {
		case name == "" && f.Anonymous:
			names = append(names, jsonNames(f.Type)...)
		case name != "" && name != "-":
			names = append(names, name)
		}
	}
	return names
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// closest returns the candidate that word most likely misspells: the same
// word in another case, or one within a few edits; "" when none is close.
func closest(word string, candidates []string) string {
	best, bestDist := "", maxEdits(word)+1
	for _, c := range candidates {
		if strings.EqualFold(c, word) {
			return c
		}
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func maxEdits(word string) int {
	if len(word) > 8 {
		return 3
	}
	return 2
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
