package storage_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/storage"
)

// volumeWorld is the shared control plane, emptied of PersistentVolumes,
// and a fresh moto, with the storage stage wired to both.
type volumeWorld struct {
	deps *deploy.Deps
	kc   kubernetes.Interface
	ec2  *ec2.Client
}

func newVolumeWorld(t *testing.T) *volumeWorld {
	t.Helper()
	g := kubeground.Require(t)
	env := stagetest.New(t, nil)
	rc := g.RESTConfig()
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) { return kc, rc, nil }
	if err := kc.CoreV1().PersistentVolumes().DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	return &volumeWorld{deps: env.Deps, kc: kc, ec2: env.Deps.AWS.EC2}
}

// driverVolume creates an EBS volume as the EBS CSI driver does for a
// claim (its tags; the cluster's only with k8sTagClusterId set), and, when
// withPV, the PersistentVolume naming it.
func (w *volumeWorld) driverVolume(t *testing.T, cluster, ns, claim string, withPV bool) string {
	t.Helper()
	pv := "pvc-" + strings.ReplaceAll(ns+"-"+claim, "/", "-")
	tags := map[string]string{
		storage.TagDriverVolume: "true", storage.TagCSIVolumeName: pv,
		storage.TagClaimNamespace: ns, storage.TagClaimName: claim, storage.TagPVName: pv,
	}
	if cluster != "" {
		tags["kubernetes.io/cluster/"+cluster] = "owned"
		tags[storage.TagKubernetesOwner] = cluster
	}
	id := w.volume(t, tags)
	if withPV {
		w.pv(t, pv, id, ns, claim)
	}
	return id
}

func (w *volumeWorld) volume(t *testing.T, tags map[string]string) string {
	t.Helper()
	var list []ec2types.Tag
	for k, v := range tags {
		list = append(list, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := w.ec2.CreateVolume(context.Background(), &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String("us-west-2a"), Size: aws.Int32(10), VolumeType: ec2types.VolumeTypeGp3, Encrypted: aws.Bool(true),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume, Tags: list}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VolumeId)
}

func (w *volumeWorld) pv(t *testing.T, name, handle, ns, claim string) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			ClaimRef:    &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: claim},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: storage.Provisioner, VolumeHandle: handle, FSType: "ext4"}},
			StorageClassName: storage.ClassName,
		},
	}
	if _, err := w.kc.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// attach attaches a volume to an instance in moto, as the driver does
// when a workspace pod runs on a node.
func (w *volumeWorld) attach(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	inst, err := w.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &ec2types.Placement{AvailabilityZone: aws.String("us-west-2a")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(id), InstanceId: inst.Instances[0].InstanceId, Device: aws.String("/dev/xvdba")}); err != nil {
		t.Fatal(err)
	}
}

func (w *volumeWorld) exists(t *testing.T, id string) bool {
	t.Helper()
	out, err := w.ec2.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Volumes) == 1
}

func TestClaimVolumesOnDestroy(t *testing.T) {
	const cluster = "coder-prod"
	type made struct{ claimed, foreign []string }
	tests := []struct {
		name          string
		deleteVolumes bool
		setup         func(t *testing.T, w *volumeWorld) made
		// claims are the "namespace/claim" the report must name.
		claims []string
		// hint is how the report says to delete kept volumes later.
		hint string
	}{{
		name: "kept and listed without --delete-volumes",
		setup: func(t *testing.T, w *volumeWorld) made {
			return made{claimed: []string{
				w.driverVolume(t, cluster, "coder-workspaces", "coder-alice-home", true),
				w.driverVolume(t, cluster, "coder-workspaces", "coder-bob-home", false), // its PV already gone
			}}
		},
		claims: []string{"coder-workspaces/coder-alice-home", "coder-workspaces/coder-bob-home"},
		hint:   "'coderctl down --delete-volumes' deletes them",
	}, {
		name: "found by the cluster's PersistentVolumes when the driver tags no cluster",
		setup: func(t *testing.T, w *volumeWorld) made {
			return made{claimed: []string{w.driverVolume(t, "", "coder-workspaces", "coder-carol-home", true)}}
		},
		claims: []string{"coder-workspaces/coder-carol-home"},
		hint:   "aws ec2 delete-volume --volume-id vol-",
	}, {
		name:          "deleted with --delete-volumes, an attached one detached first",
		deleteVolumes: true,
		setup: func(t *testing.T, w *volumeWorld) made {
			attached := w.driverVolume(t, cluster, "coder-workspaces", "coder-dave-home", true)
			w.attach(t, attached)
			return made{claimed: []string{attached, w.driverVolume(t, cluster, "room", "home", false)}}
		},
		claims: []string{"coder-workspaces/coder-dave-home", "room/home"},
	}, {
		name:          "another cluster's and volumes the driver did not make are never touched",
		deleteVolumes: true,
		setup: func(t *testing.T, w *volumeWorld) made {
			return made{foreign: []string{
				w.driverVolume(t, "other-cluster", "coder-workspaces", "coder-erin-home", false),
				w.volume(t, map[string]string{"Name": "database-scratch", "kubernetes.io/cluster/" + cluster: "owned"}),
			}}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newVolumeWorld(t)
			m := tt.setup(t, w)
			w.deps.Opts.DeleteVolumes = tt.deleteVolumes
			r := &enginetest.Recorder{}
			if err := storage.New(w.deps).Steps[0].Destroy(context.Background(), r); err != nil {
				t.Fatalf("destroy: %v", err)
			}
			var volumeNotices []string
			for _, n := range r.Notices {
				if strings.Contains(n, "EBS") {
					volumeNotices = append(volumeNotices, n)
				}
			}
			report := strings.Join(volumeNotices, "\n")
			for _, id := range m.claimed {
				if !strings.Contains(report, id) {
					t.Errorf("the report does not name volume %s:\n%s", id, report)
				}
				if got := w.exists(t, id); got == tt.deleteVolumes {
					t.Errorf("volume %s exists=%v after destroy with DeleteVolumes=%v", id, got, tt.deleteVolumes)
				}
			}
			for _, c := range tt.claims {
				if !strings.Contains(report, c) {
					t.Errorf("the report does not name claim %s:\n%s", c, report)
				}
			}
			if !strings.Contains(report, tt.hint) {
				t.Errorf("the report does not say %q:\n%s", tt.hint, report)
			}
			for _, id := range m.foreign {
				if strings.Contains(report, id) {
					t.Errorf("the report names %s, which is not this cluster's claim volume:\n%s", id, report)
				}
				if !w.exists(t, id) {
					t.Errorf("volume %s was deleted: it is not this cluster's claim volume", id)
				}
			}
			if len(m.claimed) == 0 && len(volumeNotices) > 0 {
				t.Errorf("volume notices with no claim volumes: %v", volumeNotices)
			}
			// The JSON report carries the volumes as data.
			key := "kept_volumes"
			if tt.deleteVolumes {
				key = "deleted_volumes"
			}
			if len(m.claimed) > 0 {
				raw, err := json.Marshal(r.NoticeData)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range m.claimed {
					if !strings.Contains(string(raw), `"volume_id":"`+id+`"`) || !strings.Contains(string(raw), key) {
						t.Errorf("notice data %s lacks %s under %s", raw, id, key)
					}
				}
			}
		})
	}
}
