// Package iampolicy is the least-privilege IAM policy coderctl's runs need:
// a table of the AWS actions each stage calls in each kind of run (up,
// verify, down), with the resources each may touch scoped as far as AWS
// allows — the deployment's tag, its names, this account and region — and
// the JSON rendering of an identity-based policy. `coderctl iam-policy`
// prints it; the e2e suite holds it against the calls a recording proxy
// sees during up, verify, a second up and down.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Mode is a kind of coderctl run.
type Mode string

// The runs a policy can be made for.
const (
	// Up is `coderctl up` (and `plan`, `stage S apply|plan`): the inputs'
	// checks, each step's plan and apply, and each stage's checkpoint.
	Up Mode = "up"
	// Verify is `coderctl verify` (and `stage S verify`): checkpoints only.
	Verify Mode = "verify"
	// Down is `coderctl down` (and `stage S destroy`): destroy steps, then
	// the listing of what still carries the deployment tag.
	Down Mode = "down"
)

// Modes are every mode, in the order runs happen.
var Modes = []Mode{Up, Verify, Down}

// ParseMode reads a mode's name.
func ParseMode(s string) (Mode, bool) {
	for _, m := range Modes {
		if string(m) == s {
			return m, true
		}
	}
	return "", false
}

// modeSet is a set of modes as bits.
type modeSet uint8

const (
	up modeSet = 1 << iota
	verify
	down
	// upVerify are the reads of checkpoints: verify runs them, and up runs
	// each stage's checkpoint after applying it.
	upVerify = up | verify
	always   = up | verify | down
)

func (m Mode) bit() modeSet {
	switch m {
	case Up:
		return up
	case Verify:
		return verify
	case Down:
		return down
	}
	return 0
}

// Deployment is what scopes the policy's resources.
type Deployment struct {
	Partition string // aws, aws-cn, aws-us-gov; empty means the region's
	Account   string
	Region    string
	// Cluster is the EKS cluster's name, which is also the deployment's
	// name: the value of the coderctl/deployment tag and the prefix of
	// every IAM role and Secrets Manager name coderctl gives.
	Cluster string
	// Domain is CODER_DOMAIN: the DNS names coderctl writes in the zone.
	Domain string
	// HostedZoneID is HOSTED_ZONE_ID ("" when the DNS records are made by
	// hand: no Route53 permission is needed then).
	HostedZoneID string
	// DBInstanceID is the RDS instance's identifier (and its subnet
	// group's name); empty means the rds stage's rule for Cluster.
	DBInstanceID string
	// KMSKey is secretsEncryption.keyARN from cluster-config.yaml: a key
	// or alias ARN ("" when secrets are not encrypted with a KMS key).
	KMSKey string
	// StateBucket and StateKey are the remote state's object ("" for a
	// local state file).
	StateBucket, StateKey string
}

// Selection says which runs and stages the policy is for.
type Selection struct {
	Modes  []Mode   // empty: every mode
	Stages []string // empty: every stage
}

