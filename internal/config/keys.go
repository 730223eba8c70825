package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/coderctl/coderctl/internal/sizing/dbclass"
)

// KeyDoc documents one input key of coder-infra.env.
type KeyDoc struct {
	Key string
	// Default is the value used when the key is set nowhere; empty when the
	// default is derived (Doc says from what) or there is none.
	Default string
	// Doc is one line for the example file and `coderctl init`.
	Doc string
	// Required keys have no default: a full deployment cannot run without them.
	Required bool
}

// Input keys stages and the CLI refer to.
const (
	KeyRegion                = "AWS_REGION"
	KeyClusterName           = "CLUSTER_NAME"
	KeyDomain                = "CODER_DOMAIN"
	KeyHostedZoneID          = "HOSTED_ZONE_ID"
	KeyCoderVersion          = "CODER_VERSION"
	KeyUsers                 = "USERS"
	KeyCoderURL              = "CODER_URL"
	KeyDBInstanceClass       = "DB_INSTANCE_CLASS"
	KeyDBEngineVersion       = "DB_ENGINE_VERSION"
	KeyDBAllocatedStorage    = "DB_ALLOCATED_STORAGE"
	KeyCoderChartRepo        = "CODER_CHART_REPO"
	KeyCoderChartVersion     = "CODER_CHART_VERSION"
	KeyCSIDriverRepo         = "CSI_DRIVER_CHART_REPO"
	KeyCSIDriverVersion      = "CSI_DRIVER_CHART_VERSION"
	KeyCSIAWSProviderRepo    = "CSI_AWS_PROVIDER_CHART_REPO"
	KeyCSIAWSProviderVersion = "CSI_AWS_PROVIDER_CHART_VERSION"
	KeyAutoscaler            = "AUTOSCALER"
	KeyAutoscalerChartRepo   = "AUTOSCALER_CHART_REPO"
	KeyAutoscalerVersion     = "AUTOSCALER_CHART_VERSION"
)

// AUTOSCALER values: what grows the node groups.
const (
	AutoscalerCluster = "cluster-autoscaler"
	AutoscalerNone    = "none"
)

// inputKey is a row of the one table that both documents and validates the
// inputs.
type inputKey struct {
	KeyDoc
	// check validates a set value and returns it normalized.
	check func(v string) (string, *badValue)
	// derive computes the default from other inputs when Default is empty.
	derive func(in *Inputs) string
}

// badValue says what is wrong with a value and what to write instead.
type badValue struct{ msg, hint string }

func bad(hint, format string, args ...any) *badValue {
	return &badValue{msg: fmt.Sprintf(format, args...), hint: hint}
}

