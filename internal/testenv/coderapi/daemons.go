package coderapi

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provisioner tags coderd adds to every daemon (provisionersdk.MutateTags).
const (
	tagScope          = "scope"
	tagOwner          = "owner"
	scopeOrganization = "organization"
	scopeUser         = "user"
)

// Daemon timing as coderd has it.
const (
	// heartbeatInterval: a connected daemon's last_seen_at is rewritten
	// this often (DefaultHeartbeatInterval, coderd/provisionerdserver/
	// provisionerdserver.go).
	heartbeatInterval = time.Minute
	// staleInterval: a daemon not seen for longer is "offline" and left
	// out of the provisionerdaemons route unless asked for (StaleInterval,
	// same file; coderd/database/queries/provisionerdaemons.sql).
	staleInterval = 90 * time.Second
	// keyDaemonsWindow: the key-daemons route lists daemons seen this
	// recently (DefaultHeartbeatInterval*3, enterprise/coderd/
	// provisionerkeys.go), so replaced daemons linger there.
	keyDaemonsWindow = 3 * heartbeatInterval
)

// daemonRecord is a row of coderd's provisioner_daemons table: it outlives
// the connection, keyed by organization and name (UpsertProvisionerDaemon).
type daemonRecord struct {
	id, name, keyID string
	// version is the daemon's build: its pod's image tag ("" = the
	// double's Options.Version).
	version   string
	tags      map[string]string
	createdAt time.Time // when it first connected
	lastSeen  time.Time // its last heartbeat
}

// observe connects the daemons of the provisioner pods running now and
// heartbeats them. Without a license no external daemon can connect
// (coderd refuses the serve endpoint), so nothing is observed.
func (s *Server) observe(ctx context.Context) error {
	if s.kube == nil || !s.isLicensed() {
		s.mu.Lock()
		s.connected = nil
		s.mu.Unlock()
		return nil
	}
	pods, err := s.kube.CoreV1().Pods(s.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods in namespace %s: %w", s.namespace, err)
	}
	secrets := secretCache{s: s, ctx: ctx, data: map[string]map[string][]byte{}}
	now := s.now()
	connected := map[string]bool{}
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.connected = connected
	}()
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
			continue
		}
		key, err := s.podKey(pod, &secrets)
		if err != nil {
			return err
		}
		if key != nil {
			s.heartbeat(pod, key, now)
			connected[pod.Name] = true
		}
	}
	return nil
}

// heartbeat upserts the pod's daemon. Its last_seen_at advances in whole
// heartbeat intervals from when it connected, as coderd's heartbeat loop
// writes it: a live daemon may look up to a minute old.
func (s *Server) heartbeat(pod *corev1.Pod, key *provisionerKey, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.daemons[pod.Name] // the daemon's name defaults to its hostname
	if d == nil {
		d = &daemonRecord{id: string(pod.UID), name: pod.Name, createdAt: now, lastSeen: now}
		s.daemons[pod.Name] = d
	}
	d.keyID, d.tags = key.id, daemonTags(key.tags, s.ownerIDLocked())
	if len(pod.Spec.Containers) > 0 {
		d.version = imageTag(pod.Spec.Containers[0].Image)
	}
	beats := now.Sub(d.createdAt) / heartbeatInterval
	d.lastSeen = d.createdAt.Add(beats * heartbeatInterval)
}

// daemonSnapshot copies the registered daemons, oldest first.
func (s *Server) daemonSnapshot() []daemonRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]daemonRecord, 0, len(s.daemons))
	for _, d := range s.daemons {
		c := *d
		c.tags = maps.Clone(d.tags)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].createdAt.Before(out[j].createdAt) })
	return out
}

// registered observes the cluster, then returns every registered daemon
// with the clock it was judged by; none when the deployment is unlicensed.
func (s *Server) registered(ctx context.Context) ([]daemonRecord, time.Time, error) {
	if err := s.observe(ctx); err != nil {
		return nil, time.Time{}, err
	}
	now := s.now()
	if !s.isLicensed() {
		return nil, now, nil
	}
	return s.daemonSnapshot(), now, nil
}

