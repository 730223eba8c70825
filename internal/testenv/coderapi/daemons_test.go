package coderapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/testenv/kubeground"
)

func TestMain(m *testing.M) { kubeground.Main(m) }

// TestDaemonsFollowRunningProvisionerPods runs provisioner-like pods on a
// kwok node of the real control plane: a pod whose key secret holds the
// created key is one connected daemon; a pod whose secret holds another
// value is none; without a license none connects.
func TestDaemonsFollowRunningProvisionerPods(t *testing.T) {
	g := kubeground.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := g.Client()
	if err := g.AddNode(ctx, kubeground.NodeSpec{Name: "coderapi-provisioner-0"}); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(ctx, t, kube, "coderapi")

	s := Require(t, Options{Licensed: true, Kube: kube, Namespace: ns, Version: "v2.36.1+abcdef0"})
	var created createProvisionerKeyResponse
	expect(t, s, "POST", "/api/v2/organizations/default/provisionerkeys", s.Token(),
		createProvisionerKeyRequest{Name: "eks", Tags: map[string]string{"pool": "eks"}}, http.StatusCreated, &created)

	daemonsPath := "/api/v2/organizations/" + s.OrganizationID() + "/provisionerdaemons"
	if got := listDaemons(t, s, daemonsPath); len(got) != 0 {
		t.Fatalf("daemons before any pod = %+v, want none", got)
	}

	createSecret(ctx, t, kube, ns, "coder-provisioner-key", created.Key)
	createSecret(ctx, t, kube, ns, "stale-key", "not-the-key-"+created.Key[:8])
	good := runProvisionerPod(ctx, t, kube, ns, "provisioner-good", "coder-provisioner-key")
	runProvisionerPod(ctx, t, kube, ns, "provisioner-stale", "stale-key")

	daemons := listDaemons(t, s, daemonsPath)
	if len(daemons) != 1 {
		t.Fatalf("daemons = %+v, want exactly the pod with the right key", daemons)
	}
	d := daemons[0]
	if d.Name != "provisioner-good" || d.ID != string(good.UID) || d.KeyName == nil || *d.KeyName != "eks" ||
		d.Version != "v2.36.1+abcdef0" || d.Status == nil || *d.Status != "idle" {
		t.Errorf("daemon = %+v, want provisioner-good under key eks, idle, version v2.36.1+abcdef0", d)
	}
	if d.Tags["pool"] != "eks" || d.Tags["scope"] != "organization" {
		t.Errorf("daemon tags = %v, want the key's tags plus scope=organization", d.Tags)
	}
	if d.LastSeenAt == nil || !d.LastSeenAt.Equal(d.CreatedAt) {
		t.Errorf("last_seen_at %v, want the moment it connected (%s)", d.LastSeenAt, d.CreatedAt)
	}
	var keys []provisionerKeyJSON
	expect(t, s, "GET", "/api/v2/organizations/default/provisionerkeys", s.Token(), nil, http.StatusOK, &keys)
	if d.KeyID != keys[0].ID {
		t.Errorf("daemon key_id = %s, want the key's id %s", d.KeyID, keys[0].ID)
	}

	t.Run("tag filter", func(t *testing.T) {
		if got := listDaemons(t, s, daemonsPath+`?tags={"pool":"eks"}`); len(got) != 1 {
			t.Errorf("tags pool=eks: %d daemons, want 1", len(got))
		}
		if got := listDaemons(t, s, daemonsPath+`?tags={"pool":"gke"}`); len(got) != 0 {
			t.Errorf("tags pool=gke: %d daemons, want 0", len(got))
		}
	})

	t.Run("grouped by key", func(t *testing.T) {
		grouped := keyDaemons(t, s)
		if len(grouped["eks"]) != 1 || grouped["eks"][0].KeyName != nil || grouped["eks"][0].Status != nil {
			t.Errorf("key daemons = %+v, want key eks with one daemon, key_name and status null", grouped)
		}
	})

	t.Run("second running pod is a second daemon", func(t *testing.T) {
		runProvisionerPod(ctx, t, kube, ns, "provisioner-good-2", "coder-provisioner-key")
		if got := listDaemons(t, s, daemonsPath); len(got) != 2 {
			t.Errorf("daemons = %d, want 2", len(got))
		}
	})

	t.Run("unlicensed deployment has no external daemons", func(t *testing.T) {
		s.SetLicensed(false)
		defer s.SetLicensed(true)
		if got := listDaemons(t, s, daemonsPath); len(got) != 0 {
			t.Errorf("unlicensed daemons = %+v, want none", got)
		}
	})

	t.Run("deleted key disconnects its daemons", func(t *testing.T) {
		expect(t, s, "DELETE", "/api/v2/organizations/default/provisionerkeys/eks", s.Token(), nil, http.StatusNoContent, nil)
		if got := listDaemons(t, s, daemonsPath); len(got) != 0 {
			t.Errorf("daemons after key deletion = %+v, want none", got)
		}
	})
}

