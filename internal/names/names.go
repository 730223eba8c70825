// Package names declares, once, every name that one stage produces and
// another stage (or the CLI, or a test) uses: stage and step names, state
// keys, and the names of AWS and Kubernetes objects. Stages may not import
// one another (decisions.md 14), so a producer's names live here, grouped
// by producer, and the producing stage's own exported constants refer to
// them. A name only its own stage uses stays in that stage.
package names

// Stage names, in the guide's order.
const (
	StagePrereqs      = "prereqs"
	StageNetwork      = "network"
	StageEKS          = "eks"
	StageNodeGroups   = "nodegroups"
	StageRDS          = "rds"
	StageACM          = "acm"
	StageSecrets      = "secrets"
	StageCoder        = "coder"
	StageProvisioners = "provisioners"
)

// Produced by the coder stage.
const (
	// CoderNamespace is where Coder runs: coderd, its secrets and the
	// external provisioners.
	CoderNamespace = "coder"
	// CoderInClusterURL is coderd through the chart's ClusterIP Service.
	CoderInClusterURL = "http://coder." + CoderNamespace + ".svc.cluster.local"
	// KeyNLBHostname is the state key of the public load balancer's name.
	KeyNLBHostname = "NLB_HOSTNAME"
)
