package awsx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
)

// IAM documents and ARNs the stages that own roles (eks, nodegroups,
// secrets) build the same way. They are here so that a fix to one, such as
// a partition's spelling, reaches every role.

// STSAudience is the audience the EKS pod identity webhook puts in the
// projected service-account tokens an IRSA role accepts.
const STSAudience = "sts.amazonaws.com"

// Partition is the AWS partition of a region, for ARNs and service
// principals.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

// ManagedPolicyARN is the ARN of an AWS managed policy (path as in
// "service-role/AmazonEBSCSIDriverPolicy") in a partition.
func ManagedPolicyARN(partition, path string) string {
	return fmt.Sprintf("arn:%s:iam::aws:policy/%s", partition, path)
}

// PolicyName is the last segment of a policy ARN.
func PolicyName(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// ServiceTrust is a trust policy letting an AWS service principal assume
// the role.
func ServiceTrust(principal string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": principal},
			"Action":    "sts:AssumeRole",
		}},
	}
}

// IRSATrust is a trust policy letting exactly one Kubernetes service
// account (subject "system:serviceaccount:<namespace>:<name>") assume the
// role with a token from the cluster's OIDC issuer meant for STS.
func IRSATrust(providerARN, issuerHost, subject string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Federated": providerARN},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": map[string]any{"StringEquals": map[string]any{
				issuerHost + ":sub": subject,
				issuerHost + ":aud": STSAudience,
			}},
		}},
	}
}

// IssuerHostOf extracts "oidc.eks.<region>.amazonaws.com/id/<ID>" from an
// IAM OIDC provider ARN.
func IssuerHostOf(providerARN string) (string, bool) {
	_, host, ok := strings.Cut(providerARN, ":oidc-provider/")
	return host, ok && host != "" && strings.HasPrefix(providerARN, "arn:")
}

// SamePolicy compares a policy document as IAM returns it (URL-encoded
// JSON, possibly reformatted) with the document coderctl wants, as parsed
// JSON: formatting, key order, a one-element list versus its element, and
// the order of lists do not count.
func SamePolicy(doc string, want map[string]any) bool {
	have, ok := ParsePolicy(doc)
	if !ok {
		return false
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var w any
	if err := json.Unmarshal(wantJSON, &w); err != nil {
		return false
	}
	return reflect.DeepEqual(canonicalPolicy(have), canonicalPolicy(w))
}

// ParsePolicy decodes a policy document, URL-decoding it first when it is
// not plain JSON (IAM returns documents URL-encoded).
func ParsePolicy(doc string) (any, bool) {
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

// canonicalPolicy normalizes a decoded policy so that equivalent spellings
// compare equal: a one-element list is its element, and lists are
// compared as sets.
func canonicalPolicy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = canonicalPolicy(x)
		}
		return out
	case []any:
		items := make([]any, len(t))
		for i := range t {
			items[i] = canonicalPolicy(t[i])
		}
		if len(items) == 1 {
			return items[0]
		}
		sort.Slice(items, func(i, j int) bool {
			a, _ := json.Marshal(items[i])
			b, _ := json.Marshal(items[j])
			return string(a) < string(b)
		})
		return items
	}
	return v
}

// ClientToken derives an idempotency token from the deployment, the stage
// and the resource, so a run killed after a create call and started again
// sends the same token and gets the same resource instead of a second one.
// incarnation tells a resource from its successor after a destroy, whose
// token AWS may still remember.
func ClientToken(deployment, stage, resource, incarnation string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"coderctl", deployment, stage, resource, incarnation}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// TrustAllows reports whether a trust policy as IAM returns it (URL
// encoded, possibly reformatted) has an Allow statement letting the wanted
// service principal assume the role. Other statements (added by an
// administrator) are tolerated.
func TrustAllows(encoded, principal string) bool {
	doc := encoded
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		var err error
		if doc, err = url.QueryUnescape(encoded); err != nil {
			return false
		}
	}
	var policy struct {
		Statement []struct {
			Effect    string
			Principal struct{ Service any }
			Action    any
		}
	}
	if err := json.Unmarshal([]byte(doc), &policy); err != nil {
		return false
	}
	for _, st := range policy.Statement {
		if st.Effect == "Allow" && oneOrMany(st.Principal.Service, principal) && oneOrMany(st.Action, "sts:AssumeRole") {
			return true
		}
	}
	return false
}

// oneOrMany reports whether a policy field (a string or a list of strings)
// holds want.
func oneOrMany(v any, want string) bool {
	switch t := v.(type) {
	case string:
		return t == want
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
