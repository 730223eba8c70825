// Package eksupdate runs EKS updates and waits for them: of the cluster
// (its version, configuration, encryption: the eks stage) and of managed
// node groups (the eks stage between two minors of an upgrade, the
// nodegroups stage for everything else). Start an update, retried while
// EKS is busy with another one, poll DescribeUpdate until it is over (EKS
// has no waiter for updates), and for a node group wait with the SDK's
// waiter until it is ACTIVE again. The node group waits' delays and
// bounds live here, once.
package eksupdate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// Waiting for node groups: the SDK waiters' own poll delays; managed node
// group failures only surface after ~21 minutes, so the bounds leave room.
const (
	MinDelay = 30 * time.Second
	MaxDelay = 120 * time.Second
	// VersionTimeout bounds each wait of an UpdateNodegroupVersion (a
	// Kubernetes version or a launch template version): EKS replaces every
	// node, in batches of the group's updateConfig, each batch launching,
	// joining and draining.
	VersionTimeout = 60 * time.Minute
	// ConfigTimeout bounds each wait of an UpdateNodegroupConfig (scaling,
	// labels, taints, updateConfig), which replaces no node.
	ConfigTimeout = 30 * time.Minute
)

// Group is one managed node group of a cluster.
type Group struct {
	EKS     *eks.Client
	Wait    awsx.WaitPolicy
	Cluster string
	Name    string
}

// Upgrade moves the group from Kubernetes from to to with
// UpdateNodegroupVersion and the version alone: the launch template stays
// the version the group runs, and EKS picks the AMI release for the new
// minor. batches is how many rounds the rollout takes (for the message);
// token is the caller's client request token for this group and target.
func (g Group) Upgrade(ctx context.Context, r engine.Reporter, from, to string, batches int, token string) (*ekstypes.Nodegroup, error) {
	r.Progress(fmt.Sprintf("upgrading node group %s from Kubernetes %s to %s (%d batches, updateConfig)", g.Name, from, to, batches))
	return g.UpdateVersion(ctx, r, &eks.UpdateNodegroupVersionInput{Version: aws.String(to), ClientRequestToken: aws.String(token)})
}

