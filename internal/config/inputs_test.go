package config

import (
	"strings"
	"testing"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/fault"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func cluster(name, region string) *api.ClusterConfig {
	return &api.ClusterConfig{Metadata: &api.ClusterMeta{Name: name, Region: region}}
}

func resolve(t *testing.T, file, environ map[string]string) *Inputs {
	t.Helper()
	in, err := ResolveInputs("coder-infra.env", file, env(environ), cluster("coder-prod", "us-west-2"), "cluster-config.yaml")
	if err != nil {
		t.Fatalf("ResolveInputs: %v", err)
	}
	return in
}

func TestInputsPrecedence(t *testing.T) {
	file := map[string]string{"CODER_DOMAIN": "file.example.com", "USERS": "250", "CODER_VERSION": "2.30.0", "VPC_ID": "vpc-0123"}
	environ := map[string]string{"CODER_DOMAIN": "env.example.com", "CODER_VERSION": "", "PATH": "/bin"}
	in := resolve(t, file, environ)
	tests := []struct{ key, value, source string }{
		{"CODER_DOMAIN", "env.example.com", SourceEnvironment}, // environment beats the file
		{"USERS", "250", "coder-infra.env"},                    // file beats the default
		{"CODER_VERSION", "2.30.0", "coder-infra.env"},         // an empty environment value is unset
		{"DB_INSTANCE_CLASS", "db.m7i.large", SourceDefault},   // default
		{"AWS_REGION", "us-west-2", "cluster-config.yaml"},     // filled from the cluster config
		{"CLUSTER_NAME", "coder-prod", "cluster-config.yaml"},
		{"CODER_URL", "https://env.example.com", SourceDefault},    // derived from the domain
		{"CODER_CHART_VERSION", "2.30.0", SourceDefault},           // derived from CODER_VERSION
		{"HOSTED_ZONE_ID", "", SourceDefault},                      // optional, unset
		{"VPC_ID", "", SourceDefault},                              // not an input
		{"CSI_AWS_PROVIDER_CHART_VERSION", "2.2.0", SourceDefault}, // pinned default
		{"CSI_DRIVER_CHART_REPO", "https://kubernetes-sigs.github.io/secrets-store-csi-driver/charts", SourceDefault},
	}
	for _, tc := range tests {
		if got := in.Get(tc.key); got != tc.value {
			t.Errorf("Get(%s) = %q, want %q", tc.key, got, tc.value)
		}
		if got := in.Source(tc.key); got != tc.source {
			t.Errorf("Source(%s) = %q, want %q", tc.key, got, tc.source)
		}
	}
	if in.Users() != 250 || in.Domain() != "env.example.com" || in.Region() != "us-west-2" || in.ClusterName() != "coder-prod" ||
		in.CoderVersion() != "2.30.0" || in.CoderURL() != "https://env.example.com" || in.HostedZoneID() != "" {
		t.Errorf("accessors disagree with Get: users=%d domain=%s region=%s name=%s version=%s url=%s zone=%s",
			in.Users(), in.Domain(), in.Region(), in.ClusterName(), in.CoderVersion(), in.CoderURL(), in.HostedZoneID())
	}
}

func TestInputsNormalize(t *testing.T) {
	in := resolve(t, map[string]string{
		"CODER_DOMAIN":      "Coder.Example.COM.",
		"HOSTED_ZONE_ID":    "/hostedzone/Z0123456789ABC",
		"CODER_VERSION":     "v2.36.1",
		"CODER_URL":         "https://Coder.Example.com/",
		"USERS":             " 042 ",
		"DB_INSTANCE_CLASS": "DB.R7G.XLARGE",
		"CODER_CHART_REPO":  "oci://registry.example.com/charts/",
	}, nil)
	want := map[string]string{
		"CODER_DOMAIN":      "coder.example.com",
		"HOSTED_ZONE_ID":    "Z0123456789ABC",
		"CODER_VERSION":     "2.36.1",
		"CODER_URL":         "https://coder.example.com",
		"USERS":             "42",
		"DB_INSTANCE_CLASS": "db.r7g.xlarge",
		"CODER_CHART_REPO":  "oci://registry.example.com/charts",
	}
	for k, v := range want {
		if got := in.Get(k); got != v {
			t.Errorf("Get(%s) = %q, want %q", k, got, v)
		}
	}
}

