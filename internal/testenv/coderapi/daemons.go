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

// connectedDaemons lists one daemon per Running provisioner pod that
// authenticates with a key created here. Without a license no external
// daemon can connect (coderd refuses the serve endpoint), so none is listed.
func (s *Server) connectedDaemons(ctx context.Context) ([]provisionerDaemon, error) {
	if s.kube == nil || !s.isLicensed() {
		return nil, nil
	}
	pods, err := s.kube.CoreV1().Pods(s.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in namespace %s: %w", s.namespace, err)
	}
	secrets := secretCache{s: s, ctx: ctx, data: map[string]map[string][]byte{}}
	now := time.Now().UTC()
	var out []provisionerDaemon
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
			continue
		}
		key, err := s.podKey(pod, &secrets)
		if err != nil {
			return nil, err
		}
		if key != nil {
			out = append(out, s.daemonFor(pod, key, now))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
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

func (s *Server) daemonFor(pod *corev1.Pod, key *provisionerKey, now time.Time) provisionerDaemon {
	created := pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		created = pod.Status.StartTime.Time
	}
	keyName, status := key.name, "idle"
	return provisionerDaemon{
		ID:             string(pod.UID),
		OrganizationID: s.org.ID,
		KeyID:          key.id,
		CreatedAt:      created.UTC(),
		LastSeenAt:     now,
		Name:           pod.Name, // the daemon's name defaults to its hostname
		Version:        s.version,
		APIVersion:     provisionerAPIVersion,
		Provisioners:   []string{"terraform"},
		Tags:           daemonTags(key.tags, s.owner.ID),
		KeyName:        &keyName,
		Status:         &status,
	}
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
