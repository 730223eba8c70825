package nodegroups

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
)

// LabelNodeGroup is the label EKS puts on every node of a managed node
// group, naming the group.
const LabelNodeGroup = "eks.amazonaws.com/nodegroup"

const (
	// kubeCallTimeout bounds one Kubernetes call, so an unreachable API
	// server (a private endpoint, a firewall) costs seconds, not minutes.
	kubeCallTimeout = 20 * time.Second
	// registerTimeout bounds waiting for a group's nodes to register. EKS
	// reports a group ACTIVE once its nodes joined, so this is a margin.
	registerTimeout = 10 * time.Minute
)

// kubeClient returns a client for the cluster, or why there is none.
func (s *stage) kubeClient(ctx context.Context) (kubernetes.Interface, error) {
	c, _, err := s.d.KubeClient(ctx)
	return c, err
}

// groupNodes lists the nodes of managed node groups by group name. An error
// means the API server could not be reached or refused us.
func groupNodes(ctx context.Context, kc kubernetes.Interface) (map[string][]corev1.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	list, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelNodeGroup})
	if err != nil {
		return nil, err
	}
	out := map[string][]corev1.Node{}
	for _, n := range list.Items {
		g := n.Labels[LabelNodeGroup]
		out[g] = append(out[g], n)
	}
	for g := range out {
		sort.Slice(out[g], func(i, j int) bool { return out[g][i].Name < out[g][j].Name })
	}
	return out, nil
}

// kubeTaints are a group's configured taints as Kubernetes spells them.
func kubeTaints(spec config.NodeGroupSpec) []corev1.Taint {
	out := make([]corev1.Taint, 0, len(spec.Taints))
	for _, t := range spec.Taints {
		out = append(out, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return out
}

// missingTaints are the configured taints a node does not carry exactly.
func missingTaints(n *corev1.Node, want []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, w := range want {
		if !slices.ContainsFunc(n.Spec.Taints, func(h corev1.Taint) bool {
			return h.Key == w.Key && h.Value == w.Value && h.Effect == w.Effect
		}) {
			out = append(out, w)
		}
	}
	return out
}

// missingLabels are the configured labels a node lacks or has another value for.
func missingLabels(n *corev1.Node, want map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(want) {
		if n.Labels[k] != want[k] {
			out = append(out, k+"="+want[k])
		}
	}
	return out
}

func taintText(t corev1.Taint) string { return fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect) }

func taintTexts(ts []corev1.Taint) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = taintText(t)
	}
	return strings.Join(out, ",")
}

// repair is one node that lacks some of its group's taints.
type repair struct {
	node    string
	missing []corev1.Taint
}

// repairs lists the nodes of tainted groups that lack a configured taint.
func (s *stage) repairs(nodes map[string][]corev1.Node) []repair {
	var out []repair
	for _, g := range s.d.NodeGroups() {
		want := kubeTaints(g)
		if len(want) == 0 {
			continue
		}
		for i := range nodes[g.Name] {
			if m := missingTaints(&nodes[g.Name][i], want); len(m) > 0 {
				out = append(out, repair{node: nodes[g.Name][i].Name, missing: m})
			}
		}
	}
	return out
}

func (s *stage) planTaints(ctx context.Context) ([]engine.Action, error) {
	const res = "node-taints"
	kc, err := s.kubeClient(ctx)
	if err != nil {
		return action(engine.Nothing, res, "cluster not reachable now (%v): node taints are checked at apply", err), nil
	}
	nodes, err := groupNodes(ctx, kc)
	if err != nil {
		return action(engine.Nothing, res, "cluster not reachable now (%v): node taints are checked at apply", err), nil
	}
	var acts []engine.Action
	for _, rp := range s.repairs(nodes) {
		acts = append(acts, action(engine.Update, "node/"+rp.node, "lacks taint %s: add it", taintTexts(rp.missing))...)
	}
	if len(acts) == 0 {
		return action(engine.Nothing, res, "every registered node of a tainted group carries its taints"), nil
	}
	return acts, nil
}

// applyTaints waits for each group's nodes to register, then re-adds any
// configured taint a node has lost. EKS taints nodes at creation; this is
// the guide's `kubectl taint` step, done only where it is needed. Without
// access to the cluster it says so and leaves the check to verify.
func (s *stage) applyTaints(ctx context.Context, r engine.Reporter) error {
	r = reporter(r)
	kc, err := s.kubeClient(ctx)
	if err == nil {
		_, err = groupNodes(ctx, kc)
	}
	if err != nil {
		r.Notice(fmt.Sprintf("cluster not reachable (%v): node taints not checked; run 'coderctl stage nodegroups apply' again once it is", err), nil)
		return nil
	}
	nodes, err := s.waitRegistered(ctx, r, kc)
	if err != nil {
		return err
	}
	for _, rp := range s.repairs(nodes) {
		r.Progress(fmt.Sprintf("node %s lacks taint %s: adding it", rp.node, taintTexts(rp.missing)))
		if err := addTaints(ctx, kc, rp.node, rp.missing); err != nil {
			return fmt.Errorf("taint node %s with %s: %w", rp.node, taintTexts(rp.missing), err)
		}
	}
	return nil
}

