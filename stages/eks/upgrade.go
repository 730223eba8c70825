package eks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/eksversion"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
)

// Kubernetes upgrades. Raising metadata.version moves the cluster one minor
// at a time, as EKS requires (UpdateClusterVersion refuses a skip with
// InvalidParameterException): for each minor, UpdateClusterVersion waited
// through DescribeUpdate, then every installed add-on to the newest version
// EKS lists for that minor, then the node groups in parallel
// (UpdateNodegroupVersion; EKS updates a cluster only when its managed node
// groups run its version). The node groups of the last minor are the
// nodegroups stage's, which runs after this one and converges their
// updateConfig before the rollout (its upgrade.go); those of the minors
// before are this stage's (upgrade_nodes.go). validate refuses a target
// more than maxKubeletSkew minors above a node group (the Kubernetes skew
// policy): such a group must first catch up with the cluster.

// maxKubeletSkew is how many minors a kubelet may trail the API server
// (the Kubernetes version skew policy since 1.28).
const maxKubeletSkew = 3

// Typical real-AWS durations, for plan: a control plane upgrade takes
// about a quarter of an hour, an add-on update a minute or two (a node
// group's rollout: eksversion.TypicalRollout).
const (
	typicalControlPlaneUpgrade = 15 * time.Minute
	typicalAddonUpgrade        = 2 * time.Minute
	// upgradeTimeout bounds one control plane update.
	upgradeTimeout = 60 * time.Minute
)

// hops lists the versions an upgrade from have to want passes through,
// want last; none when want is not above have.
func hops(have, want string) []string {
	h, ok1 := eksversion.Minor(have)
	w, ok2 := eksversion.Minor(want)
	if !ok1 || !ok2 {
		return nil
	}
	var out []string
	for m := h + 1; m <= w; m++ {
		out = append(out, "1."+strconv.Itoa(m))
	}
	return out
}

// groupVersion is a node group's Kubernetes version and rollout size.
type groupVersion struct {
	name, version string
	batches       int
}

