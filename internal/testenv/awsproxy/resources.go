package awsproxy

import (
	"encoding/json"
	"regexp"
	"strings"
)

// resourceRule says how to recognise one kind's create, delete and describe
// calls and where its status lives in the answer.
type resourceRule struct {
	kind            Kind
	create, delete  string // operation names
	describe        string
	createdID       func(op Operation, req, resp []byte, path []string) string
	deletedID       func(op Operation, req []byte, path []string) string
	describedIDs    func(op Operation, path []string) []string // IDs a describe may be about
	rewrite         func(body []byte, id, status string) []byte
	creating, gone  string // statuses to show while creating and deleting
	notFoundOnClear bool   // moto answers not-found once deleted
}

func pathPart(path []string, i int) string {
	if i < len(path) {
		return path[i]
	}
	return ""
}

func jsonField(body []byte, keys ...string) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// setJSONStatus rewrites obj.status (EKS) or obj.Status (ACM) in place.
func setJSONStatus(body []byte, obj, field, status string) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	inner, ok := m[obj].(map[string]any)
	if !ok {
		return body
	}
	inner[field] = status
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// setXMLStatusAfter rewrites the first <statusTag> after <idTag>id</idTag>:
// moto serialises members in the botocore shape's order, where the ID
// precedes the status (NatGatewayId before State, DBInstanceIdentifier
// before DBInstanceStatus, LoadBalancerArn before State/Code).
func setXMLStatusAfter(body []byte, idTag, id, statusTag, status string) []byte {
	s := string(body)
	at := strings.Index(s, "<"+idTag+">"+id+"</"+idTag+">")
	if at < 0 {
		return body
	}
	open := "<" + statusTag + ">"
	i := strings.Index(s[at:], open)
	if i < 0 {
		return body
	}
	start := at + i + len(open)
	end := strings.Index(s[start:], "</"+statusTag+">")
	if end < 0 {
		return body
	}
	return []byte(s[:start] + status + s[start+end:])
}

var (
	natIDRE  = regexp.MustCompile(`<natGatewayId>([^<]+)</natGatewayId>`)
	elbArnRE = regexp.MustCompile(`<LoadBalancerArn>([^<]+)</LoadBalancerArn>`)
)

