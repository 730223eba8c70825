package awsproxy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	eksschemas "github.com/aws/aws-sdk-go-v2/service/eks/schemas"
	"github.com/aws/smithy-go"
	smithytraits "github.com/aws/smithy-go/traits"
)

// Operation identifies one AWS API call as "service.Operation".
type Operation struct {
	Service string // from the SigV4 credential scope: ec2, eks, rds, acm, ...
	Name    string // Action, X-Amz-Target operation, or a REST route's SDK operation name
	Method  string
	REST    bool // named from method and path (EKS, Route53, S3)
	Form    url.Values
}

func (o Operation) String() string { return o.Service + "." + o.Name }

// IsRead reports whether the operation only reads.
func (o Operation) IsRead() bool {
	if o.REST && !strings.HasPrefix(o.Name, "Describe") && !strings.HasPrefix(o.Name, "List") {
		return o.Method == http.MethodGet || o.Method == http.MethodHead
	}
	for _, p := range []string{"Describe", "Get", "List", "Head", "Search", "Simulate", "Lookup"} {
		if strings.HasPrefix(o.Name, p) {
			return true
		}
	}
	return false
}

var scopeRE = regexp.MustCompile(`Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request`)

// identify names the operation of a request whose body has been read.
func identify(r *http.Request, body []byte) Operation {
	op := Operation{Service: "unknown", Method: r.Method}
	if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		op.Service = m[1]
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		op.Name = target[strings.LastIndexByte(target, '.')+1:]
		return op
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			op.Name, op.Form = form.Get("Action"), form
			return op
		}
	}
	op.REST = true
	if op.Service == "s3" {
		op.Name = s3Route(r.Method, r.URL.EscapedPath(), r.URL.Query())
	} else {
		op.Name = restRoute(op.Service, r.Method, r.URL.EscapedPath())
	}
	return op
}

// restRoute names a REST call (EKS, Route53, S3) by the operation whose
// method and URI template match it, as the AWS SDK serialises them; a call
// no template matches is named "?METHOD /path" so that a recording shows it
// rather than hiding it under a guessed name. The path is matched escaped:
// EKS access entries carry an ARN (with its '/') as one segment.
func restRoute(service, method, escapedPath string) string {
	parts := strings.Split(strings.Trim(escapedPath, "/"), "/")
	for _, r := range restRoutes[service] {
		if r.method == method && r.matches(parts) {
			return r.name
		}
	}
	return "?" + method + " /" + strings.Join(foldIDs(parts), "/")
}

// route is one REST operation: its name, HTTP method and URI template.
type route struct {
	name, method string
	segments     []string // "{Label}" matches any one segment
}

func (r route) matches(parts []string) bool {
	if len(parts) != len(r.segments) {
		return false
	}
	for i, seg := range r.segments {
		if strings.HasPrefix(seg, "{") {
			if parts[i] == "" {
				return false
			}
		} else if seg != parts[i] {
			return false
		}
	}
	return true
}

func newRoute(name, method, uri string) route {
	uri, _, _ = strings.Cut(uri, "?")
	return route{name: name, method: method, segments: strings.Split(strings.Trim(uri, "/"), "/")}
}

// restRoutes are the REST services' operations by signing name. EKS's come
// from the SDK's own operation schemas (name, method and URI as the client
// sends them); Route53's and S3's SDK clients carry no schemas, so their
// routes are copied from the SDK's serializers (route53 v1.70.10, s3
// v1.115.0) for the operations a deployment tool may call.
var restRoutes = map[string][]route{
	"eks":     eksRoutes(),
	"route53": route53Routes,
	"s3":      s3Routes,
}

func eksRoutes() []route {
	var out []route
	for _, op := range []*smithy.Schema{
		eksschemas.ActivateCertificateAuthority, eksschemas.AssociateAccessPolicy,
		eksschemas.AssociateEncryptionConfig, eksschemas.AssociateIdentityProviderConfig, eksschemas.CancelUpdate,
		eksschemas.CreateAccessEntry, eksschemas.CreateAddon, eksschemas.CreateCapability,
		eksschemas.CreateCertificateAuthority, eksschemas.CreateCluster, eksschemas.CreateEksAnywhereSubscription,
		eksschemas.CreateFargateProfile, eksschemas.CreateNodegroup, eksschemas.CreatePodIdentityAssociation,
		eksschemas.DeleteAccessEntry, eksschemas.DeleteAddon, eksschemas.DeleteCapability,
		eksschemas.DeleteCertificateAuthority, eksschemas.DeleteCluster, eksschemas.DeleteEksAnywhereSubscription,
		eksschemas.DeleteFargateProfile, eksschemas.DeleteNodegroup, eksschemas.DeletePodIdentityAssociation,
		eksschemas.DeregisterCluster, eksschemas.DescribeAccessEntry, eksschemas.DescribeAddon,
		eksschemas.DescribeAddonConfiguration, eksschemas.DescribeAddonVersions, eksschemas.DescribeCapability,
		eksschemas.DescribeCertificateAuthority, eksschemas.DescribeCluster, eksschemas.DescribeClusterVersions,
		eksschemas.DescribeEksAnywhereSubscription, eksschemas.DescribeFargateProfile,
		eksschemas.DescribeIdentityProviderConfig, eksschemas.DescribeInsight, eksschemas.DescribeInsightsRefresh,
		eksschemas.DescribeNodegroup, eksschemas.DescribePodIdentityAssociation, eksschemas.DescribeUpdate,
		eksschemas.DisassociateAccessPolicy, eksschemas.DisassociateIdentityProviderConfig,
		eksschemas.ListAccessEntries, eksschemas.ListAccessPolicies, eksschemas.ListAddons,
		eksschemas.ListAssociatedAccessPolicies, eksschemas.ListCapabilities, eksschemas.ListCertificateAuthorities,
		eksschemas.ListClusters, eksschemas.ListEksAnywhereSubscriptions, eksschemas.ListFargateProfiles,
		eksschemas.ListIdentityProviderConfigs, eksschemas.ListInsights, eksschemas.ListNodegroups,
		eksschemas.ListPodIdentityAssociations, eksschemas.ListTagsForResource, eksschemas.ListUpdates,
		eksschemas.RegisterCluster, eksschemas.StartInsightsRefresh, eksschemas.TagResource,
		eksschemas.UntagResource, eksschemas.UpdateAccessEntry, eksschemas.UpdateAddon, eksschemas.UpdateCapability,
		eksschemas.UpdateClusterConfig, eksschemas.UpdateClusterVersion, eksschemas.UpdateEksAnywhereSubscription,
		eksschemas.UpdateNodegroupConfig, eksschemas.UpdateNodegroupVersion,
		eksschemas.UpdatePodIdentityAssociation,
	} {
		if h, ok := smithy.SchemaTrait[*smithytraits.HTTP](op); ok {
			out = append(out, newRoute(op.ID().Name, h.Method, h.URI))
		}
	}
	return out
}

