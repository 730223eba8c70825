package nodegroups

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/eksupdate"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/state"
)

// Waiting for a new group and for a deleted one (eksupdate holds the
// delays and the updates' bounds): managed node group failures only
// surface after ~21 minutes, so the bounds leave room.
const (
	groupCreateTimeout = 35 * time.Minute
	groupDeleteTimeout = 30 * time.Minute
)

func groupResource(name string) string { return "nodegroup/" + name }

// group is the cluster's node group name, to update and wait for.
func (s *stage) group(name string) eksupdate.Group {
	return eksupdate.Group{EKS: s.d.AWS.EKS, Wait: s.d.Opts.Wait, Cluster: s.clusterName(), Name: name}
}

// describeGroup returns the node group, or nil when it (or the cluster)
// does not exist.
func (s *stage) describeGroup(ctx context.Context, name string) (*ekstypes.Nodegroup, error) {
	out, err := s.d.AWS.EKS.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{
		ClusterName: aws.String(s.clusterName()), NodegroupName: aws.String(name),
	})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("EKS DescribeNodegroup "+name, err)
	}
	return out.Nodegroup, nil
}

// subnetsFor are the subnets a group's nodes run in: the private ones
// unless the group asks for public nodes.
func (s *stage) subnetsFor(spec config.NodeGroupSpec) (string, []string) {
	key := names.KeyPublicSubnetIDs
	if spec.PrivateNetworking {
		key = names.KeyPrivateSubnetIDs
	}
	return key, state.SplitList(s.d.State.Get(key))
}

// placementFor is what the group's role and subnets should be, as far as
// the state file knows them.
func (s *stage) placementFor(spec config.NodeGroupSpec) placement {
	_, subnets := s.subnetsFor(spec)
	return placement{roleARN: s.d.State.Get(names.KeyNodeRoleARN), subnets: subnets}
}

