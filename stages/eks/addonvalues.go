package eks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
)

// Add-on configurationValues: passed as written (JSON or YAML, as eksctl
// passes them and EKS accepts them), compared by meaning (DescribeAddon
// gives back what was sent, so a re-run must not see drift in key order or
// in YAML written as JSON), and checked before anything changes against
// the schema EKS itself validates them with (DescribeAddonConfiguration),
// so a typo fails in seconds instead of after the 13-minute cluster.

// parseValues reads configuration values as a JSON value (YAML is a
// superset); nil for "".
func parseValues(values string) (any, error) {
	if strings.TrimSpace(values) == "" {
		return nil, nil
	}
	j, err := yaml.YAMLToJSON([]byte(values))
	if err != nil {
		return nil, err
	}
	var v any
	err = json.Unmarshal(j, &v)
	return v, err
}

// valuesDrift says how the add-on's values differ from the file's ("" when
// they do not, or when the file sets none). It names the top-level keys
// only: values are the user's and need not be repeated in plan output.
func valuesDrift(have, want string) string {
	if strings.TrimSpace(want) == "" {
		return ""
	}
	h, herr := parseValues(have)
	w, werr := parseValues(want)
	if werr != nil || (herr == nil && reflect.DeepEqual(h, w)) {
		return ""
	}
	hm, _ := h.(map[string]any)
	wm, _ := w.(map[string]any)
	var changed []string
	for k := range wm {
		if !reflect.DeepEqual(hm[k], wm[k]) {
			changed = append(changed, k)
		}
	}
	for k := range hm {
		if _, ok := wm[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	if len(changed) == 0 {
		return "configuration values differ"
	}
	return "configuration values differ in " + strings.Join(changed, ", ")
}

// valueKeys are the top-level keys of configuration values, sorted.
func valueKeys(values string) []string {
	v, _ := parseValues(values)
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validateAddonValues checks each add-on's configurationValues against
// the schema of the version apply would install. eksctl's own validation
// (in the config loader) has already refused values that are neither JSON
// nor YAML. A schema EKS will not give (permissions, an add-on EKS does not
// know: validateAddons says so) is not bad input: apply reports it.
func (s *stage) validateAddonValues(ctx context.Context) error {
	if s.d.AWS == nil {
		return nil
	}
	for _, a := range s.wantedAddons() {
		if strings.TrimSpace(a.values) == "" {
			continue
		}
		version, err := s.schemaVersion(ctx, a)
		if err != nil || version == "" {
			continue
		}
		out, err := s.d.AWS.EKS.DescribeAddonConfiguration(ctx, &eks.DescribeAddonConfigurationInput{AddonName: aws.String(a.name), AddonVersion: aws.String(version)})
		if err != nil || aws.ToString(out.ConfigurationSchema) == "" {
			continue
		}
		complaint, err := schemaComplaint(aws.ToString(out.ConfigurationSchema), a.values)
		if err != nil {
			continue // a schema we cannot compile is EKS's business
		}
		if complaint != "" {
			return fault.Input(s.d.ConfigPath, a.field+".configurationValues",
				fmt.Sprintf("see what it takes with 'aws eks describe-addon-configuration --addon-name %s --addon-version %s'", a.name, version),
				"add-on %s %s does not accept these values: %s", a.name, version, complaint)
		}
	}
	return nil
}

// schemaVersion is the add-on version apply installs: the file's, the
// newest for "latest", else EKS's default for the cluster's Kubernetes.
func (s *stage) schemaVersion(ctx context.Context, a addonSpec) (string, error) {
	if a.version != "" && a.version != "latest" {
		return a.version, nil
	}
	k8s := s.d.Cluster.Metadata.Version
	pager := eks.NewDescribeAddonVersionsPaginator(s.d.AWS.EKS, &eks.DescribeAddonVersionsInput{AddonName: aws.String(a.name), KubernetesVersion: aws.String(k8s)})
	var newest string
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return "", err
		}
		for _, info := range page.Addons {
			for _, v := range info.AddonVersions {
				if newest == "" {
					newest = aws.ToString(v.AddonVersion)
				}
				isDefault := slices.ContainsFunc(v.Compatibilities, func(c ekstypes.Compatibility) bool { return c.DefaultVersion && aws.ToString(c.ClusterVersion) == k8s })
				if a.version == "" && isDefault {
					return aws.ToString(v.AddonVersion), nil
				}
			}
		}
	}
	return newest, nil
}

// schemaComplaint validates values against a JSON schema: "" when they
// pass, else the schema's innermost complaints ("$.path: what").
func schemaComplaint(schema, values string) (string, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		return "", err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("addon-schema.json", doc); err != nil {
		return "", err
	}
	sch, err := c.Compile("addon-schema.json")
	if err != nil {
		return "", err
	}
	v, err := parseValues(values)
	if err != nil {
		return "not JSON or YAML: " + err.Error(), nil
	}
	// Through JSON again so numbers are what the schema library expects.
	j, _ := json.Marshal(v)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(j)))
	if err != nil {
		return "", err
	}
	var ve *jsonschema.ValidationError
	if err := sch.Validate(inst); errors.As(err, &ve) {
		return strings.Join(leafComplaints(ve), "; "), nil
	} else if err != nil {
		return err.Error(), nil
	}
	return "", nil
}

func leafComplaints(ve *jsonschema.ValidationError) []string {
	if len(ve.Causes) == 0 {
		path := "$"
		for _, p := range ve.InstanceLocation {
			path += "." + p
		}
		msg := ve.Error() // "at '/a/b': what" for a leaf
		if _, what, ok := strings.Cut(msg, "': "); ok && strings.HasPrefix(msg, "at '") {
			msg = what
		}
		return []string{path + ": " + msg}
	}
	var out []string
	for _, c := range ve.Causes {
		out = append(out, leafComplaints(c)...)
	}
	return out
}