var route53Routes = []route{
	newRoute("ChangeResourceRecordSets", "POST", "/2013-04-01/hostedzone/{HostedZoneId}/rrset"),
	newRoute("ListResourceRecordSets", "GET", "/2013-04-01/hostedzone/{HostedZoneId}/rrset"),
	newRoute("ChangeTagsForResource", "POST", "/2013-04-01/tags/{ResourceType}/{ResourceId}"),
	newRoute("ListTagsForResource", "GET", "/2013-04-01/tags/{ResourceType}/{ResourceId}"),
	newRoute("ListTagsForResources", "POST", "/2013-04-01/tags/{ResourceType}"),
	newRoute("CreateHostedZone", "POST", "/2013-04-01/hostedzone"),
	newRoute("ListHostedZones", "GET", "/2013-04-01/hostedzone"),
	newRoute("GetHostedZone", "GET", "/2013-04-01/hostedzone/{Id}"),
	newRoute("DeleteHostedZone", "DELETE", "/2013-04-01/hostedzone/{Id}"),
	newRoute("UpdateHostedZoneComment", "POST", "/2013-04-01/hostedzone/{Id}"),
	newRoute("ListHostedZonesByName", "GET", "/2013-04-01/hostedzonesbyname"),
	newRoute("GetHostedZoneCount", "GET", "/2013-04-01/hostedzonecount"),
	newRoute("GetChange", "GET", "/2013-04-01/change/{Id}"),
	newRoute("GetDNSSEC", "GET", "/2013-04-01/hostedzone/{HostedZoneId}/dnssec"),
}

// s3Routes are path-style (moto and the state backend's endpoint override
// use it). Bucket sub-resources (?versioning, ?location) are told apart by
// query in s3Route before these are tried.
var s3Routes = []route{
	newRoute("HeadBucket", "HEAD", "/{Bucket}"),
	newRoute("ListObjectsV2", "GET", "/{Bucket}"),
	newRoute("CreateBucket", "PUT", "/{Bucket}"),
	newRoute("DeleteBucket", "DELETE", "/{Bucket}"),
	newRoute("HeadObject", "HEAD", "/{Bucket}/{Key+}"),
	newRoute("GetObject", "GET", "/{Bucket}/{Key+}"),
	newRoute("PutObject", "PUT", "/{Bucket}/{Key+}"),
	newRoute("DeleteObject", "DELETE", "/{Bucket}/{Key+}"),
}

// s3Route names S3 calls: bucket sub-resources by their query key, object
// keys of any depth folded into one {Key+} segment.
func s3Route(method, escapedPath string, query url.Values) string {
	parts := strings.SplitN(strings.Trim(escapedPath, "/"), "/", 2)
	if len(parts) == 1 {
		for _, sub := range []struct{ key, get, put string }{
			{"versioning", "GetBucketVersioning", "PutBucketVersioning"},
			{"location", "GetBucketLocation", ""},
			{"tagging", "GetBucketTagging", "PutBucketTagging"},
			{"policy", "GetBucketPolicy", "PutBucketPolicy"},
			{"encryption", "GetBucketEncryption", "PutBucketEncryption"},
		} {
			if _, ok := query[sub.key]; ok {
				switch {
				case method == "GET":
					return sub.get
				case method == "PUT" && sub.put != "":
					return sub.put
				}
			}
		}
	}
	if len(parts) == 2 { // the key is one segment, whatever its slashes
		parts[1] = strings.ReplaceAll(parts[1], "/", "%2F")
	}
	return restRoute("s3", method, strings.Join(parts, "/"))
}

func foldIDs(parts []string) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		if i > 0 && len(p) > 12 {
			p = "{id}"
		}
		out[i] = p
	}
	return out
}
