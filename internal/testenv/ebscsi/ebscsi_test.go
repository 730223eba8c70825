package ebscsi_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/ebscsi"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const nodeZone = "us-west-2b"

var setup struct {
	once sync.Once
	err  error
}

// world is one test's namespace on the shared control plane, which has
// one kwok node in zone us-west-2b.
type world struct {
	kube kubernetes.Interface
	ns   string
	p    *ebscsi.Provisioner
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	g := kubeground.Require(t)
	setup.once.Do(func() {
		setup.err = g.AddNode(ctx, kubeground.NodeSpec{Name: "ebscsi-node", Labels: map[string]string{corev1.LabelTopologyZone: nodeZone}})
	})
	if setup.err != nil {
		t.Fatal(setup.err)
	}
	kube := g.Client()
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ebscsi-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	return &world{kube: kube, ns: ns.Name, p: ebscsi.New(ebscsi.Options{Kube: kube, Namespace: ns.Name})}
}

type classSpec struct {
	provisioner string
	wffc        bool
	isDefault   bool
	params      map[string]string
}

// class creates a cluster-scoped StorageClass for the test, removed after.
func (w *world) class(t *testing.T, name string, c classSpec) string {
	t.Helper()
	mode := storagev1.VolumeBindingImmediate
	if c.wffc {
		mode = storagev1.VolumeBindingWaitForFirstConsumer
	}
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: w.ns + "-" + name},
		Provisioner:          c.provisioner,
		Parameters:           c.params,
		VolumeBindingMode:    &mode,
		AllowVolumeExpansion: ptr(true),
	}
	if c.isDefault {
		sc.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	}
	if _, err := w.kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.kube.StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
	})
	return sc.Name
}

func ptr[T any](v T) *T { return &v }

