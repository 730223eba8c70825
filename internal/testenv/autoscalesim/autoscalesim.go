// Package autoscalesim is a TEST STAND-IN for the Kubernetes cluster
// autoscaler's effect on the proving ground, where the autoscaler's image
// cannot run (kwok plays pods without running them).
//
// It acts only while a cluster-autoscaler Deployment is Ready: a Deployment
// with a container whose command (or first argument) is the
// cluster-autoscaler binary, as the official chart (and its stand-in in
// chartrepo) renders it. It reads that container's command line as the
// autoscaler would:
//   - --cloud-provider must be aws;
//   - --node-group-auto-discovery=asg:tag=KEY[=VALUE],... finds the Auto
//     Scaling groups carrying every listed tag (autoscaling
//     DescribeAutoScalingGroups, in moto; eksnodes keeps them as EKS tags
//     them), and --nodes=MIN:MAX:NAME adds groups by name;
//   - AWS_REGION (the chart's awsRegion) must be the region of the clients it
//     was given, or it finds nothing;
//   - --balance-similar-node-groups spreads new nodes over groups whose nodes
//     look alike (same resources, taints and labels, ignoring the zone,
//     hostname, node group name and --balancing-ignore-label keys);
//   - --max-nodes-total bounds the nodes of the cluster.
//
// Each discovered group is mapped to its EKS managed node group by the
// eks:cluster-name and eks:nodegroup-name tags; its template node is
// eksnodes.NodeTemplate (labels, taints, instance-type size), as the
// autoscaler builds one from eks:DescribeNodegroup. Groups with
// minSize == maxSize are never touched.
//
// A Step then does what one autoscaler loop does for scale-up: it takes the
// pods the scheduler marked unschedulable (PodScheduled=False, reason
// Unschedulable), drops those that fit on an existing node or on a node a
// group is already bringing up (desired minus registered), packs the rest
// onto new template nodes of the groups they fit (node selector, required
// node affinity, taints, resource requests), and raises those groups'
// desiredSize in EKS (UpdateNodegroupConfig), never above maxSize; eksnodes
// then makes the kwok nodes. Pods no group can take stay Pending. Like the
// autoscaler it records events on the pods: TriggeredScaleUp, or
// NotTriggerScaleUp with the reason.
//
// It never scales down, so it never evicts anything (a pod annotated
// cluster-autoscaler.kubernetes.io/safe-to-evict: "false" is safe from it
// trivially). Pod affinity, topology spread, volume topology and DaemonSet
// overhead are not simulated; the expander is deterministic (the first
// fitting group by name) where the real default is random.
package autoscalesim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
)

// Names the autoscaler uses.
const (
	// Binary is the autoscaler's executable, the base name of its
	// container's command.
	Binary = "cluster-autoscaler"
	// AnnotationSafeToEvict, "false" on a pod, forbids removing its node.
	AnnotationSafeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	// EventTriggeredScaleUp and EventNotTriggerScaleUp are the reasons of
	// the events on pending pods.
	EventTriggeredScaleUp  = "TriggeredScaleUp"
	EventNotTriggerScaleUp = "NotTriggerScaleUp"
)

// DefaultInterval is Run's period when Options.Interval is zero (the real
// autoscaler scans every 10s; the ground is faster).
const DefaultInterval = 500 * time.Millisecond

// Options are what the stand-in needs: the cluster and the AWS APIs (moto).
type Options struct {
	Kube        kubernetes.Interface
	EKS         *eks.Client
	AutoScaling *autoscaling.Client
	// Namespace is where the autoscaler Deployment is looked for; empty
	// means every namespace.
	Namespace string
	// Interval is Run's period (DefaultInterval when zero).
	Interval time.Duration
	// OnError hears the errors of Run's steps; nil drops them.
	OnError func(error)
	// Log, when set, gets one line per scale-up.
	Log io.Writer
}

// Scale is one node group's scale-up.
type Scale struct {
	Cluster, Nodegroup string
	From, To, Max      int32
}

// Result says what one Step saw and did.
type Result struct {
	// Autoscaler is "namespace/name" of the Ready autoscaler Deployment
	// followed; empty when none is Ready (then nothing else is done).
	Autoscaler string
	// Groups are the discovered node groups that may grow (minSize <
	// maxSize), by name; discovery runs only when some pod is
	// unschedulable.
	Groups []string
	// ScaledUp are the scale-ups made, by node group.
	ScaledUp []Scale
	// Waiting are the unschedulable pods ("namespace/name") placed on nodes
	// that are coming (already asked for, or asked for by this step).
	Waiting []string
	// NoScaleUp are the unschedulable pods no group can take: none fits,
	// or every fitting group is at its maxSize.
	NoScaleUp []string
}

