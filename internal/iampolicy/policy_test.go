package iampolicy

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/stages"
)

var shipped = Deployment{
	Account: "123456789012", Region: "us-west-2", Cluster: "coder-prod",
	Domain: "coder.example.com", HostedZoneID: "Z0123456789ABC",
}

func build(t *testing.T, d Deployment, sel Selection) Policy {
	t.Helper()
	p, err := Build(d, sel)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p
}

// TestStagesAreTheRegistry: the table's stages are the ones coderctl runs,
// in order; a new stage must get its rows (or be listed as calling none).
func TestStagesAreTheRegistry(t *testing.T) {
	var names []string
	for _, f := range stages.Registry() {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, Stages) {
		t.Errorf("iampolicy.Stages = %v, the registry has %v", Stages, names)
	}
}

// TestTableIsWellFormed: every row names a stage and a scope that exist,
// every scope is placed in the document once, and every action is
// service:Operation.
func TestTableIsWellFormed(t *testing.T) {
	actionRE := regexp.MustCompile(`^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$`)
	for i, g := range table {
		if g.stage != stageAny && g.stage != stageLeftovers && g.stage != stageState && !slices.Contains(Stages, g.stage) {
			t.Errorf("row %d: unknown stage %q", i, g.stage)
		}
		if _, ok := scopes[g.scope]; !ok {
			t.Errorf("row %d (%s): unknown scope %q", i, g.stage, g.scope)
		}
		if g.modes == 0 || len(g.actions) == 0 {
			t.Errorf("row %d (%s): no mode or no action", i, g.stage)
		}
		for _, a := range g.actions {
			if !actionRE.MatchString(a) {
				t.Errorf("row %d (%s): %q is not service:Operation", i, g.stage, a)
			}
		}
	}
	seen := map[string]bool{}
	for _, name := range scopeOrder {
		if seen[name] {
			t.Errorf("scope %s placed twice", name)
		}
		seen[name] = true
		if _, ok := scopes[name]; !ok {
			t.Errorf("scopeOrder names unknown scope %s", name)
		}
		if !regexp.MustCompile(`^[A-Za-z0-9]+$`).MatchString(name) {
			t.Errorf("scope %q is not a valid Sid", name)
		}
	}
	for name := range scopes {
		if !seen[name] {
			t.Errorf("scope %s is not placed in scopeOrder", name)
		}
	}
}