func rules() []resourceRule {
	return []resourceRule{
		{kind: EKSCluster, create: "CreateCluster", delete: "DeleteCluster", describe: "DescribeCluster",
			createdID:    func(_ Operation, req, _ []byte, _ []string) string { return jsonField(req, "name") },
			deletedID:    func(_ Operation, _ []byte, p []string) string { return pathPart(p, 1) },
			describedIDs: func(_ Operation, p []string) []string { return []string{pathPart(p, 1)} },
			rewrite:      func(b []byte, _, st string) []byte { return setJSONStatus(b, "cluster", "status", st) },
			creating:     "CREATING", gone: "DELETING", notFoundOnClear: true},
		{kind: EKSNodegroup, create: "CreateNodegroup", delete: "DeleteNodegroup", describe: "DescribeNodegroup",
			createdID: func(_ Operation, req, _ []byte, p []string) string {
				return pathPart(p, 1) + "/" + jsonField(req, "nodegroupName")
			},
			deletedID:    func(_ Operation, _ []byte, p []string) string { return pathPart(p, 1) + "/" + pathPart(p, 3) },
			describedIDs: func(_ Operation, p []string) []string { return []string{pathPart(p, 1) + "/" + pathPart(p, 3)} },
			rewrite:      func(b []byte, _, st string) []byte { return setJSONStatus(b, "nodegroup", "status", st) },
			creating:     "CREATING", gone: "DELETING", notFoundOnClear: true},
		{kind: EKSAddon, create: "CreateAddon", delete: "DeleteAddon", describe: "DescribeAddon",
			createdID: func(_ Operation, req, _ []byte, p []string) string {
				return pathPart(p, 1) + "/" + jsonField(req, "addonName")
			},
			deletedID:    func(_ Operation, _ []byte, p []string) string { return pathPart(p, 1) + "/" + pathPart(p, 3) },
			describedIDs: func(_ Operation, p []string) []string { return []string{pathPart(p, 1) + "/" + pathPart(p, 3)} },
			rewrite:      func(b []byte, _, st string) []byte { return setJSONStatus(b, "addon", "status", st) },
			creating:     "CREATING", gone: "DELETING", notFoundOnClear: true},
		{kind: RDSInstance, create: "CreateDBInstance", delete: "DeleteDBInstance", describe: "DescribeDBInstances",
			createdID:    func(op Operation, _, _ []byte, _ []string) string { return op.Form.Get("DBInstanceIdentifier") },
			deletedID:    func(op Operation, _ []byte, _ []string) string { return op.Form.Get("DBInstanceIdentifier") },
			describedIDs: func(op Operation, _ []string) []string { return []string{op.Form.Get("DBInstanceIdentifier")} },
			rewrite: func(b []byte, id, st string) []byte {
				return setXMLStatusAfter(b, "DBInstanceIdentifier", id, "DBInstanceStatus", st)
			},
			creating: "creating", gone: "deleting", notFoundOnClear: true},
		{kind: NATGateway, create: "CreateNatGateway", delete: "DeleteNatGateway", describe: "DescribeNatGateways",
			createdID: func(_ Operation, _, resp []byte, _ []string) string {
				if m := natIDRE.FindSubmatch(resp); m != nil {
					return string(m[1])
				}
				return ""
			},
			deletedID:    func(op Operation, _ []byte, _ []string) string { return op.Form.Get("NatGatewayId") },
			describedIDs: nil, // every NAT in the answer
			rewrite: func(b []byte, id, st string) []byte {
				return setXMLStatusAfter(b, "natGatewayId", id, "state", st)
			},
			creating: "pending", gone: "deleting"},
		{kind: Certificate, create: "RequestCertificate", delete: "", describe: "DescribeCertificate",
			createdID:    func(_ Operation, _, resp []byte, _ []string) string { return jsonField(resp, "CertificateArn") },
			describedIDs: nil,
			rewrite: func(b []byte, id, st string) []byte {
				if jsonField(b, "Certificate", "CertificateArn") != id {
					return b
				}
				return setJSONStatus(b, "Certificate", "Status", st)
			},
			creating: "PENDING_VALIDATION"},
		{kind: LoadBalancer, create: "CreateLoadBalancer", delete: "DeleteLoadBalancer", describe: "DescribeLoadBalancers",
			createdID: func(op Operation, _, resp []byte, _ []string) string {
				if op.Service != "elasticloadbalancing" {
					return ""
				}
				if m := elbArnRE.FindSubmatch(resp); m != nil {
					return string(m[1])
				}
				return ""
			},
			deletedID:    func(op Operation, _ []byte, _ []string) string { return op.Form.Get("LoadBalancerArn") },
			describedIDs: nil,
			rewrite: func(b []byte, id, st string) []byte {
				return setXMLStatusAfter(b, "LoadBalancerArn", id, "Code", st)
			},
			creating: "provisioning"},
		updateRule(EKSVersionUpdate, "UpdateClusterVersion"),
		updateRule(EKSNodegroupUpdate, "UpdateNodegroupVersion"),
		// coderctl follows an add-on's update through DescribeAddon (the
		// AddonActive waiter), so that is where it stays UPDATING. Keyed by
		// cluster and add-on: only an add-on's first update is held, which
		// is one upgrade by one minor.
		{kind: EKSAddonUpdate, create: "UpdateAddon", describe: "DescribeAddon",
			createdID: func(_ Operation, _, _ []byte, p []string) string {
				return pathPart(p, 1) + "/" + pathPart(p, 3)
			},
			describedIDs: func(_ Operation, p []string) []string { return []string{pathPart(p, 1) + "/" + pathPart(p, 3)} },
			rewrite:      func(b []byte, _, st string) []byte { return setJSONStatus(b, "addon", "status", st) },
			creating:     "UPDATING"},
	}
}

// updateRule slows one kind of EKS update: the call's answer and every
// DescribeUpdate of its ID say InProgress until the profile's duration has
// passed (EKS's stand-in, behind the proxy, may be done sooner). Update IDs
// are unique, so the ID alone keys it.
func updateRule(kind Kind, call string) resourceRule {
	return resourceRule{kind: kind, create: call, describe: "DescribeUpdate",
		createdID:    func(_ Operation, _, resp []byte, _ []string) string { return jsonField(resp, "update", "id") },
		describedIDs: func(_ Operation, p []string) []string { return []string{pathPart(p, 3)} },
		rewrite: func(b []byte, id, st string) []byte {
			if jsonField(b, "update", "id") != id {
				return b
			}
			return setJSONStatus(b, "update", "status", st)
		},
		creating: "InProgress"}
}
