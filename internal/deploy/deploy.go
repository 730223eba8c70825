// Package deploy holds what every stage needs to do its work: the resolved
// inputs, the cluster configuration, the state store, AWS clients and the
// run's options. The CLI builds one Deps per run and passes it to each
// stage's constructor; stages read nothing from globals or flags.
package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/state"
)

// Options are the run's switches that stages act on.
type Options struct {
	// Wait is how SDK waiters poll (tests and benchmarks shorten it).
	Wait awsx.WaitPolicy
	// NoWait leaves long waits (ACM validation) pending instead of blocking.
	NoWait bool
	// DeleteDatabase lets destroy remove a database with deletion protection.
	DeleteDatabase bool
	// SkipFinalSnapshot destroys the database without a final snapshot.
	SkipFinalSnapshot bool
	// ForceDeleteSecrets deletes secrets without a recovery window.
	ForceDeleteSecrets bool
	// DeleteVolumes lets destroy delete the EBS volumes made for the
	// cluster's claims (people's home directories); kept and listed otherwise.
	DeleteVolumes bool
	// ApplyImmediately applies database class and storage changes now
	// instead of in the maintenance window.
	ApplyImmediately bool
	// AllowMajorVersionUpgrade lets apply move the database engine to a
	// new major version (after a snapshot).
	AllowMajorVersionUpgrade bool
	// AllowDowngrade lets apply install a Coder version lower than the one
	// running (after the database was restored to match).
	AllowDowngrade bool
	// Version is coderctl's version, for user agents and tags.
	Version string
}

// KubeFactory returns a Kubernetes client for the deployment's cluster.
type KubeFactory func(ctx context.Context) (kubernetes.Interface, *rest.Config, error)

// Deps is everything a stage may use.
type Deps struct {
	Inputs     *config.Inputs
	Cluster    *api.ClusterConfig
	ConfigPath string
	State      *state.Store
	AWS        *awsx.Clients
	Kube       KubeFactory
	Opts       Options
	Now        func() time.Time
	// LookupEnv reads the process environment, for the values that must
	// never be stored (CODER_SESSION_TOKEN, OAuth secrets); nil means
	// os.LookupEnv. Stages read it through Getenv.
	LookupEnv func(string) (string, bool)
	// HelmCacheDir is helm's repository cache for the stages that install
	// charts; empty means helmx.DefaultCacheDir(). Tests point it at a
	// temporary directory.
	HelmCacheDir string
}

// Deployment is the name every resource is tagged with.
func (d *Deps) Deployment() string { return d.Inputs.ClusterName() }

// Region is the deployment's AWS region.
func (d *Deps) Region() string { return d.Inputs.Region() }

// Tags returns the tags for a resource of stage, with extra ones.
func (d *Deps) Tags(stage string, extra map[string]string) map[string]string {
	return awsx.Tags(d.Deployment(), stage, extra)
}

// Output reads a state key another step recorded, or says which stage to run.
func (d *Deps) Output(key, producer string) (string, error) {
	if v := d.State.Get(key); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("%s is not in %s yet: run 'coderctl stage %s apply' first", key, d.State.Path(), producer)
}

// Record stores outputs in the state file right away, so a run killed
// after this point finds the resource by state as well as by tags.
func (d *Deps) Record(kv map[string]string) error {
	return d.State.SetMany(kv)
}

// NodeGroups returns the managed node groups from the cluster configuration.
func (d *Deps) NodeGroups() []config.NodeGroupSpec { return config.NodeGroups(d.Cluster) }

// Clock returns the current time.
func (d *Deps) Clock() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// ClusterGone reports whether the deployment's EKS cluster no longer
// exists. Destroy steps of the Kubernetes stages use it: what they put in
// the cluster went with it, and a teardown must not fail forever on a
// cluster that is gone.
func (d *Deps) ClusterGone(ctx context.Context) bool {
	if d.AWS == nil || d.AWS.EKS == nil {
		return false
	}
	_, err := d.AWS.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(d.Deployment())})
	return awsx.IsNotFound(err)
}