func (s *stage) planGroup(ctx context.Context, spec config.NodeGroupSpec) ([]engine.Action, error) {
	w, err := s.want(spec)
	if err != nil {
		return nil, err
	}
	ng, err := s.describeGroup(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	res := groupResource(spec.Name)
	if ng != nil && ng.Status == ekstypes.NodegroupStatusDeleting {
		ng = nil
	}
	ld, err := s.ltDrift(ctx, spec.Name, ng)
	if err != nil {
		return nil, err
	}
	var acts []engine.Action
	switch {
	case ld.st == nil:
		acts = action(engine.Create, ltResource(s.ltName(spec.Name)), "missing: create with %s", s.ltSummary(spec.Name))
	case ld.newVersion && ld.fixed == "":
		acts = action(engine.Update, ltResource(ld.st.name), "latest version %d differs: create a new version", ld.st.latest)
	}
	if ng == nil {
		return append(acts, action(engine.Create, res, "missing: create %d-%d × %s (AMI type %s) with labels and taints set at creation",
			spec.Min, spec.Max, spec.InstanceType, w.amiType)...), nil
	}
	if ld.roll {
		acts = append(acts, action(engine.Update, res, "launch template %s: %s: roll the group to the new version with UpdateNodegroupVersion (nodes are replaced)",
			ld.st.name, joinChanges(ld.changes))...)
	}
	d := diff(w, ng, s.placementFor(spec))
	if d.any() {
		acts = append(acts, action(engine.Update, res, "drifted: %s: converge with UpdateNodegroupConfig", strings.Join(d.changes, "; "))...)
	}
	for _, f := range append(d.fixed, ld.fixedList()...) {
		acts = append(acts, action(engine.Nothing, res, "%s: EKS cannot change this in place; destroy and re-create the group to apply it", f)...)
	}
	acts = append(acts, s.planVersion(ng)...) // upgrade.go
	if len(acts) == 0 {
		acts = action(engine.Nothing, res, "%s with scaling, labels, taints and launch template as configured", ng.Status)
	}
	return acts, nil
}

// want is the group as cluster-config.yaml asks for it, with what only
// eksctl's own type holds.
func (s *stage) want(spec config.NodeGroupSpec) (groupWant, error) {
	return wantOfManaged(spec, s.managedGroup(spec.Name))
}

// ltSummary says in a few words what a group's launch template holds.
func (s *stage) ltSummary(group string) string {
	mg := s.managedGroup(group)
	if mg == nil {
		return "no settings"
	}
	f := s.wantedLT(mg)
	return fmt.Sprintf("IMDS HttpTokens %s, hop limit %d, %d GiB %s root volume", f.httpTokens, f.hopLimit, f.volumeSize, f.volumeType)
}

// applyGroup makes the group's launch template hold what is configured,
// creates the group (or adopts it), records it, waits until it is ACTIVE,
// rolls it to the launch template's version if it runs another, converges
// scaling, labels, taints and updateConfig if they drifted, then moves it
// to the cluster's Kubernetes version if it trails it.
func (s *stage) applyGroup(ctx context.Context, r engine.Reporter, spec config.NodeGroupSpec) error {
	w, err := s.want(spec)
	if err != nil {
		return err
	}
	mg := s.managedGroup(spec.Name)
	if mg == nil {
		return fmt.Errorf("node group %s is not in %s", spec.Name, s.d.ConfigPath)
	}
	ng, err := s.describeGroup(ctx, spec.Name)
	if err != nil {
		return err
	}
	if ng != nil && ng.Status == ekstypes.NodegroupStatusDeleting {
		if err := s.waitDeleted(ctx, r, spec.Name); err != nil {
			return err
		}
		ng = nil
	}
	ltID, ltVersion, err := s.ensureLT(ctx, r, mg)
	if err != nil {
		return err
	}
	if ng == nil {
		if err := s.createGroup(ctx, r, w, mg, ltID, ltVersion); err != nil {
			return err
		}
	}
	if err := s.recordGroup(spec.Name, true); err != nil {
		return err
	}
	if ng, err = s.group(spec.Name).WaitActive(ctx, r, groupCreateTimeout); err != nil {
		return err
	}
	if ng, err = s.rollIfNeeded(ctx, r, ng); err != nil {
		return err
	}
	d := diff(w, ng, s.placementFor(spec))
	ld, err := s.ltDrift(ctx, spec.Name, ng)
	if err != nil {
		return err
	}
	for _, f := range append(d.fixed, ld.fixedList()...) {
		r.Notice(fmt.Sprintf("node group %s: %s; EKS cannot change this in place: destroy and re-create the group to apply it", spec.Name, f),
			map[string]any{"nodegroup": spec.Name, "difference": f})
	}
	if d.any() {
		if err := s.updateGroup(ctx, r, ng, d); err != nil {
			return err
		}
	}
	return s.upgradeIfBehind(ctx, r, spec.Name) // upgrade.go, after updateConfig is converged
}

// createGroup creates the managed node group with its labels and taints,
// so EKS taints each node before it registers: no pod can land on a coder
// node in between.
func (s *stage) createGroup(ctx context.Context, r engine.Reporter, w groupWant, mg *api.ManagedNodeGroup, ltID string, ltVersion int64) error {
	roleARN, err := s.d.Output(names.KeyNodeRoleARN, Name)
	if err != nil {
		return err
	}
	key, subnets := s.subnetsFor(w.NodeGroupSpec)
	if len(subnets) == 0 {
		return fmt.Errorf("%s is not in %s yet: run 'coderctl stage %s apply' first", key, s.d.State.Path(), names.StageNetwork)
	}
	token, err := s.createToken(ctx, "nodegroup/"+w.Name)
	if err != nil {
		return err
	}
	in := &eks.CreateNodegroupInput{
		ClusterName:   aws.String(s.clusterName()),
		NodegroupName: aws.String(w.Name),
		NodeRole:      aws.String(roleARN),
		Subnets:       subnets,
		// As eksctl: the instance type on the group, the AMI type from
		// amiFamily and the instance type, everything else in the template.
		InstanceTypes: []string{w.InstanceType},
		AmiType:       w.amiType,
		LaunchTemplate: &ekstypes.LaunchTemplateSpecification{
			Id: aws.String(ltID), Version: aws.String(strconv.FormatInt(ltVersion, 10)),
		},
		UpdateConfig: w.updateConfig,
		CapacityType: ekstypes.CapacityTypesOnDemand,
		ScalingConfig: &ekstypes.NodegroupScalingConfig{
			MinSize: aws.Int32(w.Min), MaxSize: aws.Int32(w.Max), DesiredSize: aws.Int32(w.Desired),
		},
		Taints:             w.taints,
		Tags:               s.groupTags(mg),
		ClientRequestToken: aws.String(token),
	}
	if len(w.Labels) > 0 {
		in.Labels = w.Labels
	}
	// No DiskSize: with a launch template EKS refuses it; the root volume
	// is in the template.
	r.Progress(fmt.Sprintf("creating node group %s (%d × %s, %s)", w.Name, w.Desired, w.InstanceType, w.amiType))
	_, err = s.d.AWS.EKS.CreateNodegroup(ctx, in)
	if awsx.ErrorCode(err) == "ResourceInUseException" {
		return nil // created since we looked (another run, or a retried call): adopt it
	}
	return awsx.Describe("EKS CreateNodegroup "+w.Name, err)
}

// createToken is the create token of a group or its launch template
// (resource "nodegroup/<name>", "launch-template/<name>"). The node role's
// unique ID changes whenever the stage is destroyed and applied again, so
// a re-created resource never reuses its predecessor's token.
func (s *stage) createToken(ctx context.Context, resource string) (string, error) {
	out, err := s.d.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(s.nodeRoleName())})
	if err != nil {
		return "", awsx.Describe("IAM GetRole "+s.nodeRoleName(), err)
	}
	return s.clientToken(resource, aws.ToString(out.Role.RoleId)), nil
}

