package nodegroups

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/eksversion"
	"github.com/coderctl/coderctl/internal/engine"
)

// The last hop of a Kubernetes upgrade: the eks stage has moved the control
// plane and the add-ons one minor at a time to metadata.version (its
// upgrade.go); each group step then moves its group to the cluster's
// version with UpdateNodegroupVersion. The group steps run in parallel, and
// EKS replaces each group's nodes in batches of its updateConfig, which the
// step has converged just before, so the rollout respects the file's
// maxUnavailable.

// behind reports whether a group at have trails want by a minor or more.
func behind(have, want string) bool {
	h, ok1 := eksversion.Minor(have)
	w, ok2 := eksversion.Minor(want)
	return ok1 && ok2 && h < w
}

// planVersion says when the group trails metadata.version: the eks stage
// upgrades the control plane first, then this step the group.
func (s *stage) planVersion(ng *ekstypes.Nodegroup) []engine.Action {
	want, have := s.d.Cluster.Metadata.Version, aws.ToString(ng.Version)
	if !behind(have, want) {
		return nil
	}
	n := eksversion.RolloutBatches(ng)
	return action(engine.Update, groupResource(aws.ToString(ng.NodegroupName)),
		"Kubernetes %s to %s once the control plane is there: UpdateNodegroupVersion replaces the nodes in %d batches (updateConfig), typically about %d minutes",
		have, want, n, int(eksversion.TypicalRollout(n).Minutes()))
}

// upgradeIfBehind moves the group to the cluster's Kubernetes version when
// it trails it, waits for the update and the group.
func (s *stage) upgradeIfBehind(ctx context.Context, r engine.Reporter, name string) error {
	c, err := s.d.AWS.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(s.clusterName())})
	if err != nil {
		return awsx.Describe("EKS DescribeCluster "+s.clusterName(), err)
	}
	ng, err := s.describeGroup(ctx, name)
	if err != nil || ng == nil {
		return err
	}
	target := aws.ToString(c.Cluster.Version)
	if !behind(aws.ToString(ng.Version), target) {
		return nil
	}
	// One token per group incarnation and target: a retried call after a
	// kill finds the rollout it started.
	token := s.clientToken("nodegroup-kubernetes/"+name, aws.ToTime(ng.CreatedAt).UTC().Format(time.RFC3339)+"/"+target)
	_, err = s.group(name).Upgrade(ctx, r, aws.ToString(ng.Version), target, eksversion.RolloutBatches(ng), token)
	return err
}
