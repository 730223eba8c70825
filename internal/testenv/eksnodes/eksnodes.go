// Package eksnodes is the proving ground's stand-in for EC2 and the kubelet
// behind EKS managed node groups: moto keeps node groups as records only,
// so Sync creates, for every group moto holds, `desired` fake Kubernetes
// nodes (played by kwok, which makes them Ready and runs their pods) with
// the labels and taints EKS would give them, and removes the nodes of
// groups that are gone. With an Auto Scaling client it also keeps each
// group's Auto Scaling group in moto, tagged as EKS tags it (asg.go). The
// demo runs Watch in the background while `coderctl up` runs, so nodes
// appear as node groups are created.
//
// Sync never changes a node it already made: a test (or a user) that
// removes a taint from a node must see it stay removed until coderctl
// repairs it.
package eksnodes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
)

// Labels and annotations on the nodes Sync makes.
const (
	// LabelFake marks nodes made by this package, so Sync lists only them.
	LabelFake = "coderctl/fake-eks-node"
	// AnnotationCluster names the EKS cluster a fake node belongs to
	// (cluster names may be longer than a label value allows).
	AnnotationCluster = "coderctl/fake-eks-cluster"
	// AnnotationKwok tells kwok to play the node's kubelet.
	AnnotationKwok = "kwok.x-k8s.io/node"

	// LabelNodeGroup and LabelCapacityType are labels EKS puts on the
	// nodes of managed node groups.
	LabelNodeGroup    = "eks.amazonaws.com/nodegroup"
	LabelCapacityType = "eks.amazonaws.com/capacityType"
	// LabelImage, LabelLaunchTemplateID and LabelLaunchTemplateVersion are
	// the AMI and the launch template (ID, version) EKS puts on the nodes
	// of a managed group; the last two only for groups with a template.
	LabelImage                 = "eks.amazonaws.com/nodegroup-image"
	LabelLaunchTemplateID      = "eks.amazonaws.com/sourceLaunchTemplateId"
	LabelLaunchTemplateVersion = "eks.amazonaws.com/sourceLaunchTemplateVersion"
)

// defaultReadyTimeout bounds waiting for kwok to mark new nodes Ready.
const defaultReadyTimeout = 30 * time.Second

// Syncer mirrors one EKS cluster's managed node groups (in moto) as fake
// nodes in a Kubernetes cluster (the proving ground's kubeground).
type Syncer struct {
	EKS *eks.Client
	// EC2 maps the groups' subnets to availability zones; without it (or
	// when EC2 does not know the subnets) zones are <region>a, b, c.
	EC2 *ec2.Client
	// AutoScaling, when set (with EC2), makes Sync also keep each node
	// group's Auto Scaling group in moto, as EKS does (see syncASGs):
	// moto's CreateNodegroup names one but creates none.
	AutoScaling *autoscaling.Client
	Kube        kubernetes.Interface
	Cluster     string
	// ReadyTimeout bounds waiting for new nodes to become Ready: zero
	// means 30s, negative means do not wait.
	ReadyTimeout time.Duration
	// OnError receives the errors of Watch's syncs; nil drops them.
	OnError func(error)
}

// Result says what one Sync changed, by node name.
type Result struct {
	Created []string
	Deleted []string
	// ASGCreated and ASGDeleted name the Auto Scaling groups Sync made
	// and removed (only with Syncer.AutoScaling).
	ASGCreated []string
	ASGDeleted []string
}

// Sync mirrors cluster's node groups once; see Syncer.Sync.
func Sync(ctx context.Context, eksClient *eks.Client, ec2Client *ec2.Client, cluster string, kube kubernetes.Interface) (Result, error) {
	s := &Syncer{EKS: eksClient, EC2: ec2Client, Kube: kube, Cluster: cluster}
	return s.Sync(ctx)
}

// Watch syncs every interval until ctx is done; see Syncer.Watch.
func Watch(ctx context.Context, eksClient *eks.Client, ec2Client *ec2.Client, cluster string, kube kubernetes.Interface, every time.Duration, onError func(error)) {
	s := &Syncer{EKS: eksClient, EC2: ec2Client, Kube: kube, Cluster: cluster, OnError: onError}
	s.Watch(ctx, every)
}

