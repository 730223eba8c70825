package sizing

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
)

// Placement: where a role's pods go (the selector and tolerations a chart
// is given) and the check that they went there. The coder and provisioners
// stages both place pods by role; the choice follows the node groups this
// package already sizes.

// NodePlacement is the nodeSelector and tolerations that put pods on the
// node group labelled coder/node-type=<role>, taken from cluster-config.yaml
// (its label, and a toleration for each of its taints); the guide's
// coder/node-type=<role>:NoSchedule when no group carries the label.
func NodePlacement(groups []config.NodeGroupSpec, role string) (map[string]string, []corev1.Toleration) {
	selector := map[string]string{NodeTypeLabel: role}
	g, ok := GroupFor(groups, role)
	if !ok {
		return selector, []corev1.Toleration{{
			Key: NodeTypeLabel, Operator: corev1.TolerationOpEqual, Value: role, Effect: corev1.TaintEffectNoSchedule,
		}}
	}
	tolerations := make([]corev1.Toleration, 0, len(g.Taints))
	for _, t := range g.Taints {
		tolerations = append(tolerations, corev1.Toleration{
			Key: t.Key, Operator: corev1.TolerationOpEqual, Value: t.Value, Effect: corev1.TaintEffect(t.Effect),
		})
	}
	return selector, tolerations
}

// PodsSpec says which pods PodsOnNodes checks.
type PodsSpec struct {
	Namespace, Check, What, Selector, Role, Hint string
	Want                                         int
}

// PodsOnNodes checks that at least Want pods matching Selector in
// Namespace are Ready, every one on a node labelled coder/node-type=Role;
// it warns when more than one is wanted but all share one node.
func PodsOnNodes(ctx context.Context, kc kubernetes.Interface, spec PodsSpec) engine.Check {
	pods, err := kc.CoreV1().Pods(spec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: spec.Selector})
	if err != nil {
		return engine.Failf(spec.Check, spec.Hint, "cannot list %s pods: %v", spec.What, err)
	}
	nodes, err := nodeRoles(ctx, kc)
	if err != nil {
		return engine.Failf(spec.Check, spec.Hint, "cannot list nodes: %v", err)
	}
	ready, hosts := 0, map[string]bool{}
	var misplaced, notReady []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.NodeName != "" && nodes[p.Spec.NodeName] != spec.Role {
			misplaced = append(misplaced, fmt.Sprintf("%s on %s (%s=%q)", p.Name, p.Spec.NodeName, NodeTypeLabel, nodes[p.Spec.NodeName]))
			continue
		}
		if !podReady(&p) {
			notReady = append(notReady, fmt.Sprintf("%s (%s)", p.Name, podState(&p)))
			continue
		}
		ready++
		hosts[p.Spec.NodeName] = true
	}
	switch {
	case len(misplaced) > 0:
		return engine.Failf(spec.Check, "the pods must select and tolerate the "+spec.Role+" node group", "%s pods on the wrong nodes: %s",
			spec.What, strings.Join(misplaced, ", "))
	case ready < spec.Want:
		detail := ""
		if len(notReady) > 0 {
			detail = "; not ready: " + strings.Join(firstN(notReady, 5), ", ")
		}
		return engine.Failf(spec.Check, spec.Hint, "%d of %d %s pods ready%s", ready, spec.Want, spec.What, detail)
	case spec.Want > 1 && len(hosts) == 1:
		return engine.Warnf(spec.Check, "add "+spec.Role+" nodes so that losing one node leaves a replica",
			"%d %s pods ready, but all on one node", ready, spec.What)
	}
	return engine.Passf(spec.Check, "%d of %d %s pods ready on %d %s node(s)", ready, spec.Want, spec.What, len(hosts), spec.Role)
}

// nodeRoles maps node names to their coder/node-type label.
func nodeRoles(ctx context.Context, kc kubernetes.Interface) (map[string]string, error) {
	list, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range list.Items {
		out[n.Name] = n.Labels[NodeTypeLabel]
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podState is a pod's phase, or the reason a container is waiting.
func podState(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			return cs.State.Waiting.Reason
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			return string(p.Status.Phase) + ": " + c.Message
		}
	}
	return string(p.Status.Phase)
}

func firstN(s []string, n int) []string {
	sort.Strings(s)
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