func TestInputsClusterMismatch(t *testing.T) {
	tests := []struct {
		name          string
		file, environ map[string]string
		want          string
	}{
		{name: "region in the env file", file: map[string]string{"AWS_REGION": "us-east-1"},
			want: "coder-infra.env: AWS_REGION: us-east-1 does not match metadata.region us-west-2 in cluster-config.yaml (make them agree, or delete AWS_REGION from coder-infra.env to take it from cluster-config.yaml)"},
		{name: "name in the environment", environ: map[string]string{"CLUSTER_NAME": "coder-dev"},
			want: "environment: CLUSTER_NAME: coder-dev does not match metadata.name coder-prod in cluster-config.yaml (make them agree, or unset CLUSTER_NAME in the environment (coder-infra.env and CLUSTER_NAME then follow cluster-config.yaml))"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ResolveInputs("coder-infra.env", tc.file, env(tc.environ), cluster("coder-prod", "us-west-2"), "cluster-config.yaml")
			asInputError(t, err)
			if err.Error() != tc.want {
				t.Errorf("error = %q\n     want %q", err.Error(), tc.want)
			}
		})
	}
	in, err := ResolveInputs("coder-infra.env", map[string]string{"AWS_REGION": "us-west-2"}, nil, cluster("coder-prod", "us-west-2"), "cluster-config.yaml")
	if err != nil || in.Source("AWS_REGION") != "coder-infra.env" {
		t.Errorf("agreeing region: err=%v source=%q, want no error and the env file as source", err, in.Source("AWS_REGION"))
	}
}