// Watch syncs at once and then every interval until ctx is done. Errors go
// to OnError and the next tick tries again.
func (s *Syncer) Watch(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && ctx.Err() == nil && s.OnError != nil {
			s.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sync makes the fake nodes match moto: `desired` nodes named
// <group>-<i> per node group, existing ones left as they are, extra ones
// and those of deleted groups (or of a deleted cluster) removed. It waits
// until the nodes it created are Ready and schedulable.
func (s *Syncer) Sync(ctx context.Context) (Result, error) {
	var res Result
	groups, err := s.groups(ctx)
	if err != nil {
		return res, err
	}
	want := map[string]*corev1.Node{}
	for _, g := range groups {
		nodes, err := s.nodesFor(ctx, g)
		if err != nil {
			return res, err
		}
		for _, n := range nodes {
			want[n.Name] = n
		}
	}
	have, err := s.ownNodes(ctx)
	if err != nil {
		return res, err
	}
	for _, name := range sortedNames(have) {
		// A node of another launch template version is replaced, as EKS's
		// rolling update replaces every node of the group.
		if w := want[name]; w != nil && have[name] != w.Labels[LabelLaunchTemplateVersion] {
			if err := s.Kube.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return res, fmt.Errorf("replace fake node %s: %w", name, err)
			}
			res.Deleted = append(res.Deleted, name)
			delete(have, name)
			continue
		}
		if want[name] == nil {
			if err := s.Kube.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return res, fmt.Errorf("delete fake node %s: %w", name, err)
			}
			res.Deleted = append(res.Deleted, name)
		}
	}
	for _, name := range sortedNames(want) {
		if _, ok := have[name]; ok {
			continue
		}
		_, err := s.Kube.CoreV1().Nodes().Create(ctx, want[name], metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue // a concurrent sync, or a node someone else made: left alone
		}
		if err != nil {
			return res, fmt.Errorf("create fake node %s: %w", name, err)
		}
		res.Created = append(res.Created, name)
	}
	asgErr := s.syncASGs(ctx, groups, &res)
	return res, errors.Join(s.waitReady(ctx, res.Created), asgErr)
}

// groups returns the cluster's node groups; none when the cluster is gone.
// It asks for the cluster first: moto answers ListNodegroups for a missing
// cluster with HTTP 500 instead of ResourceNotFoundException.
func (s *Syncer) groups(ctx context.Context) ([]*ekstypes.Nodegroup, error) {
	_, err := s.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(s.Cluster)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe cluster %s: %w", s.Cluster, err)
	}
	var out []*ekstypes.Nodegroup
	pager := eks.NewListNodegroupsPaginator(s.EKS, &eks.ListNodegroupsInput{ClusterName: aws.String(s.Cluster)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if awsx.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list node groups of %s: %w", s.Cluster, err)
		}
		for _, name := range page.Nodegroups {
			d, err := s.EKS.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(s.Cluster), NodegroupName: aws.String(name)})
			if awsx.IsNotFound(err) {
				continue // deleted since the list
			}
			if err != nil {
				return nil, fmt.Errorf("describe node group %s: %w", name, err)
			}
			if d.Nodegroup.Status != ekstypes.NodegroupStatusDeleting {
				out = append(out, d.Nodegroup)
			}
		}
	}
	return out, nil
}

// ownNodes names the fake nodes this package made for the cluster, each
// with the launch template version it was made from ("" without one).
func (s *Syncer) ownNodes(ctx context.Context) (map[string]string, error) {
	list, err := s.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelFake + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list fake nodes: %w", err)
	}
	out := map[string]string{}
	for _, n := range list.Items {
		if n.Annotations[AnnotationCluster] == s.Cluster {
			out[n.Name] = n.Labels[LabelLaunchTemplateVersion]
		}
	}
	return out, nil
}