// inputTable is every input key, in the order the example file lists them.
// Pinned versions: Coder 2.36.1 (the stable channel as of September 2026),
// Secrets Store CSI driver chart 1.5.5, its AWS provider chart 2.2.0.
func inputTable() []inputKey {
	return []inputKey{
		{KeyDoc{KeyRegion, "", "AWS region. Must match metadata.region in cluster-config.yaml; taken from there when unset.", false}, checkRegion, nil},
		{KeyDoc{KeyClusterName, "", "EKS cluster name, also the coderctl/deployment tag of every resource. Must match metadata.name in cluster-config.yaml; taken from there when unset.", false}, checkClusterName, nil},
		{KeyDoc{KeyDomain, "", "Domain users open, e.g. coder.example.com: no scheme, no wildcard (coderctl adds *.CODER_DOMAIN for workspace apps).", true}, checkDomain, nil},
		{KeyDoc{KeyHostedZoneID, "", "Route53 hosted zone serving CODER_DOMAIN. When set, coderctl writes the DNS records; otherwise it prints them.", false}, checkHostedZoneID, nil},
		{KeyDoc{KeyCoderVersion, "2.36.1", "Coder release to deploy.", false}, checkSemver, nil},
		{KeyDoc{KeyUsers, "500", "Peak concurrent users; sizes the provisioner replicas.", false}, checkUsers, nil},
		{KeyDoc{KeyCoderURL, "", "Access URL, when it is not https://CODER_DOMAIN.", false}, checkCoderURL, deriveCoderURL},
		{KeyDoc{KeyDBInstanceClass, "", "RDS PostgreSQL instance class (the database runs multi-AZ); defaults to the class `coderctl size` gives for USERS: db.m7i.large up to 1,000 users, db.m7i.xlarge up to 2,000, db.m7i.2xlarge beyond.", false}, checkDBInstanceClass, deriveDBInstanceClass},
		{KeyDoc{KeyDBEngineVersion, "17", "PostgreSQL version: a major (17) or major.minor (17.5).", false}, checkDBEngineVersion, nil},
		{KeyDoc{KeyDBAllocatedStorage, "100", "Database storage in GiB, at least 20.", false}, checkDBStorage, nil},
		{KeyDoc{KeyCoderChartRepo, "https://helm.coder.com/v2", "Helm repository of the coder and coder-provisioner charts (https://, http:// or oci://).", false}, checkChartRepo, nil},
		{KeyDoc{KeyCoderChartVersion, "", "Version of the coder and coder-provisioner charts; defaults to CODER_VERSION.", false}, checkSemver, deriveCoderChartVersion},
		{KeyDoc{KeyCSIDriverRepo, "https://kubernetes-sigs.github.io/secrets-store-csi-driver/charts", "Helm repository of the Secrets Store CSI driver chart.", false}, checkChartRepo, nil},
		{KeyDoc{KeyCSIDriverVersion, "1.5.5", "Version of the secrets-store-csi-driver chart.", false}, checkSemver, nil},
		{KeyDoc{KeyCSIAWSProviderRepo, "https://aws.github.io/secrets-store-csi-driver-provider-aws", "Helm repository of the Secrets Store CSI driver's AWS provider chart.", false}, checkChartRepo, nil},
		{KeyDoc{KeyCSIAWSProviderVersion, "2.2.0", "Version of the secrets-store-csi-driver-provider-aws chart.", false}, checkSemver, nil},
		{KeyDoc{KeyAutoscaler, AutoscalerCluster, "What grows the node groups: cluster-autoscaler (installed by coderctl, grows groups whose maxSize is above minSize) or none (groups keep desiredCapacity).", false}, checkAutoscaler, nil},
		{KeyDoc{KeyAutoscalerChartRepo, "https://kubernetes.github.io/autoscaler", "Helm repository of the cluster-autoscaler chart.", false}, checkChartRepo, nil},
		{KeyDoc{KeyAutoscalerVersion, "", "Version of the cluster-autoscaler chart; defaults to the newest whose autoscaler matches the cluster's Kubernetes minor.", false}, checkSemver, nil},
		// Values files are read (and their errors reported) by the secrets stage's validation.
		{KeyDoc{"CSI_DRIVER_VALUES_FILE", "", "Path of a helm values file merged over coderctl's values for the Secrets Store CSI driver.", false}, func(v string) (string, *badValue) { return v, nil }, nil},
		{KeyDoc{"CSI_AWS_PROVIDER_VALUES_FILE", "", "Path of a helm values file merged over coderctl's values for the CSI driver's AWS provider.", false}, func(v string) (string, *badValue) { return v, nil }, nil},
		// The coder and provisioners stages read these files (and report their errors) in their validation.
		{KeyDoc{"CODER_VALUES_FILE", "", "Path of a helm values file merged over coderctl's values for the coder release.", false}, func(v string) (string, *badValue) { return v, nil }, nil},
		{KeyDoc{"PROVISIONER_CHART_REPO", "", "Helm repository of the coder-provisioner chart; defaults to CODER_CHART_REPO.", false}, checkChartRepo, func(in *Inputs) string { return in.Get(KeyCoderChartRepo) }},
		{KeyDoc{"PROVISIONER_CHART_VERSION", "", "Version of the coder-provisioner chart; defaults to CODER_CHART_VERSION.", false}, checkSemver, func(in *Inputs) string { return in.Get(KeyCoderChartVersion) }},
		{KeyDoc{"PROVISIONER_VALUES_FILE", "", "Path of a helm values file merged over coderctl's values for the coder-provisioner release.", false}, func(v string) (string, *badValue) { return v, nil }, nil},
		{KeyDoc{"CODER_CA_FILE", "", "PEM bundle of the CA that signed CODER_URL's certificate, when it is not publicly trusted; coderctl's API calls trust it.", false}, func(v string) (string, *badValue) { return v, nil }, nil},
		{KeyDoc{KeyFirstUserEmail, "", "E-mail of Coder's first owner, created by `up` while Coder has no user (its password generated and kept only in Secrets Manager as coder/CLUSTER_NAME/first-user); unset, the first user is yours to create.", false}, checkFirstUserEmail, nil},
		{KeyDoc{KeyFirstUserUsername, "", "Username of that first owner; defaults to the e-mail's local part as Coder would accept it.", false}, checkFirstUserUsername, nil},
	}
}

// IsInputKey reports whether key is one of the inputs a user sets.
func IsInputKey(key string) bool {
	for _, k := range inputTable() {
		if k.Key == key {
			return true
		}
	}
	return false
}

// InputKeys documents every input key, in the example file's order.
func InputKeys() []KeyDoc {
	table := inputTable()
	docs := make([]KeyDoc, len(table))
	for i, k := range table {
		docs[i] = k.KeyDoc
	}
	return docs
}

