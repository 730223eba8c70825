package autoscaler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRolledOut(t *testing.T) {
	one, two := int32(1), int32(2)
	dep := func(gen, observed int64, replicas *int32, updated, ready int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: replicas},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, ReadyReplicas: ready},
		}
	}
	tests := []struct {
		name string
		dep  *appsv1.Deployment
		want bool
	}{
		{"ready and seen", dep(2, 2, &one, 1, 1), true},
		{"replicas unset mean one", dep(1, 1, nil, 1, 1), true},
		// The lag this wait exists for: the ReplicaSet is ready, the
		// Deployment's status not yet.
		{"status not yet synced", dep(1, 1, &one, 1, 0), false},
		{"newest spec not yet seen", dep(3, 2, &one, 1, 1), false},
		{"old replica still serving", dep(2, 2, &one, 0, 1), false},
		{"one of two ready", dep(1, 1, &two, 2, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, status := rolledOut(tt.dep)
			if got != tt.want {
				t.Errorf("rolledOut = %v (%s), want %v", got, status, tt.want)
			}
		})
	}
}
