package kubeground

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// NodeSpec describes a fake node. Zero CPU and Memory mean 4 CPUs and 16Gi,
// roughly an m5.xlarge.
type NodeSpec struct {
	Name   string
	Labels map[string]string
	Taints []corev1.Taint
	CPU    string // a resource quantity, e.g. "4" or "3500m"
	Memory string // a resource quantity, e.g. "16Gi"
}

// kwokNodeAnnotation marks nodes that kwok plays the kubelet for.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

const maxPodsPerNode = "110"

// AddNode creates a node that kwok runs as a fake kubelet and waits until
// it is Ready, so the scheduler places pods on it straight away.
func (g *Ground) AddNode(ctx context.Context, spec NodeSpec) error {
	node, err := nodeObject(spec)
	if err != nil {
		return err
	}
	if _, err := g.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", spec.Name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := g.client.CoreV1().Nodes().Get(ctx, spec.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // transient; the timeout reports it
		}
		return nodeReady(n), nil
	})
	if err != nil {
		return fmt.Errorf("node %s did not become Ready (is kwok running? see %s/kwok.log): %w", spec.Name, g.workDir, err)
	}
	return nil
}

// nodeObject builds the Node with the labels a kubelet would set, the
// caller's labels and taints, and capacity equal to allocatable.
func nodeObject(spec NodeSpec) (*corev1.Node, error) {
	if spec.Name == "" {
		return nil, fmt.Errorf("kubeground: NodeSpec.Name is empty")
	}
	cpu, memory := spec.CPU, spec.Memory
	if cpu == "" {
		cpu = "4"
	}
	if memory == "" {
		memory = "16Gi"
	}
	resources := corev1.ResourceList{}
	for name, value := range map[corev1.ResourceName]string{
		corev1.ResourceCPU: cpu, corev1.ResourceMemory: memory, corev1.ResourcePods: maxPodsPerNode,
	} {
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return nil, fmt.Errorf("kubeground: node %s: %s %q: %w", spec.Name, name, value, err)
		}
		resources[name] = q
	}
	labels := map[string]string{
		corev1.LabelHostname:   spec.Name,
		corev1.LabelOSStable:   "linux",
		corev1.LabelArchStable: "amd64",
		"type":                 "kwok",
	}
	maps.Copy(labels, spec.Labels)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        spec.Name,
			Labels:      labels,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
		},
		Spec: corev1.NodeSpec{Taints: spec.Taints},
		Status: corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources.DeepCopy(),
		},
	}, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
