package ebscsi_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/testenv/ebscsi"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// TestFollowsTheAddon: with the EKS add-on API, the driver exists only
// while the aws-ebs-csi-driver add-on does: before, claims stay Pending and
// there is no node plugin; with it, the node plugin DaemonSet (tolerating
// every taint) runs and claims bind; after its deletion the plugin is gone.
func TestFollowsTheAddon(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	addons := ekstest.Use(t, ekstest.Options{})
	cfg, err := moto.Require(t).AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	// moto.Require reset moto: the double serves the fresh one.
	ekc := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(addons.URL) })
	if _, err := ekc.CreateCluster(ctx, &eks.CreateClusterInput{Name: aws.String("ebs"), RoleArn: aws.String("arn:aws:iam::123456789012:role/c"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1"}}}); err != nil {
		t.Fatal(err)
	}
	w.p = ebscsi.New(ebscsi.Options{Kube: w.kube, Namespace: w.ns, Addons: ekc, Cluster: "ebs"})
	t.Cleanup(func() {
		_ = w.kube.AppsV1().DaemonSets(ebscsi.NodePluginNamespace).Delete(context.Background(), ebscsi.NodePluginName, metav1.DeleteOptions{})
	})
	class := w.class(t, "ebs", classSpec{provisioner: ebscsi.Driver})
	w.claim(t, "home", class)
	for range 10 {
		if _, err := w.p.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := w.getClaim(t, "home"); c.Status.Phase != corev1.ClaimPending {
		t.Fatalf("claim %s without the add-on, want Pending", c.Status.Phase)
	}
	if _, err := w.kube.AppsV1().DaemonSets(ebscsi.NodePluginNamespace).Get(ctx, ebscsi.NodePluginName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("node plugin without the add-on: %v", err)
	}

	if _, err := ekc.CreateAddon(ctx, &eks.CreateAddonInput{ClusterName: aws.String("ebs"), AddonName: aws.String(ebscsi.AddonName)}); err != nil {
		t.Fatal(err)
	}
	if !w.syncUntil(t, 30*time.Second, func() bool { return w.getClaim(t, "home").Status.Phase == corev1.ClaimBound }) {
		t.Fatal("claim not bound with the add-on installed")
	}
	t.Cleanup(func() {
		_ = w.kube.CoreV1().PersistentVolumes().Delete(context.Background(), w.getClaim(t, "home").Spec.VolumeName, metav1.DeleteOptions{})
	})
	ready := w.syncUntil(t, 30*time.Second, func() bool {
		ds, err := w.kube.AppsV1().DaemonSets(ebscsi.NodePluginNamespace).Get(ctx, ebscsi.NodePluginName, metav1.GetOptions{})
		return err == nil && ds.Status.DesiredNumberScheduled > 0 && ds.Status.NumberReady == ds.Status.DesiredNumberScheduled
	})
	if !ready {
		t.Fatal("node plugin DaemonSet not ready on the nodes")
	}
	ds, _ := w.kube.AppsV1().DaemonSets(ebscsi.NodePluginNamespace).Get(ctx, ebscsi.NodePluginName, metav1.GetOptions{})
	if tol := ds.Spec.Template.Spec.Tolerations; len(tol) != 1 || tol[0].Operator != corev1.TolerationOpExists || tol[0].Key != "" {
		t.Errorf("node plugin tolerations %v, want every taint tolerated", tol)
	}

	if _, err := ekc.DeleteAddon(ctx, &eks.DeleteAddonInput{ClusterName: aws.String("ebs"), AddonName: aws.String(ebscsi.AddonName)}); err != nil {
		t.Fatal(err)
	}
	gone := w.syncUntil(t, 30*time.Second, func() bool {
		_, err := w.kube.AppsV1().DaemonSets(ebscsi.NodePluginNamespace).Get(ctx, ebscsi.NodePluginName, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if !gone {
		t.Error("node plugin still there after the add-on was deleted")
	}
}
