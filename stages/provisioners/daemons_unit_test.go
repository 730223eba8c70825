package provisioners

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/internal/coderapi"
)

// TestCountDaemons: a daemon counts when coderd heard from it within
// StaleInterval by the server's clock and, when the running pods are
// known, its pod (the daemon's name is its hostname) still runs.
func TestCountDaemons(t *testing.T) {
	at := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	seen := func(ago time.Duration) *time.Time { v := at.Add(-ago); return &v }
	daemons := []coderapi.ProvisionerDaemon{
		{Name: "p-new", LastSeenAt: seen(59 * time.Second)},
		{Name: "p-replaced", LastSeenAt: seen(20 * time.Second)},
		{Name: "p-gone-long", LastSeenAt: seen(150 * time.Second)},
		{Name: "p-never"},
	}
	cases := []struct {
		name        string
		pods        map[string]bool
		live        string
		notLiveSays []string
	}{
		{"pods known", map[string]bool{"p-new": true, "p-gone-long": true}, "p-new",
			[]string{"p-replaced (its pod is gone)", "p-gone-long (not seen for 2m30s)", "p-never (not seen for ever)"}},
		{"pods unknown: last_seen_at alone", nil, "p-new,p-replaced",
			[]string{"p-gone-long (not seen for 2m30s)"}},
		{"no pod runs", map[string]bool{}, "", []string{"p-new (its pod is gone)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live, notLive := countDaemons(coderapi.KeyDaemonList{Daemons: daemons, At: at}, tc.pods)
			if got := strings.Join(live, ","); got != tc.live {
				t.Errorf("live = %q, want %q", got, tc.live)
			}
			for _, want := range tc.notLiveSays {
				if !strings.Contains(strings.Join(notLive, "; "), want) {
					t.Errorf("not counted %q, want it to say %q", notLive, want)
				}
			}
		})
	}
}

// TestRenamesDaemon: a pod that sets CODER_PROVISIONER_DAEMON_NAME
// registers under another name than its own, so pod names cannot be
// matched against daemon names.
func TestRenamesDaemon(t *testing.T) {
	pod := func(env ...corev1.EnvVar) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "coder", Env: env}}}}
	}
	if renamesDaemon(pod(corev1.EnvVar{Name: "CODER_URL", Value: "http://coder"})) {
		t.Error("a pod without CODER_PROVISIONER_DAEMON_NAME renames its daemon")
	}
	if !renamesDaemon(pod(corev1.EnvVar{Name: "CODER_PROVISIONER_DAEMON_NAME", Value: "eks"})) {
		t.Error("a pod with CODER_PROVISIONER_DAEMON_NAME does not rename its daemon")
	}
}

func TestNotCounted(t *testing.T) {
	cases := []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"b", "a"}, "; not counted: a, b"},
		{[]string{"g", "f", "e", "d", "c", "b", "a"}, "; not counted: a, b, c, d, e, and 2 more"},
	}
	for _, tc := range cases {
		if got := notCounted(tc.names); got != tc.want {
			t.Errorf("notCounted(%v) = %q, want %q", tc.names, got, tc.want)
		}
	}
}
