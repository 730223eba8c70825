// Package sizing turns a number of peak concurrent users into the capacity
// a deployment needs: external provisioner replicas (one concurrent build
// each) and the provisioner nodes that hold them, coderd replicas and their
// resources, workspace node bounds and the database instance class. It is
// pure: no AWS, no Kubernetes; the coder and provisioners stages, `plan` and
// `coderctl size` all read the same numbers from here.
//
// Sources: the guide's capacity table (concurrent builds by users, with its
// "2 pods × 10 daemons" corrected: an external provisioner runs exactly one
// build at a time, so replicas = concurrent builds; see decisions.md) and
// Coder's validated architectures (1k, 2k and 3k users) for everything
// beyond 500 users and for coderd and database sizes.
package sizing

import (
	"fmt"
	"math"

	"github.com/coderctl/coderctl/internal/sizing/dbclass"
)

// Resources is a container's CPU and memory, in Kubernetes quantities.
type Resources struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// Pod is a pod's requests and limits.
type Pod struct {
	Requests Resources `json:"requests"`
	Limits   Resources `json:"limits"`
}

// Values renders the pod's resources as a chart's `resources` value.
func (p Pod) Values() map[string]any {
	return map[string]any{
		"requests": map[string]any{"cpu": p.Requests.CPU, "memory": p.Requests.Memory},
		"limits":   map[string]any{"cpu": p.Limits.CPU, "memory": p.Limits.Memory},
	}
}

// Provisioners is the external provisioner sizing.
type Provisioners struct {
	// ConcurrentBuilds is how many workspace builds may run at once.
	ConcurrentBuilds int `json:"concurrent_builds"`
	// Replicas equals ConcurrentBuilds: one build per provisioner pod.
	Replicas int `json:"replicas"`
	Pod      Pod `json:"pod"`
	// Basis says which rule gave the numbers.
	Basis string `json:"basis"`
}

// Coderd is the control plane sizing.
type Coderd struct {
	Replicas int    `json:"replicas"`
	Pod      Pod    `json:"pod"`
	Basis    string `json:"basis"`
}

// Workspaces bounds the workspace node group.
type Workspaces struct {
	// PerUser is what one concurrent workspace is assumed to request.
	PerUser Resources `json:"per_user"`
	// Limit is what one workspace may burst to; HomeSize its home volume.
	Limit    Resources `json:"limit"`
	HomeSize string    `json:"home_size"`
	MinNodes int       `json:"min_nodes"`
	// MaxNodes holds every user's workspace at once on the workspace group's
	// instance type; 0 when the type is unknown.
	MaxNodes     int    `json:"max_nodes"`
	InstanceType string `json:"instance_type,omitempty"`
	PerNode      int    `json:"workspaces_per_node,omitempty"`
}

// Database is the RDS sizing.
type Database struct {
	InstanceClass string `json:"instance_class"`
	MultiAZ       bool   `json:"multi_az"`
	Basis         string `json:"basis"`
}

// Sizing is the whole plan for a number of users.
type Sizing struct {
	Users        int          `json:"users"`
	Provisioners Provisioners `json:"provisioners"`
	Coderd       Coderd       `json:"coderd"`
	Workspaces   Workspaces   `json:"workspaces"`
	Database     Database     `json:"database"`
	// Notes are what a platform engineer should read with the numbers.
	Notes []string `json:"notes,omitempty"`
}

// Provisioner replica rule. Up to 500 users the guide's concurrent-builds
// column; beyond, 10 more per extra 100 users, capped at the 120
// provisioners of Coder's validated 2,000-user architecture (4 nodes × 30).
const (
	buildsPerHundredAbove500 = 10
	MaxProvisionerReplicas   = 120
	// validatedUsersLimit is the largest validated architecture coderctl
	// follows (3,000 users); beyond it the numbers are extrapolated.
	validatedUsersLimit = 3000
)

// provisionerPod is what one provisioner (one Terraform run) gets: 1 vCPU
// and 1 GiB requested, twice that allowed in bursts (terraform init and
// large providers spike).
func provisionerPod() Pod {
	return Pod{Requests: Resources{CPU: "1", Memory: "1Gi"}, Limits: Resources{CPU: "2", Memory: "2Gi"}}
}

// workspaceRequest is one concurrent workspace at the floor Coder's
// validated architectures assume: 2 GB of memory, and 16 workspaces on an
// 8 vCPU node. Templates that request more need proportionally more nodes.
func workspaceRequest() Resources { return Resources{CPU: "500m", Memory: "2Gi"} }