// UpdateVersion sends in (its cluster and group names are g's) and waits
// for the update and the group, which it returns as it then is.
func (g Group) UpdateVersion(ctx context.Context, r engine.Reporter, in *eks.UpdateNodegroupVersionInput) (*ekstypes.Nodegroup, error) {
	in.ClusterName, in.NodegroupName = aws.String(g.Cluster), aws.String(g.Name)
	return g.run(ctx, r, "UpdateNodegroupVersion", VersionTimeout, func(ctx context.Context) (*ekstypes.Update, error) {
		out, err := g.EKS.UpdateNodegroupVersion(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Update, nil
	})
}

// UpdateConfig sends in (its cluster and group names are g's) and waits
// for the update and the group, which it returns as it then is.
func (g Group) UpdateConfig(ctx context.Context, r engine.Reporter, in *eks.UpdateNodegroupConfigInput) (*ekstypes.Nodegroup, error) {
	in.ClusterName, in.NodegroupName = aws.String(g.Cluster), aws.String(g.Name)
	return g.run(ctx, r, "UpdateNodegroupConfig", ConfigTimeout, func(ctx context.Context) (*ekstypes.Update, error) {
		out, err := g.EKS.UpdateNodegroupConfig(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Update, nil
	})
}

// run starts an update with start and waits for it (Run) and for the
// group to be ACTIVE, each wait bounded by timeout.
func (g Group) run(ctx context.Context, r engine.Reporter, op string, timeout time.Duration, start func(context.Context) (*ekstypes.Update, error)) (*ekstypes.Nodegroup, error) {
	t := Target{Cluster: g.Cluster, Nodegroup: g.Name}
	if err := Run(ctx, r, g.EKS, g.Wait, t, op, timeout, start); err != nil {
		return nil, err
	}
	return g.WaitActive(ctx, r, timeout)
}

// Target is what an update changes: the cluster, or one of its managed
// node groups when Nodegroup is set.
type Target struct{ Cluster, Nodegroup string }

func (t Target) kind() string {
	if t.Nodegroup != "" {
		return "node group"
	}
	return "cluster"
}

func (t Target) name() string {
	if t.Nodegroup != "" {
		return t.Nodegroup
	}
	return t.Cluster
}

// Run starts an update of t with start (op names the call in errors) and
// polls DescribeUpdate until it is over (EKS has no waiter for updates),
// each wait bounded by timeout. A cluster or group busy with another
// update (a killed run's) refuses a new one with ResourceInUseException
// until it is over, so start is tried again until then; the caller's
// client request token makes a retried call after a kill find the update
// it started instead of starting a second one.
func Run(ctx context.Context, r engine.Reporter, client *eks.Client, wait awsx.WaitPolicy, t Target, op string, timeout time.Duration, start func(context.Context) (*ekstypes.Update, error)) error {
	var u *ekstypes.Update
	err := awsx.Poll(ctx, r, "EKS to take "+t.kind()+" "+t.name()+"'s update", wait, timeout, func(ctx context.Context) (bool, string, error) {
		var err error
		u, err = start(ctx)
		switch {
		case err == nil:
			return true, "started", nil
		case awsx.ErrorCode(err) == "ResourceInUseException":
			return false, "another update of the " + t.kind() + " is in progress", nil
		}
		return false, "", awsx.Describe("EKS "+op+" "+t.name(), err)
	})
	if err != nil {
		return err
	}
	return waitUpdate(ctx, r, client, wait, t, u, timeout)
}

// waitUpdate polls DescribeUpdate until the update is over. An update
// answered as already Successful, or not at all (moto does both), needs no
// poll.
func waitUpdate(ctx context.Context, r engine.Reporter, client *eks.Client, wait awsx.WaitPolicy, t Target, u *ekstypes.Update, timeout time.Duration) error {
	if u == nil || u.Id == nil || u.Status == ekstypes.UpdateStatusSuccessful {
		return nil
	}
	id := aws.ToString(u.Id)
	in := &eks.DescribeUpdateInput{Name: aws.String(t.Cluster), UpdateId: aws.String(id)}
	if t.Nodegroup != "" {
		in.NodegroupName = aws.String(t.Nodegroup)
	}
	return awsx.Poll(ctx, r, "update of "+t.kind()+" "+t.name(), wait, timeout, func(ctx context.Context) (bool, string, error) {
		out, err := client.DescribeUpdate(ctx, in)
		if err != nil {
			return false, "", awsx.Describe("EKS DescribeUpdate "+t.name(), err)
		}
		st := out.Update.Status
		switch st {
		case ekstypes.UpdateStatusSuccessful:
			return true, string(st), nil
		case ekstypes.UpdateStatusFailed, ekstypes.UpdateStatusCancelled:
			return false, string(st), fmt.Errorf("EKS update %s (%s) of %s %s %s: %s", id, out.Update.Type, t.kind(), t.name(), st, updateErrors(out.Update))
		}
		return false, string(st), nil
	})
}

// updateErrors quotes why EKS says an update failed.
func updateErrors(u *ekstypes.Update) string {
	var msgs []string
	for _, e := range u.Errors {
		msgs = append(msgs, string(e.ErrorCode)+": "+aws.ToString(e.ErrorMessage))
	}
	if len(msgs) == 0 {
		return "no details"
	}
	return strings.Join(msgs, "; ")
}

func (g Group) describeInput() *eks.DescribeNodegroupInput {
	return &eks.DescribeNodegroupInput{ClusterName: aws.String(g.Cluster), NodegroupName: aws.String(g.Name)}
}

// WaitActive waits with the SDK's waiter, reporting each poll, until the
// group is ACTIVE and returns it. A DEGRADED group stops the wait: it will
// not heal by itself.
func (g Group) WaitActive(ctx context.Context, r engine.Reporter, timeout time.Duration) (*ekstypes.Nodegroup, error) {
	wait := g.wait(timeout)
	var last *ekstypes.Nodegroup
	w := eks.NewNodegroupActiveWaiter(g.EKS, func(o *eks.NodegroupActiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		next := o.Retryable
		o.Retryable = awsx.Watch(r, "node group "+g.Name, status,
			func(ctx context.Context, in *eks.DescribeNodegroupInput, out *eks.DescribeNodegroupOutput, err error) (bool, error) {
				if err == nil && out != nil && out.Nodegroup != nil {
					last = out.Nodegroup
					if out.Nodegroup.Status == ekstypes.NodegroupStatusDegraded {
						return false, fmt.Errorf("DEGRADED")
					}
				}
				return next(ctx, in, out, err)
			})
	})
	if err := w.Wait(ctx, g.describeInput(), wait.Timeout); err != nil {
		return nil, fmt.Errorf("node group %s did not become ACTIVE (%s): %w", g.Name, Health(last), err)
	}
	return last, nil
}

// wait is a node group wait bounded by timeout, under the run's policy.
func (g Group) wait(timeout time.Duration) awsx.WaitPolicy {
	return g.Wait.For(awsx.WaitPolicy{MinDelay: MinDelay, MaxDelay: MaxDelay, Timeout: timeout})
}

// WaitDeleted waits with the SDK's waiter, reporting each poll, until the
// group is gone.
func (g Group) WaitDeleted(ctx context.Context, r engine.Reporter, timeout time.Duration) error {
	wait := g.wait(timeout)
	w := eks.NewNodegroupDeletedWaiter(g.EKS, func(o *eks.NodegroupDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "deletion of node group "+g.Name, status, o.Retryable)
	})
	return awsx.Describe("waiting for node group "+g.Name+" to be deleted", w.Wait(ctx, g.describeInput(), wait.Timeout))
}

func status(out *eks.DescribeNodegroupOutput) string {
	if out.Nodegroup == nil {
		return "unknown"
	}
	return string(out.Nodegroup.Status)
}

// Health quotes the group's status and health issues, which say why a
// group failed (instances failed to join, quota, AMI, subnet capacity).
func Health(ng *ekstypes.Nodegroup) string {
	if ng == nil {
		return "status unknown"
	}
	parts := []string{"status " + string(ng.Status)}
	if ng.Health != nil {
		for _, is := range ng.Health.Issues {
			parts = append(parts, fmt.Sprintf("%s: %s", is.Code, aws.ToString(is.Message)))
		}
	}
	return strings.Join(parts, "; ")
}
