package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/fault"
)

const shippedClusterConfig = "../../cluster-config.yaml"

func readShipped(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(shippedClusterConfig)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// edit applies old->new replacements to doc, failing when an old string is
// absent so that a change to the shipped file cannot silently void a test.
func edit(t *testing.T, doc string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			t.Fatalf("test edit: %q not found in the document", pairs[i])
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

func TestShippedClusterConfig(t *testing.T) {
	cfg, err := LoadCluster(shippedClusterConfig)
	if err != nil {
		t.Fatalf("LoadCluster: %v", err)
	}
	md := cfg.Metadata
	if md.Name != "coder-prod" || md.Region != "us-west-2" || md.Version != "1.34" {
		t.Errorf("metadata = %s/%s/%s, want coder-prod/us-west-2/1.34", md.Name, md.Region, md.Version)
	}
	if want := []string{"us-west-2a", "us-west-2b", "us-west-2c"}; !reflect.DeepEqual(cfg.AvailabilityZones, want) {
		t.Errorf("availabilityZones = %v, want %v", cfg.AvailabilityZones, want)
	}
	if got := cfg.VPC.CIDR.String(); got != "10.0.0.0/16" {
		t.Errorf("vpc.cidr = %s", got)
	}
	if got := *cfg.VPC.NAT.Gateway; got != "Single" {
		t.Errorf("vpc.nat.gateway = %s", got)
	}
	if ep := cfg.VPC.ClusterEndpoints; !*ep.PublicAccess || !*ep.PrivateAccess {
		t.Errorf("clusterEndpoints public=%v private=%v, want both", *ep.PublicAccess, *ep.PrivateAccess)
	}
	if !api.IsEnabled(cfg.IAM.WithOIDC) {
		t.Error("iam.withOIDC is not enabled")
	}
	if got, want := cfg.CloudWatch.ClusterLogging.EnableTypes, []string{"api", "audit", "authenticator"}; !reflect.DeepEqual(got, want) {
		t.Errorf("logging = %v, want %v", got, want)
	}
	var addons []string
	for _, a := range cfg.Addons {
		addons = append(addons, a.Name)
	}
	if want := []string{"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}; !reflect.DeepEqual(addons, want) {
		t.Errorf("addons = %v, want %v", addons, want)
	}
}

func TestShippedNodeGroups(t *testing.T) {
	cfg, err := LoadCluster(shippedClusterConfig)
	if err != nil {
		t.Fatalf("LoadCluster: %v", err)
	}
	tainted := func(v string) []Taint { return []Taint{{Key: "coder/node-type", Value: v, Effect: "NoSchedule"}} }
	label := func(v string) map[string]string { return map[string]string{"coder/node-type": v} }
	want := []NodeGroupSpec{
		{Name: "system", InstanceType: "t3.medium", Min: 3, Max: 3, Desired: 3, VolumeSize: 50, Labels: label("system"), PrivateNetworking: true},
		{Name: "coder-coderd", InstanceType: "m7i.xlarge", Min: 2, Max: 2, Desired: 2, VolumeSize: 50, Labels: label("coderd"), Taints: tainted("coderd"), PrivateNetworking: true},
		{Name: "coder-provisioner", InstanceType: "c7i.2xlarge", Min: 1, Max: 6, Desired: 2, VolumeSize: 50, Labels: label("provisioner"), Taints: tainted("provisioner"), PrivateNetworking: true},
		{Name: "coder-workspace", InstanceType: "m7i.12xlarge", Min: 2, Max: 20, Desired: 2, VolumeSize: 100, Labels: label("workspace"), Taints: tainted("workspace"), PrivateNetworking: true},
	}
	got := NodeGroups(cfg)
	if len(got) != len(want) {
		t.Fatalf("got %d node groups, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("node group %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestParseClusterDefaults(t *testing.T) {
	doc := `apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata:
  name: minimal
  region: eu-central-1
managedNodeGroups:
  - name: only
    instanceType: m7i.large
`
	cfg, err := ParseCluster("minimal.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("ParseCluster: %v", err)
	}
	if cfg.Metadata.Version != api.DefaultVersion {
		t.Errorf("version = %q, want eksctl's default %q", cfg.Metadata.Version, api.DefaultVersion)
	}
	if got := cfg.VPC.CIDR.String(); got != "192.168.0.0/16" {
		t.Errorf("default vpc.cidr = %s", got)
	}
	if got := *cfg.VPC.NAT.Gateway; got != api.ClusterSingleNAT {
		t.Errorf("default NAT = %s", got)
	}
	ng := NodeGroups(cfg)
	want := NodeGroupSpec{Name: "only", InstanceType: "m7i.large", Min: 2, Max: 2, Desired: 2, VolumeSize: 80, Labels: map[string]string{}}
	if len(ng) != 1 || !reflect.DeepEqual(ng[0], want) {
		t.Errorf("NodeGroups = %+v, want [%+v] (eksctl's sizes, no eksctl labels)", ng, want)
	}
}

func TestParseClusterRejects(t *testing.T) {
	shipped := readShipped(t)
	const head = "apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\n"
	tests := []struct {
		name      string
		doc       string
		field     string
		msg       string // substring of Error()
		wantExact string // whole Error(), when set
	}{
		{name: "unknown field", doc: edit(t, shipped, "instanceType: m7i.xlarge", "instancetype: m7i.xlarge"),
			field: "managedNodeGroups[1].instancetype", msg: `unknown field (did you mean "instanceType"?)`},
		{name: "several unknown fields", doc: edit(t, shipped, "  region: us-west-2", "  region: us-west-2\n  zone: a\n  size: 3"),
			field: "metadata.size", msg: "and 1 more: metadata.zone"},
		{name: "duplicate key", doc: edit(t, shipped, "  region: us-west-2", "  region: us-west-2\n  region: us-east-1"),
			msg: fmt.Sprintf(`line %d: key "region" already set in map (each key`, lineOf(t, shipped, "  region: us-west-2")+1)},
		{name: "taint effect typo", doc: edit(t, shipped, "value: provisioner\n        effect: NoSchedule", "value: provisioner\n        effect: NoSchedul"),
			field: "managedNodeGroups[2].taints[0].effect", msg: `"NoSchedul" is not a taint effect (did you mean NoSchedule?`},
		{name: "taint effect in EKS spelling", doc: edit(t, shipped, "effect: NoSchedule", "effect: NO_SCHEDULE"),
			field: "managedNodeGroups[1].taints[0].effect", msg: "use the Kubernetes spelling NoSchedule"},
		{name: "taint without key", doc: edit(t, shipped, "- key: coder/node-type\n        value: coderd", "- value: coderd"),
			field: "managedNodeGroups[1].taints[0].key", msg: "missing"},
		{name: "maxSize below desired", doc: edit(t, shipped, "maxSize: 6\n    desiredCapacity: 2", "maxSize: 1\n    desiredCapacity: 2"),
			wantExact: "cluster-config.yaml: managedNodeGroups[2].maxSize: 1 is less than desiredCapacity 2 (raise maxSize or lower desiredCapacity)"},
		{name: "minSize above maxSize", doc: edit(t, shipped, "minSize: 2\n    maxSize: 20", "minSize: 21\n    maxSize: 20"),
			field: "managedNodeGroups[3].minSize", msg: "21 is greater than maxSize 20"},
		{name: "desired below minSize", doc: edit(t, shipped, "minSize: 2\n    maxSize: 20\n    desiredCapacity: 2", "minSize: 3\n    maxSize: 20\n    desiredCapacity: 2"),
			field: "managedNodeGroups[3].desiredCapacity", msg: "2 is less than minSize 3"},
		{name: "negative size", doc: edit(t, shipped, "minSize: 1", "minSize: -1"),
			field: "managedNodeGroups[2].minSize", msg: "-1 is negative"},
		{name: "zero maxSize", doc: edit(t, shipped, "minSize: 1\n    maxSize: 6\n    desiredCapacity: 2", "minSize: 0\n    maxSize: 0\n    desiredCapacity: 0"),
			field: "managedNodeGroups[2].maxSize", msg: "without nodes"},
		{name: "duplicate node group names", doc: edit(t, shipped, "name: coder-provisioner", "name: coder-coderd"),
			field: "managedNodeGroups[2].name", msg: `"coder-coderd" is already the name of managedNodeGroups[1]`},
		{name: "CIDR that does not parse", doc: edit(t, shipped, "cidr: 10.0.0.0/16", "cidr: 10.0.0.0/33"),
			field: "vpc.cidr", msg: `"10.0.0.0/33" is not a CIDR block`},
		{name: "CIDR with host bits", doc: edit(t, shipped, "cidr: 10.0.0.0/16", "cidr: 10.0.1.0/16"),
			field: "vpc.cidr", msg: "did you mean 10.0.0.0/16?"},
		{name: "public CIDR", doc: edit(t, shipped, "cidr: 10.0.0.0/16", "cidr: 8.8.0.0/16"),
			field: "vpc.cidr", msg: "not a private (RFC 1918) range"},
		{name: "CIDR too small", doc: edit(t, shipped, "cidr: 10.0.0.0/16", "cidr: 10.0.0.0/26"),
			field: "vpc.cidr", msg: "too small"},
		{name: "CIDR too large", doc: edit(t, shipped, "cidr: 10.0.0.0/16", "cidr: 10.0.0.0/8"),
			field: "vpc.cidr", msg: "larger than AWS allows"},
		{name: "zone of another region", doc: edit(t, shipped, `"us-west-2b"`, `"us-east-1b"`),
			field: "availabilityZones[1]", msg: `"us-east-1b" is not an availability zone of region us-west-2`},
		{name: "zone listed twice", doc: edit(t, shipped, `"us-west-2c"`, `"us-west-2a"`),
			field: "availabilityZones[2]", msg: "us-west-2a is listed twice"},
		{name: "one zone", doc: edit(t, shipped, `["us-west-2a", "us-west-2b", "us-west-2c"]`, `["us-west-2a"]`),
			field: "availabilityZones", msg: "only 1 zone listed"},
		{name: "unsupported version", doc: edit(t, shipped, `version: "1.34"`, `version: "1.29"`),
			field: "metadata.version", msg: `"1.29" is not a supported EKS version (use one of 1.30,`},
		{name: "unquoted version", doc: edit(t, shipped, `version: "1.34"`, `version: 1.30`),
			field: "metadata.version", msg: "1.3 is a YAML number"},
		{name: "missing metadata.name", doc: edit(t, shipped, "  name: coder-prod\n", ""),
			field: "metadata.name", msg: "missing"},
		{name: "invalid metadata.name", doc: edit(t, shipped, "name: coder-prod", "name: coder prod"),
			field: "metadata.name", msg: "not a valid EKS cluster name"},
		{name: "missing region", doc: edit(t, shipped, "  region: us-west-2\n", ""),
			field: "metadata.region", msg: "missing"},
		{name: "region that is no region", doc: edit(t, shipped, "region: us-west-2", "region: oregon"),
			field: "metadata.region", msg: `"oregon" does not look like an AWS region`},
		{name: "missing metadata", doc: head + "managedNodeGroups: [{name: a, instanceType: m7i.large}]\n",
			field: "metadata", msg: "missing"},
		{name: "not YAML at all", doc: "managedNodeGroups: [\n  name: x",
			msg: "not valid YAML"},
		{name: "binary", doc: "\x00\x01\x02\x03",
			msg: "not valid YAML"},
		{name: "a scalar", doc: "just some words",
			msg: `not a YAML mapping (found the text "just some words")`},
		{name: "empty", doc: "\n\n", msg: "file is empty"},
		{name: "missing apiVersion", doc: edit(t, shipped, "apiVersion: eksctl.io/v1alpha5\n", ""),
			field: "apiVersion", msg: "missing (set apiVersion: eksctl.io/v1alpha5)"},
		{name: "other apiVersion", doc: edit(t, shipped, "eksctl.io/v1alpha5", "eksctl.io/v1alpha4"),
			field: "apiVersion", msg: "eksctl.io/v1alpha4 is not supported"},
		{name: "other kind", doc: edit(t, shipped, "kind: ClusterConfig", "kind: Cluster"),
			field: "kind", msg: "Cluster is not supported"},
		{name: "wrong type", doc: edit(t, shipped, "minSize: 3", "minSize: three"),
			field: "managedNodeGroups.minSize", msg: "expected a whole number, found text"},
		{name: "map where a list belongs", doc: edit(t, shipped, "taints:\n      - key: coder/node-type\n        value: coderd\n        effect: NoSchedule", "taints:\n      coder/node-type: coderd"),
			field: "managedNodeGroups.taints", msg: "expected a list, found a mapping (write a list"},
		{name: "existing VPC without subnets", doc: edit(t, shipped, "  cidr: 10.0.0.0/16", "  id: vpc-0123456789abcdef0\n  cidr: 10.0.0.0/16"),
			field: "vpc.subnets", msg: "missing while vpc.id is set"},
		{name: "subnets and zones", doc: edit(t, shipped, "  cidr: 10.0.0.0/16", "  id: vpc-0123456789abcdef0\n  subnets:\n    private:\n      us-west-2a: {id: subnet-0123456789abcdef0}\n  cidr: 10.0.0.0/16"),
			field: "availabilityZones", msg: "cannot be set together with vpc.subnets"},
		{name: "malformed VPC ID", doc: edit(t, shipped, "  cidr: 10.0.0.0/16", "  id: my-vpc\n  cidr: 10.0.0.0/16"),
			field: "vpc.id", msg: `"my-vpc" is not a VPC ID`},
		{name: "NAT mode typo", doc: edit(t, shipped, "gateway: Single", "gateway: Singel"),
			field: "vpc.nat.gateway", msg: "did you mean Single?"},
		{name: "self-managed node groups", doc: edit(t, shipped, "managedNodeGroups:", "nodeGroups:\n  - name: old\n    instanceType: m5.large\nmanagedNodeGroups:"),
			field: "nodeGroups", msg: "self-managed node groups are not supported"},
		{name: "no node groups", doc: shipped[:strings.Index(shipped, "managedNodeGroups:")],
			field: "managedNodeGroups", msg: "no node groups defined"},
		{name: "instance type list", doc: edit(t, shipped, "instanceType: t3.medium", "instanceTypes: [t3.medium, t3.large]"),
			field: "managedNodeGroups[0].instanceTypes", msg: "not supported"},
		{name: "missing instance type", doc: edit(t, shipped, "    instanceType: t3.medium\n", ""),
			field: "managedNodeGroups[0].instanceType", msg: "missing"},
		{name: "spot", doc: edit(t, shipped, "instanceType: t3.medium", "instanceType: t3.medium\n    spot: true"),
			field: "managedNodeGroups[0].spot", msg: "not supported"},
		{name: "tiny volume", doc: edit(t, shipped, "volumeSize: 100", "volumeSize: 8"),
			field: "managedNodeGroups[3].volumeSize", msg: "8 GiB is smaller"},
		{name: "eksctl's own rule: log type", doc: edit(t, shipped, `"authenticator"`, `"authenticatr"`),
			field: "cloudWatch.clusterLogging.enableTypes[2]", msg: `eksctl rejects it: log type "authenticatr"`},
		{name: "eksctl's own rule: label key", doc: edit(t, shipped, "coder/node-type: system", "kubernetes.io/role: system"),
			field: "managedNodeGroups[0]", msg: "eksctl rejects it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCluster("cluster-config.yaml", []byte(tc.doc))
			ie := asInputError(t, err)
			if ie.Source != "cluster-config.yaml" {
				t.Errorf("Source = %q, want the file name", ie.Source)
			}
			if tc.field != "" && ie.Field != tc.field {
				t.Errorf("Field = %q, want %q (error: %v)", ie.Field, tc.field, err)
			}
			if tc.wantExact != "" && err.Error() != tc.wantExact {
				t.Errorf("error = %q\n     want %q", err.Error(), tc.wantExact)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err.Error(), tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "cluster-config.yaml: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line starting with the file name", err.Error())
			}
		})
	}
}

// lineOf is the 1-based line of the first line of doc that is text, so
// that a test of a line number survives edits to the shipped file's comments.
func lineOf(t *testing.T, doc, text string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if l == text {
			return i + 1
		}
	}
	t.Fatalf("%q is not a line of the document", text)
	return 0
}

func asInputError(t *testing.T, err error) *fault.InputError {
	t.Helper()
	var ie *fault.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error = %v (%T), want a *fault.InputError", err, err)
	}
	return ie
}

func TestLoadClusterMissingFile(t *testing.T) {
	_, err := LoadCluster("testdata/nope.yaml")
	ie := asInputError(t, err)
	if ie.Source != "testdata/nope.yaml" || !strings.Contains(err.Error(), "file not found") {
		t.Errorf("error = %v", err)
	}
}

func TestEksctlErrorRewordsFlags(t *testing.T) {
	err := eksctlError("c.yaml", "managedNodeGroups[2]", errors.New("cannot use --nodes-min=3 and --nodes=2 at the same time"))
	want := "c.yaml: managedNodeGroups[2]: eksctl rejects it: cannot use minSize=3 and desiredCapacity=2 at the same time"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err.Error(), want)
	}
	err = eksctlError("c.yaml", "", errors.New("cannot use --nodes-max=1 and --nodes=2 at the same time"))
	if !strings.Contains(err.Error(), "maxSize=1 and desiredCapacity=2") {
		t.Errorf("got %q", err.Error())
	}
}