// workspaceLimit lets a workspace burst to 4 times its CPU request and
// twice its memory (a compile, a test run) without a node's worth of
// workspaces being able to starve it: bursts beyond requests are taken
// from idle neighbours only.
func workspaceLimit() Resources { return Resources{CPU: "2", Memory: "4Gi"} }

// workspaceHomeSize is each workspace's persistent home (gp3 grows in
// place: the class allows expansion).
const workspaceHomeSize = "10Gi"

const minWorkspaceNodes = 2

// For sizes a deployment for users peak concurrent users (at least 1).
// workspaceType is the workspace node group's instance type ("" when
// unknown).
func For(users int, workspaceType string) Sizing {
	users = max(users, 1)
	s := Sizing{
		Users:        users,
		Provisioners: provisionersFor(users),
		Coderd:       coderdFor(users),
		Workspaces:   workspacesFor(users, workspaceType),
		Database:     databaseFor(users),
	}
	if users > validatedUsersLimit {
		s.Notes = append(s.Notes, fmt.Sprintf("%d users is beyond Coder's largest validated architecture (3,000 users): "+
			"treat these numbers as a starting point and scale-test (coder exp scaletest)", users))
	}
	if s.Provisioners.Replicas == MaxProvisionerReplicas && users > 500 {
		s.Notes = append(s.Notes, fmt.Sprintf("provisioners are capped at %d (Coder's validated 2,000-user architecture: 4 nodes × 30); "+
			"the 3,000-user architecture runs 240 — raise replicas in PROVISIONER_VALUES_FILE if builds queue", MaxProvisionerReplicas))
	}
	if s.Coderd.Replicas > 1 {
		s.Notes = append(s.Notes, "more than one coderd replica (high availability) and external provisioners are Coder Premium features")
	}
	return s
}

func provisionersFor(users int) Provisioners {
	var builds int
	var basis string
	switch {
	case users < 100:
		builds, basis = 20, "guide: fewer than 100 users → 20 concurrent builds"
	case users <= 250:
		builds, basis = 30, "guide: 100–250 users → 30 concurrent builds"
	case users <= 500:
		builds, basis = 40, "guide: 250–500 users → 40 concurrent builds"
	default:
		extra := int(math.Ceil(float64(users-500) / 100))
		builds = min(40+buildsPerHundredAbove500*extra, MaxProvisionerReplicas)
		basis = fmt.Sprintf("beyond the guide's 500 users, per Coder's validated architectures: 40 + 10 per extra 100 users, capped at %d",
			MaxProvisionerReplicas)
	}
	return Provisioners{ConcurrentBuilds: builds, Replicas: builds, Pod: provisionerPod(), Basis: basis}
}

// coderdFor follows the validated architectures: up to 1,000 users a
// 2 vCPU / 8 GB share per replica, up to 2,000 a whole 4 vCPU / 16 GB node,
// beyond that 4 replicas on 8 vCPU / 32 GB nodes. Two replicas at least, for
// the guide's high availability.
func coderdFor(users int) Coderd {
	switch {
	case users <= 1000:
		return Coderd{Replicas: 2, Pod: Pod{Requests: Resources{"2", "4Gi"}, Limits: Resources{"4", "8Gi"}},
			Basis: "validated architecture up to 1,000 users: 2 replicas, 2 vCPU / 4–8 GiB each (fits m7i.xlarge)"}
	case users <= 2000:
		return Coderd{Replicas: 2, Pod: Pod{Requests: Resources{"3", "8Gi"}, Limits: Resources{"4", "12Gi"}},
			Basis: "validated architecture up to 2,000 users: 2 replicas, one 4 vCPU / 16 GB node each"}
	default:
		return Coderd{Replicas: 4, Pod: Pod{Requests: Resources{"6", "24Gi"}, Limits: Resources{"8", "28Gi"}},
			Basis: "validated architecture up to 3,000 users: 4 replicas, one 8 vCPU / 32 GB node each"}
	}
}

func workspacesFor(users int, instanceType string) Workspaces {
	w := Workspaces{PerUser: workspaceRequest(), Limit: workspaceLimit(), HomeSize: workspaceHomeSize,
		MinNodes: minWorkspaceNodes, InstanceType: instanceType}
	per := PodsPerNode(instanceType, Pod{Requests: workspaceRequest()})
	if per > 0 {
		w.PerNode = per
		w.MaxNodes = max(ceilDiv(users, per), minWorkspaceNodes)
	}
	return w
}

// databaseFor is always multi-AZ; the class comes from dbclass, which
// DB_INSTANCE_CLASS's default also reads.
func databaseFor(users int) Database {
	class, basis := dbclass.For(users)
	return Database{InstanceClass: class, MultiAZ: true, Basis: basis}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
