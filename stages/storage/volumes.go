package storage

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// The tags the EBS CSI driver puts on the volumes it creates: always
// ebs.csi.aws.com/cluster=true, CSIVolumeName (the PV's name) and, from
// the external provisioner's --extra-create-metadata (on in the EKS
// add-on), the claim and PV it was made for; with --k8s-tag-cluster-id
// (the add-on's controller.k8sTagClusterId) also kubernetes.io/cluster/<id>
// = owned, KubernetesCluster = <id> and, in newer drivers,
// ebs.csi.aws.com/cluster-name = <id>.
const (
	TagDriverVolume     = "ebs.csi.aws.com/cluster"
	TagDriverCluster    = "ebs.csi.aws.com/cluster-name"
	TagCSIVolumeName    = "CSIVolumeName"
	TagClaimName        = "kubernetes.io/created-for/pvc/name"
	TagClaimNamespace   = "kubernetes.io/created-for/pvc/namespace"
	TagPVName           = "kubernetes.io/created-for/pv/name"
	TagKubernetesOwner  = "KubernetesCluster"
	tagKubernetesPrefix = "kubernetes.io/cluster/"
)

// detachWait is the wait for a volume to come off a node: EBS detaches in
// seconds to a minute, longer when the node is busy.
var detachWait = awsx.WaitPolicy{MinDelay: 5 * time.Second, MaxDelay: 15 * time.Second, Timeout: 5 * time.Minute}

// ClaimVolume is an EBS volume the driver made for one of the cluster's
// claims, as down's report lists it.
type ClaimVolume struct {
	ID      string `json:"volume_id"`
	Claim   string `json:"claim,omitempty"` // namespace/name
	SizeGiB int32  `json:"size_gib"`
	Zone    string `json:"zone"`
	State   string `json:"state"`

	attachments []ec2types.VolumeAttachment
	// tagged: the driver's tags name the cluster, so a later down finds
	// the volume after the cluster is gone.
	tagged bool
}

func (v ClaimVolume) String() string {
	claim := v.Claim
	if claim == "" {
		claim = "claim unknown"
	}
	return fmt.Sprintf("%s (%s, %d GiB in %s)", v.ID, claim, v.SizeGiB, v.Zone)
}

// claimVolumes finds the EBS volumes made for the cluster's claims: those
// its PersistentVolumes name (while the cluster answers; kc nil otherwise)
// and those the driver tagged with the cluster's name (which outlive the
// cluster). A volume the driver made for another cluster, or that the
// driver did not make, is never among them.
func (s *stage) claimVolumes(ctx context.Context, kc kubernetes.Interface) ([]ClaimVolume, error) {
	claims := map[string]string{} // volume ID -> namespace/claim, from the PVs
	if kc != nil {
		cctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
		pvs, err := kc.CoreV1().PersistentVolumes().List(cctx, metav1.ListOptions{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list PersistentVolumes: %w", err)
		}
		for _, pv := range pvs.Items {
			if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != Provisioner || pv.Spec.CSI.VolumeHandle == "" {
				continue
			}
			claim := ""
			if ref := pv.Spec.ClaimRef; ref != nil {
				claim = ref.Namespace + "/" + ref.Name
			}
			claims[pv.Spec.CSI.VolumeHandle] = claim
		}
	}
	found := map[string]ec2types.Volume{}
	pages := ec2.NewDescribeVolumesPaginator(s.d.AWS.EC2, &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + TagDriverVolume), Values: []string{"true"}}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find EBS volumes the CSI driver made: %w", err)
		}
		for _, v := range page.Volumes {
			tags := awsx.EC2TagMap(v.Tags)
			_, named := claims[aws.ToString(v.VolumeId)]
			if tags[TagDriverVolume] == "true" && (named || s.taggedForCluster(tags)) {
				found[aws.ToString(v.VolumeId)] = v
			}
		}
	}
	out := make([]ClaimVolume, 0, len(found))
	for _, id := range slices.Sorted(maps.Keys(found)) {
		v := found[id]
		tags := awsx.EC2TagMap(v.Tags)
		claim := claims[id]
		if claim == "" && tags[TagClaimName] != "" {
			claim = tags[TagClaimNamespace] + "/" + tags[TagClaimName]
		}
		out = append(out, ClaimVolume{ID: id, Claim: claim, SizeGiB: aws.ToInt32(v.Size), Zone: aws.ToString(v.AvailabilityZone), State: string(v.State), attachments: v.Attachments, tagged: s.taggedForCluster(tags)})
	}
	return out, nil
}