// nodesFor builds the nodes a group should have, spread over its zones.
func (s *Syncer) nodesFor(ctx context.Context, g *ekstypes.Nodegroup) ([]*corev1.Node, error) {
	zones := s.zones(ctx, g.Subnets)
	if size := s.templateDisk(ctx, g); size > 0 {
		// The root volume is the launch template's: EKS reports no
		// diskSize for such a group (moto reports 20).
		copied := *g
		copied.DiskSize = aws.Int32(size)
		g = &copied
	}
	desired := 0
	if g.ScalingConfig != nil {
		desired = int(aws.ToInt32(g.ScalingConfig.DesiredSize))
	}
	out := make([]*corev1.Node, 0, desired)
	for i := range desired {
		n, err := s.node(g, zones[i%len(zones)], i)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// templateDisk is the root volume size (GiB) in the group's launch
// template version, 0 when there is none or EC2 cannot say.
func (s *Syncer) templateDisk(ctx context.Context, g *ekstypes.Nodegroup) int32 {
	lt := g.LaunchTemplate
	if s.EC2 == nil || lt == nil || aws.ToString(lt.Id) == "" {
		return 0
	}
	out, err := s.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: lt.Id, Versions: []string{aws.ToString(lt.Version)},
	})
	if err != nil || len(out.LaunchTemplateVersions) == 0 || out.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return 0
	}
	for _, m := range out.LaunchTemplateVersions[0].LaunchTemplateData.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.VolumeSize != nil {
			return *m.Ebs.VolumeSize
		}
	}
	return 0
}

// node builds one fake node of a group: the group's template (NodeTemplate)
// with the node's name, hostname, zone and provider ID.
func (s *Syncer) node(g *ekstypes.Nodegroup, zone string, i int) (*corev1.Node, error) {
	n, err := NodeTemplate(g, s.region(), zone)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-%d", aws.ToString(g.NodegroupName), i)
	n.Name = name
	n.Labels[corev1.LabelHostname] = name
	n.Annotations[AnnotationCluster] = s.Cluster
	n.Spec.ProviderID = fmt.Sprintf("aws:///%s/%s", zone, instanceID(s.Cluster, name))
	return n, nil
}

// NodeTemplate is the node a managed node group's next instance would
// register as, before it has a name: the labels EKS and the kubelet set
// (instance type, region, zone unless empty, node group, capacity type, OS
// and architecture), the group's own labels and taints, and the instance
// type's size with what the EKS AMI's kubelet keeps back (see Resources). The cluster autoscaler builds the same
// template from eks:DescribeNodegroup to scale a group up from zero.
func NodeTemplate(g *ekstypes.Nodegroup, region, zone string) (*corev1.Node, error) {
	instanceType := InstanceType(g)
	capacity, allocatable := Resources(instanceType, aws.ToInt32(g.DiskSize))
	taints, err := KubeTaints(g.Taints)
	if err != nil {
		return nil, fmt.Errorf("node group %s: %w", aws.ToString(g.NodegroupName), err)
	}
	os, arch := Platform(g.AmiType)
	labels := map[string]string{
		corev1.LabelOSStable:           os,
		corev1.LabelArchStable:         arch,
		corev1.LabelInstanceTypeStable: instanceType,
		corev1.LabelTopologyRegion:     region,
		LabelNodeGroup:                 aws.ToString(g.NodegroupName),
		LabelCapacityType:              capacityType(g),
		LabelFake:                      "true",
	}
	if zone != "" {
		labels[corev1.LabelTopologyZone] = zone
	}
	if g.AmiType != "" {
		labels[LabelImage] = imageID(string(g.AmiType), aws.ToString(g.ReleaseVersion))
	}
	if lt := g.LaunchTemplate; lt != nil {
		labels[LabelLaunchTemplateID] = aws.ToString(lt.Id)
		labels[LabelLaunchTemplateVersion] = aws.ToString(lt.Version)
	}
	maps.Copy(labels, g.Labels)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      labels,
			Annotations: map[string]string{AnnotationKwok: "fake"},
		},
		Spec: corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: allocatable,
			NodeInfo: corev1.NodeSystemInfo{OperatingSystem: os, Architecture: arch, OSImage: osImage(g.AmiType)}},
	}, nil
}

// Platform is the kubernetes.io/os and kubernetes.io/arch labels of a
// node booted from an AMI type: arm64 for the ARM_64 types, windows for
// the Windows ones; a group without an AMI type gets EKS's default
// (AL2023 x86_64).
func Platform(amiType ekstypes.AMITypes) (os, arch string) {
	t := string(amiType)
	os, arch = "linux", "amd64"
	if strings.HasPrefix(t, "WINDOWS_") {
		os = "windows"
	}
	if strings.Contains(t, "ARM_64") {
		arch = "arm64"
	}
	return os, arch
}

