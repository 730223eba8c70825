package autoscalesim

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"
)

// The scheduling predicates the stand-in simulates, as the autoscaler runs
// the scheduler's filters against a node group's template node: node
// selector, required node affinity, taints, and resources. Pod affinity,
// topology spread, volume topology and host ports are not simulated.

// slot is a node (real, upcoming or planned) and the resources left on it.
type slot struct {
	node  *corev1.Node
	free  corev1.ResourceList
	group string // node group; "" for a node of no discovered group
}

// fits reports whether pod can be placed on the slot now.
func (s *slot) fits(pod *corev1.Pod) bool {
	return matches(pod, s.node) && hasRoom(s.free, podRequests(pod))
}

// place takes the pod's requests from the slot.
func (s *slot) place(pod *corev1.Pod) {
	for name, q := range podRequests(pod) {
		left := s.free[name].DeepCopy()
		left.Sub(q)
		s.free[name] = left
	}
}

// matches checks the pod's node selector, required node affinity and
// tolerations against the node's labels and taints.
func matches(pod *corev1.Pod, node *corev1.Node) bool {
	for k, v := range pod.Spec.NodeSelector {
		if node.Labels[k] != v {
			return false
		}
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		ok := false
		for _, term := range terms {
			if termMatches(term, node.Labels) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerated(pod.Spec.Tolerations, t) {
			return false
		}
	}
	return true
}

// termMatches: every expression of the term holds (ANDed); a term with
// matchFields only names real nodes, which a template is not.
func termMatches(term corev1.NodeSelectorTerm, labels map[string]string) bool {
	if len(term.MatchFields) > 0 || len(term.MatchExpressions) == 0 {
		return false
	}
	for _, e := range term.MatchExpressions {
		v, has := labels[e.Key]
		switch e.Operator {
		case corev1.NodeSelectorOpIn:
			if !has || !contains(e.Values, v) {
				return false
			}
		case corev1.NodeSelectorOpNotIn:
			if has && contains(e.Values, v) {
				return false
			}
		case corev1.NodeSelectorOpExists:
			if !has {
				return false
			}
		case corev1.NodeSelectorOpDoesNotExist:
			if has {
				return false
			}
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			if !has || len(e.Values) != 1 {
				return false
			}
			have, err1 := strconv.ParseInt(v, 10, 64)
			want, err2 := strconv.ParseInt(e.Values[0], 10, 64)
			if err1 != nil || err2 != nil {
				return false
			}
			if (e.Operator == corev1.NodeSelectorOpGt && have <= want) || (e.Operator == corev1.NodeSelectorOpLt && have >= want) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// tolerated applies the scheduler's own rule (the API type's
// ToleratesTaint; comparison operators off, as by default).
func tolerated(tols []corev1.Toleration, t *corev1.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(klog.Background(), t, false) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// podRequests are what the scheduler counts for a pod: the larger of the
// containers' sum and any init container, plus the overhead, and one pod.
func podRequests(pod *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		for name, q := range c.Resources.Requests {
			sum := out[name].DeepCopy()
			sum.Add(q)
			out[name] = sum
		}
	}
	for _, c := range pod.Spec.InitContainers {
		for name, q := range c.Resources.Requests {
			if have := out[name]; q.Cmp(have) > 0 {
				out[name] = q.DeepCopy()
			}
		}
	}
	for name, q := range pod.Spec.Overhead {
		sum := out[name].DeepCopy()
		sum.Add(q)
		out[name] = sum
	}
	out[corev1.ResourcePods] = resource.MustParse("1")
	return out
}

// hasRoom: every request fits in what is left; a resource the node does
// not have fits only a zero request.
func hasRoom(free, req corev1.ResourceList) bool {
	for name, q := range req {
		if q.IsZero() {
			continue
		}
		left, ok := free[name]
		if !ok || left.Cmp(q) < 0 {
			return false
		}
	}
	return true
}
