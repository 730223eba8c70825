package storage

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/engine"
)

// labelManagedBy marks what coderctl made, so destroy removes only that.
const labelManagedBy = "app.kubernetes.io/managed-by"

// kubeCallTimeout bounds one Kubernetes call: an unreachable API server
// costs seconds, not minutes.
const kubeCallTimeout = 20 * time.Second

// kubeClient returns a client for the cluster, or why there is none.
func (s *stage) kubeClient(ctx context.Context) (kubernetes.Interface, error) {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("reach the cluster: %w", err)
	}
	return kc, nil
}

// WantedClass is the default class: gp3 (baseline 3,000 IOPS and
// 125 MiB/s whatever the size, cheaper than gp2), encrypted with the
// account's default EBS key, created in the zone where the pod is
// scheduled (WaitForFirstConsumer: a volume made first could land in a
// zone with no room for the pod), growable in place, deleted with its claim.
func WantedClass(deployment string) *storagev1.StorageClass {
	expand := true
	reclaim := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ClassName,
			Annotations: map[string]string{AnnotationDefault: "true"},
			Labels:      map[string]string{labelManagedBy: "coderctl", "coderctl/deployment": deployment},
		},
		Provisioner:          Provisioner,
		Parameters:           map[string]string{"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
		ReclaimPolicy:        &reclaim,
		VolumeBindingMode:    &binding,
		AllowVolumeExpansion: &expand,
	}
}

// immutableDrift lists what differs in the fields Kubernetes never lets
// change on a StorageClass: such a class must be replaced.
func immutableDrift(have, want *storagev1.StorageClass) []string {
	var why []string
	if have.Provisioner != want.Provisioner {
		why = append(why, fmt.Sprintf("provisioner %s, not %s", have.Provisioner, want.Provisioner))
	}
	if !maps.Equal(have.Parameters, want.Parameters) {
		why = append(why, fmt.Sprintf("parameters %s, not %s", paramText(have.Parameters), paramText(want.Parameters)))
	}
	if have.ReclaimPolicy == nil || *have.ReclaimPolicy != *want.ReclaimPolicy {
		why = append(why, "reclaimPolicy is not "+string(*want.ReclaimPolicy))
	}
	if have.VolumeBindingMode == nil || *have.VolumeBindingMode != *want.VolumeBindingMode {
		why = append(why, "volumeBindingMode is not "+string(*want.VolumeBindingMode))
	}
	return why
}

// mutableDrift lists what differs in what may be changed in place.
func mutableDrift(have *storagev1.StorageClass) []string {
	var why []string
	if !isDefault(*have) {
		why = append(why, "not marked default")
	}
	if have.AllowVolumeExpansion == nil || !*have.AllowVolumeExpansion {
		why = append(why, "volume expansion not allowed")
	}
	return why
}

func paramText(p map[string]string) string {
	keys := slices.Sorted(maps.Keys(p))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// isDefault reads either spelling of the default-class annotation, as the
// admission plugin does.
func isDefault(c storagev1.StorageClass) bool {
	return c.Annotations[AnnotationDefault] == "true" || c.Annotations[annotationBetaDefault] == "true"
}

// classes is what the cluster holds: our class (nil when missing) and the
// other classes marked default.
type classes struct {
	ours          *storagev1.StorageClass
	otherDefaults []string
}

func readClasses(ctx context.Context, kc kubernetes.Interface) (classes, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	list, err := kc.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return classes{}, fmt.Errorf("list StorageClasses: %w", err)
	}
	var out classes
	for i := range list.Items {
		c := list.Items[i]
		switch {
		case c.Name == ClassName:
			out.ours = &c
		case isDefault(c):
			out.otherDefaults = append(out.otherDefaults, c.Name)
		}
	}
	sort.Strings(out.otherDefaults)
	return out, nil
}

func (s *stage) plan(ctx context.Context) ([]engine.Action, error) {
	res := "storageclass/" + ClassName
	kc, err := s.kubeClient(ctx)
	if err != nil {
		return []engine.Action{{Kind: engine.Create, Resource: res,
			Reason: fmt.Sprintf("create once the cluster is reachable (%v)", err)}}, nil
	}
	have, err := readClasses(ctx, kc)
	if err != nil {
		return nil, err
	}
	want := WantedClass(s.d.Deployment())
	var acts []engine.Action
	switch {
	case have.ours == nil:
		acts = append(acts, engine.Action{Kind: engine.Create, Resource: res,
			Reason: "default class: ebs.csi.aws.com, gp3, encrypted, WaitForFirstConsumer, expandable"})
	case len(immutableDrift(have.ours, want)) > 0:
		acts = append(acts, engine.Action{Kind: engine.Update, Resource: res,
			Reason: "replace: " + strings.Join(immutableDrift(have.ours, want), "; ") + " (fields Kubernetes cannot change; existing volumes keep working)"})
	case len(mutableDrift(have.ours)) > 0:
		acts = append(acts, engine.Action{Kind: engine.Update, Resource: res, Reason: strings.Join(mutableDrift(have.ours), "; ")})
	default:
		acts = append(acts, engine.Action{Kind: engine.Nothing, Resource: res, Reason: "the only default class, as wanted"})
	}
	for _, name := range have.otherDefaults {
		acts = append(acts, engine.Action{Kind: engine.Update, Resource: "storageclass/" + name,
			Reason: "unmark default: two default classes make the admission plugin pick one by age, not by intent"})
	}
	return acts, nil
}