// taggedForCluster: the driver's cluster tags name this deployment's cluster.
func (s *stage) taggedForCluster(tags map[string]string) bool {
	c := s.d.Deployment()
	return tags[tagKubernetesPrefix+c] == "owned" || tags[TagKubernetesOwner] == c || tags[TagDriverCluster] == c
}

// destroyVolumes lists the claims' volumes in down's report and keeps
// them, unless the run was told --delete-volumes: they are people's home
// directories, and deleting a cluster does not delete them on AWS either
// (a volume outlives a cluster deleted before its PersistentVolumes).
func (s *stage) destroyVolumes(ctx context.Context, r engine.Reporter, kc kubernetes.Interface) error {
	vols, err := s.claimVolumes(ctx, kc)
	if err != nil || len(vols) == 0 {
		return err
	}
	if !s.d.Opts.DeleteVolumes {
		r.Notice(fmt.Sprintf("kept %d EBS %s of workspace claims (home directories): %s; they cost money until deleted: %s",
			len(vols), plural(len(vols), "volume", "volumes"), joinVolumes(vols), deleteHint(vols)),
			map[string]any{"kept_volumes": vols})
		return nil
	}
	for _, v := range vols {
		if err := s.deleteVolume(ctx, r, v); err != nil {
			return err
		}
	}
	r.Notice(fmt.Sprintf("deleted %d EBS %s of workspace claims (--delete-volumes): %s", len(vols), plural(len(vols), "volume", "volumes"), joinVolumes(vols)),
		map[string]any{"deleted_volumes": vols})
	return nil
}

// deleteVolume detaches the volume from its node if it still is attached
// (the node groups go after this stage), waits until it is available,
// and deletes it.
func (s *stage) deleteVolume(ctx context.Context, r engine.Reporter, v ClaimVolume) error {
	c := s.d.AWS.EC2
	if v.State == string(ec2types.VolumeStateInUse) {
		for _, a := range v.attachments {
			r.Progress(fmt.Sprintf("detaching EBS volume %s from %s", v, aws.ToString(a.InstanceId)))
			_, err := c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: a.InstanceId, Device: a.Device})
			if err != nil && !awsx.IsNotFound(err) && awsx.ErrorCode(err) != "IncorrectState" {
				return fmt.Errorf("detach EBS volume %s from %s: %w", v, aws.ToString(a.InstanceId), err)
			}
		}
		wait := s.d.Opts.Wait.For(detachWait)
		w := ec2.NewVolumeAvailableWaiter(c, func(o *ec2.VolumeAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
			o.Retryable = awsx.Watch(r, "EBS volume "+v.ID+" to detach", func(out *ec2.DescribeVolumesOutput) string {
				if len(out.Volumes) == 0 {
					return "gone"
				}
				return string(out.Volumes[0].State)
			}, o.Retryable)
		})
		err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.ID}}, wait.Timeout)
		if err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("wait for EBS volume "+v.ID+" to detach", err)
		}
	}
	_, err := c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(v.ID)})
	if err != nil && !awsx.IsNotFound(err) {
		return fmt.Errorf("delete EBS volume %s: %w", v, err)
	}
	r.Progress("deleted EBS volume " + v.String())
	return nil
}

// deleteHint says how to delete kept volumes later: coderctl finds them
// again only while the cluster's PersistentVolumes exist, or by the
// driver's cluster tags; otherwise by their IDs.
func deleteHint(vols []ClaimVolume) string {
	ids := make([]string, 0, len(vols))
	all := true
	for _, v := range vols {
		ids = append(ids, v.ID)
		all = all && v.tagged
	}
	if all {
		return "once their data is saved, 'coderctl down --delete-volumes' deletes them"
	}
	return "once their data is saved, delete them by ID (aws ec2 delete-volume --volume-id " + strings.Join(ids, ", ") +
		"): after the cluster is gone coderctl cannot tell them from other volumes, as the EBS CSI driver does not tag them with the cluster's name"
}

func joinVolumes(vols []ClaimVolume) string {
	parts := make([]string, len(vols))
	for i, v := range vols {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