func TestInputsWithoutCluster(t *testing.T) {
	in, err := ResolveInputs("", map[string]string{"AWS_REGION": "eu-west-1"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if in.Region() != "eu-west-1" || in.ClusterName() != "" || in.Source("CLUSTER_NAME") != SourceDefault {
		t.Errorf("region=%q name=%q source=%q", in.Region(), in.ClusterName(), in.Source("CLUSTER_NAME"))
	}
}

func TestInputsRejectBadValues(t *testing.T) {
	tests := []struct {
		key, value string
		want       string // substring of the error
	}{
		{"CODER_DOMAIN", "https://coder.example.com", `"https://coder.example.com" is a URL (give the bare domain, e.g. CODER_DOMAIN=coder.example.com)`},
		{"CODER_DOMAIN", "http://coder.example.com:8080/x", "CODER_DOMAIN=coder.example.com)"},
		{"CODER_DOMAIN", "*.example.com", `is a wildcard (give the base domain, e.g. CODER_DOMAIN=example.com; coderctl adds the wildcard)`},
		{"CODER_DOMAIN", "coder", "is a single label"},
		{"CODER_DOMAIN", "coder example.com", "contains spaces"},
		{"CODER_DOMAIN", "coder.example.com:443", "has a port"},
		{"CODER_DOMAIN", "coder.example.com/app", "has a path"},
		{"CODER_DOMAIN", "-coder.example.com", `has an invalid label "-coder"`},
		{"CODER_DOMAIN", "coder..example.com", `has an invalid label ""`},
		{"CODER_DOMAIN", "coder_x.example.com", "invalid label"},
		{"CODER_DOMAIN", "10.0.0.1", "is not a DNS name"},
		{"CODER_DOMAIN", strings.Repeat("a", 60) + ".example.com", "ACM certificates take at most 64 characters"},
		{"USERS", "0", "0 is not a positive number of users"},
		{"USERS", "-3", "-3 is not a positive number of users"},
		{"USERS", "abc", `"abc" is not a whole number`},
		{"USERS", "1.5", "is not a whole number"},
		{"USERS", "1000000", "more than 100000"},
		{"AWS_REGION", "Oregon", "does not look like an AWS region"},
		{"CLUSTER_NAME", "coder prod", "not a valid EKS cluster name"},
		{"HOSTED_ZONE_ID", "example.com", "not a Route53 hosted zone ID"},
		{"CODER_VERSION", "latest", `"latest" is not a version like 2.36.1`},
		{"CODER_VERSION", "2.24", "not a version"},
		{"CODER_CHART_VERSION", "^2.24", "not a version"},
		{"CODER_URL", "http://coder.example.com", "not an https URL"},
		{"CODER_URL", "coder.example.com", "not a URL"},
		{"CODER_URL", "https://coder.example.com/coder", "more than a scheme and a host"},
		{"DB_INSTANCE_CLASS", "m7i.large", "not an RDS instance class like db.<family>.<size>"},
		{"DB_ENGINE_VERSION", "postgres17", "not a PostgreSQL version"},
		{"DB_ALLOCATED_STORAGE", "10", "between 20 and 65536"},
		{"DB_ALLOCATED_STORAGE", "lots", "not a size in GiB"},
		{"CSI_DRIVER_CHART_REPO", "ftp://charts.example.com", "not a chart repository URL"},
		{"CODER_CHART_REPO", "helm.coder.com/v2", "not a chart repository URL"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			_, err := ResolveInputs("my.env", map[string]string{tc.key: tc.value}, nil, nil, "")
			ie := asInputError(t, err)
			if ie.Source != "my.env" || ie.Field != tc.key {
				t.Errorf("source/field = %q/%q, want my.env/%s", ie.Source, ie.Field, tc.key)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %q, want one line containing %q", err.Error(), tc.want)
			}
		})
	}
}

func TestInputsBadValueFromEnvironmentNamesIt(t *testing.T) {
	_, err := ResolveInputs("coder-infra.env", nil, env(map[string]string{"USERS": "many"}), nil, "")
	if ie := asInputError(t, err); ie.Source != SourceEnvironment {
		t.Errorf("source = %q, want %q", ie.Source, SourceEnvironment)
	}
}

func TestInputsRequire(t *testing.T) {
	in := resolve(t, nil, nil)
	err := in.Require("AWS_REGION", "CODER_DOMAIN", "USERS", "HOSTED_ZONE_ID")
	ie := asInputError(t, err)
	if ie.Source != "coder-infra.env" || ie.Field != "CODER_DOMAIN, HOSTED_ZONE_ID" {
		t.Errorf("source/field = %q/%q", ie.Source, ie.Field)
	}
	want := "coder-infra.env: CODER_DOMAIN, HOSTED_ZONE_ID: not set (add CODER_DOMAIN=<value> to coder-infra.env or set it in the environment)"
	if err.Error() != want {
		t.Errorf("error = %q\n     want %q", err.Error(), want)
	}
	if fault.ExitCode(err) != fault.ExitInput {
		t.Errorf("exit code = %d", fault.ExitCode(err))
	}
	in = resolve(t, map[string]string{"CODER_DOMAIN": "coder.example.com"}, nil)
	if err := in.Require("CODER_DOMAIN", "AWS_REGION", "CODER_URL"); err != nil {
		t.Errorf("Require with everything set: %v", err)
	}
}

func TestInputKeysTable(t *testing.T) {
	keys := InputKeys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Key] {
			t.Errorf("%s is listed twice", k.Key)
		}
		seen[k.Key] = true
		if k.Doc == "" || strings.Contains(k.Doc, "\n") {
			t.Errorf("%s: doc must be one non-empty line", k.Key)
		}
		if k.Required && k.Default != "" {
			t.Errorf("%s is required but has default %q", k.Key, k.Default)
		}
	}
	// Every default must pass its own validation.
	file := map[string]string{}
	for _, k := range keys {
		if k.Default != "" {
			file[k.Key] = k.Default
		}
	}
	if _, err := ResolveInputs("defaults.env", file, nil, nil, ""); err != nil {
		t.Errorf("a default fails validation: %v", err)
	}
	for _, k := range []string{"AWS_REGION", "CLUSTER_NAME", "CODER_DOMAIN", "HOSTED_ZONE_ID", "CODER_VERSION", "USERS", "CODER_URL",
		"DB_INSTANCE_CLASS", "DB_ENGINE_VERSION", "DB_ALLOCATED_STORAGE", "CODER_CHART_REPO", "CODER_CHART_VERSION",
		"CSI_DRIVER_CHART_REPO", "CSI_DRIVER_CHART_VERSION", "CSI_AWS_PROVIDER_CHART_REPO", "CSI_AWS_PROVIDER_CHART_VERSION"} {
		if !seen[k] {
			t.Errorf("input %s is missing from InputKeys", k)
		}
	}
}

func TestCheckInput(t *testing.T) {
	tests := []struct{ key, value, want, errPart string }{
		{key: "CODER_DOMAIN", value: "Coder.Example.com", want: "coder.example.com"},
		{key: "USERS", value: "0", errPart: "flag --set: USERS: 0 is not a positive number"},
		{key: "USERS", value: "", want: ""},
		{key: "VPC_ID", value: "vpc-123", want: "vpc-123"},
	}
	for _, tc := range tests {
		got, err := CheckInput("flag --set", tc.key, tc.value)
		if tc.errPart != "" {
			if err == nil || !fault.IsInput(err) || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("CheckInput(%s=%q) error = %v, want one containing %q", tc.key, tc.value, err, tc.errPart)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CheckInput(%s=%q) = %q, %v; want %q", tc.key, tc.value, got, err, tc.want)
		}
	}
}
