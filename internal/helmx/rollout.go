package helmx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// StrategyFunc picks a Deployment's rollout strategy from its replica count
// as the chart rendered it (a values file may change the count).
type StrategyFunc func(replicas int32) appsv1.DeploymentStrategy

// Strategies is a helm post-renderer that sets the rollout strategy of the
// named Deployments of a release: charts such as Coder's render none, and
// Kubernetes' default (maxSurge 25%, rounded up to one extra pod) needs room
// a full node group does not have. Every other document passes through
// byte for byte.
type Strategies map[string]StrategyFunc

// Run is postrender.PostRenderer's: it rewrites the named Deployments.
func (s Strategies) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	out := &bytes.Buffer{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(rendered))
	first := true
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("post-render: read the rendered manifests: %w", err)
		}
		// The reader keeps a leading separator in the first document.
		for bytes.HasPrefix(doc, []byte("---")) {
			_, rest, _ := bytes.Cut(doc, []byte("\n"))
			doc = rest
		}
		doc, err = s.patch(doc)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if !first {
			out.WriteString("---\n")
		}
		first = false
		out.Write(doc)
		if !bytes.HasSuffix(doc, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out, nil
}

// patch sets the strategy of one document when it is a named Deployment.
func (s Strategies) patch(doc []byte) ([]byte, error) {
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil || head.Kind != "Deployment" {
		return doc, nil //nolint:nilerr // not ours to judge: helm validates the manifests after
	}
	pick, ok := s[head.Metadata.Name]
	if !ok {
		return doc, nil
	}
	var dep appsv1.Deployment
	if err := yaml.Unmarshal(doc, &dep); err != nil {
		return nil, fmt.Errorf("post-render: Deployment %s: %w", head.Metadata.Name, err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		return nil, fmt.Errorf("post-render: Deployment %s: %w", head.Metadata.Name, err)
	}
	replicas := int32(1) // the API server's default
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	strategy, err := toMap(pick(replicas))
	if err != nil {
		return nil, err
	}
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		obj["spec"] = spec
	}
	spec["strategy"] = strategy
	body, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("post-render: Deployment %s: %w", head.Metadata.Name, err)
	}
	// Keep helm's "# Source: chart/templates/x.yaml" line: helm reports
	// errors by it.
	var comments []byte
	for _, line := range bytes.SplitAfter(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			break
		}
		comments = append(comments, line...)
	}
	return append(comments, body...), nil
}

func toMap(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, yaml.Unmarshal(b, &out)
}

// NoSurge replaces a Deployment's pods one at a time without an extra pod:
// with two or more replicas, maxSurge 0 and maxUnavailable 1 (the others
// keep serving, and the new pod takes the node the old one leaves, so a
// group sized for exactly its replicas rolls); with a single replica the
// surge is kept (maxSurge 1, maxUnavailable 0), since stopping the only pod
// first would leave none Ready.
func NoSurge(replicas int32) appsv1.DeploymentStrategy {
	surge, unavailable := intstr.FromInt32(0), intstr.FromInt32(1)
	if replicas < 2 {
		surge, unavailable = intstr.FromInt32(1), intstr.FromInt32(0)
	}
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

// DescribeStrategy says in one phrase how a strategy rolls replicas pods.
func DescribeStrategy(s appsv1.DeploymentStrategy, replicas int32) string {
	ru := s.RollingUpdate
	if ru == nil || ru.MaxSurge == nil || ru.MaxUnavailable == nil {
		return string(s.Type)
	}
	surge, _ := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, int(replicas), true)
	unavailable, _ := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, int(replicas), false)
	return fmt.Sprintf("rolling update of %d replicas, maxSurge %s, maxUnavailable %s: at most %d extra pod(s), at least %d Ready throughout",
		replicas, ru.MaxSurge.String(), ru.MaxUnavailable.String(), surge, max(int(replicas)-unavailable, 0))
}

// rolloutPoll is how often WaitRolledOut looks at the Deployments.
const rolloutPoll = 250 * time.Millisecond

// WaitRolledOut waits, as `kubectl rollout status` does, until each named
// Deployment has every replica updated and available and no old replica
// left. Helm's own wait stops earlier: it is satisfied once replicas −
// maxUnavailable of the new pods are ready, so with maxUnavailable 1 an old
// pod may still be running when it returns. The error names the pods still
// Pending and the scheduler's reason.
func WaitRolledOut(ctx context.Context, kc kubernetes.Interface, namespace string, deployments []string, timeout time.Duration, progress func(string)) error {
	pending := slices.Clone(deployments)
	var last string
	err := wait.PollUntilContextTimeout(ctx, rolloutPoll, timeout, true, func(ctx context.Context) (bool, error) {
		var still []string
		var why []string
		for _, name := range pending {
			dep, err := kc.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("read Deployment %s/%s: %w", namespace, name, err)
			}
			if done, status := RolledOut(dep); !done {
				still = append(still, name)
				why = append(why, status)
			}
		}
		pending = still
		msg := strings.Join(why, "; ")
		if msg != "" && msg != last && progress != nil {
			progress(msg)
		}
		last = msg
		return len(pending) == 0, nil
	})
	if err == nil {
		return nil
	}
	return fmt.Errorf("rollout of %s/%s did not complete within %s (%s)%s: %w", namespace, strings.Join(pending, ", "), timeout, last,
		pendingPods(kc, namespace), err)
}

// DeploymentReplicas is the replica count a release's Deployment asks for
// (a values override may have changed it), or fallback when it cannot be
// read.
func DeploymentReplicas(ctx context.Context, kc kubernetes.Interface, namespace, name string, fallback int) int {
	if kc == nil {
		return fallback
	}
	dep, err := kc.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil || dep.Spec.Replicas == nil {
		return fallback
	}
	return int(*dep.Spec.Replicas)
}

// RolledOut is kubectl's rollout-status test: the controller has seen the
// newest spec, every replica runs it and is available, no old one remains.
func RolledOut(dep *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	st := dep.Status
	switch {
	case dep.Generation > st.ObservedGeneration:
		return false, fmt.Sprintf("Deployment %s: waiting for the controller to see generation %d", dep.Name, dep.Generation)
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("Deployment %s: %d of %d replicas updated", dep.Name, st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("Deployment %s: %d old replica(s) pending termination", dep.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return false, fmt.Sprintf("Deployment %s: %d of %d updated replicas available", dep.Name, st.AvailableReplicas, st.UpdatedReplicas)
	}
	return true, fmt.Sprintf("Deployment %s: %d replicas rolled out", dep.Name, want)
}

// pendingPods names the namespace's unscheduled pods and why, for an error.
func pendingPods(kc kubernetes.Interface, namespace string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pods, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Pending"})
	if err != nil || len(pods.Items) == 0 {
		return ""
	}
	var out []string
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				out = append(out, fmt.Sprintf("pod %s unschedulable: %s", p.Name, c.Message))
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, "; ")
}
