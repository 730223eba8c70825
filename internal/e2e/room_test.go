package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/stages/storage"
)

// roomNamespace holds what the room checks create.
const roomNamespace = "room-e2e"

// assertRoomForWorkspaces checks, after up, that workspaces get room as on
// AWS: a claim without a class binds on the default class; verify names the
// class check when the default mark is gone (and up repairs it); pods
// beyond the workspace group's desired capacity get nodes up to its
// maxSize, and no further.
func (w *world) assertRoomForWorkspaces() {
	w.t.Helper()
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: roomNamespace}}, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = kc.CoreV1().Namespaces().Delete(context.Background(), roomNamespace, metav1.DeleteOptions{})
	})
	w.t.Run("claim without a class binds on the default class", func(t *testing.T) { assertClaimBinds(t, kc) })
	w.t.Run("verify names the class check", w.assertDefaultClassChecked)
	w.t.Run("workspace group grows to maxSize and no further", func(t *testing.T) { w.assertGrowsToMax(t, kc) })
}

// workspacePlacement is what the workspace template gives a pod.
func workspacePlacement(spec *corev1.PodSpec) {
	spec.NodeSelector = map[string]string{"coder/node-type": "workspace"}
	spec.Tolerations = []corev1.Toleration{{Key: "coder/node-type", Operator: corev1.TolerationOpEqual, Value: "workspace", Effect: corev1.TaintEffectNoSchedule}}
}

// createWorkspaceWithHome creates what a workspace build makes: a home
// claim without a class (so the default class decides) and a pod placed as
// the workspace template places it, mounting the claim.
func createWorkspaceWithHome(t *testing.T, kc kubernetes.Interface, namespace string) {
	t.Helper()
	ctx := context.Background()
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "home", Namespace: namespace},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	if _, err := kc.CoreV1().PersistentVolumeClaims(namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "workspace", Namespace: namespace},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "dev", Image: "codercom/enterprise-base:ubuntu",
				VolumeMounts: []corev1.VolumeMount{{Name: "home", MountPath: "/home/coder"}}}},
			Volumes: []corev1.Volume{{Name: "home", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "home"}}}},
		},
	}
	workspacePlacement(&pod.Spec)
	if _, err := kc.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func assertClaimBinds(t *testing.T, kc kubernetes.Interface) {
	ctx := context.Background()
	createWorkspaceWithHome(t, kc, roomNamespace)
	var got *corev1.PersistentVolumeClaim
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = kc.CoreV1().PersistentVolumeClaims(roomNamespace).Get(ctx, "home", metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.ClaimBound, nil
	})
	if err != nil {
		t.Fatalf("claim never bound: %+v", got.Status)
	}
	if c := got.Spec.StorageClassName; c == nil || *c != storage.ClassName {
		t.Errorf("claim's class = %v, want the default %s", c, storage.ClassName)
	}
}

// assertDefaultClassChecked removes the default mark: verify fails naming
// the check, and `up` puts it back.
func (w *world) assertDefaultClassChecked(t *testing.T) {
	kc, err := kubernetes.NewForConfig(w.g.Kube.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + storage.AnnotationDefault + `":null}}}`)
	if _, err := kc.StorageV1().StorageClasses().Patch(context.Background(), storage.ClassName, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r := w.run("verify", "storage")
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, storage.CheckDefaultClass) || !strings.Contains(r.stdout+r.stderr, "no StorageClass is marked default") {
		t.Errorf("verify without a default class: exit %d, want 1 naming %s\n%s%s", r.code, storage.CheckDefaultClass, r.stdout, r.stderr)
	}
	if r := w.run("up", "--yes", "--only", "storage"); r.code != 0 {
		t.Fatalf("up --only storage: exit %d\n%s", r.code, r.stderr)
	}
	if r := w.run("verify", "storage"); r.code != 0 {
		t.Errorf("verify after repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// assertGrowsToMax asks for more workspace nodes than the group's maxSize
// (20): one pod per node by CPU. The autoscaler grows the group from its
// desired size to 20; the pods beyond stay Pending.
func (w *world) assertGrowsToMax(t *testing.T, kc kubernetes.Interface) {
	ctx := context.Background()
	const maxSize, extra = 20, 2
	replicas := int32(maxSize + extra)
	labels := map[string]string{"app": "node-filler"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "node-filler", Namespace: roomNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "build", Image: "codercom/enterprise-base:ubuntu",
					// 40 of an m7i.12xlarge's 48 vCPUs: one such pod per node.
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("40")}}}}},
			},
		},
	}
	workspacePlacement(&dep.Spec.Template.Spec)
	if _, err := kc.AppsV1().Deployments(roomNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var running, pending int
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := kc.CoreV1().Pods(roomNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=node-filler"})
		if err != nil {
			return false, nil
		}
		running, pending = 0, 0
		for _, p := range pods.Items {
			switch p.Status.Phase {
			case corev1.PodRunning:
				running++
			case corev1.PodPending:
				pending++
			}
		}
		return running == maxSize && pending == extra, nil
	})
	if err != nil {
		t.Fatalf("after growth: %d running, %d pending; want %d running (one per node at maxSize) and %d pending", running, pending, maxSize, extra)
	}
	out, err := w.eks(t).DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("coder-workspace")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(out.Nodegroup.ScalingConfig.DesiredSize); got != maxSize {
		t.Errorf("coder-workspace desiredSize = %d, want its maxSize %d", got, maxSize)
	}
	// A few more looks: the pending pods stay pending, the group at max.
	time.Sleep(2 * time.Second)
	out, err = w.eks(t).DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("coder-workspace")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(out.Nodegroup.ScalingConfig.DesiredSize); got != maxSize {
		t.Errorf("coder-workspace desiredSize = %d after waiting, want it held at %d", got, maxSize)
	}
	if err := kc.AppsV1().Deployments(roomNamespace).Delete(ctx, "node-filler", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// eks is an EKS client on the ground's moto (not through the counting
// proxy).
func (w *world) eks(t *testing.T) *eks.Client {
	cfg, err := w.g.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return eks.NewFromConfig(cfg)
}