// updateGroup sends one UpdateNodegroupConfig with every drifted setting
// and waits for the update and the group.
func (s *stage) updateGroup(ctx context.Context, r engine.Reporter, ng *ekstypes.Nodegroup, d drift) error {
	name := aws.ToString(ng.NodegroupName)
	in := &eks.UpdateNodegroupConfigInput{
		ScalingConfig: d.scaling,
		Labels:        d.labels,
		Taints:        d.taints,
		UpdateConfig:  d.update,
	}
	in.ClientRequestToken = aws.String(s.updateToken(ng, in))
	r.Progress(fmt.Sprintf("updating node group %s: %s", name, strings.Join(d.changes, "; ")))
	_, err := s.group(name).UpdateConfig(ctx, r, in)
	return err
}

// updateToken ties an update's token to the group's last modification and
// the payload: a retried call after a kill sends the same token, a later
// update of the same drift a new one.
func (s *stage) updateToken(ng *ekstypes.Nodegroup, in *eks.UpdateNodegroupConfigInput) string {
	payload, _ := json.Marshal([]any{in.ScalingConfig, in.Labels, in.Taints, in.UpdateConfig})
	sum := sha256.Sum256(payload)
	modified := ""
	if ng.ModifiedAt != nil {
		modified = ng.ModifiedAt.UTC().Format(time.RFC3339Nano)
	}
	return s.clientToken("nodegroup-update/"+aws.ToString(ng.NodegroupName), modified+"/"+hex.EncodeToString(sum[:8]))
}

// healthSummary quotes the group's status and health issues (verify.go).
func healthSummary(ng *ekstypes.Nodegroup) string { return eksupdate.Health(ng) }