// waitRegistered waits until every group has at least its desired number
// of nodes registered and returns them.
func (s *stage) waitRegistered(ctx context.Context, r engine.Reporter, kc kubernetes.Interface) (map[string][]corev1.Node, error) {
	desired := s.desiredSizes(ctx)
	var nodes map[string][]corev1.Node
	err := awsx.Poll(ctx, r, "nodes to register", s.d.Opts.Wait, registerTimeout, func(ctx context.Context) (bool, string, error) {
		var err error
		if nodes, err = groupNodes(ctx, kc); err != nil {
			return false, "", fmt.Errorf("list nodes: %w", err)
		}
		var status []string
		done := true
		for _, g := range s.d.NodeGroups() {
			have := len(nodes[g.Name])
			status = append(status, fmt.Sprintf("%s %d/%d", g.Name, have, desired[g.Name]))
			done = done && have >= int(desired[g.Name])
		}
		return done, strings.Join(status, ", "), nil
	})
	return nodes, err
}

// desiredSizes are the groups' desired sizes as EKS has them now (the
// cluster autoscaler moves them), or as configured when EKS cannot say.
func (s *stage) desiredSizes(ctx context.Context) map[string]int32 {
	out := map[string]int32{}
	for _, g := range s.d.NodeGroups() {
		out[g.Name] = g.Desired
		if ng, err := s.describeGroup(ctx, g.Name); err == nil && ng != nil && ng.ScalingConfig != nil {
			out[g.Name] = aws.ToInt32(ng.ScalingConfig.DesiredSize)
		}
	}
	return out
}

// addTaints adds taints to a node, replacing a taint with the same key and
// effect (as `kubectl taint --overwrite` does) and keeping every other one.
// It re-reads the node on a conflict: kubelets and controllers update
// nodes all the time.
func addTaints(ctx context.Context, kc kubernetes.Interface, name string, add []corev1.Taint) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
		defer cancel()
		n, err := kc.CoreV1().Nodes().Get(cctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		missing := missingTaints(n, add)
		if len(missing) == 0 {
			return nil // someone else fixed it meanwhile
		}
		for _, t := range missing {
			n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(h corev1.Taint) bool { return h.Key == t.Key && h.Effect == t.Effect })
			n.Spec.Taints = append(n.Spec.Taints, t)
		}
		_, err = kc.CoreV1().Nodes().Update(cctx, n, metav1.UpdateOptions{})
		return err
	})
}

// nodeChecks are the Kubernetes side of verify: per group, the nodes
// registered, labelled and tainted as configured.
func (s *stage) nodeChecks(ctx context.Context, desired map[string]int32) []engine.Check {
	kc, err := s.kubeClient(ctx)
	if err == nil {
		var nodes map[string][]corev1.Node
		if nodes, err = groupNodes(ctx, kc); err == nil {
			var out []engine.Check
			for _, g := range s.d.NodeGroups() {
				out = append(out, nodeCheck(g, nodes[g.Name], desired[g.Name]))
			}
			return out
		}
	}
	return []engine.Check{engine.Warnf("nodes", "pass --kubeconfig, or check that the cluster endpoint is reachable from here and your identity has an access entry",
		"cluster not reachable (%v): nodes, labels and taints not checked", err)}
}

// nodeCheck checks one group's nodes.
func nodeCheck(g config.NodeGroupSpec, nodes []corev1.Node, desired int32) engine.Check {
	name := "nodes/" + g.Name
	if len(nodes) < int(desired) {
		return engine.Failf(name, fmt.Sprintf("the group may still be launching: check its health in EKS and 'kubectl get nodes -l %s=%s'", LabelNodeGroup, g.Name),
			"%d of %d nodes registered", len(nodes), desired)
	}
	want := kubeTaints(g)
	var problems, taintFixes, labelFixes []string
	ready := 0
	for i := range nodes {
		n := &nodes[i]
		if nodeReady(n) {
			ready++
		}
		if m := missingLabels(n, g.Labels); len(m) > 0 {
			problems = append(problems, fmt.Sprintf("node %s lacks label %s", n.Name, strings.Join(m, ",")))
			labelFixes = append(labelFixes, fmt.Sprintf("kubectl label node %s --overwrite %s", n.Name, strings.Join(m, " ")))
		}
		if m := missingTaints(n, want); len(m) > 0 {
			problems = append(problems, fmt.Sprintf("node %s lacks taint %s", n.Name, taintTexts(m)))
			taintFixes = append(taintFixes, fmt.Sprintf("kubectl taint nodes %s --overwrite %s", n.Name, strings.ReplaceAll(taintTexts(m), ",", " ")))
		}
	}
	if len(problems) > 0 {
		hint := "run 'coderctl stage nodegroups apply' (its taints step re-adds missing taints), or: " + strings.Join(taintFixes, "; ")
		if len(taintFixes) == 0 {
			hint = strings.Join(labelFixes, "; ")
		}
		return engine.Failf(name, hint, "%s", strings.Join(problems, "; "))
	}
	reason := fmt.Sprintf("%d nodes registered (%d Ready), labelled %s", len(nodes), ready, labelsText(g.Labels))
	if len(want) > 0 {
		reason += ", tainted " + taintTexts(want)
	}
	return engine.Passf(name, "%s", reason)
}

func labelsText(m map[string]string) string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	if len(out) == 0 {
		return "(no labels configured)"
	}
	return strings.Join(out, ",")
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
