package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// The EBS CSI add-on's node plugin, which attaches and mounts volumes on
// each node.
const (
	NodePluginNamespace = "kube-system"
	NodePluginDaemonSet = "ebs-csi-node"
)

const applyHint = "run 'coderctl stage storage apply'"

func (s *stage) verify(ctx context.Context) []engine.Check {
	kc, err := s.kubeClient(ctx)
	if err != nil {
		return []engine.Check{
			engine.Failf(CheckDefaultClass, "run 'coderctl stage eks apply'", "cannot reach the cluster: %v", err),
			engine.Failf(CheckNodePlugin, "run 'coderctl stage eks apply'", "cannot reach the cluster: %v", err),
		}
	}
	plugin, _ := checkNodePlugin(ctx, kc)
	return []engine.Check{s.checkDefaultClass(ctx, kc), plugin}
}

// checkDefaultClass passes when exactly one class is marked default and it
// is ours, as wanted.
func (s *stage) checkDefaultClass(ctx context.Context, kc kubernetes.Interface) engine.Check {
	have, err := readClasses(ctx, kc)
	if err != nil {
		return engine.Failf(CheckDefaultClass, "check access to the cluster", "%v", err)
	}
	defaults := have.otherDefaults
	if have.ours != nil && isDefault(*have.ours) {
		defaults = append([]string{ClassName}, defaults...)
	}
	switch {
	case len(defaults) == 0:
		return engine.Failf(CheckDefaultClass, applyHint,
			"no StorageClass is marked default: a workspace's volume claim without a class stays Pending")
	case len(defaults) > 1:
		return engine.Failf(CheckDefaultClass, applyHint+" (it unmarks the others)",
			"%d StorageClasses are marked default (%s): claims without a class get whichever is newest", len(defaults), strings.Join(defaults, ", "))
	case defaults[0] != ClassName:
		return engine.Failf(CheckDefaultClass, applyHint, "the default StorageClass is %s, not %s", defaults[0], ClassName)
	}
	if drift := append(immutableDrift(have.ours, WantedClass(s.d.Deployment())), mutableDrift(have.ours)...); len(drift) > 0 {
		return engine.Failf(CheckDefaultClass, applyHint, "StorageClass %s: %s", ClassName, strings.Join(drift, "; "))
	}
	return engine.Passf(CheckDefaultClass, "%s is the only default class: %s, gp3, encrypted, WaitForFirstConsumer, expandable",
		ClassName, Provisioner)
}

// checkNodePlugin passes when the EBS CSI node plugin tolerates every
// node's taints and is ready on every node: a node without it cannot
// attach a workspace's volume, and the pod would never start there.
// starting says a failure may be the plugin still starting on new nodes
// (worth waiting for), not a plugin that is missing or kept off nodes.
func checkNodePlugin(ctx context.Context, kc kubernetes.Interface) (c engine.Check, starting bool) {
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	ds, err := kc.AppsV1().DaemonSets(NodePluginNamespace).Get(ctx, NodePluginDaemonSet, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return engine.Failf(CheckNodePlugin, "keep aws-ebs-csi-driver in addons of cluster-config.yaml and run 'coderctl stage eks apply'",
			"DaemonSet %s/%s not found: the EBS CSI driver add-on is not installed", NodePluginNamespace, NodePluginDaemonSet), false
	}
	if err != nil {
		return engine.Failf(CheckNodePlugin, "check access to the cluster", "read DaemonSet %s/%s: %v", NodePluginNamespace, NodePluginDaemonSet, err), false
	}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return engine.Failf(CheckNodePlugin, "check access to the cluster", "list nodes: %v", err), false
	}
	if missed := untoleratedNodes(ds, nodes.Items); len(missed) > 0 {
		return engine.Failf(CheckNodePlugin,
			"give the aws-ebs-csi-driver add-on the configuration {\"node\":{\"tolerateAllTaints\":true}} (its default)",
			"%s does not tolerate the taints of %d node(s): %s", NodePluginDaemonSet, len(missed), strings.Join(missed, "; ")), false
	}
	st := ds.Status
	// While a new template rolls out (an add-on update, changed
	// tolerations), old pods still count as ready until replaced: as
	// 'kubectl rollout status' does, wait until the controller has seen the
	// newest spec and every node runs it.
	if st.ObservedGeneration < ds.Generation || st.UpdatedNumberScheduled < st.DesiredNumberScheduled {
		return engine.Failf(CheckNodePlugin, "kubectl -n kube-system rollout status daemonset ebs-csi-node",
			"%s is rolling out: %d of %d nodes run its newest version", NodePluginDaemonSet, st.UpdatedNumberScheduled, len(nodes.Items)), true
	}
	if st.DesiredNumberScheduled < int32(len(nodes.Items)) || st.NumberReady < st.DesiredNumberScheduled {
		return engine.Failf(CheckNodePlugin, "kubectl -n kube-system describe daemonset ebs-csi-node",
			"%s is ready on %d of %d nodes", NodePluginDaemonSet, st.NumberReady, len(nodes.Items)), true
	}
	return engine.Passf(CheckNodePlugin, "%s is ready on all %d nodes, tainted ones included", NodePluginDaemonSet, len(nodes.Items)), false
}

// untoleratedNodes names the nodes (with the taint) where the DaemonSet's
// pods may not run.
func untoleratedNodes(ds *appsv1.DaemonSet, nodes []corev1.Node) []string {
	var out []string
	for _, n := range nodes {
		for _, t := range n.Spec.Taints {
			if t.Effect == corev1.TaintEffectPreferNoSchedule || tolerated(ds.Spec.Template.Spec.Tolerations, t) {
				continue
			}
			out = append(out, fmt.Sprintf("%s (%s=%s:%s)", n.Name, t.Key, t.Value, t.Effect))
			break
		}
	}
	return out
}

// tolerated applies the scheduler's own rule (the API type's
// ToleratesTaint; comparison operators off, as by default).
func tolerated(tols []corev1.Toleration, t corev1.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(klog.Background(), &t, false) {
			return true
		}
	}
	return false
}

// nodePluginTimeout bounds waiting for the plugin on new nodes.
const nodePluginTimeout = 5 * time.Minute

func (s *stage) planNodePlugin(context.Context) ([]engine.Action, error) {
	return []engine.Action{{Kind: engine.Nothing, Resource: "daemonset/" + NodePluginNamespace + "/" + NodePluginDaemonSet,
		Reason: "wait until the EBS CSI add-on's node plugin is ready on every node"}}, nil
}

// waitNodePlugin waits while the plugin is still starting on some nodes;
// a plugin that is missing or kept off tainted nodes fails at once.
func (s *stage) waitNodePlugin(ctx context.Context, r engine.Reporter) error {
	kc, err := s.kubeClient(ctx)
	if err != nil {
		return err
	}
	return awsx.Poll(ctx, r, NodePluginDaemonSet+" on every node", s.d.Opts.Wait, nodePluginTimeout,
		func(ctx context.Context) (bool, string, error) {
			c, starting := checkNodePlugin(ctx, kc)
			switch {
			case c.Status == engine.Pass:
				return true, c.Reason, nil
			case starting:
				return false, c.Reason, nil
			}
			return false, "", fmt.Errorf("%s (%s)", c.Reason, c.Hint)
		})
}