// claim creates a 1.5Gi claim; class "" leaves storageClassName unset, so
// the DefaultStorageClass admission plugin fills it in if a default exists.
func (w *world) claim(t *testing.T, name, class string) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1536Mi")}},
		},
	}
	if class != "" {
		pvc.Spec.StorageClassName = &class
	}
	if _, err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Create(context.Background(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// pod creates a pod that mounts the claim, so the scheduler picks a node.
func (w *world) pod(t *testing.T, name, claim string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "fake"}},
			Volumes: []corev1.Volume{{Name: "home", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}
	if _, err := w.kube.CoreV1().Pods(w.ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) getClaim(t *testing.T, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c, err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// syncUntil runs the provisioner until cond holds or the time runs out.
func (w *world) syncUntil(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if _, err := w.p.Sync(ctx); err != nil {
			t.Errorf("sync: %v", err)
			return false, err
		}
		return cond(), nil
	})
	return err == nil
}

func (w *world) events(t *testing.T, claim, reason string) []corev1.Event {
	t.Helper()
	list, err := w.kube.CoreV1().Events(w.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "PersistentVolumeClaim" && e.InvolvedObject.Name == claim && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

var gp3 = map[string]string{"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "xfs"}

// TestBinds: claims of EBS CSI classes bind, through the real PV controller
// and scheduler, to volumes shaped as the driver makes them.
func TestBinds(t *testing.T) {
	tests := []struct {
		name    string
		class   classSpec
		named   bool // the claim names the class; else it relies on the default
		withPod bool
		fsType  string
	}{
		{"default class, WaitForFirstConsumer, pod", classSpec{provisioner: ebscsi.Driver, wffc: true, isDefault: true, params: gp3}, false, true, "xfs"},
		{"named class, Immediate, no pod", classSpec{provisioner: ebscsi.Driver, params: map[string]string{"type": "io2", "iops": "3000"}}, true, false, "ext4"},
		{"deprecated fsType key", classSpec{provisioner: ebscsi.Driver, wffc: true, params: map[string]string{"fsType": "ext3", "tagSpecification_1": "team=coder"}}, true, true, "ext3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			class := w.class(t, "ebs", tc.class)
			named := ""
			if tc.named {
				named = class
			}
			w.claim(t, "home", named)
			if got := w.getClaim(t, "home").Spec.StorageClassName; got == nil || *got != class {
				t.Fatalf("claim's class = %v, want %s", got, class)
			}
			if tc.withPod {
				w.pod(t, "ws", "home")
			}
			if !w.syncUntil(t, 30*time.Second, func() bool { return w.getClaim(t, "home").Status.Phase == corev1.ClaimBound }) {
				c := w.getClaim(t, "home")
				t.Fatalf("claim not Bound: phase %s, annotations %v", c.Status.Phase, c.Annotations)
			}
			c := w.getClaim(t, "home")
			if c.Annotations[ebscsi.AnnStorageProvisioner] != ebscsi.Driver {
				t.Errorf("claim's %s = %q: the PV controller did not hand it to the driver", ebscsi.AnnStorageProvisioner, c.Annotations[ebscsi.AnnStorageProvisioner])
			}
			pv, err := w.kube.CoreV1().PersistentVolumes().Get(context.Background(), c.Spec.VolumeName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = w.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
			})
			if pv.Name != "pvc-"+string(c.UID) || pv.Annotations[ebscsi.AnnProvisionedBy] != ebscsi.Driver {
				t.Errorf("volume %s annotations %v", pv.Name, pv.Annotations)
			}
			csi := pv.Spec.CSI
			if csi == nil || csi.Driver != ebscsi.Driver || !strings.HasPrefix(csi.VolumeHandle, "vol-") || len(csi.VolumeHandle) != 21 || csi.FSType != tc.fsType {
				t.Errorf("CSI source %+v, want driver %s, handle vol-<17 hex>, fsType %s", csi, ebscsi.Driver, tc.fsType)
			}
			if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.Cmp(resource.MustParse("2Gi")) != 0 {
				t.Errorf("capacity %s, want the 1.5Gi request rounded up to 2Gi", q.String())
			}
			if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.StorageClassName != class {
				t.Errorf("reclaim %s class %s", pv.Spec.PersistentVolumeReclaimPolicy, pv.Spec.StorageClassName)
			}
			if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != c.UID {
				t.Errorf("claimRef %+v, want the claim %s", ref, c.UID)
			}
			terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
			if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 || terms[0].MatchExpressions[0].Key != ebscsi.LabelZone ||
				len(terms[0].MatchExpressions[0].Values) != 1 || terms[0].MatchExpressions[0].Values[0] != nodeZone {
				t.Errorf("node affinity %+v, want %s In [%s]", terms, ebscsi.LabelZone, nodeZone)
			}
			if tc.withPod {
				ok := w.syncUntil(t, 30*time.Second, func() bool {
					p, err := w.kube.CoreV1().Pods(w.ns).Get(context.Background(), "ws", metav1.GetOptions{})
					return err == nil && p.Spec.NodeName == "ebscsi-node"
				})
				if !ok {
					t.Error("the pod was not scheduled after its claim bound")
				}
			}
			if len(w.events(t, "home", ebscsi.EventProvisioningSucceeded)) != 1 {
				t.Errorf("want one %s event on the claim", ebscsi.EventProvisioningSucceeded)
			}
		})
	}
}

// TestStaysPending: claims the EBS CSI driver would not provision on AWS
// stay Pending, and a refused one says why in a Warning event.
func TestStaysPending(t *testing.T) {
	tests := []struct {
		name      string
		class     *classSpec // nil: no class at all, and no default
		withPod   bool
		wantEvent string // a ProvisioningFailed message part; "" = no event
	}{
		{"no class and no default", nil, true, ""},
		{"another provisioner", &classSpec{provisioner: "example.com/other", wffc: true}, true, ""},
		{"WaitForFirstConsumer without a pod", &classSpec{provisioner: ebscsi.Driver, wffc: true, params: gp3}, false, ""},
		{"unknown volume type", &classSpec{provisioner: ebscsi.Driver, wffc: true, params: map[string]string{"type": "gp9"}}, true, `invalid AWS VolumeType "gp9"`},
		{"unknown parameter", &classSpec{provisioner: ebscsi.Driver, params: map[string]string{"encrypt": "true"}}, false, "Invalid parameter key encrypt"},
		{"iops not a number", &classSpec{provisioner: ebscsi.Driver, params: map[string]string{"type": "io1", "iops": "lots"}}, false, "iops"},
		{"reserved key unknown", &classSpec{provisioner: ebscsi.Driver, params: map[string]string{"csi.storage.k8s.io/fs-type": "ext4"}}, false, "reserved namespace"},
		{"block express on gp3", &classSpec{provisioner: ebscsi.Driver, params: map[string]string{"blockExpress": "true"}}, false, "Block Express"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			class := ""
			if tc.class != nil {
				class = w.class(t, "c", *tc.class)
			}
			w.claim(t, "home", class)
			if tc.withPod {
				w.pod(t, "ws", "home")
			}
			var res ebscsi.Result
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				r, err := w.p.Sync(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				res.Provisioned = append(res.Provisioned, r.Provisioned...)
				res.Refused = append(res.Refused, r.Refused...)
				time.Sleep(100 * time.Millisecond)
			}
			if c := w.getClaim(t, "home"); c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || len(res.Provisioned) != 0 {
				t.Fatalf("claim phase %s volume %q (provisioned %v), want Pending", c.Status.Phase, c.Spec.VolumeName, res.Provisioned)
			}
			failed := w.events(t, "home", ebscsi.EventProvisioningFailed)
			if tc.wantEvent == "" {
				if len(failed) != 0 {
					t.Errorf("unexpected events %v", failed)
				}
				return
			}
			if len(failed) != 1 || failed[0].Type != corev1.EventTypeWarning || !strings.Contains(failed[0].Message, tc.wantEvent) || !strings.Contains(failed[0].Message, class) {
				t.Errorf("events %+v, want one Warning naming %s and saying %q (once, though Sync ran many times)", failed, class, tc.wantEvent)
			}
		})
	}
}

// TestDeleteReclaims: deleting a claim whose volume has reclaim policy
// Delete deletes the volume; Retain keeps it.
func TestDeleteReclaims(t *testing.T) {
	for _, policy := range []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain} {
		t.Run(string(policy), func(t *testing.T) {
			w := newWorld(t)
			class := w.class(t, "ebs", classSpec{provisioner: ebscsi.Driver})
			sc, err := w.kube.StorageV1().StorageClasses().Get(context.Background(), class, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if policy == corev1.PersistentVolumeReclaimRetain { // reclaimPolicy is immutable: recreate
				_ = w.kube.StorageV1().StorageClasses().Delete(context.Background(), class, metav1.DeleteOptions{})
				sc.ResourceVersion, sc.ReclaimPolicy = "", &policy
				if _, err := w.kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			w.claim(t, "home", class)
			if !w.syncUntil(t, 30*time.Second, func() bool { return w.getClaim(t, "home").Status.Phase == corev1.ClaimBound }) {
				t.Fatal("claim never bound")
			}
			pvName := w.getClaim(t, "home").Spec.VolumeName
			t.Cleanup(func() {
				_ = w.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
			})
			if err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Delete(context.Background(), "home", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			released := w.syncUntil(t, 30*time.Second, func() bool {
				pv, err := w.kube.CoreV1().PersistentVolumes().Get(context.Background(), pvName, metav1.GetOptions{})
				if policy == corev1.PersistentVolumeReclaimDelete {
					return apierrors.IsNotFound(err)
				}
				return err == nil && pv.Status.Phase == corev1.VolumeReleased
			})
			if !released {
				t.Fatalf("volume %s with policy %s: want it deleted (Delete) or kept Released (Retain)", pvName, policy)
			}
			if policy == corev1.PersistentVolumeReclaimRetain {
				if _, err := w.p.Sync(context.Background()); err != nil {
					t.Fatal(err)
				}
				if _, err := w.kube.CoreV1().PersistentVolumes().Get(context.Background(), pvName, metav1.GetOptions{}); err != nil {
					t.Errorf("retained volume: %v", err)
				}
			}
		})
	}
}

func TestValidateParameters(t *testing.T) {
	tests := []struct {
		params  map[string]string
		want    ebscsi.Parameters
		wantErr string
	}{
		{nil, ebscsi.Parameters{Type: "gp3", FSType: "ext4"}, ""},
		{map[string]string{"Type": "st1", "Encrypted": "true", "KmsKeyId": "arn:k"}, ebscsi.Parameters{Type: "st1", FSType: "ext4", Encrypted: true, KMSKeyID: "arn:k"}, ""},
		{map[string]string{"encrypted": "yes"}, ebscsi.Parameters{Type: "gp3", FSType: "ext4"}, ""},
		{map[string]string{"type": "io2", "blockExpress": "true", "iopsPerGB": "50", "allowAutoIOPSPerGBIncrease": "true"}, ebscsi.Parameters{Type: "io2", FSType: "ext4"}, ""},
		{map[string]string{"iops": "3000", "iopsPerGB": "10"}, ebscsi.Parameters{}, "not both"},
		{map[string]string{"throughput": "1.5"}, ebscsi.Parameters{}, "throughput"},
		{map[string]string{"blockSize": "4k!"}, ebscsi.Parameters{}, "blockSize"},
		{map[string]string{"TYPE": "GP3"}, ebscsi.Parameters{}, "VolumeType"},
	}
	for _, tc := range tests {
		got, err := ebscsi.ValidateParameters(tc.params)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want one saying %q", tc.params, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v = %+v, %v; want %+v", tc.params, got, err, tc.want)
		}
	}
}

// TestStart: the background provisioner binds a claim and stops on stop.
func TestStart(t *testing.T) {
	w := newWorld(t)
	class := w.class(t, "ebs", classSpec{provisioner: ebscsi.Driver})
	var mu sync.Mutex
	var errs []error
	stop := ebscsi.Start(context.Background(), ebscsi.Options{Kube: w.kube, Namespace: w.ns, Interval: 50 * time.Millisecond,
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
	defer stop()
	w.claim(t, "home", class)
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return w.getClaim(t, "home").Status.Phase == corev1.ClaimBound, nil
	})
	if err != nil {
		t.Fatal("claim not bound by the background provisioner")
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}