// destroyGroup deletes the group and waits until it is gone. A group that
// is gone (or whose cluster is) is fine; one not tagged for this
// deployment is left alone.
func (s *stage) destroyGroup(ctx context.Context, r engine.Reporter, name string) error {
	ng, err := s.describeGroup(ctx, name)
	if err != nil {
		return err
	}
	if ng != nil && !s.ownedBy(ng.Tags) {
		r.Notice(fmt.Sprintf("node group %s is not tagged for deployment %s: left alone", name, s.d.Deployment()), nil)
		return nil
	}
	if ng != nil {
		if err := s.startDelete(ctx, r, ng); err != nil {
			return err
		}
		if err := s.waitDeleted(ctx, r, name); err != nil {
			return err
		}
	}
	// EC2 refuses to delete a template an Auto Scaling group still uses:
	// only once the group is gone.
	if err := s.deleteLT(ctx, r, name); err != nil {
		return err
	}
	return s.recordGroup(name, false)
}

func (s *stage) startDelete(ctx context.Context, r engine.Reporter, ng *ekstypes.Nodegroup) error {
	name := aws.ToString(ng.NodegroupName)
	switch ng.Status {
	case ekstypes.NodegroupStatusDeleting:
		return nil
	case ekstypes.NodegroupStatusCreating, ekstypes.NodegroupStatusUpdating:
		// EKS refuses to delete a group in the middle of a change. A
		// failed creation can be deleted, so the wait's error is not ours.
		_, _ = s.group(name).WaitActive(ctx, r, groupCreateTimeout)
	}
	r.Progress("deleting node group " + name)
	_, err := s.d.AWS.EKS.DeleteNodegroup(ctx, &eks.DeleteNodegroupInput{
		ClusterName: aws.String(s.clusterName()), NodegroupName: aws.String(name),
	})
	if err != nil && !awsx.IsNotFound(err) {
		return awsx.Describe("EKS DeleteNodegroup "+name, err)
	}
	return nil
}

func (s *stage) waitDeleted(ctx context.Context, r engine.Reporter, name string) error {
	return s.group(name).WaitDeleted(ctx, r, groupDeleteTimeout)
}

// destroyOrphanGroups deletes node groups this stage created that are no
// longer in cluster-config.yaml: no step owns them, but they use the node
// role and keep the cluster from being deleted.
func (s *stage) destroyOrphanGroups(ctx context.Context, r engine.Reporter) error {
	names, err := s.listGroups(ctx)
	if err != nil {
		return err
	}
	var orphans []string
	for _, name := range names {
		if _, configured := s.spec(name); configured {
			continue
		}
		ng, err := s.describeGroup(ctx, name)
		if err != nil {
			return err
		}
		if ng == nil || !s.ownedBy(ng.Tags) || ng.Tags["coderctl/stage"] != Name {
			continue
		}
		if err := s.startDelete(ctx, r, ng); err != nil {
			return err
		}
		orphans = append(orphans, name)
	}
	for _, name := range orphans {
		if err := s.waitDeleted(ctx, r, name); err != nil {
			return err
		}
		if err := s.recordGroup(name, false); err != nil {
			return err
		}
	}
	return s.sweepLTs(ctx, r)
}

// listGroups names the cluster's node groups; none when the cluster is
// gone. It asks for the cluster first: moto answers ListNodegroups for a
// missing cluster with HTTP 500 instead of ResourceNotFoundException.
func (s *stage) listGroups(ctx context.Context) ([]string, error) {
	_, err := s.d.AWS.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(s.clusterName())})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("EKS DescribeCluster "+s.clusterName(), err)
	}
	var names []string
	pager := eks.NewListNodegroupsPaginator(s.d.AWS.EKS, &eks.ListNodegroupsInput{ClusterName: aws.String(s.clusterName())})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if awsx.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, awsx.Describe("EKS ListNodegroups", err)
		}
		names = append(names, page.Nodegroups...)
	}
	slices.Sort(names)
	return names, nil
}
