package coderapi

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// coderdSelector finds the coderd pods of the coder chart (the provisioner
// chart's are app.kubernetes.io/name=coder-provisioner).
const coderdSelector = "app.kubernetes.io/name=coder"

// versionTurn spreads buildinfo answers over the Ready coderd pods, as the
// load balancer spreads requests: during a rollout a client sees both.
var versionTurn atomic.Uint64

// currentVersion is the version a request to coderd would report: the image
// tag of a Ready coderd pod (one in turn when they differ), with the build
// suffix of Options.Version, so an upgrade shows in /api/v2/buildinfo once
// its pods serve. Without a cluster, or with no Ready coderd pod (coderd not
// in the cluster the double watches), Options.Version.
func (s *Server) currentVersion(ctx context.Context) string {
	if s.kube == nil {
		return s.version
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pods, err := s.kube.CoreV1().Pods(s.namespace).List(ctx, metav1.ListOptions{LabelSelector: coderdSelector})
	if err != nil {
		return s.version
	}
	var versions []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !podReady(&p) || len(p.Spec.Containers) == 0 {
			continue
		}
		if tag := imageTag(p.Spec.Containers[0].Image); tag != "" {
			versions = append(versions, tag)
		}
	}
	if len(versions) == 0 {
		return s.version
	}
	slices.Sort(versions)
	return daemonRecord{version: versions[versionTurn.Add(1)%uint64(len(versions))]}.versionOr(s.version)
}

// imageTag is the tag of an image reference ("" without one or by digest).
func imageTag(image string) string {
	if i := strings.LastIndex(image, "@"); i >= 0 {
		return ""
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return ""
	}
	return image[colon+1:]
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// versionOr is the daemon's version as coderd lists it ("v2.36.1+…"), or
// fallback when its image had no tag.
func (d daemonRecord) versionOr(fallback string) string {
	if d.version == "" {
		return fallback
	}
	v := d.version
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	if _, suffix, ok := strings.Cut(fallback, "+"); ok && !strings.Contains(v, "+") {
		v += "+" + suffix
	}
	return v
}