// Autoscaler is the stand-in. It remembers the events it recorded, so a
// pod gets one event per distinct decision, not one per step.
type Autoscaler struct {
	opts Options

	mu       sync.Mutex
	notified map[types.UID]string
}

// New makes the stand-in; see Step, Run and Start.
func New(opts Options) *Autoscaler {
	return &Autoscaler{opts: opts, notified: map[types.UID]string{}}
}

// Start runs the stand-in in the background until stop is called (or ctx
// ends); stop waits for it.
func Start(ctx context.Context, opts Options) (stop func()) {
	a := New(opts)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.Run(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// Run steps every Interval until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) {
	interval := a.opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := a.Step(ctx); err != nil && ctx.Err() == nil && a.opts.OnError != nil {
			a.opts.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// config is what the stand-in reads from the autoscaler's command line.
type config struct {
	deployment    string
	cloudProvider string
	discovery     [][]tagSpec // one list per --node-group-auto-discovery
	explicit      []explicitGroup
	balance       bool
	ignoreLabels  []string
	maxNodesTotal int
	region        string // AWS_REGION, "" when unset
}

type tagSpec struct {
	key, value string // value "" matches any value
}

type explicitGroup struct {
	name     string
	min, max int32
}

// Step runs one autoscaler loop; see the package documentation.
func (a *Autoscaler) Step(ctx context.Context) (Result, error) {
	var res Result
	cfg, err := a.findAutoscaler(ctx)
	if err != nil || cfg == nil {
		return res, err
	}
	res.Autoscaler = cfg.deployment
	if cfg.cloudProvider != "aws" {
		return res, nil
	}
	pending, all, nodes, err := a.cluster(ctx)
	if err != nil || len(pending) == 0 {
		return res, err // nothing to do: spare moto the AWS calls
	}
	groups, err := a.discover(ctx, cfg)
	if err != nil {
		return res, err
	}
	for _, g := range groups {
		if g.growable() {
			res.Groups = append(res.Groups, g.nodegroup)
		}
	}
	plan := a.plan(cfg, groups, pending, all, nodes, &res)
	var errs []error
	for _, g := range groups {
		if g.added == 0 {
			continue
		}
		to := g.desired + g.added
		_, err := a.opts.EKS.UpdateNodegroupConfig(ctx, &eks.UpdateNodegroupConfigInput{
			ClusterName: aws.String(g.cluster), NodegroupName: aws.String(g.nodegroup),
			ScalingConfig: &ekstypes.NodegroupScalingConfig{DesiredSize: aws.Int32(to)},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("autoscalesim: scale node group %s to %d: %w", g.nodegroup, to, err))
			continue
		}
		res.ScaledUp = append(res.ScaledUp, Scale{Cluster: g.cluster, Nodegroup: g.nodegroup, From: g.desired, To: to, Max: g.max})
		if a.opts.Log != nil {
			fmt.Fprintf(a.opts.Log, "autoscalesim: scale-up: node group %s %d->%d (max: %d)\n", g.nodegroup, g.desired, to, g.max)
		}
	}
	for _, d := range plan {
		a.event(ctx, d.pod, d.eventType, d.reason, d.message)
	}
	return res, errors.Join(errs...)
}

// findAutoscaler returns the command line of the first Ready autoscaler
// Deployment, nil when there is none.
func (a *Autoscaler) findAutoscaler(ctx context.Context) (*config, error) {
	list, err := a.opts.Kube.AppsV1().Deployments(a.opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("autoscalesim: list deployments: %w", err)
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool {
		return items[i].Namespace+"/"+items[i].Name < items[j].Namespace+"/"+items[j].Name
	})
	for i := range items {
		d := &items[i]
		c := autoscalerContainer(d)
		if c == nil || !ready(d) {
			continue
		}
		cfg := parse(append(slices.Clone(c.Command), c.Args...))
		cfg.deployment = d.Namespace + "/" + d.Name
		for _, e := range c.Env {
			if e.Name == "AWS_REGION" {
				cfg.region = e.Value
			}
		}
		return cfg, nil
	}
	return nil, nil
}

func autoscalerContainer(d *appsv1.Deployment) *corev1.Container {
	for i := range d.Spec.Template.Spec.Containers {
		c := &d.Spec.Template.Spec.Containers[i]
		argv := append(slices.Clone(c.Command), c.Args...)
		if len(argv) > 0 && path.Base(argv[0]) == Binary {
			return c
		}
	}
	return nil
}

// ready: the Deployment's current spec has at least one Ready pod.
func ready(d *appsv1.Deployment) bool {
	return d.DeletionTimestamp == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.ReadyReplicas > 0 &&
		(d.Spec.Replicas == nil || *d.Spec.Replicas > 0)
}

// parse reads the flags the stand-in honours; the autoscaler's defaults
// (cloud provider gce, no balancing, no node limit) apply to the others.
func parse(argv []string) *config {
	cfg := &config{cloudProvider: "gce"}
	for _, arg := range argv[1:] {
		if !strings.HasPrefix(arg, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch name {
		case "cloud-provider":
			cfg.cloudProvider = value
		case "node-group-auto-discovery":
			if spec, ok := strings.CutPrefix(value, "asg:tag="); ok {
				var tags []tagSpec
				for _, kv := range strings.Split(spec, ",") {
					k, v, _ := strings.Cut(kv, "=")
					if k != "" {
						tags = append(tags, tagSpec{key: k, value: v})
					}
				}
				if len(tags) > 0 {
					cfg.discovery = append(cfg.discovery, tags)
				}
			}
		case "nodes":
			parts := strings.SplitN(value, ":", 3)
			if len(parts) == 3 {
				lo, err1 := strconv.Atoi(parts[0])
				hi, err2 := strconv.Atoi(parts[1])
				if err1 == nil && err2 == nil {
					cfg.explicit = append(cfg.explicit, explicitGroup{name: parts[2], min: int32(lo), max: int32(hi)})
				}
			}
		case "balance-similar-node-groups":
			b, err := strconv.ParseBool(value)
			cfg.balance = !hasValue || (err == nil && b)
		case "balancing-ignore-label":
			cfg.ignoreLabels = append(cfg.ignoreLabels, value)
		case "max-nodes-total":
			cfg.maxNodesTotal, _ = strconv.Atoi(value)
		}
	}
	return cfg
}

// group is a discovered node group and the stand-in's plan for it.
type group struct {
	asg, cluster, nodegroup string
	min, max, desired       int32
	template                *corev1.Node
	added                   int32 // new nodes planned by this step
}

// growable: minSize < maxSize. A fixed-size group is never touched; to a
// pod it looks like a group at its maximum.
func (g *group) growable() bool { return g.min < g.max }

// discover finds the node groups the autoscaler would manage.
func (a *Autoscaler) discover(ctx context.Context, cfg *config) ([]*group, error) {
	if cfg.region != "" && cfg.region != a.opts.AutoScaling.Options().Region {
		return nil, nil // the autoscaler looks in another region and finds nothing here
	}
	found := map[string]astypes.AutoScalingGroup{}
	limits := map[string]explicitGroup{}
	for _, tags := range cfg.discovery {
		var filters []astypes.Filter
		for _, t := range tags {
			filters = append(filters, astypes.Filter{Name: aws.String("tag-key"), Values: []string{t.key}})
		}
		asgs, err := a.describeASGs(ctx, &autoscaling.DescribeAutoScalingGroupsInput{Filters: filters})
		if err != nil {
			return nil, err
		}
		for _, g := range asgs {
			if hasTags(g.Tags, tags) {
				found[aws.ToString(g.AutoScalingGroupName)] = g
			}
		}
	}
	if len(cfg.explicit) > 0 {
		var names []string
		for _, e := range cfg.explicit {
			names = append(names, e.name)
			limits[e.name] = e
		}
		asgs, err := a.describeASGs(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: names})
		if err != nil {
			return nil, err
		}
		for _, g := range asgs {
			found[aws.ToString(g.AutoScalingGroupName)] = g
		}
	}
	var out []*group
	for _, name := range slices.Sorted(maps.Keys(found)) {
		g, err := a.nodegroup(ctx, found[name])
		if err != nil {
			return nil, err
		}
		if g == nil {
			continue
		}
		if e, ok := limits[name]; ok {
			g.min, g.max = e.min, e.max
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].nodegroup < out[j].nodegroup })
	return out, nil
}

func (a *Autoscaler) describeASGs(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput) ([]astypes.AutoScalingGroup, error) {
	var out []astypes.AutoScalingGroup
	pager := autoscaling.NewDescribeAutoScalingGroupsPaginator(a.opts.AutoScaling, in)
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("autoscalesim: describe auto scaling groups: %w", err)
		}
		out = append(out, page.AutoScalingGroups...)
	}
	return out, nil
}

