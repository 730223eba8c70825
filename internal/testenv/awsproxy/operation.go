package awsproxy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Operation identifies one AWS API call as "service.Operation".
type Operation struct {
	Service string // from the SigV4 credential scope: ec2, eks, rds, acm, ...
	Name    string // Action, X-Amz-Target operation, or a REST route's name
	Method  string
	REST    bool // named from method and path (EKS, Route53)
	Form    url.Values
}

func (o Operation) String() string { return o.Service + "." + o.Name }

// IsRead reports whether the operation only reads.
func (o Operation) IsRead() bool {
	if o.REST && !strings.HasPrefix(o.Name, "Describe") && !strings.HasPrefix(o.Name, "List") {
		return o.Method == http.MethodGet
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
	op.Name, op.REST = restRoute(op.Service, r.Method, r.URL.Path), true
	return op
}

// restRoute names the REST operations of EKS; other REST calls (Route53)
// get "METHOD_path" with long IDs folded.
func restRoute(service, method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if service == "eks" && len(parts) >= 1 && parts[0] == "clusters" {
		if name := eksRoute(method, parts); name != "" {
			return name
		}
	}
	return method + "_" + strings.Join(foldIDs(parts), "_")
}

// eksRoute maps /clusters[/{name}[/node-groups|/addons[/{x}[/update-config]]]].
func eksRoute(method string, p []string) string {
	names := map[string]string{"node-groups": "Nodegroup", "addons": "Addon", "access-entries": "AccessEntry", "updates": "Update"}
	switch {
	case len(p) == 1:
		return map[string]string{"GET": "ListClusters", "POST": "CreateCluster"}[method]
	case len(p) == 2:
		return map[string]string{"GET": "DescribeCluster", "DELETE": "DeleteCluster"}[method]
	case len(p) == 3 && p[2] == "update-config":
		return "UpdateClusterConfig"
	case len(p) == 3:
		kind := names[p[2]]
		return map[string]string{"GET": "List" + kind + "s", "POST": "Create" + kind}[method]
	case len(p) == 4:
		kind := names[p[2]]
		return map[string]string{"GET": "Describe" + kind, "DELETE": "Delete" + kind, "POST": "Update" + kind}[method]
	case len(p) == 5 && p[4] == "update-config":
		return "Update" + names[p[2]] + "Config"
	}
	return ""
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
