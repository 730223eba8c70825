package config

import (
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
)

// Field is one cluster-config.yaml field coderctl acts on.
type Field struct {
	// Path in eksctl's JSON names, "[]" for a list element and "*" for a
	// key the user chooses: "managedNodeGroups[].volumeIOPS".
	Path string
	// Stage is where it is acted on: a stage name, or "config" for what
	// the loader itself checks.
	Stage string
	// Does says what coderctl does with it, for docs/cluster-config.md.
	Does string
}

// ActedOn lists every cluster-config.yaml field coderctl acts on, in the
// order of the shipped cluster-config.yaml (fields it does not set are put
// beside their neighbours). Everything else the file sets is refused: a
// field eksctl adds in a new version cannot be silently ignored. A field
// belongs here only once a stage reads it; TestEveryFieldActedOnOrRefused
// holds the list to eksctl's types and docs/cluster-config.md to the list.
func ActedOn() []Field {
	return []Field{
		{"apiVersion", "config", "must be eksctl.io/v1alpha5"},
		{"kind", "config", "must be ClusterConfig"},
		{"metadata.name", "eks", "the EKS cluster's name; also CLUSTER_NAME, the coderctl/deployment tag on everything coderctl creates"},
		{"metadata.region", "all", "the AWS region every stage works in (AWS_REGION)"},
		{"metadata.version", "eks", "the Kubernetes version: set on create; raised, it upgrades one minor at a time (control plane, add-ons, node groups), shown in plan; a downgrade or a version EKS does not offer is refused; the cluster-autoscaler's version follows it"},
		{"metadata.tags", "nodegroups", "added to every node group's tags where the group does not set the key (as eksctl does), and so to its instances and volumes; the cluster, VPC and other resources carry coderctl's own tags only"},
		{"availabilityZones", "network", "the zones that get a public and a private subnet (prereqs checks they are offered); chosen by coderctl when unset"},
		{"vpc.id", "network", "an existing VPC to adopt instead of creating one: verified, never changed"},
		{"vpc.cidr", "network", "the new VPC's IPv4 block, carved into a public and a private subnet per zone"},
		{"vpc.subnets.private.*.id", "network", "an existing VPC's private subnet, by ID"},
		{"vpc.subnets.private.*.az", "network", "the zone that private subnet must be in"},
		{"vpc.subnets.private.*.cidr", "network", "an existing VPC's private subnet, by CIDR block"},
		{"vpc.subnets.public.*.id", "network", "an existing VPC's public subnet, by ID"},
		{"vpc.subnets.public.*.az", "network", "the zone that public subnet must be in"},
		{"vpc.subnets.public.*.cidr", "network", "an existing VPC's public subnet, by CIDR block"},
		{"vpc.nat.gateway", "network", "Single (one NAT gateway), HighlyAvailable (one per zone) or Disable; prereqs counts the Elastic IPs it needs"},
		{"vpc.clusterEndpoints.publicAccess", "eks", "the API server's public endpoint, set on create and converged with UpdateClusterConfig"},
		{"vpc.clusterEndpoints.privateAccess", "eks", "the API server's endpoint inside the VPC, set on create and converged with UpdateClusterConfig"},
		{"vpc.publicAccessCIDRs", "eks", "the blocks allowed to reach the public endpoint, set on create and converged"},
		{"iam.withOIDC", "eks", "must be true when set: coderctl always creates the cluster's IAM OIDC provider (IRSA for the EBS CSI driver, the autoscaler and Coder's secrets)"},
		{"cloudWatch.clusterLogging.enableTypes", "eks", "the control plane log types sent to CloudWatch (all or * for every type), converged with UpdateClusterConfig"},
		{"cloudWatch.clusterLogging.logRetentionInDays", "eks", "the retention of the cluster's log group, set and converged"},
		{"secretsEncryption.keyARN", "eks", "the KMS key for envelope encryption of Kubernetes secrets; associated with an existing cluster, never removed"},
		{"accessConfig.authenticationMode", "eks", "CONFIG_MAP, API_AND_CONFIG_MAP (the default) or API, set on create; an existing cluster's is moved only towards API, as EKS allows"},
		{"accessConfig.bootstrapClusterCreatorAdminPermissions", "eks", "whether the identity creating the cluster gets an admin access entry (default true); fixed at creation"},
		{"accessConfig.accessEntries[].principalARN", "eks", "an IAM role or user given an access entry, created, converged and, when removed from the file, deleted (only entries coderctl made)"},
		{"accessConfig.accessEntries[].type", "eks", "the entry's type (STANDARD when unset); a change replaces the entry"},
		{"accessConfig.accessEntries[].kubernetesGroups", "eks", "the Kubernetes groups the principal is mapped to, converged"},
		{"accessConfig.accessEntries[].kubernetesUsername", "eks", "the Kubernetes username the principal is mapped to (EKS's default when unset), converged"},
		{"accessConfig.accessEntries[].accessPolicies[].policyARN", "eks", "an EKS access policy (checked against ListAccessPolicies) associated with the entry, converged"},
		{"accessConfig.accessEntries[].accessPolicies[].accessScope.type", "eks", "cluster or namespace"},
		{"accessConfig.accessEntries[].accessPolicies[].accessScope.namespaces", "eks", "the namespaces of a namespace scope"},
		{"addons[].name", "eks", "a managed add-on to install (vpc-cni, coredns, kube-proxy and aws-ebs-csi-driver when addons is empty)"},
		{"addons[].version", "eks", "the add-on's version: exact, latest, or EKS's default when unset"},
		{"addons[].serviceAccountRoleARN", "eks", "the IAM role the add-on's service account uses (the EBS CSI driver gets coderctl's own IRSA role when unset)"},
		{"addons[].configurationValues", "eks", "the add-on's configuration (JSON or YAML), checked against its schema and converged"},
		{"managedNodeGroups[].name", "nodegroups", "the EKS managed node group's name"},
		{"managedNodeGroups[].instanceType", "nodegroups", "the group's one instance type (checked against what the region offers)"},
		{"managedNodeGroups[].amiFamily", "nodegroups", "the EKS-optimized AMI family; with the instance type it gives the group's AMI type (x86, ARM, GPU), as eksctl picks it"},
		{"managedNodeGroups[].minSize", "nodegroups", "the group's smallest size; the cluster-autoscaler shrinks it no further"},
		{"managedNodeGroups[].maxSize", "nodegroups", "the group's largest size; above minSize the cluster-autoscaler may grow it"},
		{"managedNodeGroups[].desiredCapacity", "nodegroups", "the size the group is created with"},
		{"managedNodeGroups[].volumeSize", "nodegroups", "the root volume's size in GiB, in the group's launch template"},
		{"managedNodeGroups[].volumeType", "nodegroups", "the root volume's EBS type, in the group's launch template"},
		{"managedNodeGroups[].volumeIOPS", "nodegroups", "the root volume's IOPS (io1, io2, gp3), in the group's launch template"},
		{"managedNodeGroups[].volumeThroughput", "nodegroups", "the root volume's throughput in MiB/s (gp3), in the group's launch template"},
		{"managedNodeGroups[].volumeEncrypted", "nodegroups", "whether the root volume is encrypted, in the group's launch template"},
		{"managedNodeGroups[].volumeKmsKeyID", "nodegroups", "the KMS key that encrypts the root volume, in the group's launch template"},
		{"managedNodeGroups[].disableIMDSv1", "nodegroups", "whether the nodes require IMDSv2 (eksctl's default: they do), in the group's launch template"},
		{"managedNodeGroups[].disablePodIMDS", "nodegroups", "true: a metadata hop limit of 1, so pods cannot reach the instance metadata service; false: a limit pods can reach"},
		{"managedNodeGroups[].privateNetworking", "nodegroups", "true: nodes in the private subnets; false: in the public subnets (which get MapPublicIpOnLaunch; an existing VPC's are checked)"},
		{"managedNodeGroups[].labels", "nodegroups", "Kubernetes labels on the group's nodes, converged"},
		{"managedNodeGroups[].taints[].key", "nodegroups", "a taint on the group's nodes from the start, converged"},
		{"managedNodeGroups[].taints[].value", "nodegroups", "the taint's value"},
		{"managedNodeGroups[].taints[].effect", "nodegroups", "NoSchedule, PreferNoSchedule or NoExecute"},
		{"managedNodeGroups[].tags", "nodegroups", "tags on the node group, propagated to its instances and volumes through the launch template"},
		{"managedNodeGroups[].updateConfig.maxUnavailable", "nodegroups", "how many nodes an update may take down at once, set and converged"},
		{"managedNodeGroups[].updateConfig.maxUnavailablePercentage", "nodegroups", "the same as a percentage of the group"},
	}
}