func (s *stage) apply(ctx context.Context, r engine.Reporter) error {
	kc, err := s.kubeClient(ctx)
	if err != nil {
		return err
	}
	have, err := readClasses(ctx, kc)
	if err != nil {
		return err
	}
	// Unmark the others first: for a moment there is no default class
	// rather than two.
	for _, name := range have.otherDefaults {
		r.Progress("unmarking StorageClass " + name + " as default")
		if err := setDefault(ctx, kc, name, false); err != nil {
			return err
		}
	}
	return s.ensureOurs(ctx, r, kc, have.ours)
}

// ensureOurs creates the class, replaces it when an immutable field
// drifted, or repairs the default annotation and expansion in place.
func (s *stage) ensureOurs(ctx context.Context, r engine.Reporter, kc kubernetes.Interface, have *storagev1.StorageClass) error {
	want := WantedClass(s.d.Deployment())
	api := kc.StorageV1().StorageClasses()
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	if have != nil && len(immutableDrift(have, want)) > 0 {
		r.Progress(fmt.Sprintf("replacing StorageClass %s: %s", ClassName, strings.Join(immutableDrift(have, want), "; ")))
		if err := api.Delete(ctx, ClassName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete StorageClass %s: %w", ClassName, err)
		}
		have = nil
	}
	if have == nil {
		r.Progress("creating StorageClass " + ClassName + " (default)")
		_, err := api.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("StorageClass %s was created by someone else during this run: run the stage again", ClassName)
		}
		if err != nil {
			return fmt.Errorf("create StorageClass %s: %w", ClassName, err)
		}
		return nil
	}
	if len(mutableDrift(have)) == 0 {
		return nil
	}
	r.Progress(fmt.Sprintf("repairing StorageClass %s: %s", ClassName, strings.Join(mutableDrift(have), "; ")))
	upd := have.DeepCopy()
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	upd.Annotations[AnnotationDefault] = "true"
	upd.AllowVolumeExpansion = want.AllowVolumeExpansion
	if _, err := api.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update StorageClass %s: %w", ClassName, err)
	}
	return nil
}

// setDefault sets the default-class annotation of a class (and drops the
// beta spelling, which would otherwise still count).
func setDefault(ctx context.Context, kc kubernetes.Interface, name string, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:null}}}`, AnnotationDefault, fmt.Sprint(on), annotationBetaDefault)
	_, err := kc.StorageV1().StorageClasses().Patch(ctx, name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("mark StorageClass %s default=%v: %w", name, on, err)
	}
	return nil
}

// destroy lists the EBS volumes made for the cluster's claims in down's
// report and keeps them, or deletes them with --delete-volumes
// (volumes.go), then deletes the class if coderctl made it for this
// deployment. Deleting a class never touches its volumes.
func (s *stage) destroy(ctx context.Context, r engine.Reporter) error {
	kc, err := s.kubeClient(ctx)
	if err != nil {
		if !s.d.ClusterGone(ctx) {
			return err
		}
		// Gone: the volumes are found by the driver's cluster tags alone.
		if err := s.destroyVolumes(ctx, r, nil); err != nil {
			return err
		}
		r.Progress("EKS cluster " + s.d.Deployment() + " is gone, and StorageClass " + ClassName + " with it")
		return nil
	}
	if err := s.destroyVolumes(ctx, r, kc); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	have, err := kc.StorageV1().StorageClasses().Get(ctx, ClassName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read StorageClass %s: %w", ClassName, err)
	}
	if have.Labels[labelManagedBy] != "coderctl" || have.Labels["coderctl/deployment"] != s.d.Deployment() {
		r.Notice(fmt.Sprintf("StorageClass %s was not made by coderctl for %s: left in place", ClassName, s.d.Deployment()),
			map[string]any{"storage_class": ClassName})
		return nil
	}
	r.Progress("deleting StorageClass " + ClassName)
	if err := kc.StorageV1().StorageClasses().Delete(ctx, ClassName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete StorageClass %s: %w", ClassName, err)
	}
	return nil
}