// osImage is what the kubelet reports as its OS image for an AMI type.
func osImage(amiType ekstypes.AMITypes) string {
	t := string(amiType)
	switch {
	case strings.HasPrefix(t, "BOTTLEROCKET_"):
		return "Bottlerocket OS 1.50.0 (aws-k8s)"
	case strings.HasPrefix(t, "WINDOWS_"):
		return "Windows Server"
	case strings.HasPrefix(t, "AL2_"):
		return "Amazon Linux 2"
	}
	return "Amazon Linux 2023.9.20251208"
}

// imageID is a stable, EC2-looking AMI ID for an AMI type and release.
func imageID(amiType, release string) string {
	sum := sha256.Sum256([]byte(amiType + "/" + release))
	return "ami-" + hex.EncodeToString(sum[:])[:17]
}

// InstanceType is the group's first instance type, or EKS's default.
func InstanceType(g *ekstypes.Nodegroup) string {
	if len(g.InstanceTypes) > 0 {
		return g.InstanceTypes[0]
	}
	return "t3.medium" // EKS's default
}

func capacityType(g *ekstypes.Nodegroup) string {
	if g.CapacityType != "" {
		return string(g.CapacityType)
	}
	return string(ekstypes.CapacityTypesOnDemand)
}

// instanceID is a stable, EC2-looking instance ID for a fake node.
func instanceID(cluster, node string) string {
	sum := sha256.Sum256([]byte(cluster + "/" + node))
	return "i-" + hex.EncodeToString(sum[:])[:17]
}

// zones are the availability zones of a group's subnets, sorted, so the
// nodes spread over them as an autoscaling group balances across zones.
func (s *Syncer) zones(ctx context.Context, subnets []string) []string {
	fallback := []string{s.region() + "a", s.region() + "b", s.region() + "c"}
	if s.EC2 == nil || len(subnets) == 0 {
		return fallback
	}
	out, err := s.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets})
	if err != nil {
		return fallback
	}
	var zones []string
	for _, sn := range out.Subnets {
		if z := aws.ToString(sn.AvailabilityZone); z != "" && !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	if len(zones) == 0 {
		return fallback
	}
	sort.Strings(zones)
	return zones
}

func (s *Syncer) region() string { return s.EKS.Options().Region }

// KubeTaints converts EKS taints (NO_SCHEDULE) to Kubernetes ones (NoSchedule).
func KubeTaints(ts []ekstypes.Taint) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, t := range ts {
		effect, ok := map[ekstypes.TaintEffect]corev1.TaintEffect{
			ekstypes.TaintEffectNoSchedule:       corev1.TaintEffectNoSchedule,
			ekstypes.TaintEffectPreferNoSchedule: corev1.TaintEffectPreferNoSchedule,
			ekstypes.TaintEffectNoExecute:        corev1.TaintEffectNoExecute,
		}[t.Effect]
		if !ok {
			return nil, fmt.Errorf("taint %s has unknown effect %q", aws.ToString(t.Key), t.Effect)
		}
		out = append(out, corev1.Taint{Key: aws.ToString(t.Key), Value: aws.ToString(t.Value), Effect: effect})
	}
	return out, nil
}

// waitReady waits until kwok has marked the nodes Ready and they are
// schedulable.
func (s *Syncer) waitReady(ctx context.Context, names []string) error {
	timeout := s.ReadyTimeout
	if timeout < 0 || len(names) == 0 {
		return nil
	}
	if timeout == 0 {
		timeout = defaultReadyTimeout
	}
	pending := slices.Clone(names)
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var still []string
		for _, name := range pending {
			n, err := s.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !schedulable(n) {
				still = append(still, name)
			}
		}
		pending = still
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("fake nodes %s did not become Ready (is kwok running?): %w", strings.Join(pending, ", "), err)
	}
	return nil
}

// schedulable reports whether a node is Ready and the node lifecycle
// controller has lifted the not-ready taint it puts on new nodes, so the
// scheduler places pods on it straight away.
func schedulable(n *corev1.Node) bool {
	if slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady }) {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func sortedNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
