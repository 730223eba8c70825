package eks

import (
	"context"
	"errors"
	"sync"

	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/eksupdate"
	"github.com/coderctl/coderctl/internal/eksversion"
	"github.com/coderctl/coderctl/internal/engine"
)

// Node groups between two minors of a chain. EKS updates a cluster with
// managed node groups only when every group runs the cluster's version
// (UpdateClusterVersion's API reference), so before the next minor's
// control plane the groups must follow; the nodegroups stage, which runs
// after this one, cannot do that in the middle of the chain. The last
// minor's groups are left to it: it converges updateConfig first.

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

// upgradeNodeGroup moves one group to version and waits for it (eksupdate,
// as the nodegroups stage does for the last minor).
func (s *stage) upgradeNodeGroup(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster, g groupVersion, version string) error {
	ng := eksupdate.Group{EKS: s.d.AWS.EKS, Wait: s.d.Opts.Wait, Cluster: s.clusterName(), Name: g.name}
	_, err := ng.Upgrade(ctx, r, g.version, version, g.batches, s.clientToken("nodegroup-version/"+g.name, incarnation(c)+"/"+version))
	return err
}