// Policy is an IAM identity-based policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one policy statement. Resource is a list even when it holds
// one ARN, so the document has one shape.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// JSON renders the policy as IAM shows it, indented, ending in a newline.
func (p Policy) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Actions lists every action the policy grants, sorted, without duplicates.
func (p Policy) Actions() []string {
	seen := map[string]bool{}
	for _, s := range p.Statement {
		for _, a := range s.Action {
			seen[a] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Build makes the policy for the runs and stages selected. Unknown stage
// names are an error (the CLI reports them as bad input first).
func Build(d Deployment, sel Selection) (Policy, error) {
	d = d.complete()
	var modes modeSet
	if len(sel.Modes) == 0 {
		modes = always
	}
	for _, m := range sel.Modes {
		if m.bit() == 0 {
			return Policy{}, fmt.Errorf("unknown mode %q", m)
		}
		modes |= m.bit()
	}
	for _, s := range sel.Stages {
		if !slices.Contains(Stages, s) {
			return Policy{}, fmt.Errorf("unknown stage %q", s)
		}
	}
	stageOn := func(stage string) bool {
		return stage == "" || len(sel.Stages) == 0 || slices.Contains(sel.Stages, stage)
	}
	// Actions per scope, in the scopes' order.
	byScope := map[string]map[string]bool{}
	for _, g := range table {
		if g.modes&modes == 0 || !stageOn(g.stage) {
			continue
		}
		if g.stage == stageState && d.StateBucket == "" {
			continue
		}
		sc, ok := scopes[g.scope]
		if !ok {
			return Policy{}, fmt.Errorf("internal: grant of %s names unknown scope %q", g.stage, g.scope)
		}
		if sc.needs != nil && !sc.needs(d) {
			continue
		}
		if byScope[g.scope] == nil {
			byScope[g.scope] = map[string]bool{}
		}
		for _, a := range g.actions {
			byScope[g.scope][a] = true
		}
	}
	p := Policy{Version: "2012-10-17"}
	for _, name := range scopeOrder {
		acts := byScope[name]
		if len(acts) == 0 {
			continue
		}
		sc := scopes[name]
		st := Statement{Sid: name, Effect: "Allow", Resource: sc.resources(d)}
		for a := range acts {
			st.Action = append(st.Action, a)
		}
		sort.Strings(st.Action)
		if sc.condition != nil {
			st.Condition = sc.condition(d)
		}
		p.Statement = append(p.Statement, st)
	}
	return p, nil
}

// arn builds an ARN in the deployment's partition.
func (d Deployment) arn(service, region, account, resource string) string {
	return strings.Join([]string{"arn", d.Partition, service, region, account, resource}, ":")
}

// regional is an ARN of service in this region and account.
func (d Deployment) regional(service, resource string) string {
	return d.arn(service, d.Region, d.Account, resource)
}

// global is an ARN of a global service (IAM) in this account.
func (d Deployment) global(service, resource string) string {
	return d.arn(service, "", d.Account, resource)
}

// ActionFor names the IAM action that authorizes an SDK operation, both
// written "service:Operation" with the service as SigV4 signs it (which is
// IAM's prefix for every service coderctl calls). They are the same name
// except where IAM says otherwise.
func ActionFor(op string) string {
	if a, ok := renamed[op]; ok {
		return a
	}
	return op
}

// renamed are the operations IAM authorizes under another action's name.
var renamed = map[string]string{
	"s3:HeadBucket": "s3:ListBucket",
	"s3:HeadObject": "s3:GetObject",
}

// Dependent are actions the policy grants that coderctl never calls: AWS
// authorizes them as part of a call it makes, so without them that call
// is refused. Each with the call that needs it.
var Dependent = map[string]string{
	"iam:PassRole":                 "eks:CreateCluster (cluster role), eks:CreateNodegroup (node role), eks:CreateAddon (EBS CSI role) pass a role to EKS",
	"iam:TagRole":                  "iam:CreateRole with tags",
	"iam:TagOpenIDConnectProvider": "iam:CreateOpenIDConnectProvider with tags",
	"iam:CreateServiceLinkedRole":  "eks:CreateCluster and eks:CreateNodegroup create EKS's service-linked roles on first use in an account",
	"rds:AddTagsToResource":        "rds:CreateDBInstance and rds:CreateDBSubnetGroup with tags",
	"rds:CreateDBSnapshot":         "rds:DeleteDBInstance with a final snapshot (a major engine upgrade also calls it itself)",
	"acm:AddTagsToCertificate":     "acm:RequestCertificate with tags",
	"logs:TagResource":             "logs:CreateLogGroup with tags",
}

// ManagedPolicyMax is the most characters IAM takes in one managed
// policy, not counting whitespace.
const ManagedPolicyMax = 6144

// Size is the policy's length as IAM counts it (whitespace excluded).
func (p Policy) Size() int {
	b, _ := json.Marshal(p) // compact: whitespace only inside strings, which have none
	return len(b)
}

// Split packs the statements into as few policies as hold at most max
// characters each, in order; a statement too big alone is cut by its
// actions (its parts' Sids numbered). Attached together, the parts grant
// exactly what p grants.
func (p Policy) Split(max int) []Policy {
	var parts []Policy
	cur := Policy{Version: p.Version}
	for _, s := range p.Statement {
		for _, piece := range cutStatement(s, max-Policy{Version: p.Version}.Size()) {
			next := cur
			next.Statement = append(slices.Clone(cur.Statement), piece)
			if len(cur.Statement) > 0 && next.Size() > max {
				parts = append(parts, cur)
				cur = Policy{Version: p.Version, Statement: []Statement{piece}}
				continue
			}
			cur = next
		}
	}
	if len(cur.Statement) > 0 {
		parts = append(parts, cur)
	}
	return parts
}

// cutStatement halves s's actions until each piece fits in room.
func cutStatement(s Statement, room int) []Statement {
	b, _ := json.Marshal(s)
	if len(b) < room || len(s.Action) < 2 {
		return []Statement{s}
	}
	half := len(s.Action) / 2
	a, z := s, s
	a.Action, z.Action = s.Action[:half], s.Action[half:]
	var out []Statement
	for _, piece := range append(cutStatement(a, room), cutStatement(z, room)...) {
		out = append(out, piece)
	}
	for i := range out {
		out[i].Sid = fmt.Sprintf("%s%d", s.Sid, i+1)
	}
	return out
}
