package ebscsi_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/testenv/ebscsi"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// TestEBSVolumesInMoto: with an EC2 client the stand-in makes the claim's
// EBS volume in moto as the driver does (zone, size, type, encryption, the
// driver's tags; the cluster's only with a cluster ID), the PV's handle is
// its ID, and reclaim Delete deletes it with the PV; Retain keeps it.
func TestEBSVolumesInMoto(t *testing.T) {
	tests := []struct {
		name      string
		clusterID string
		policy    corev1.PersistentVolumeReclaimPolicy
	}{
		{name: "add-on defaults, reclaim Delete", policy: corev1.PersistentVolumeReclaimDelete},
		{name: "k8sTagClusterId set, reclaim Retain", clusterID: "coder-prod", policy: corev1.PersistentVolumeReclaimRetain},
	}
	srv := moto.Require(t)
	cfg, err := srv.AWSConfig(context.Background(), "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.p = ebscsi.New(ebscsi.Options{Kube: w.kube, Namespace: w.ns, EC2: c, TagClusterID: tt.clusterID})
			class := w.class(t, "ebs", classSpec{provisioner: ebscsi.Driver, wffc: true,
				params: map[string]string{"type": "gp3", "encrypted": "true", "tagSpecification_1": "team=platform"}})
			if tt.policy == corev1.PersistentVolumeReclaimRetain { // reclaimPolicy is immutable: recreate
				sc, err := w.kube.StorageV1().StorageClasses().Get(context.Background(), class, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				_ = w.kube.StorageV1().StorageClasses().Delete(context.Background(), class, metav1.DeleteOptions{})
				sc.ResourceVersion, sc.ReclaimPolicy = "", &tt.policy
				if _, err := w.kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			w.claim(t, "home", class)
			w.pod(t, "workspace", "home")
			if !w.syncUntil(t, 30*time.Second, func() bool { return w.getClaim(t, "home").Status.Phase == corev1.ClaimBound }) {
				t.Fatal("claim never bound")
			}
			pvName := w.getClaim(t, "home").Spec.VolumeName
			pv, err := w.kube.CoreV1().PersistentVolumes().Get(context.Background(), pvName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = w.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
			})
			id := pv.Spec.CSI.VolumeHandle
			vol := describeVolume(t, c, id)
			if vol == nil {
				t.Fatalf("PV %s names %s, which moto does not have", pvName, id)
			}
			if aws.ToString(vol.AvailabilityZone) != nodeZone || aws.ToInt32(vol.Size) != 2 || vol.VolumeType != ec2types.VolumeTypeGp3 || !aws.ToBool(vol.Encrypted) {
				t.Errorf("volume %s: zone %s, %d GiB, %s, encrypted %v; want %s, 2 GiB (1.5Gi rounded up), gp3, encrypted",
					id, aws.ToString(vol.AvailabilityZone), aws.ToInt32(vol.Size), vol.VolumeType, aws.ToBool(vol.Encrypted), nodeZone)
			}
			want := map[string]string{
				ebscsi.TagCSIVolumeName: pvName, ebscsi.TagDriverCluster: "true", ebscsi.TagPVName: pvName,
				ebscsi.TagClaimName: "home", ebscsi.TagClaimNamespace: w.ns, "team": "platform",
			}
			if tt.clusterID != "" {
				want["kubernetes.io/cluster/"+tt.clusterID] = "owned"
				want[ebscsi.TagKubernetes] = tt.clusterID
			}
			tags := awsx.EC2TagMap(vol.Tags)
			if !awsx.HasTags(tags, want) {
				t.Errorf("volume tags %v, want %v", tags, want)
			}
			if _, ok := tags[ebscsi.TagKubernetes]; ok && tt.clusterID == "" {
				t.Errorf("volume tagged %s without a cluster ID: %v", ebscsi.TagKubernetes, tags)
			}
			// A second pass makes nothing new.
			if _, err := w.p.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := volumesNamed(t, c, pvName); n != 1 {
				t.Errorf("%d volumes tagged CSIVolumeName=%s after another pass, want 1", n, pvName)
			}

			if err := w.kube.CoreV1().Pods(w.ns).Delete(context.Background(), "workspace", metav1.DeleteOptions{GracePeriodSeconds: aws.Int64(0)}); err != nil {
				t.Fatal(err)
			}
			if err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Delete(context.Background(), "home", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			settled := w.syncUntil(t, 30*time.Second, func() bool {
				pv, err := w.kube.CoreV1().PersistentVolumes().Get(context.Background(), pvName, metav1.GetOptions{})
				if tt.policy == corev1.PersistentVolumeReclaimDelete {
					return apierrors.IsNotFound(err)
				}
				return err == nil && pv.Status.Phase == corev1.VolumeReleased
			})
			if !settled {
				t.Fatalf("PV %s never settled after its claim went (policy %s)", pvName, tt.policy)
			}
			gone := describeVolume(t, c, id) == nil
			if gone != (tt.policy == corev1.PersistentVolumeReclaimDelete) {
				t.Errorf("EBS volume %s gone=%v after the claim went with policy %s", id, gone, tt.policy)
			}
		})
	}
}

func describeVolume(t *testing.T, c *ec2.Client, id string) *ec2types.Volume {
	t.Helper()
	out, err := c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Volumes) == 0 {
		return nil
	}
	return &out.Volumes[0]
}

func volumesNamed(t *testing.T, c *ec2.Client, pv string) int {
	t.Helper()
	out, err := c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:" + ebscsi.TagCSIVolumeName), Values: []string{pv}}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Volumes)
}