// refusal is what coderctl says about a field it does not act on.
type refusal struct{ msg, hint string }

// defaultRefusal covers every field without a more specific word below.
var defaultRefusal = refusal{
	msg:  "coderctl does not act on this field",
	hint: "remove it; docs/cluster-config.md lists the fields coderctl acts on",
}

// refusals says more for the fields users are most likely to write,
// keyed by path pattern.
var refusals = map[string]refusal{
	"nodeGroups": {"self-managed node groups are not supported",
		"coderctl creates EKS managed node groups: move them under managedNodeGroups"},
	"fargateProfiles": {"Fargate profiles are not supported by coderctl",
		"remove it; Coder runs on the managed node groups"},
	"kubernetesNetworkConfig": {"coderctl builds IPv4 clusters with EKS's default service range",
		"remove it"},
	"addonsConfig": {"coderctl does not act on this field",
		"remove it; an empty addons list gets vpc-cni, coredns, kube-proxy and aws-ebs-csi-driver, or list the add-ons you want"},
	"managedNodeGroups[].spot": {"spot capacity is not supported by coderctl",
		"remove it; coderctl creates on-demand groups of one instance type"},
	"managedNodeGroups[].launchTemplate": {"launch templates are not supported by coderctl",
		"remove it; coderctl builds each group's launch template from its volume*, disableIMDSv1, disablePodIMDS and tags fields"},
	"managedNodeGroups[].ami": {"custom AMIs are not supported by coderctl",
		"remove it; coderctl uses the EKS-optimized AMI of the group's amiFamily"},
	"managedNodeGroups[].instanceTypes": {"lists of instance types are not supported by coderctl",
		"set a single instanceType, e.g. instanceType: m7i.xlarge"},
}

