package helmx

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWaitReporter(t *testing.T) {
	tests := []struct {
		name        string
		waiting     bool
		logs        []string
		wantEmitted []string // substrings, in order
	}{
		{
			name:    "readiness lines become progress once each",
			waiting: true,
			logs: []string{
				"creating 3 resource(s)",
				"Deployment is not ready: coder/coder. 0 out of 2 expected pods are ready",
				"Deployment is not ready: coder/coder. 0 out of 2 expected pods are ready",
				"Deployment is not ready: coder/coder. 1 out of 2 expected pods are ready",
				"Service does not have load balancer ingress IP address: coder/coder",
			},
			wantEmitted: []string{
				"release coder/coder: Deployment is not ready: coder/coder. 0 out of 2",
				"release coder/coder: Deployment is not ready: coder/coder. 1 out of 2",
				"release coder/coder: Service does not have load balancer ingress",
			},
		},
		{
			name:    "nothing before the wait starts",
			waiting: false,
			logs:    []string{"Deployment is not ready: coder/coder. 0 out of 2 expected pods are ready"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var emitted, logged []string
			w := newWaitReporter(Release{Name: "coder", Namespace: "coder"},
				func(s string) { mu.Lock(); emitted = append(emitted, s); mu.Unlock() },
				func(s string) { logged = append(logged, s) })
			w.waiting, w.started = tc.waiting, time.Now()
			for _, l := range tc.logs {
				w.debugLog("%s", l)
			}
			if len(logged) != len(tc.logs) {
				t.Errorf("logged %d lines, want all %d", len(logged), len(tc.logs))
			}
			if len(emitted) != len(tc.wantEmitted) {
				t.Fatalf("emitted %q, want %d lines", emitted, len(tc.wantEmitted))
			}
			for i, want := range tc.wantEmitted {
				if !strings.Contains(emitted[i], want) || !strings.Contains(emitted[i], "elapsed") {
					t.Errorf("emitted[%d] = %q, want it to contain %q and the elapsed time", i, emitted[i], want)
				}
			}
		})
	}
}
