package ekstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/config"
)

// DescribeAddonConfiguration and the configurationValues of CreateAddon and
// UpdateAddon, as EKS serves them: each add-on version has a JSON schema,
// configuration values (JSON or YAML) are checked against it, and the
// add-on keeps them as given. The schemas are faithful subsets of EKS's own
// (draft-06, a $ref to the add-on's definition, additionalProperties false
// at every level, so an unknown key is refused as EKS refuses it).

// addonSchemas are the subsets, by add-on name; every version the catalog
// offers answers with its add-on's schema.
var addonSchemas = map[string]string{
	"coredns": `{
  "$ref": "#/definitions/Coredns",
  "$schema": "http://json-schema.org/draft-06/schema#",
  "definitions": {
    "Coredns": {
      "additionalProperties": false,
      "properties": {
        "affinity": {"default": {}, "type": ["object", "null"]},
        "autoScaling": {
          "additionalProperties": false,
          "properties": {
            "enabled": {"default": false, "type": "boolean"},
            "maxReplicas": {"default": 10, "type": "integer"},
            "minReplicas": {"default": 2, "type": "integer"}
          },
          "type": "object"
        },
        "computeType": {"type": "string"},
        "corefile": {"description": "Entire corefile contents to use with installation", "type": "string"},
        "nodeSelector": {"additionalProperties": {"type": "string"}, "type": "object"},
        "podAnnotations": {"type": "object"},
        "podDisruptionBudget": {
          "additionalProperties": false,
          "properties": {
            "enabled": {"default": true, "type": "boolean"},
            "maxUnavailable": {"anyOf": [{"pattern": ".*%$", "type": "string"}, {"type": "integer"}], "default": 1},
            "minAvailable": {"anyOf": [{"pattern": ".*%$", "type": "string"}, {"type": "integer"}]}
          },
          "type": "object"
        },
        "podLabels": {"type": "object"},
        "replicaCount": {"type": "integer"},
        "resources": {"$ref": "#/definitions/Resources"},
        "tolerations": {"items": {"type": "object"}, "type": "array"},
        "topologySpreadConstraints": {"items": {"type": "object"}, "type": "array"}
      },
      "title": "Coredns",
      "type": "object"
    },
    "Limits": {
      "additionalProperties": false,
      "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}},
      "title": "Limits",
      "type": "object"
    },
    "Resources": {
      "additionalProperties": false,
      "properties": {"limits": {"$ref": "#/definitions/Limits"}, "requests": {"$ref": "#/definitions/Limits"}},
      "title": "Resources",
      "type": "object"
    }
  }
}`,
	"vpc-cni": `{
  "$ref": "#/definitions/VpcCni",
  "$schema": "http://json-schema.org/draft-06/schema#",
  "definitions": {
    "Env": {
      "additionalProperties": false,
      "properties": {
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": {"format": "boolean", "type": "string"},
        "ENABLE_POD_ENI": {"format": "boolean", "type": "string"},
        "ENABLE_PREFIX_DELEGATION": {"format": "boolean", "type": "string"},
        "MINIMUM_IP_TARGET": {"format": "integer", "type": "string"},
        "WARM_ENI_TARGET": {"format": "integer", "type": "string"},
        "WARM_IP_TARGET": {"format": "integer", "type": "string"},
        "WARM_PREFIX_TARGET": {"format": "integer", "type": "string"}
      },
      "title": "Env",
      "type": "object"
    },
    "Limits": {
      "additionalProperties": false,
      "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}},
      "title": "Limits",
      "type": "object"
    },
    "Resources": {
      "additionalProperties": false,
      "properties": {"limits": {"$ref": "#/definitions/Limits"}, "requests": {"$ref": "#/definitions/Limits"}},
      "title": "Resources",
      "type": "object"
    },
    "VpcCni": {
      "additionalProperties": false,
      "properties": {
        "enableNetworkPolicy": {"format": "boolean", "type": "string"},
        "enableWindowsIpam": {"format": "boolean", "type": "string"},
        "env": {"$ref": "#/definitions/Env"},
        "resources": {"$ref": "#/definitions/Resources"},
        "tolerations": {"items": {"type": "object"}, "type": "array"}
      },
      "title": "VpcCni",
      "type": "object"
    }
  }
}`,
	"kube-proxy": `{
  "$ref": "#/definitions/KubeProxy",
  "$schema": "http://json-schema.org/draft-06/schema#",
  "definitions": {
    "Ipvs": {
      "additionalProperties": false,
      "properties": {"scheduler": {"type": "string"}},
      "title": "Ipvs",
      "type": "object"
    },
    "KubeProxy": {
      "additionalProperties": false,
      "properties": {
        "ipvs": {"$ref": "#/definitions/Ipvs"},
        "mode": {"enum": ["iptables", "ipvs"], "type": "string"},
        "podAnnotations": {"type": "object"},
        "podLabels": {"type": "object"},
        "resources": {"$ref": "#/definitions/Resources"}
      },
      "title": "KubeProxy",
      "type": "object"
    },
    "Limits": {
      "additionalProperties": false,
      "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}},
      "title": "Limits",
      "type": "object"
    },
    "Resources": {
      "additionalProperties": false,
      "properties": {"limits": {"$ref": "#/definitions/Limits"}, "requests": {"$ref": "#/definitions/Limits"}},
      "title": "Resources",
      "type": "object"
    }
  }
}`,
	"aws-ebs-csi-driver": `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "additionalProperties": false,
  "properties": {
    "controller": {
      "additionalProperties": false,
      "properties": {
        "extraVolumeTags": {"additionalProperties": {"type": "string"}, "type": "object"},
        "loggingFormat": {"enum": ["text", "json"], "type": "string"},
        "nodeSelector": {"additionalProperties": {"type": "string"}, "type": "object"},
        "replicaCount": {"minimum": 1, "type": "integer"},
        "resources": {"type": "object"},
        "tolerations": {"items": {"type": "object"}, "type": "array"},
        "volumeModificationFeature": {
          "additionalProperties": false,
          "properties": {"enabled": {"type": "boolean"}},
          "type": "object"
        }
      },
      "type": "object"
    },
    "defaultStorageClass": {
      "additionalProperties": false,
      "properties": {"enabled": {"default": false, "type": "boolean"}},
      "type": "object"
    },
    "node": {
      "additionalProperties": false,
      "properties": {
        "loggingFormat": {"enum": ["text", "json"], "type": "string"},
        "nodeSelector": {"additionalProperties": {"type": "string"}, "type": "object"},
        "tolerateAllTaints": {"default": true, "type": "boolean"},
        "tolerations": {"items": {"type": "object"}, "type": "array"},
        "volumeAttachLimit": {"minimum": 1, "type": "integer"}
      },
      "type": "object"
    }
  },
  "type": "object"
}`,
}