// recent keeps the daemons seen within window before now
// (db2sdk.RecentProvisionerDaemons).
func recent(all []daemonRecord, now time.Time, window time.Duration) []daemonRecord {
	var out []daemonRecord
	for _, d := range all {
		if now.Sub(d.lastSeen) <= window {
			out = append(out, d)
		}
	}
	return out
}

// json is the daemon as the key-daemons route and the health report show
// it (db2sdk.ProvisionerDaemon): key_name and status stay null.
func (d daemonRecord) json(s *Server) provisionerDaemon {
	seen := d.lastSeen
	return provisionerDaemon{
		ID:             d.id,
		OrganizationID: s.org.ID,
		KeyID:          d.keyID,
		CreatedAt:      d.createdAt,
		LastSeenAt:     &seen,
		Name:           d.name,
		Version:        d.versionOr(s.version),
		APIVersion:     provisionerAPIVersion,
		Provisioners:   []string{"terraform"},
		Tags:           maps.Clone(d.tags),
	}
}

// withStatus is the daemon as the provisionerdaemons route shows it: with
// its key's name and "idle" or, past staleInterval, "offline" (the double
// runs no jobs, so never "busy").
func (d daemonRecord) withStatus(s *Server, now time.Time) provisionerDaemon {
	out := d.json(s)
	status := "idle"
	if now.Sub(d.lastSeen) > staleInterval {
		status = "offline"
	}
	keyName := ""
	for _, k := range s.keySnapshot() {
		if k.id == d.keyID {
			keyName = k.name
		}
	}
	out.KeyName, out.Status = &keyName, &status
	return out
}

// podKey returns the key the pod's CODER_PROVISIONER_DAEMON_KEY resolves to,
// or nil when it has none or an unknown one.
func (s *Server) podKey(pod *corev1.Pod, secrets *secretCache) (*provisionerKey, error) {
	for _, c := range pod.Spec.Containers {
		for _, env := range c.Env {
			if env.Name != ProvisionerKeyEnv {
				continue
			}
			value, err := secrets.resolve(env)
			if err != nil {
				return nil, err
			}
			if value == "" {
				continue
			}
			if key := s.keyFor(value); key != nil {
				return key, nil
			}
		}
	}
	return nil, nil
}

// daemonTags are the key's tags as coderd normalises them: a missing or
// unknown scope becomes "organization" with an empty owner; "user" scope
// is owned by the user.
func daemonTags(keyTags map[string]string, ownerID string) map[string]string {
	tags := maps.Clone(keyTags)
	if tags == nil {
		tags = map[string]string{}
	}
	switch tags[tagScope] {
	case scopeUser:
		tags[tagOwner] = ownerID
	default:
		tags[tagScope] = scopeOrganization
		tags[tagOwner] = ""
	}
	return tags
}

// secretCache reads each Secret once per listing.
type secretCache struct {
	s    *Server
	ctx  context.Context
	data map[string]map[string][]byte
}

// resolve returns an env var's value: literal, or from a secretKeyRef. A
// missing secret or key resolves to "" — the pod would not start on a real
// kubelet, and here it simply matches no key.
func (c *secretCache) resolve(env corev1.EnvVar) (string, error) {
	if env.ValueFrom == nil || env.ValueFrom.SecretKeyRef == nil {
		return env.Value, nil
	}
	ref := env.ValueFrom.SecretKeyRef
	data, ok := c.data[ref.Name]
	if !ok {
		secret, err := c.s.kube.CoreV1().Secrets(c.s.namespace).Get(c.ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			data = nil
		case err != nil:
			return "", fmt.Errorf("get secret %s/%s: %w", c.s.namespace, ref.Name, err)
		default:
			data = secret.Data
		}
		c.data[ref.Name] = data
	}
	return string(data[ref.Key]), nil
}
