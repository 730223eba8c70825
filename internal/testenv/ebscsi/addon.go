package ebscsi

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The EKS add-on that installs the driver, and the node plugin DaemonSet it
// runs.
const (
	AddonName           = "aws-ebs-csi-driver"
	NodePluginNamespace = "kube-system"
	NodePluginName      = "ebs-csi-node"
)

// addonInstalled asks the EKS add-on API whether the driver's add-on
// exists on the cluster (any status but DELETING).
func (p *Provisioner) addonInstalled(ctx context.Context) (bool, error) {
	out, err := p.opts.Addons.DescribeAddon(ctx, &eks.DescribeAddonInput{ClusterName: aws.String(p.opts.Cluster), AddonName: aws.String(AddonName)})
	var nf *ekstypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ebscsi: describe add-on %s: %w", AddonName, err)
	}
	return out.Addon.Status != ekstypes.AddonStatusDeleting, nil
}

// syncNodePlugin creates the add-on's node plugin DaemonSet while the
// add-on is installed (only when missing: a DaemonSet someone changed stays
// changed) and deletes it when the add-on is gone. kwok runs its pods on
// every node it tolerates, so the DaemonSet's status reads as on EKS.
func (p *Provisioner) syncNodePlugin(ctx context.Context, installed bool) error {
	dss := p.opts.Kube.AppsV1().DaemonSets(NodePluginNamespace)
	if !installed {
		err := dss.Delete(ctx, NodePluginName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("ebscsi: delete DaemonSet %s: %w", NodePluginName, err)
		}
		return nil
	}
	_, err := dss.Create(ctx, nodePlugin(), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("ebscsi: create DaemonSet %s: %w", NodePluginName, err)
	}
	return nil
}

// nodePlugin is the add-on's node DaemonSet as far as coderctl looks at it:
// name, labels, Linux nodes, and the add-on's default of tolerating every
// taint (node.tolerateAllTaints), so tainted node groups get the plugin.
func nodePlugin() *appsv1.DaemonSet {
	labels := map[string]string{"app": NodePluginName, "app.kubernetes.io/name": AddonName}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: NodePluginName, Namespace: NodePluginNamespace,
			Labels:      map[string]string{"app.kubernetes.io/name": AddonName, "app.kubernetes.io/managed-by": "EKS"},
			Annotations: map[string]string{"coderctl.dev/test-stand-in": "ebscsi"},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector:      map[string]string{corev1.LabelOSStable: "linux"},
					Tolerations:       []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					PriorityClassName: "system-node-critical",
					Containers: []corev1.Container{
						{Name: "ebs-plugin", Image: "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:stand-in"},
						{Name: "node-driver-registrar", Image: "public.ecr.aws/csi-components/csi-node-driver-registrar:stand-in"},
					},
				},
			},
		},
	}
}