// keyDaemons is the key-daemons answer by key name.
func keyDaemons(t *testing.T, s *Server) map[string][]provisionerDaemon {
	t.Helper()
	var grouped []provisionerKeyDaemons
	expect(t, s, "GET", "/api/v2/organizations/default/provisionerkeys/daemons", s.Token(), nil, http.StatusOK, &grouped)
	out := map[string][]provisionerDaemon{}
	for _, g := range grouped {
		out[g.Key.Name] = g.Daemons
	}
	return out
}

func listDaemons(t *testing.T, s *Server, path string) []provisionerDaemon {
	t.Helper()
	var out []provisionerDaemon
	expect(t, s, "GET", path, s.Token(), nil, http.StatusOK, &out)
	return out
}

func createNamespace(ctx context.Context, t *testing.T, kube kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func createSecret(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, name, key string) {
	t.Helper()
	_, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		StringData: map[string]string{"key": key},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// runProvisionerPod creates a pod shaped like the provisioner chart's (the
// key from a secretKeyRef) and waits until kwok reports it Running.
func runProvisionerPod(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, name, secret string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/name": "coder-provisioner"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "coder",
			Image: "ghcr.io/coder/coder:v2.36.1",
			Args:  []string{"provisioner", "start"},
			Env: []corev1.EnvVar{{
				Name: ProvisionerKeyEnv,
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: secret},
					Key:                  "key",
				}},
			}},
		}}},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		running = p
		return p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatal(fmt.Errorf("pod %s/%s not Running (phase %s): %w", ns, name, running.Status.Phase, err))
	}
	return running
}

// TestDaemonsGoStaleAfterTheirPodStops follows one daemon through coderd's
// timeline on the double's clock: it heartbeats each minute while its pod
// runs; once the pod is gone its last_seen_at freezes, the provisionerdaemons
// route calls it offline (hidden unless asked for) after StaleInterval, and
// the key-daemons route stops listing it after three heartbeat intervals.
func TestDaemonsGoStaleAfterTheirPodStops(t *testing.T) {
	g := kubeground.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := g.Client()
	if err := g.AddNode(ctx, kubeground.NodeSpec{Name: "coderapi-provisioner-1"}); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(ctx, t, kube, "coderapi-stale")
	s := Require(t, Options{Licensed: true, Kube: kube, Namespace: ns})
	var created createProvisionerKeyResponse
	expect(t, s, "POST", "/api/v2/organizations/default/provisionerkeys", s.Token(), createProvisionerKeyRequest{Name: "eks"}, http.StatusCreated, &created)
	createSecret(ctx, t, kube, ns, "key", created.Key)
	runProvisionerPod(ctx, t, kube, ns, "provisioner-a", "key")
	daemonsPath := "/api/v2/organizations/default/provisionerdaemons"

	first := listDaemons(t, s, daemonsPath)
	if len(first) != 1 {
		t.Fatalf("daemons = %+v, want provisioner-a", first)
	}
	connected := *first[0].LastSeenAt
	s.Advance(2*time.Minute + 30*time.Second)
	if got := listDaemons(t, s, daemonsPath); len(got) != 1 || !got[0].LastSeenAt.Equal(connected.Add(2*time.Minute)) {
		t.Fatalf("after 2.5 min of running: %+v, want last_seen_at at the second heartbeat %s", got, connected.Add(2*time.Minute))
	}
	if err := kube.CoreV1().Pods(ns).Delete(ctx, "provisioner-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		advance      time.Duration
		online       int    // provisionerdaemons, default query
		offline      string // status with ?offline=true, "" = not listed
		underKey     int    // key-daemons route
		healthSevere bool   // health report's provisioner section is an error
	}{
		{0, 1, "idle", 1, false},
		{61 * time.Second, 0, "offline", 1, true}, // 91 s since the last heartbeat
		{60 * time.Second, 0, "offline", 1, true}, // 151 s
		{30 * time.Second, 0, "offline", 0, true}, // 181 s: past 3 heartbeats
	}
	for i, st := range steps {
		s.Advance(st.advance)
		if got := listDaemons(t, s, daemonsPath); len(got) != st.online {
			t.Errorf("step %d: %d online daemons, want %d", i, len(got), st.online)
		}
		all := listDaemons(t, s, daemonsPath+"?offline=true")
		if len(all) != 1 || *all[0].Status != st.offline {
			t.Errorf("step %d: with offline=true %+v, want provisioner-a %s", i, all, st.offline)
		}
		if got := keyDaemons(t, s)["eks"]; len(got) != st.underKey {
			t.Errorf("step %d: %d daemons under the key, want %d", i, len(got), st.underKey)
		}
		var rep healthReport
		expect(t, s, "GET", "/api/v2/debug/health", s.Token(), nil, http.StatusOK, &rep)
		if severe := rep.ProvisionerDaemons.Severity == severityError; severe != st.healthSevere {
			t.Errorf("step %d: provisioner health %+v, want error=%v", i, rep.ProvisionerDaemons.baseReport, st.healthSevere)
		}
	}
}
