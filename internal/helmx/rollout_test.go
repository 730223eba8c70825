package helmx

import (
	"bytes"
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

const rendered = `---
# Source: coder/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: coder
spec:
  type: ClusterIP
---
# Source: coder/templates/coder.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coder
spec:
  replicas: %REPLICAS%
  template:
    spec:
      containers: []
---
# Source: coder/templates/other.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: other
spec:
  replicas: 3
`

// TestStrategiesPostRender: the named Deployment gets the strategy for its
// rendered replica count, helm's "# Source" line stays above it, and every
// other document passes through unchanged.
func TestStrategiesPostRender(t *testing.T) {
	tests := []struct {
		replicas                 string
		wantSurge, wantUnavail   string
		wantReplicasInDescribeOf int32
	}{
		{"2", "0", "1", 2},
		{"4", "0", "1", 4},
		{"1", "1", "0", 1},
	}
	for _, tc := range tests {
		t.Run(tc.replicas+" replicas", func(t *testing.T) {
			in := strings.ReplaceAll(rendered, "%REPLICAS%", tc.replicas)
			out, err := Strategies{"coder": NoSurge}.Run(bytes.NewBufferString(in))
			if err != nil {
				t.Fatal(err)
			}
			docs := strings.Split(out.String(), "---\n")
			if len(docs) != 3 {
				t.Fatalf("%d documents out, want 3:\n%s", len(docs), out)
			}
			inDocs := strings.Split(strings.TrimPrefix(in, "---\n"), "---\n")
			if docs[0] != inDocs[0] || docs[2] != inDocs[2] {
				t.Errorf("the Service or the other Deployment changed:\n%s", out)
			}
			if !strings.HasPrefix(docs[1], "# Source: coder/templates/coder.yaml\n") {
				t.Errorf("the Source comment is gone:\n%s", docs[1])
			}
			var dep appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(docs[1]), &dep); err != nil {
				t.Fatal(err)
			}
			ru := dep.Spec.Strategy.RollingUpdate
			if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
				ru.MaxSurge.String() != tc.wantSurge || ru.MaxUnavailable.String() != tc.wantUnavail {
				t.Errorf("strategy %+v, want maxSurge %s maxUnavailable %s", dep.Spec.Strategy, tc.wantSurge, tc.wantUnavail)
			}
			if dep.Spec.Replicas == nil || *dep.Spec.Replicas != tc.wantReplicasInDescribeOf {
				t.Errorf("replicas %v changed", dep.Spec.Replicas)
			}
		})
	}
}

func TestDescribeStrategy(t *testing.T) {
	got := DescribeStrategy(NoSurge(2), 2)
	want := "rolling update of 2 replicas, maxSurge 0, maxUnavailable 1: at most 0 extra pod(s), at least 1 Ready throughout"
	if got != want {
		t.Errorf("DescribeStrategy = %q, want %q", got, want)
	}
}

// TestRolledOut is kubectl rollout status's test, case by case.
func TestRolledOut(t *testing.T) {
	two := int32(2)
	tests := []struct {
		name   string
		gen    int64
		status appsv1.DeploymentStatus
		done   bool
		says   string
	}{
		{"not yet observed", 3, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}, false, "generation 3"},
		{"one updated", 3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2}, false, "1 of 2 replicas updated"},
		{"old replica left", 3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 2}, false, "1 old replica"},
		{"updated not available", 3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}, false, "1 of 2 updated replicas available"},
		{"done", 3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2}, true, "2 replicas rolled out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dep := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &two}, Status: tc.status}
			dep.Name, dep.Generation = "coder", tc.gen
			done, says := RolledOut(dep)
			if done != tc.done || !strings.Contains(says, tc.says) {
				t.Errorf("RolledOut = %v %q, want %v and %q", done, says, tc.done, tc.says)
			}
		})
	}
}

func TestDeploymentReplicas(t *testing.T) {
	three := int32(3)
	dep := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &three}}
	dep.Name, dep.Namespace = "coder", "coder"
	tests := []struct {
		name string
		kc   kubernetes.Interface
		dep  string
		want int
	}{
		{"the Deployment's own count", fake.NewClientset(dep), "coder", 3},
		{"no Deployment yet", fake.NewClientset(), "coder", 2},
		{"another Deployment", fake.NewClientset(dep), "coder-provisioner", 2},
		{"no cluster", nil, "coder", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DeploymentReplicas(context.Background(), tc.kc, "coder", tc.dep, 2); got != tc.want {
				t.Errorf("DeploymentReplicas = %d, want %d", got, tc.want)
			}
		})
	}
}
