package helmx

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
)

// guaranteed is what the fixture's merged values must hold whatever the
// user's file says, written out by hand rather than derived from the code
// under test.
var guaranteed = struct {
	env    map[string]any // name -> coderctl's entry
	values map[string][]any
}{
	env: map[string]any{
		"CODER_ACCESS_URL":          env("CODER_ACCESS_URL", fixtureURL),
		"CODER_PROVISIONER_DAEMONS": env("CODER_PROVISIONER_DAEMONS", "0"),
		"CODER_PG_CONNECTION_URL": map[string]any{"name": "CODER_PG_CONNECTION_URL", "valueFrom": map[string]any{
			"secretKeyRef": map[string]any{"name": "coder-secrets", "key": "database-url"}}},
	},
	// dotted path (for the fixture's plain keys) -> acceptable values;
	// absent means the key must stay unset.
	values: map[string][]any{
		"coder.service.enable":      {true},
		"coder.service.type":        {"ClusterIP"},
		"coder.serviceAccount.name": {"coder"},
		"coder.tls.secretNames":     {absent{}, []any{}},
	},
}

type absent struct{}

// FuzzMergeValues: whatever the user's values file holds, the merge is bad
// input naming the file and the key, or values that still carry every
// guarantee, with the user's extra variables kept. It never panics.
//
//	go test -run '^$' -fuzz '^FuzzMergeValues$' -fuzztime 10s ./internal/helmx/
func FuzzMergeValues(f *testing.F) {
	deep := strings.Repeat("{a: ", 100) + "1" + strings.Repeat("}", 100)
	for _, seed := range []string{
		"coder:\n  service:\n    type: LoadBalancer\n",
		"coder:\n  env:\n    - {name: CODER_ACCESS_URL, value: \"http://x\"}\n    - {name: EXTRA, value: y}\n",
		"coder:\n  env: [{name: A, value: b}, {name: A, value: c}]\n",
		"coder:\n  volumes: [{name: coder-secrets, emptyDir: {}}, {name: cache, emptyDir: {}}]\n",
		"coder:\n  tolerations: [{key: dedicated, operator: Exists}]\n",
		"coder: null\n",
		"coder:\n  env: null\n",
		"coder:\n  service: null\n",
		"coder: {serviceAccount: {annotations: {eks.amazonaws.com/role-arn: other}}}\n",
		"coder: {tls: {secretNames: [x]}}\n",
		"- not\n- a mapping\n",
		"42\n",
		"",
		"null\n",
		"x: &s {type: LoadBalancer}\ncoder: {service: *s}\n",
		"coder: {nodeSelector: {coder/node-type: other, disk: ssd}}\n",
		"coder: " + deep + "\n",
		"coder: {env: [" + deep + "]}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		values, notes, err := mergeOverride(fixtureBase, fixtureComputed(), "values.yaml", data, fixtureOwned())
		if err != nil {
			assertNamedInput(t, err)
			return
		}
		if err := holdsGuarantees(values); err != nil {
			t.Fatalf("merged values break a guarantee: %v\nfile: %q", err, data)
		}
		if err := keepsUserEnv(values, data); err != nil {
			t.Fatalf("%v\nfile: %q", err, data)
		}
		if err := jsonTypesOnly(values); err != nil {
			t.Fatalf("%v\nfile: %q", err, data)
		}
		for _, n := range notes {
			if !strings.HasPrefix(n, fixtureKey+" sets coder.") {
				t.Errorf("note %q does not name the key and path", n)
			}
		}
	})
}

func assertNamedInput(t *testing.T, err error) {
	t.Helper()
	var ie *fault.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v (%T), want bad input", err, err)
	}
	if ie.Source != "values.yaml" || !strings.HasPrefix(ie.Field, fixtureKey) {
		t.Fatalf("bad input %#v does not name the file and %s", ie, fixtureKey)
	}
}

// holdsGuarantees checks coderctl's env entries and owned values.
func holdsGuarantees(values map[string]any) error {
	list, ok := dig(values, "coder.env").([]any)
	if !ok {
		return fmt.Errorf("coder.env is %T", dig(values, "coder.env"))
	}
	count := map[string]int{}
	for _, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		count[name]++
		if want, ours := guaranteed.env[name]; ours && !reflect.DeepEqual(e, want) {
			return fmt.Errorf("coder.env %s = %v, want %v", name, e, want)
		}
	}
	for name := range guaranteed.env {
		if count[name] != 1 {
			return fmt.Errorf("coder.env holds %s %d times", name, count[name])
		}
	}
	for path, allowed := range guaranteed.values {
		v := dig(values, path)
		if !containsDeep(allowed, v) {
			return fmt.Errorf("%s = %#v, want one of %v", path, v, allowed)
		}
	}
	return nil
}

// keepsUserEnv checks that every variable the file adds is in the result.
func keepsUserEnv(values map[string]any, data []byte) error {
	var file map[string]any
	if yaml.Unmarshal(data, &file) != nil {
		return nil
	}
	theirs, _ := dig(file, "coder.env").([]any)
	merged, _ := dig(values, "coder.env").([]any)
	for _, e := range theirs {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		if !containsDeep(merged, e) && guaranteed.env[name] == nil {
			return fmt.Errorf("the file's variable %v is missing from the merged coder.env", e)
		}
	}
	return nil
}

// dig follows a dotted path; absent{} when it is not there.
func dig(values map[string]any, path string) any {
	var node any = values
	for _, k := range strings.Split(path, ".") {
		m, ok := node.(map[string]any)
		if !ok {
			return absent{}
		}
		if node, ok = m[k]; !ok {
			return absent{}
		}
	}
	return node
}

func containsDeep(list []any, v any) bool {
	for _, x := range list {
		if reflect.DeepEqual(x, v) {
			return true
		}
	}
	return false
}

// jsonTypesOnly checks that values hold only the types helm stores.
func jsonTypesOnly(v any) error {
	switch x := v.(type) {
	case nil, string, float64, bool:
		return nil
	case map[string]any:
		for _, e := range x {
			if err := jsonTypesOnly(e); err != nil {
				return err
			}
		}
		return nil
	case []any:
		for _, e := range x {
			if err := jsonTypesOnly(e); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("value of type %T in the merged values", v)
}
