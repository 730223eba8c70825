package eks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/eksversion"
	"github.com/coderctl/coderctl/internal/engine"
)

// Node groups between two minors of a chain. EKS updates a cluster with
// managed node groups only when every group runs the cluster's version
// (UpdateClusterVersion's API reference), so before the next minor's
// control plane the groups must follow; the nodegroups stage, which runs
// after this one, cannot do that in the middle of the chain. The last
// minor's groups are left to it: it converges updateConfig first.

// Waiting for a node group's rollout: as the nodegroups stage's waits.
const (
	nodeGroupMinDelay       = 30 * time.Second
	nodeGroupMaxDelay       = 120 * time.Second
	nodeGroupUpgradeTimeout = 60 * time.Minute
)

// upgradeNodeGroups moves every node group of the cluster that trails
// version to it with UpdateNodegroupVersion, in parallel (EKS replaces each
// group's nodes in batches of the group's updateConfig), and waits for
// each update and group.
func (s *stage) upgradeNodeGroups(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster, version string) error {
	groups, err := s.nodeGroupVersions(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		if h, ok := eksversion.Minor(g.version); !ok || g.version == version || h > mustMinor(version) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.upgradeNodeGroup(ctx, r, c, g, version)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func mustMinor(v string) int {
	m, _ := eksversion.Minor(v)
	return m
}

func (s *stage) upgradeNodeGroup(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster, g groupVersion, version string) error {
	r.Progress(fmt.Sprintf("upgrading node group %s from Kubernetes %s to %s (%d batches, updateConfig)", g.name, g.version, version, g.batches))
	in := &eks.UpdateNodegroupVersionInput{
		ClusterName: aws.String(s.clusterName()), NodegroupName: aws.String(g.name), Version: aws.String(version),
		ClientRequestToken: aws.String(s.clientToken("nodegroup-version/"+g.name, incarnation(c)+"/"+version)),
	}
	var u *ekstypes.Update
	// A group busy with another update (a killed run's) refuses a new one
	// with ResourceInUseException until it is over.
	err := awsx.Poll(ctx, r, "EKS to take node group "+g.name+"'s update", s.d.Opts.Wait, nodeGroupUpgradeTimeout, func(ctx context.Context) (bool, string, error) {
		out, err := s.d.AWS.EKS.UpdateNodegroupVersion(ctx, in)
		switch {
		case err == nil:
			u = out.Update
			return true, "started", nil
		case awsx.ErrorCode(err) == "ResourceInUseException":
			return false, "another update of the node group is in progress", nil
		}
		return false, "", awsx.Describe("EKS UpdateNodegroupVersion "+g.name, err)
	})
	if err != nil {
		return err
	}
	if u != nil && u.Id != nil && u.Status != ekstypes.UpdateStatusSuccessful {
		id := aws.ToString(u.Id)
		err = awsx.Poll(ctx, r, "update of node group "+g.name, s.d.Opts.Wait, nodeGroupUpgradeTimeout, func(ctx context.Context) (bool, string, error) {
			out, err := s.d.AWS.EKS.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String(s.clusterName()), NodegroupName: aws.String(g.name), UpdateId: aws.String(id)})
			if err != nil {
				return false, "", awsx.Describe("EKS DescribeUpdate "+g.name, err)
			}
			switch out.Update.Status {
			case ekstypes.UpdateStatusSuccessful:
				return true, string(out.Update.Status), nil
			case ekstypes.UpdateStatusFailed, ekstypes.UpdateStatusCancelled:
				return false, "", fmt.Errorf("EKS update %s of node group %s %s: %s", id, g.name, out.Update.Status, updateErrors(out.Update))
			}
			return false, string(out.Update.Status), nil
		})
		if err != nil {
			return err
		}
	}
	waiter := eks.NewNodegroupActiveWaiter(s.d.AWS.EKS, func(o *eks.NodegroupActiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = s.d.Opts.Wait.Delays(nodeGroupMinDelay, nodeGroupMaxDelay)
	})
	in2 := &eks.DescribeNodegroupInput{ClusterName: aws.String(s.clusterName()), NodegroupName: aws.String(g.name)}
	if err := waiter.Wait(ctx, in2, s.d.Opts.Wait.WaitTimeout(nodeGroupUpgradeTimeout)); err != nil {
		return fmt.Errorf("waiting for node group %s to be ACTIVE after its upgrade: %w", g.name, err)
	}
	return nil
}
