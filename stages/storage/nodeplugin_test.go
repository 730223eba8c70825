package storage

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/coderctl/coderctl/internal/engine"
)

// TestNodePluginRollout: while the plugin's DaemonSet rolls out a new
// template, its old pods still count as ready; the check waits (starting)
// until every node runs the newest version, as kubectl rollout status does.
func TestNodePluginRollout(t *testing.T) {
	nodes := []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, {ObjectMeta: metav1.ObjectMeta{Name: "b"}}}
	tests := []struct {
		name         string
		generation   int64
		status       appsv1.DaemonSetStatus
		wantStatus   engine.CheckStatus
		wantStarting bool
		wantReason   string
	}{
		{"rolled out", 2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberReady: 2},
			engine.Pass, false, "ready on all 2 nodes"},
		{"newest spec not seen yet", 3, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberReady: 2},
			engine.Fail, true, "rolling out"},
		{"old pod still ready on one node", 2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 1, NumberReady: 2},
			engine.Fail, true, "1 of 2 nodes run its newest version"},
		{"one node not ready", 2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberReady: 1},
			engine.Fail, true, "ready on 1 of 2 nodes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: NodePluginDaemonSet, Namespace: NodePluginNamespace, Generation: tc.generation},
				Status: tc.status}
			kc := fake.NewClientset(ds, &nodes[0], &nodes[1])
			c, starting := checkNodePlugin(context.Background(), kc)
			if c.Status != tc.wantStatus || starting != tc.wantStarting || !strings.Contains(c.Reason, tc.wantReason) {
				t.Errorf("check = %s %q (starting %v), want %s %q (starting %v)", c.Status, c.Reason, starting, tc.wantStatus, tc.wantReason, tc.wantStarting)
			}
		})
	}
}