func TestNodeGroupTaintEffectToEKS(t *testing.T) {
	tests := []struct{ in, want, errPart string }{
		{in: "NoSchedule", want: "NO_SCHEDULE"},
		{in: "PreferNoSchedule", want: "PREFER_NO_SCHEDULE"},
		{in: "NoExecute", want: "NO_EXECUTE"},
		{in: "NO_EXECUTE", errPart: "use the Kubernetes spelling NoExecute"},
		{in: "NoExecut", errPart: "did you mean NoExecute?"},
		{in: "", errPart: "missing"},
	}
	for _, tc := range tests {
		got, err := NodeGroupTaintEffectToEKS(tc.in)
		if tc.errPart == "" {
			if err != nil || got != tc.want {
				t.Errorf("%q -> %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !fault.IsInput(err) || !strings.Contains(err.Error(), tc.errPart) {
			t.Errorf("%q -> error %v, want an input error containing %q", tc.in, err, tc.errPart)
		}
	}
}

func TestSuggestField(t *testing.T) {
	tests := map[string]string{
		"managedNodeGroups[0].instancetype":       "instanceType",
		"managedNodeGroups[3].desiredCapcity":     "desiredCapacity",
		"metadata.regoin":                         "region",
		"vpc.nat.gatway":                          "gateway",
		"vpc.subnets.private.us-west-2a.cidrr":    "cidr",
		"availabiltyZones":                        "availabilityZones",
		"managedNodeGroups[0].somethingElseEntir": "",
	}
	for path, want := range tests {
		if got := suggestField(path); got != want {
			t.Errorf("suggestField(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestParseClusterAcceptsVariants(t *testing.T) {
	shipped := readShipped(t)
	existingVPC := edit(t, shipped,
		`availabilityZones: ["us-west-2a", "us-west-2b", "us-west-2c"]`, "",
		"  cidr: 10.0.0.0/16", `  id: vpc-0123456789abcdef0
  cidr: 10.0.0.0/16
  subnets:
    private:
      us-west-2a: {id: subnet-0000000000000000a}
      us-west-2b: {id: subnet-0000000000000000b}
    public:
      us-west-2a: {id: subnet-0000000000000000c}
      us-west-2b: {id: subnet-0000000000000000d}`)
	tests := []struct {
		name  string
		doc   string
		check func(*api.ClusterConfig) bool
	}{
		{"NAT per zone", edit(t, shipped, "gateway: Single", "gateway: HighlyAvailable"),
			func(c *api.ClusterConfig) bool { return *c.VPC.NAT.Gateway == "HighlyAvailable" }},
		{"oldest supported version", edit(t, shipped, `version: "1.34"`, `version: "1.30"`),
			func(c *api.ClusterConfig) bool { return c.Metadata.Version == "1.30" }},
		{"zones left to coderctl", edit(t, shipped, `availabilityZones: ["us-west-2a", "us-west-2b", "us-west-2c"]`, ""),
			func(c *api.ClusterConfig) bool { return len(c.AvailabilityZones) == 0 }},
		{"existing VPC", existingVPC,
			func(c *api.ClusterConfig) bool {
				return c.VPC.ID == "vpc-0123456789abcdef0" && len(c.VPC.Subnets.Private) == 2
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseCluster("cluster-config.yaml", []byte(tc.doc))
			if err != nil {
				t.Fatalf("ParseCluster: %v", err)
			}
			if !tc.check(cfg) {
				t.Errorf("config does not carry the variant: %+v", cfg.VPC)
			}
		})
	}
}