// nodeGroupVersions describes the cluster's node groups.
func (s *stage) nodeGroupVersions(ctx context.Context) ([]groupVersion, error) {
	var out []groupVersion
	pager := eks.NewListNodegroupsPaginator(s.d.AWS.EKS, &eks.ListNodegroupsInput{ClusterName: aws.String(s.clusterName())})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, awsx.Describe("EKS ListNodegroups "+s.clusterName(), err)
		}
		for _, name := range page.Nodegroups {
			ng, err := s.d.AWS.EKS.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(s.clusterName()), NodegroupName: aws.String(name)})
			if awsx.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, awsx.Describe("EKS DescribeNodegroup "+name, err)
			}
			out = append(out, groupVersion{name: name, version: aws.ToString(ng.Nodegroup.Version), batches: eksversion.RolloutBatches(ng.Nodegroup)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// validateUpgrade refuses, before anything changes, the version changes
// EKS would refuse minutes into the run, or coderctl does not do: a
// downgrade (EKS can roll a version back, but coderctl does not), a
// version EKS does not offer in the region (DescribeClusterVersions; when
// it cannot answer, validateVersion's list stands), and a target more than
// maxKubeletSkew minors above a node group.
func (s *stage) validateUpgrade(ctx context.Context, c *ekstypes.Cluster) error {
	if c == nil {
		return nil
	}
	have, want := aws.ToString(c.Version), s.d.Cluster.Metadata.Version
	h, ok1 := eksversion.Minor(have)
	w, ok2 := eksversion.Minor(want)
	switch {
	case !ok1 || !ok2 || h == w:
		return nil
	case w < h:
		return fault.Input(s.d.ConfigPath, "metadata.version", "set it back to \""+have+"\"",
			"cluster %s runs Kubernetes %s, the file says %s: coderctl does not downgrade a cluster", s.clusterName(), have, want)
	}
	if offered, err := s.offeredVersions(ctx); err == nil {
		for _, v := range hops(have, want) {
			if !slices.Contains(offered, v) {
				return fault.Input(s.d.ConfigPath, "metadata.version", "use a version EKS offers in "+s.d.Region()+": "+strings.Join(offered, ", "),
					"EKS in %s does not offer Kubernetes %s, which the upgrade from %s to %s passes through", s.d.Region(), v, have, want)
			}
		}
	}
	groups, err := s.nodeGroupVersions(ctx)
	if err != nil {
		return nil // not bad input: apply reports it
	}
	for _, g := range groups {
		if m, ok := eksversion.Minor(g.version); ok && w-m > maxKubeletSkew {
			return fault.Input(s.d.ConfigPath, "metadata.version",
				fmt.Sprintf("raise it to at most \"1.%d\", apply (the node groups follow), then raise it again", m+maxKubeletSkew),
				"node group %s runs Kubernetes %s, more than %d minors behind %s: kubelets may trail the API server by at most %d minors, and EKS refuses the control plane's update",
				g.name, g.version, maxKubeletSkew, want, maxKubeletSkew)
		}
	}
	return nil
}

// offeredVersions lists the Kubernetes versions EKS offers in the region.
func (s *stage) offeredVersions(ctx context.Context) ([]string, error) {
	var out []string
	pager := eks.NewDescribeClusterVersionsPaginator(s.d.AWS.EKS, &eks.DescribeClusterVersionsInput{})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range page.ClusterVersions {
			out = append(out, aws.ToString(v.ClusterVersion))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("EKS lists no versions")
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := eksversion.Minor(out[i])
		b, _ := eksversion.Minor(out[j])
		return a < b
	})
	return out, nil
}

// planUpgrade shows the chain: each minor with its steps, the node groups
// after it, and the typical duration. Nothing when the version is as the
// file says.
func (s *stage) planUpgrade(ctx context.Context, c *ekstypes.Cluster) ([]engine.Action, error) {
	have, want := aws.ToString(c.Version), s.d.Cluster.Metadata.Version
	res := "kubernetes-version/" + s.clusterName()
	if have == want {
		return nil, nil
	}
	chain := hops(have, want)
	if len(chain) == 0 {
		return action(engine.Nothing, res, "cluster runs Kubernetes %s, the file says %s: a downgrade, which validate refuses (coderctl does not downgrade a cluster)", have, want), nil
	}
	groups, err := s.nodeGroupVersions(ctx)
	if err != nil {
		return nil, err
	}
	var steps, groupNames, lagging []string
	total := time.Duration(0)
	most := 0
	for _, g := range groups {
		groupNames = append(groupNames, g.name)
		most = max(most, g.batches)
		if g.version != have {
			lagging = append(lagging, g.name+" "+g.version)
		}
	}
	if len(lagging) > 0 {
		steps = append(steps, fmt.Sprintf("0) node groups %s to %s first (EKS updates a cluster only when its node groups match it)", strings.Join(lagging, ", "), have))
		total += eksversion.TypicalRollout(most)
	}
	planned := map[string]string{} // add-on -> version after the hops so far
	for i, v := range chain {
		addons, err := s.planAddonUpgrades(ctx, v, i == len(chain)-1, planned)
		if err != nil {
			return nil, err
		}
		step := fmt.Sprintf("%d) %s: control plane (UpdateClusterVersion)", i+1, v)
		total += typicalControlPlaneUpgrade
		if len(addons) > 0 {
			step += ", add-ons " + strings.Join(addons, ", ")
			total += typicalAddonUpgrade
		}
		if len(groups) > 0 && i < len(chain)-1 {
			step += ", node groups " + strings.Join(groupNames, ", ") + " in parallel"
			total += eksversion.TypicalRollout(most)
		}
		steps = append(steps, step)
	}
	if len(groups) > 0 {
		steps = append(steps, fmt.Sprintf("%d) node groups %s to %s in parallel (nodegroups stage, UpdateNodegroupVersion, up to %d batches per updateConfig)",
			len(chain)+1, strings.Join(groupNames, ", "), want, most))
		total += eksversion.TypicalRollout(most)
	}
	return action(engine.Update, res, "Kubernetes %s to %s, one minor at a time: %s; typically about %d minutes",
		have, want, strings.Join(steps, "; "), int(total.Minutes())), nil
}

// planAddonUpgrades says which installed add-ons move for k8s, and to
// what; planned carries each add-on's version from hop to hop.
func (s *stage) planAddonUpgrades(ctx context.Context, k8s string, final bool, planned map[string]string) ([]string, error) {
	var out []string
	for _, a := range s.wantedAddons() {
		have, ok := planned[a.name]
		if !ok {
			cur, err := s.describeAddon(ctx, a.name)
			if err != nil {
				return nil, err
			}
			if cur == nil {
				continue
			}
			have = aws.ToString(cur.AddonVersion)
		}
		target, _, err := s.addonTarget(ctx, a, k8s, final)
		if err != nil {
			return nil, err
		}
		if target != "" && target != have {
			out = append(out, fmt.Sprintf("%s %s to %s", a.name, have, target))
			have = target
		}
		planned[a.name] = have
	}
	return out, nil
}

// addonTarget is the version an add-on moves to for k8s: the newest EKS
// lists for it, or on the chain's last minor the file's exact version when
// it names one EKS lists (the addons step would otherwise move it back).
// versions are those EKS lists; "" when it lists none.
func (s *stage) addonTarget(ctx context.Context, a addonSpec, k8s string, final bool) (string, []string, error) {
	versions, err := s.addonVersions(ctx, a.name, k8s)
	if err != nil || len(versions) == 0 {
		return "", nil, err
	}
	if final && a.version != "" && a.version != "latest" && slices.Contains(versions, a.version) {
		return a.version, versions, nil
	}
	return versions[0], versions, nil
}

// upgrade runs the chain up to the file's version; c is ACTIVE. Before it,
// add-ons left on a version EKS does not list for the cluster's minor (a
// run killed between a hop's control plane and its add-ons) are moved.
func (s *stage) upgrade(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster) (*ekstypes.Cluster, error) {
	have, want := aws.ToString(c.Version), s.d.Cluster.Metadata.Version
	chain := hops(have, want)
	if err := s.upgradeAddons(ctx, r, c, have, len(chain) == 0, true); err != nil {
		return nil, err
	}
	if len(chain) > 0 {
		// Groups trailing the cluster (a killed run's, or a failed
		// nodegroups stage) would make EKS refuse the control plane's update.
		if err := s.upgradeNodeGroups(ctx, r, c, have); err != nil {
			return nil, err
		}
	}
	for i, v := range chain {
		r.Progress(fmt.Sprintf("upgrading the control plane of %s to Kubernetes %s (%d of %d)", s.clusterName(), v, i+1, len(chain)))
		in := &eks.UpdateClusterVersionInput{
			Name: aws.String(s.clusterName()), Version: aws.String(v),
			// One token per cluster and target: a retried call after a kill
			// finds the update it started.
			ClientRequestToken: aws.String(s.clientToken("version/"+v, incarnation(c))),
		}
		if err := s.runUpdate(ctx, r, "UpdateClusterVersion", upgradeTimeout, func(ctx context.Context) (*ekstypes.Update, error) {
			out, err := s.d.AWS.EKS.UpdateClusterVersion(ctx, in)
			if err != nil {
				return nil, err
			}
			return out.Update, nil
		}); err != nil {
			return nil, err
		}
		if err := s.upgradeAddons(ctx, r, c, v, i == len(chain)-1, false); err != nil {
			return nil, err
		}
		if i < len(chain)-1 { // the last minor's groups: the nodegroups stage
			if err := s.upgradeNodeGroups(ctx, r, c, v); err != nil {
				return nil, err
			}
		}
	}
	if len(chain) == 0 {
		return c, nil
	}
	out, err := s.describeCluster(ctx)
	if err == nil && out == nil {
		err = fmt.Errorf("EKS cluster %s disappeared while being upgraded", s.clusterName())
	}
	if err != nil {
		return nil, err
	}
	return s.waitActive(ctx, r, out)
}

// incarnation tells a cluster from its successor of the same name.
func incarnation(c *ekstypes.Cluster) string {
	return aws.ToString(c.Arn) + "@" + aws.ToTime(c.CreatedAt).UTC().Format(time.RFC3339)
}

// upgradeAddons moves every installed add-on to its target for k8s (only
// those on a version EKS does not list for k8s when onlyIncompatible), then
// waits for them in parallel; add-ons that need nodes are not waited for
// while the cluster has none.
func (s *stage) upgradeAddons(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster, k8s string, final, onlyIncompatible bool) error {
	var moved []string
	for _, a := range s.wantedAddons() {
		cur, err := s.describeAddon(ctx, a.name)
		if err != nil {
			return err
		}
		if cur == nil {
			continue // the addons step creates it
		}
		target, versions, err := s.addonTarget(ctx, a, k8s, final)
		if err != nil {
			return err
		}
		have := aws.ToString(cur.AddonVersion)
		if target == "" || target == have || (onlyIncompatible && slices.Contains(versions, have)) {
			continue
		}
		r.Progress(fmt.Sprintf("updating add-on %s from %s to %s for Kubernetes %s", a.name, have, target, k8s))
		_, err = s.d.AWS.EKS.UpdateAddon(ctx, &eks.UpdateAddonInput{
			ClusterName:        aws.String(s.clusterName()),
			AddonName:          aws.String(a.name),
			AddonVersion:       aws.String(target),
			ResolveConflicts:   ekstypes.ResolveConflictsOverwrite,
			ClientRequestToken: aws.String(s.clientToken("addon-upgrade/"+a.name, incarnation(c)+"|"+target)),
		})
		if err != nil {
			return awsx.Describe("EKS UpdateAddon "+a.name, err)
		}
		moved = append(moved, a.name)
	}
	return s.waitAddons(ctx, r, moved) // addons.go
}
