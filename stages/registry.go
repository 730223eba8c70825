// Package stages is the registry of every stage coderctl runs, in the
// guide's order. The CLI generates `coderctl stage <name> ...` from it.
package stages

import (
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/stages/acm"
	"github.com/coderctl/coderctl/stages/coder"
	"github.com/coderctl/coderctl/stages/eks"
	"github.com/coderctl/coderctl/stages/network"
	"github.com/coderctl/coderctl/stages/nodegroups"
	"github.com/coderctl/coderctl/stages/prereqs"
	"github.com/coderctl/coderctl/stages/provisioners"
	"github.com/coderctl/coderctl/stages/rds"
	"github.com/coderctl/coderctl/stages/secrets"
)

// Factory builds a stage from the run's dependencies.
type Factory struct {
	Name    string
	Summary string
	New     func(*deploy.Deps) engine.Stage
}

// Registry lists the stages that exist, in the guide's order.
func Registry() []Factory {
	return []Factory{
		{Name: prereqs.Name, Summary: "check credentials, region, quotas, instance types and inputs", New: prereqs.New},
		{Name: network.Name, Summary: "VPC, public and private subnets in three AZs, internet gateway, NAT, routes", New: network.New},
		{Name: eks.Name, Summary: "cluster role, EKS cluster, IAM OIDC provider (IRSA), add-ons", New: eks.New},
		{Name: nodegroups.Name, Summary: "node role and the four tainted managed node groups, created in parallel", New: nodegroups.New},
		{Name: rds.Name, Summary: "PostgreSQL multi-AZ, encrypted, private; master password only in Secrets Manager", New: rds.New},
		{Name: acm.Name, Summary: "TLS certificate for CODER_DOMAIN and *.CODER_DOMAIN, validated through DNS", New: acm.New},
		{Name: secrets.Name, Summary: "database URL in Secrets Manager, IRSA role, Secrets Store CSI driver + AWS provider, SecretProviderClass", New: secrets.New},
		{Name: coder.Name, Summary: "Coder helm release on coderd nodes, NLB terminating TLS with the certificate, DNS", New: coder.New},
		{Name: provisioners.Name, Summary: "provisioner key and external provisioners sized by USERS", New: provisioners.New},
	}
}

// Build constructs every registered stage.
func Build(d *deploy.Deps) []engine.Stage {
	var out []engine.Stage
	for _, f := range Registry() {
		out = append(out, f.New(d))
	}
	return out
}
