// Package config loads coderctl's inputs: the eksctl ClusterConfig
// (cluster-config.yaml, decoded with eksctl's own v1alpha5 types so that the
// same file still works with `eksctl create cluster -f`) and the user-set keys
// of coder-infra.env. Every problem is a *fault.InputError naming the file and
// the field or key, with a hint that says what to write instead.
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
)

// LoadCluster reads, strict-decodes, defaults and validates an eksctl
// ClusterConfig. Errors name the file as the user gave it. Only a regular
// file of bounded size is read: a FIFO or /dev/zero given by mistake is
// refused instead of hanging or exhausting memory.
func LoadCluster(path string) (*api.ClusterConfig, error) {
	data, err := fsx.ReadRegular(path, fsx.MaxInputFile)
	if err != nil {
		msg, hint := fsx.Describe(err)
		if errors.Is(err, os.ErrNotExist) {
			hint = "pass --config PATH or create it from the cluster-config.yaml shipped with coderctl"
		}
		return nil, fault.Input(path, "", hint, "%s", msg)
	}
	return ParseCluster(path, data)
}

// ParseCluster does what LoadCluster does for a file already read; name is
// used in error messages. A field the file sets that coderctl does not act
// on (see ActedOn) is refused. The returned config has eksctl's defaults applied
// (scaling, volumes, endpoint access, NAT), so callers read values, not nils.
func ParseCluster(name string, data []byte) (*api.ClusterConfig, error) {
	if err := checkRaw(name, data); err != nil {
		return nil, err
	}
	cfg, err := decodeStrict(name, data)
	if err != nil {
		return nil, err
	}
	// After the strict decode, so that a misspelt key is named as unknown
	// (with a suggestion) rather than passed over.
	if err := checkFields(name, data); err != nil {
		return nil, err
	}
	if err := checkCluster(name, cfg); err != nil {
		return nil, err
	}
	if err := applyDefaults(name, cfg); err != nil {
		return nil, err
	}
	if err := validateWithEksctl(name, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeStrict decodes with a scheme of our own holding only eksctl's
// v1alpha5 types. A private scheme makes api.Register() (which mutates
// client-go's global scheme) unnecessary, and the strict universal
// deserializer is case-sensitive and reports every unknown or duplicated
// field with its path: sigs.k8s.io/yaml.UnmarshalStrict, which eksctl uses,
// matches field names case-insensitively and so lets "instancetype" through.
func decodeStrict(name string, data []byte) (*api.ClusterConfig, error) {
	scheme := runtime.NewScheme()
	if err := api.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering eksctl types: %w", err)
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	obj, _, err := decoder.Decode(data, nil, nil)
	if err != nil {
		if aerr := arnDecodeError(name, data, err); aerr != nil {
			return nil, aerr
		}
		return nil, decodeError(name, err)
	}
	cfg, ok := obj.(*api.ClusterConfig)
	if !ok {
		return nil, fault.Input(name, "kind", "", "decoded a %T, want an eksctl ClusterConfig", obj)
	}
	return cfg, nil
}

// decodeError turns the deserializer's errors into one-line input errors.
func decodeError(name string, err error) error {
	if strict, ok := runtime.AsStrictDecodingError(err); ok {
		return strictError(name, strict.Errors())
	}
	if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
		return fault.Input(name, jsonPath(m[2]), typeHint(m[1], m[3]), "expected %s, found %s", goTypeWords(m[3]), jsonKindWords[m[1]])
	}
	return fault.Input(name, "", "", "cannot decode: %s", oneLine(err.Error()))
}

// typeErrorRE matches encoding/json's UnmarshalTypeError text, which the
// Kubernetes JSON fork does not export as a type.
var typeErrorRE = regexp.MustCompile(`cannot unmarshal (\w+) into Go struct field \w+\.(\S+) of type (\S+)`)

// jsonPath drops the Go names of embedded structs (NodeGroupBase,
// ScalingConfig) from a decoder field path, leaving the YAML keys.
func jsonPath(goPath string) string {
	var keep []string
	for _, part := range strings.Split(goPath, ".") {
		if part != "" && !isUpper(part[0]) {
			keep = append(keep, part)
		}
	}
	return strings.Join(keep, ".")
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// jsonKindWords names the JSON kinds a type error reports in YAML terms.
var jsonKindWords = map[string]string{
	"string": "text", "number": "a number", "bool": "true/false", "object": "a mapping", "array": "a list",
}

// goTypeWords names the Go type a field wants in YAML terms.
func goTypeWords(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	default:
		return "a mapping"
	}
}

func typeHint(found, want string) string {
	if found == "number" && want == "string" {
		return `quote the value so YAML keeps it as text, e.g. "1.30"`
	}
	if found == "object" && strings.HasPrefix(want, "[]") {
		return "write a list (items starting with '- ')"
	}
	return ""
}

// strictError reports the first unknown field, with a spelling suggestion
// from eksctl's schema, and counts the rest, keeping the message one line.
func strictError(name string, errs []error) error {
	var unknown []string
	for _, e := range errs {
		if m := unknownFieldRE.FindStringSubmatch(e.Error()); m != nil {
			unknown = append(unknown, m[1])
		}
	}
	if len(unknown) == 0 {
		msgs := make([]string, 0, len(errs))
		for _, e := range errs {
			msgs = append(msgs, strings.TrimPrefix(oneLine(e.Error()), "yaml: unmarshal errors: "))
		}
		return fault.Input(name, "", "each key may appear once per mapping", "%s", strings.Join(msgs, "; "))
	}
	field := unknown[0]
	msg := "unknown field"
	if len(unknown) > 1 {
		msg = fmt.Sprintf("unknown field (and %d more: %s)", len(unknown)-1, strings.Join(unknown[1:], ", "))
	}
	hint := "field names are case-sensitive; see eksctl's ClusterConfig schema"
	if s := suggestField(field); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	return fault.Input(name, field, hint, "%s", msg)
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)

// oneLine folds a multi-line library message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