func hasTags(have []astypes.TagDescription, want []tagSpec) bool {
	for _, w := range want {
		ok := false
		for _, h := range have {
			if aws.ToString(h.Key) == w.key && (w.value == "" || aws.ToString(h.Value) == w.value) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// nodegroup maps an Auto Scaling group to its EKS managed node group; nil
// when it is not one (no EKS tags) or the node group is gone.
func (a *Autoscaler) nodegroup(ctx context.Context, asg astypes.AutoScalingGroup) (*group, error) {
	var cluster, name string
	for _, t := range asg.Tags {
		switch aws.ToString(t.Key) {
		case eksnodes.TagEKSCluster:
			cluster = aws.ToString(t.Value)
		case eksnodes.TagEKSNodegroup:
			name = aws.ToString(t.Value)
		}
	}
	if cluster == "" || name == "" {
		return nil, nil
	}
	d, err := a.opts.EKS.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(cluster), NodegroupName: aws.String(name)})
	var nf *ekstypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("autoscalesim: describe node group %s: %w", name, err)
	}
	ng := d.Nodegroup
	if ng.Status == ekstypes.NodegroupStatusDeleting || ng.ScalingConfig == nil {
		return nil, nil
	}
	tmpl, err := eksnodes.NodeTemplate(ng, a.opts.EKS.Options().Region, "")
	if err != nil {
		return nil, fmt.Errorf("autoscalesim: %w", err)
	}
	sc := ng.ScalingConfig
	return &group{
		asg: aws.ToString(asg.AutoScalingGroupName), cluster: cluster, nodegroup: name,
		min: aws.ToInt32(sc.MinSize), max: aws.ToInt32(sc.MaxSize), desired: aws.ToInt32(sc.DesiredSize),
		template: tmpl,
	}, nil
}