// fieldRules answers, for a path pattern, whether coderctl acts on it.
type fieldRules struct{ acted []string }

func newFieldRules(fields []Field) fieldRules {
	r := fieldRules{}
	for _, f := range fields {
		r.acted = append(r.acted, f.Path)
	}
	return r
}

// covers reports that p is on the list or inside a field on the list.
func (r fieldRules) covers(p string) bool {
	for _, a := range r.acted {
		if p == a || isBelow(p, a) {
			return true
		}
	}
	return false
}

// actsBelow reports that a field on the list is p or inside p.
func (r fieldRules) actsBelow(p string) bool {
	for _, a := range r.acted {
		if p == "" || p == a || isBelow(a, p) {
			return true
		}
	}
	return false
}

// isBelow reports that path p lies inside parent.
func isBelow(p, parent string) bool {
	rest, ok := strings.CutPrefix(p, parent)
	return ok && rest != "" && (rest[0] == '.' || rest[0] == '[')
}

// refusedField is a field the file sets that coderctl does not act on.
type refusedField struct {
	path    string // concrete: "managedNodeGroups[2].spot"
	pattern string // "managedNodeGroups[].spot"
}

// checkFields refuses every field the document sets that coderctl does not
// act on. It reads the document as written: eksctl's defaults fill in
// fields later, and those are coderctl's to ignore. A null, an empty list
// and an empty mapping set nothing and pass.
func checkFields(name string, data []byte) error {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fault.Input(name, "", "", "not valid YAML: %s", yamlMessage(err))
	}
	refused := refusedFields(clusterSchema(), newFieldRules(ActedOn()), doc, "")
	if len(refused) == 0 {
		return nil
	}
	first := refused[0]
	r, ok := refusals[first.pattern]
	if !ok {
		r = defaultRefusal
	}
	msg := r.msg
	if n := len(refused) - 1; n > 0 {
		msg += fmt.Sprintf("; %d more field%s coderctl does not act on: %s", n, plural(n), joinRefused(refused[1:]))
	}
	return fault.Input(name, first.path, r.hint, "%s", msg)
}

// joinRefused names at most three more refused fields, keeping one line.
func joinRefused(rest []refusedField) string {
	names := make([]string, 0, 3)
	for _, f := range rest[:min(len(rest), 3)] {
		names = append(names, f.path)
	}
	if len(rest) > 3 {
		names = append(names, "...")
	}
	return strings.Join(names, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// refusedFields walks the document along eksctl's schema. A field is
// refused where nothing below it is acted on: a whole fargateProfiles list
// is named once, not once per key inside it. Keys the schema does not know
// are left to the strict decoder, which names them with a suggestion.
func refusedFields(n *schemaNode, rules fieldRules, v any, at string) []refusedField {
	if isUnset(v) || rules.covers(n.path) {
		return nil
	}
	if !rules.actsBelow(n.path) {
		return []refusedField{{path: at, pattern: n.path}}
	}
	var out []refusedField
	switch v := v.(type) {
	case map[string]any:
		switch n.shape {
		case shapeStruct:
			for _, key := range n.fields {
				if child, set := v[key]; set {
					out = append(out, refusedFields(n.field[key], rules, child, joinPath(at, key))...)
				}
			}
			return out
		case shapeMap:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, refusedFields(n.elem, rules, v[k], joinPath(at, k))...)
			}
			return out
		}
	case []any:
		if n.shape == shapeList {
			for i, item := range v {
				out = append(out, refusedFields(n.elem, rules, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
			return out
		}
	}
	// A value shaped unlike the schema (a type that decodes itself) is
	// acted on only if everything it can hold is.
	if !allCovered(n, rules) {
		return []refusedField{{path: at, pattern: n.path}}
	}
	return nil
}

// allCovered reports that every leaf below n is acted on.
func allCovered(n *schemaNode, rules fieldRules) bool {
	ok := true
	n.leaves(func(l *schemaNode) { ok = ok && rules.covers(l.path) })
	return ok
}

// isUnset reports a value that sets nothing: null, [] or {}.
func isUnset(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}