func deriveCoderURL(in *Inputs) string {
	if d := in.Get(KeyDomain); d != "" {
		return "https://" + d
	}
	return ""
}

func deriveCoderChartVersion(in *Inputs) string { return in.Get(KeyCoderVersion) }

// deriveDBInstanceClass takes the sizing's class for USERS, so that `up`
// builds the database `coderctl size` describes.
func deriveDBInstanceClass(in *Inputs) string {
	class, _ := dbclass.For(in.Users())
	return class
}

func checkAutoscaler(v string) (string, *badValue) {
	switch a := strings.ToLower(v); a {
	case AutoscalerCluster, AutoscalerNone:
		return a, nil
	}
	return "", bad("AUTOSCALER="+AutoscalerCluster+" (the default) or AUTOSCALER="+AutoscalerNone, "%q is not a known autoscaler", v)
}

// Autoscaling reports whether coderctl runs the cluster-autoscaler, which
// grows node groups up to their maxSize.
func (in *Inputs) Autoscaling() bool { return in.Get(KeyAutoscaler) != AutoscalerNone }

func checkRegion(v string) (string, *badValue) {
	if !isRegion(v) {
		return "", bad("e.g. AWS_REGION=us-west-2", "%q does not look like an AWS region", v)
	}
	return v, nil
}

func checkClusterName(v string) (string, *badValue) {
	if !clusterNameRE.MatchString(v) {
		return "", bad("use letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters",
			"%q is not a valid EKS cluster name", v)
	}
	return v, nil
}

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// maxCertNameLen: ACM puts the first name of a certificate in its common
// name, which may be 64 characters at most.
const maxCertNameLen = 64

// checkDomain accepts a bare DNS name. Upper case is lowered (DNS and ACM
// ignore case) and one trailing dot is dropped; anything else that is not a
// plain name is refused with what to write instead.
func checkDomain(v string) (string, *badValue) {
	d := strings.TrimSuffix(strings.ToLower(v), ".")
	switch {
	case strings.Contains(d, "://"):
		return "", bad("give the bare domain, e.g. CODER_DOMAIN="+bareHost(d), "%q is a URL", v)
	case strings.HasPrefix(d, "*."):
		return "", bad("give the base domain, e.g. CODER_DOMAIN="+d[2:]+"; coderctl adds the wildcard", "%q is a wildcard", v)
	case strings.ContainsAny(d, " \t"):
		return "", bad("give one domain, e.g. CODER_DOMAIN=coder.example.com", "%q contains spaces", v)
	case isIPLiteral(d):
		return "", bad("give a DNS name, not an IP address", "%q is not a DNS name but an IP address", v)
	case strings.Contains(d, ":"):
		return "", bad("leave the port out; the load balancer listens on 443", "%q has a port", v)
	case strings.Contains(d, "/"):
		return "", bad("give the bare domain, e.g. CODER_DOMAIN="+bareHost(d), "%q has a path", v)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", bad("give a fully qualified name, e.g. CODER_DOMAIN=coder.example.com", "%q is a single label", v)
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return "", bad("labels are letters, digits and inner hyphens, 1-63 characters each",
				"%q has an invalid label %q", v, l)
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return "", bad("give a DNS name, not an IP address", "%q is not a DNS name", v)
	}
	if len(d) > maxCertNameLen {
		return "", bad("ACM certificates take at most 64 characters in the first name; use a shorter domain", "%q is %d characters long", v, len(d))
	}
	return d, nil
}

// isIPLiteral reports an IPv4 or IPv6 address, bracketed or not, with or
// without a port: "[2001:db8::1]" is not a host with port "db8::1]".
func isIPLiteral(s string) bool {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	_, err := netip.ParseAddr(s)
	return err == nil
}

// bareHost extracts the host from something that looks like a URL.
func bareHost(s string) string {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	s, _, _ = strings.Cut(s, "/")
	s, _, _ = strings.Cut(s, ":")
	return s
}

// hostedZoneRE accepts Route53's zone ID alphabet. AWS's IDs start with Z in
// practice but that is not documented, and moto's do not; a dot (a domain
// given by mistake) or a lowercase letter is still refused.
var hostedZoneRE = regexp.MustCompile(`^[A-Z0-9]{8,32}$`)

func checkHostedZoneID(v string) (string, *badValue) {
	id := strings.TrimPrefix(v, "/hostedzone/")
	if !hostedZoneRE.MatchString(id) {
		return "", bad("copy the ID from the Route53 console or `aws route53 list-hosted-zones`, e.g. Z0123456789ABCDEFGHIJ",
			"%q is not a Route53 hosted zone ID", v)
	}
	return id, nil
}

var semverRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// checkSemver wants an exact release: pinned versions keep deployments
// repeatable. A leading "v" (as in image tags) is dropped.
func checkSemver(v string) (string, *badValue) {
	s := strings.TrimPrefix(v, "v")
	if !semverRE.MatchString(s) {
		return "", bad("give an exact release, e.g. 2.36.1", "%q is not a version like 2.36.1", v)
	}
	return s, nil
}

// maxUsers bounds USERS to a number a single deployment can plausibly mean.
const maxUsers = 100_000

func checkUsers(v string) (string, *badValue) {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return "", bad("e.g. USERS=500", "%q is not a whole number", v)
	case n < 1:
		return "", bad("e.g. USERS=500", "%d is not a positive number of users", n)
	case n > maxUsers:
		return "", bad("coderctl sizes one deployment for up to 100000 users", "%d is more than %d", n, maxUsers)
	}
	return strconv.Itoa(n), nil
}

func checkCoderURL(v string) (string, *badValue) {
	u, err := url.Parse(v)
	const hint = "e.g. CODER_URL=https://coder.example.com, or leave it unset for https://CODER_DOMAIN"
	switch {
	case err != nil || u.Host == "":
		return "", bad(hint, "%q is not a URL", v)
	case u.Scheme != "https":
		return "", bad(hint, "%q is not an https URL", v)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "":
		return "", bad(hint, "%q has more than a scheme and a host; Coder serves at the root", v)
	}
	return "https://" + strings.ToLower(u.Host), nil
}

var dbClassRE = regexp.MustCompile(`^db\.[a-z][a-z0-9-]*\.[a-z0-9]+$`)

func checkDBInstanceClass(v string) (string, *badValue) {
	c := strings.ToLower(v)
	if !dbClassRE.MatchString(c) {
		return "", bad("e.g. DB_INSTANCE_CLASS=db.m7i.large", "%q is not an RDS instance class like db.<family>.<size>", v)
	}
	return c, nil
}

var pgVersionRE = regexp.MustCompile(`^[0-9]{2}(\.[0-9]+)?$`)

func checkDBEngineVersion(v string) (string, *badValue) {
	if !pgVersionRE.MatchString(v) {
		return "", bad("e.g. DB_ENGINE_VERSION=17 or 17.5", "%q is not a PostgreSQL version", v)
	}
	return v, nil
}

// RDS gp3 storage for PostgreSQL: 20 GiB to 64 TiB.
const minDBStorageGiB, maxDBStorageGiB = 20, 65536

func checkDBStorage(v string) (string, *badValue) {
	n, err := strconv.Atoi(v)
	if err != nil || n < minDBStorageGiB || n > maxDBStorageGiB {
		return "", bad("e.g. DB_ALLOCATED_STORAGE=100", "%q is not a size in GiB between %d and %d", v, minDBStorageGiB, maxDBStorageGiB)
	}
	return strconv.Itoa(n), nil
}

// checkChartRepo accepts http(s) chart repositories and oci:// registries;
// plain http is allowed for mirrors inside a private network.
func checkChartRepo(v string) (string, *badValue) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "oci") {
		return "", bad("e.g. https://helm.coder.com/v2 or oci://registry.example.com/charts", "%q is not a chart repository URL", v)
	}
	return strings.TrimSuffix(v, "/"), nil
}

// Inputs of the unattended first `up`: the first owner coderctl creates.
const (
	KeyFirstUserEmail    = "CODER_FIRST_USER_EMAIL"
	KeyFirstUserUsername = "CODER_FIRST_USER_USERNAME"
)

// checkFirstUserEmail accepts what coderd's `validate:"email"` does: a
// bare addr-spec (no display name, no angle brackets) with a domain.
func checkFirstUserEmail(v string) (string, *badValue) {
	hint := "e.g. " + KeyFirstUserEmail + "=admin@example.com"
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Name != "" || addr.Address != v {
		return "", bad(hint, "%q is not an e-mail address", v)
	}
	domain := v[strings.LastIndex(v, "@")+1:]
	if domain == "" || strings.HasPrefix(domain, "[") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", bad(hint, "%q is not an e-mail address", v)
	}
	return v, nil
}

// coderUsername is codersdk.UsernameValidRegex.
var coderUsername = regexp.MustCompile("^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$")

// checkFirstUserUsername is codersdk.NameValid.
func checkFirstUserUsername(v string) (string, *badValue) {
	hint := "letters and digits, words joined by single hyphens, at most 32 characters, e.g. " + KeyFirstUserUsername + "=admin"
	if len(v) > 32 || v == "new" || v == "create" || !coderUsername.MatchString(v) {
		return "", bad(hint, "%q is not a username Coder accepts", v)
	}
	return v, nil
}