// cluster lists the unschedulable pods (oldest first), every pod, and
// every node.
func (a *Autoscaler) cluster(ctx context.Context) (pending, all []corev1.Pod, nodes []corev1.Node, err error) {
	pods, err := a.opts.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("autoscalesim: list pods: %w", err)
	}
	for _, p := range pods.Items {
		if unschedulable(&p) {
			pending = append(pending, p)
		}
	}
	sort.Slice(pending, func(i, j int) bool {
		if !pending[i].CreationTimestamp.Equal(&pending[j].CreationTimestamp) {
			return pending[i].CreationTimestamp.Before(&pending[j].CreationTimestamp)
		}
		return pending[i].Namespace+"/"+pending[i].Name < pending[j].Namespace+"/"+pending[j].Name
	})
	nl, err := a.opts.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("autoscalesim: list nodes: %w", err)
	}
	return pending, pods.Items, nl.Items, nil
}

func unschedulable(p *corev1.Pod) bool {
	if p.Spec.NodeName != "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodPending {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}

// decision is an event to record on a pod.
type decision struct {
	pod                        *corev1.Pod
	eventType, reason, message string
}

// plan places the pending pods, in order: on existing nodes with room, on
// nodes the groups are bringing up, on nodes already planned by this step,
// on a new node of a group that fits and may grow. It sets the groups'
// added counts and returns the events to record.
func (a *Autoscaler) plan(cfg *config, groups []*group, pending, all []corev1.Pod, nodes []corev1.Node, res *Result) []decision {
	existing := existingSlots(nodes, all)
	registered := map[string]int32{}
	for _, n := range nodes {
		registered[n.Labels[eksnodes.LabelNodeGroup]]++
	}
	var coming []*slot
	for _, g := range groups {
		for range g.desired - registered[g.nodegroup] {
			coming = append(coming, templateSlot(g))
		}
	}
	totalNodes := len(nodes) + len(coming)
	var out []decision
	planned := map[*slot]*group{}
	for i := range pending {
		pod := &pending[i]
		key := pod.Namespace + "/" + pod.Name
		if s := firstFit(existing, pod); s != nil {
			s.place(pod) // the scheduler will place it on its next try
			continue
		}
		if s := firstFit(coming, pod); s != nil {
			s.place(pod)
			res.Waiting = append(res.Waiting, key)
			continue
		}
		if s := firstFit(slices.Collect(maps.Keys(planned)), pod); s != nil {
			s.place(pod)
			res.Waiting = append(res.Waiting, key)
			continue
		}
		g, why := a.choose(cfg, groups, pod, totalNodes)
		if g == nil {
			res.NoScaleUp = append(res.NoScaleUp, key)
			out = append(out, decision{pod, corev1.EventTypeNormal, EventNotTriggerScaleUp, "pod didn't trigger scale-up: " + why})
			continue
		}
		s := templateSlot(g)
		s.place(pod)
		planned[s] = g
		g.added++
		totalNodes++
		res.Waiting = append(res.Waiting, key)
		out = append(out, decision{pod, corev1.EventTypeNormal, EventTriggeredScaleUp,
			fmt.Sprintf("pod triggered scale-up: [{%s %d->%d (max: %d)}]", g.asg, g.desired, g.desired+g.added, g.max)})
	}
	return out
}

// choose picks the group to grow for a pod, or says why none can.
func (a *Autoscaler) choose(cfg *config, groups []*group, pod *corev1.Pod, totalNodes int) (*group, string) {
	var fitting, atMax []*group
	for _, g := range groups {
		if !templateSlot(g).fits(pod) {
			continue
		}
		if !g.growable() || g.desired+g.added >= g.max {
			atMax = append(atMax, g)
			continue
		}
		fitting = append(fitting, g)
	}
	if len(fitting) == 0 {
		var parts []string
		if len(atMax) > 0 {
			parts = append(parts, fmt.Sprintf("%d max node group size reached", len(atMax)))
		}
		if n := len(groups) - len(atMax); n > 0 {
			parts = append(parts, fmt.Sprintf("%d node(s) didn't match the pod's node selector, affinity, tolerations or resources", n))
		}
		if len(groups) == 0 {
			parts = append(parts, "no node groups discovered")
		}
		return nil, strings.Join(parts, ", ")
	}
	if cfg.maxNodesTotal > 0 && totalNodes >= cfg.maxNodesTotal {
		return nil, fmt.Sprintf("max total nodes in cluster reached: %d", cfg.maxNodesTotal)
	}
	best := fitting[0]
	if cfg.balance {
		for _, g := range fitting[1:] {
			if similar(best.template, g.template, cfg.ignoreLabels) && g.desired+g.added < best.desired+best.added {
				best = g
			}
		}
	}
	return best, ""
}

// similar: nodes of the two groups would look alike to the scheduler, as
// --balance-similar-node-groups compares them (the same allocatable, taints
// and labels, but for the labels that differ between groups by nature).
func similar(a, b *corev1.Node, ignore []string) bool {
	if !maps.EqualFunc(a.Status.Allocatable, b.Status.Allocatable, func(x, y resource.Quantity) bool { return x.Cmp(y) == 0 }) {
		return false
	}
	if !slices.Equal(a.Spec.Taints, b.Spec.Taints) {
		return false
	}
	skip := append([]string{corev1.LabelHostname, corev1.LabelTopologyZone, eksnodes.LabelNodeGroup}, ignore...)
	strip := func(l map[string]string) map[string]string {
		out := maps.Clone(l)
		for _, k := range skip {
			delete(out, k)
		}
		return out
	}
	return maps.Equal(strip(a.Labels), strip(b.Labels))
}

func templateSlot(g *group) *slot {
	return &slot{node: g.template, free: g.template.Status.Allocatable.DeepCopy(), group: g.nodegroup}
}

// existingSlots are the schedulable nodes with what their pods leave free.
// A node that registered but is not Ready yet counts as it will be once
// Ready (without the node lifecycle controller's not-ready taints), as the
// autoscaler counts such nodes as upcoming rather than asking for more.
func existingSlots(nodes []corev1.Node, pods []corev1.Pod) []*slot {
	byName := map[string]*slot{}
	var out []*slot
	for i := range nodes {
		n := nodes[i].DeepCopy()
		if n.Spec.Unschedulable {
			continue
		}
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool {
			return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
		})
		s := &slot{node: n, free: n.Status.Allocatable.DeepCopy(), group: n.Labels[eksnodes.LabelNodeGroup]}
		byName[n.Name] = s
		out = append(out, s)
	}
	for i := range pods {
		p := &pods[i]
		if s := byName[p.Spec.NodeName]; s != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			s.place(p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node.Name < out[j].node.Name })
	return out
}

func firstFit(slots []*slot, pod *corev1.Pod) *slot {
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].group < slots[j].group })
	for _, s := range slots {
		if s.fits(pod) {
			return s
		}
	}
	return nil
}

// event records a decision on a pod once (until the decision changes).
func (a *Autoscaler) event(ctx context.Context, pod *corev1.Pod, typ, reason, msg string) {
	a.mu.Lock()
	seen := a.notified[pod.UID] == reason+msg
	a.notified[pod.UID] = reason + msg
	a.mu.Unlock()
	if seen {
		return
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: Binary},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: Binary, ReportingInstance: Binary,
	}
	_, _ = a.opts.Kube.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{})
}