// TestBuild: what each selection grants, and what it must not.
func TestBuild(t *testing.T) {
	noZone := shipped
	noZone.HostedZoneID = ""
	remote := shipped
	remote.StateBucket, remote.StateKey = "team-state", "coder/prod.env"
	keyed := shipped
	keyed.KMSKey = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	aliased := shipped
	aliased.KMSKey = "arn:aws:kms:us-west-2:123456789012:alias/coder-prod-secrets"
	china := Deployment{Account: "123456789012", Region: "cn-north-1", Cluster: "coder-prod", Domain: "coder.example.cn"}
	tests := []struct {
		name      string
		d         Deployment
		sel       Selection
		has, lack []string
		// resources each of these actions must be granted on (in some
		// statement), and conditions a statement with the action carries.
		on   map[string]string
		cond map[string]string
	}{
		{name: "everything", d: shipped,
			has: []string{"eks:CreateCluster", "eks:DeleteCluster", "iam:PassRole", "ec2:CreateVpc", "route53:ChangeResourceRecordSets",
				"rds:CreateDBInstance", "secretsmanager:CreateSecret", "ec2:DescribeRegions", "sts:GetCallerIdentity", "iam:ListRoleTags"},
			lack: []string{"s3:GetObject", "kms:DescribeKey", "iam:CreateUser", "ec2:RunInstances"},
			on: map[string]string{
				"iam:CreateRole":                   "arn:aws:iam::123456789012:role/coder-prod-*",
				"iam:PassRole":                     "arn:aws:iam::123456789012:role/coder-prod-eks-cluster",
				"eks:CreateCluster":                "arn:aws:eks:us-west-2:123456789012:cluster/coder-prod",
				"eks:CreateNodegroup":              "arn:aws:eks:us-west-2:123456789012:cluster/coder-prod",
				"rds:CreateDBInstance":             "arn:aws:rds:us-west-2:123456789012:db:coder-prod-coder-db",
				"secretsmanager:CreateSecret":      "arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-prod/*",
				"route53:ChangeResourceRecordSets": "arn:aws:route53:::hostedzone/Z0123456789ABC",
				"logs:PutRetentionPolicy":          "arn:aws:logs:us-west-2:123456789012:log-group:/aws/eks/coder-prod/cluster",
			},
			cond: map[string]string{
				"ec2:CreateVpc":                    "aws:RequestTag/coderctl/deployment",
				"ec2:DeleteVpc":                    "aws:ResourceTag/coderctl/deployment",
				"iam:CreateRole":                   "aws:RequestTag/coderctl/deployment",
				"iam:DeleteRole":                   "aws:ResourceTag/coderctl/deployment",
				"iam:AttachRolePolicy":             "iam:PolicyARN",
				"iam:PassRole":                     "iam:PassedToService",
				"acm:DeleteCertificate":            "aws:ResourceTag/coderctl/deployment",
				"route53:ChangeResourceRecordSets": "route53:ChangeResourceRecordSetsNormalizedRecordNames",
			}},
		{name: "verify only reads", d: shipped, sel: Selection{Modes: []Mode{Verify}},
			has:  []string{"eks:DescribeCluster", "rds:DescribeDBInstances", "acm:DescribeCertificate", "servicequotas:GetServiceQuota"},
			lack: []string{"iam:PassRole", "eks:CreateCluster", "ec2:DeleteVpc", "secretsmanager:CreateSecret"}},
		{name: "down deletes and creates nothing", d: shipped, sel: Selection{Modes: []Mode{Down}},
			has:  []string{"eks:DeleteCluster", "ec2:DeleteVpc", "iam:DeleteRole", "rds:DeleteDBInstance", "secretsmanager:DeleteSecret", "iam:ListRoleTags"},
			lack: []string{"eks:CreateCluster", "ec2:CreateVpc", "iam:CreateRole", "iam:PassRole", "acm:RequestCertificate"}},
		{name: "one stage, one run", d: shipped, sel: Selection{Modes: []Mode{Up}, Stages: []string{"rds"}},
			has:  []string{"rds:CreateDBInstance", "ec2:CreateSecurityGroup", "sts:GetCallerIdentity", "ec2:DescribeRegions"},
			lack: []string{"eks:CreateCluster", "rds:DeleteDBInstance", "iam:ListRoleTags", "route53:GetHostedZone"}},
		{name: "no hosted zone: no Route53", d: noZone,
			lack: []string{"route53:GetHostedZone", "route53:ChangeResourceRecordSets", "route53:GetChange", "route53:ListResourceRecordSets"}},
		{name: "remote state", d: remote, sel: Selection{Modes: []Mode{Verify}},
			has: []string{"s3:ListBucket", "s3:GetBucketVersioning", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
			on: map[string]string{
				"s3:ListBucket": "arn:aws:s3:::team-state",
				"s3:PutObject":  "arn:aws:s3:::team-state/coder/prod.env.lock",
			}},
		{name: "KMS key by ARN", d: keyed,
			has: []string{"kms:DescribeKey"}, on: map[string]string{"kms:DescribeKey": keyed.KMSKey}},
		{name: "KMS key by alias", d: aliased,
			on:   map[string]string{"kms:DescribeKey": "arn:aws:kms:us-west-2:123456789012:key/*"},
			cond: map[string]string{"kms:DescribeKey": "kms:RequestAlias"}},
		{name: "China partition", d: china,
			on: map[string]string{"eks:CreateCluster": "arn:aws-cn:eks:cn-north-1:123456789012:cluster/coder-prod"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := build(t, tc.d, tc.sel)
			acts := p.Actions()
			for _, a := range tc.has {
				if !slices.Contains(acts, a) {
					t.Errorf("lacks %s", a)
				}
			}
			for _, a := range tc.lack {
				if slices.Contains(acts, a) {
					t.Errorf("grants %s", a)
				}
			}
			for a, res := range tc.on {
				if !grantsOn(p, a, res) {
					t.Errorf("%s is not granted on %s", a, res)
				}
			}
			for a, key := range tc.cond {
				if !conditionedOn(p, a, key) {
					t.Errorf("%s is granted without a %s condition", a, key)
				}
			}
		})
	}
}

func grantsOn(p Policy, action, resource string) bool {
	for _, s := range p.Statement {
		if slices.Contains(s.Action, action) && slices.Contains(s.Resource, resource) {
			return true
		}
	}
	return false
}

// conditionedOn: every statement granting action carries key.
func conditionedOn(p Policy, action, key string) bool {
	found := false
	for _, s := range p.Statement {
		if !slices.Contains(s.Action, action) {
			continue
		}
		found = true
		has := false
		for _, kv := range s.Condition {
			if _, ok := kv[key]; ok {
				has = true
			}
		}
		if !has {
			return false
		}
	}
	return found
}

var readRE = regexp.MustCompile(`:(Describe|List|Get)[A-Z]`)

// TestVerifyIsReadOnly: a verify policy grants nothing that changes AWS.
func TestVerifyIsReadOnly(t *testing.T) {
	for _, a := range build(t, shipped, Selection{Modes: []Mode{Verify}}).Actions() {
		if !readRE.MatchString(a) {
			t.Errorf("verify's policy grants %s", a)
		}
	}
}

// TestUnscopedStatementsOnlyRead: "*" (any resource) is only granted to
// reads, and every other resource is an ARN of this partition, account and
// region (global services: no region; Route53 and S3: neither).
func TestUnscopedStatementsOnlyRead(t *testing.T) {
	for _, d := range []Deployment{shipped, {Account: "210987654321", Region: "eu-central-1", Cluster: "c1", Domain: "d.example",
		HostedZoneID: "ZX", StateBucket: "b", StateKey: "k", KMSKey: "alias/k"}} {
		p := build(t, d, Selection{})
		d = d.complete()
		for _, s := range p.Statement {
			for _, r := range s.Resource {
				if r == "*" {
					for _, a := range s.Action {
						if !readRE.MatchString(a) {
							t.Errorf("%s: %s granted on any resource", s.Sid, a)
						}
					}
					continue
				}
				parts := strings.SplitN(r, ":", 6)
				if len(parts) != 6 || parts[0] != "arn" || parts[1] != d.Partition {
					t.Errorf("%s: %q is not an ARN of partition %s", s.Sid, r, d.Partition)
					continue
				}
				switch svc := parts[2]; svc {
				case "iam":
					if parts[3] != "" || parts[4] != d.Account {
						t.Errorf("%s: %q is not of account %s", s.Sid, r, d.Account)
					}
				case "route53", "s3":
					if parts[3] != "" || parts[4] != "" {
						t.Errorf("%s: %q", s.Sid, r)
					}
				default:
					if parts[3] != d.Region || parts[4] != d.Account {
						t.Errorf("%s: %q is not of region %s and account %s", s.Sid, r, d.Region, d.Account)
					}
				}
			}
		}
	}
}

// TestPassRoleOnlyToEKS: the only statement that may pass a role names
// the deployment's roles and EKS as the only receiver.
func TestPassRoleOnlyToEKS(t *testing.T) {
	p := build(t, shipped, Selection{})
	for _, s := range p.Statement {
		if !slices.Contains(s.Action, "iam:PassRole") {
			continue
		}
		if len(s.Action) != 1 {
			t.Errorf("%s grants PassRole with %v", s.Sid, s.Action)
		}
		for _, r := range s.Resource {
			if !strings.HasPrefix(r, "arn:aws:iam::123456789012:role/coder-prod-") || strings.Contains(r, "*") {
				t.Errorf("%s passes %s", s.Sid, r)
			}
		}
		if got := s.Condition["StringEquals"]["iam:PassedToService"]; got != "eks.amazonaws.com" {
			t.Errorf("%s: iam:PassedToService = %v", s.Sid, got)
		}
	}
}

// TestDocumentShape: the JSON IAM takes — Version, unique Sids, Allow,
// actions and resources present.
func TestDocumentShape(t *testing.T) {
	b, err := build(t, shipped, Selection{}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []map[string]any
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
		t.Fatalf("Version %q, %d statements", doc.Version, len(doc.Statement))
	}
	sids := map[string]bool{}
	for _, s := range doc.Statement {
		sid, _ := s["Sid"].(string)
		if sid == "" || sids[sid] {
			t.Errorf("Sid %q missing or repeated", sid)
		}
		sids[sid] = true
		if s["Effect"] != "Allow" || s["Action"] == nil || s["Resource"] == nil {
			t.Errorf("%s: %v", sid, s)
		}
	}
}

// TestSplit: the parts each fit in a managed policy and, together, grant
// exactly what the whole does (each action on the same resources under the
// same conditions).
func TestSplit(t *testing.T) {
	whole := build(t, shipped, Selection{})
	for _, max := range []int{ManagedPolicyMax, 2000, 900} {
		parts := whole.Split(max)
		if whole.Size() > max && len(parts) < 2 {
			t.Fatalf("max %d: %d characters in %d part(s)", max, whole.Size(), len(parts))
		}
		grants := func(ps ...Policy) map[string]bool {
			out := map[string]bool{}
			for _, p := range ps {
				for _, st := range p.Statement {
					cond, _ := json.Marshal(st.Condition)
					for _, a := range st.Action {
						for _, r := range st.Resource {
							out[a+" "+r+" "+string(cond)] = true
						}
					}
				}
			}
			return out
		}
		sids := map[string]bool{}
		for i, p := range parts {
			if p.Size() > max {
				t.Errorf("max %d: part %d is %d characters", max, i+1, p.Size())
			}
			for _, st := range p.Statement {
				if sids[st.Sid] {
					t.Errorf("max %d: Sid %s in two parts", max, st.Sid)
				}
				sids[st.Sid] = true
			}
		}
		if w, g := grants(whole), grants(parts...); !maps.Equal(w, g) {
			t.Errorf("max %d: the parts grant %d (action, resource, condition) triples, the whole %d", max, len(g), len(w))
		}
	}
}

// TestDependentActionsAreGranted: what AWS authorizes alongside a call is
// in the policy with the call.
func TestDependentActionsAreGranted(t *testing.T) {
	acts := build(t, shipped, Selection{}).Actions()
	for a, why := range Dependent {
		if !slices.Contains(acts, a) {
			t.Errorf("%s (%s) is not granted", a, why)
		}
	}
}

func TestUnknownSelection(t *testing.T) {
	for _, sel := range []Selection{{Modes: []Mode{"apply"}}, {Stages: []string{"nosuch"}}} {
		if _, err := Build(shipped, sel); err == nil {
			t.Errorf("Build(%v) accepted", sel)
		}
	}
}

func TestActionFor(t *testing.T) {
	for op, want := range map[string]string{
		"s3:HeadBucket": "s3:ListBucket", "s3:HeadObject": "s3:GetObject", "eks:DescribeCluster": "eks:DescribeCluster",
	} {
		if got := ActionFor(op); got != want {
			t.Errorf("ActionFor(%s) = %s, want %s", op, got, want)
		}
	}
}