// addonKnows reports whether the catalog offers the add-on at version for
// some Kubernetes version.
func addonKnows(name, version string) bool {
	for _, k8s := range config.SupportedEKSVersions() {
		if slices.Contains(catalog(name, k8s), version) {
			return true
		}
	}
	return false
}

// describeConfiguration serves DescribeAddonConfiguration.
func (s *Server) describeConfiguration(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, version := q.Get("addonName"), q.Get("addonVersion")
	if name == "" || version == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "addonName and addonVersion are required")
		return
	}
	schema, ok := addonSchemas[name]
	if !ok || !addonKnows(name, version) {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("Addon %s with version %s not found", name, version))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"addonName": name, "addonVersion": version, "configurationSchema": schema, "podIdentityConfiguration": []any{},
	})
}

// checkValues is EKS's check of configuration values: JSON or YAML, valid
// against the add-on's schema; "" when they pass. The wording is EKS's
// ("Json schema validation failed with error: [$.path: ...]"); the
// complaints after it are the schema library's.
func checkValues(name, values string) string {
	const prefix = "ConfigurationValue provided in request is not supported: "
	var doc any
	if err := yaml.Unmarshal([]byte(values), &doc); err != nil {
		return prefix + "Json or Yaml parsing failed: " + err.Error()
	}
	schema, ok := addonSchemas[name]
	if !ok {
		return ""
	}
	c := jsonschema.NewCompiler()
	parsed, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err == nil {
		err = c.AddResource("schema.json", parsed)
	}
	var sch *jsonschema.Schema
	if err == nil {
		sch, err = c.Compile("schema.json")
	}
	if err != nil {
		return prefix + "schema: " + err.Error()
	}
	// Validate the document as JSON decodes it (numbers as json.Number).
	j, _ := json.Marshal(doc)
	inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(string(j)))
	if err := sch.Validate(inst); err != nil {
		var msgs []string
		if ve, ok := err.(*jsonschema.ValidationError); ok {
			msgs = leafErrors(ve)
		} else {
			msgs = []string{err.Error()}
		}
		return prefix + "Json schema validation failed with error: [" + strings.Join(msgs, ", ") + "]"
	}
	return ""
}

// leafErrors are the innermost complaints, each "$.path: what".
func leafErrors(ve *jsonschema.ValidationError) []string {
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
		out = append(out, leafErrors(c)...)
	}
	return out
}
