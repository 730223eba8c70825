package coderapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a build sends to the cluster and waits for, as the kubernetes
// provider would: a claim is created and, unless wait_until_bound =
// false, waited on until Bound (5 minutes); a Deployment is created or
// updated and, unless wait_for_rollout = false, waited on until its
// replicas are updated and available (10 minutes); destroyed objects are
// waited on until gone. The timeouts run on the double's clock (Advance).

const (
	pvcCreateTimeout    = 5 * time.Minute
	deployCreateTimeout = 10 * time.Minute
	deleteTimeout       = 5 * time.Minute
)

// agentConnectionTimeout is coder_agent's default connection_timeout:
// coderd reports an agent that never connected as "timeout" after it.
const agentConnectionTimeout = 120 * time.Second

// kubeRef names an object a build created.
type kubeRef struct {
	addr, kind, namespace, name string
}

func (r kubeRef) id() string { return r.namespace + "/" + r.name }

type waitFor struct {
	ref      kubeRef
	what     string // bound | rollout | gone
	deadline time.Time
}

// kubeObj is a planned instance as the API object it describes.
type kubeObj struct {
	ref kubeRef
	pvc *corev1.PersistentVolumeClaim
	dep *appsv1.Deployment
}

// toKube reads a Kubernetes instance's arguments into its API object;
// nil for coder_agent. Arguments the object has no field for fail, as
// they would fail the provider's schema.
func toKube(inst *tfInstance) (*kubeObj, error) {
	var into any
	var kind, apiVersion string
	out := &kubeObj{}
	switch inst.typ {
	case resCoderAgent:
		return nil, nil
	case resPVC, resPVCv1:
		out.pvc = &corev1.PersistentVolumeClaim{}
		into, kind, apiVersion = out.pvc, "PersistentVolumeClaim", "v1"
	case resDeploy, resDeployV1:
		out.dep = &appsv1.Deployment{}
		into, kind, apiVersion = out.dep, "Deployment", "apps/v1"
	default:
		return nil, tplErrorf("%s: resource type %q is not supported by the coderapi double", inst.addr(), inst.typ)
	}
	raw, err := kubeObject(inst, apiVersion, kind)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return nil, tplErrorf("%s: the coderapi double cannot read it as a %s: %v", inst.addr(), kind, err)
	}
	var meta *metav1.ObjectMeta
	if out.pvc != nil {
		meta = &out.pvc.ObjectMeta
	} else {
		meta = &out.dep.ObjectMeta
	}
	if meta.Name == "" {
		return nil, tplErrorf("%s: metadata.name is empty", inst.addr())
	}
	if meta.Namespace == "" {
		meta.Namespace = "default"
	}
	out.ref = kubeRef{addr: inst.addr(), kind: kind, namespace: meta.Namespace, name: meta.Name}
	return out, nil
}

// buildWorkspace is the data a build's Terraform sees.
func (s *Server) buildWorkspace(b *build, v *templateVersion) tfWorkspace {
	ws := tfWorkspace{
		id: b.ws.id, name: b.ws.name, transition: b.transition,
		ownerID: b.ws.owner.ID, ownerName: b.ws.owner.Username, ownerFullName: b.ws.owner.Name, ownerEmail: b.ws.owner.Email,
		templateVersion: v.name, accessURL: s.url, agents: map[string]agentIdentity{},
	}
	if t := s.work.templates[b.ws.templateID]; t != nil {
		ws.templateID, ws.templateName = t.id, t.name
	}
	if b.transition == transitionStart {
		ws.startCount = 1
	}
	for _, a := range b.agents {
		ws.agents[a.name] = a.identity
	}
	return ws
}

// newAgents gives each coder_agent of the template the identity the coder
// provider would compute for this build: an ID, a token and the init
// script that downloads the agent from this deployment.
func (s *Server) newAgents(t *tfTemplate) []*agentRecord {
	var out []*agentRecord
	for _, r := range t.resources {
		if r.typ != resCoderAgent {
			continue
		}
		id := newID()
		script := strings.Join([]string{
			"#!/bin/sh",
			"# coderapi test double: init script of workspace agent " + id,
			"set -eu",
			"curl -fsSL --compressed " + s.url + "/bin/coder-linux-amd64 -o /tmp/coder",
			"chmod +x /tmp/coder",
			"exec /tmp/coder agent",
		}, "\n")
		out = append(out, &agentRecord{name: r.name, identity: agentIdentity{id: id, token: newID(), initScript: script}, createdAt: s.now()})
	}
	return out
}

// runBuild applies a build's plan once, then checks what it waits for
// until everything is there or a wait times out.
func (s *Server) runBuild(ctx context.Context, j *job) error {
	b := j.build
	if !j.applied {
		if err := s.applyBuild(ctx, j); err != nil {
			return err
		}
		j.applied = true
	}
	now := s.now()
	var remaining []waitFor
	for _, w := range j.waits {
		done, state, err := s.check(ctx, w)
		if err != nil {
			return err
		}
		if done {
			continue
		}
		if now.After(w.deadline) {
			switch w.what {
			case "rollout":
				return tplErrorf("%s: Waiting for rollout to finish: %s", w.ref.addr, state)
			case "gone":
				return tplErrorf("%s: timeout while waiting for resource to be gone (last state: '%s', timeout: %s)", w.ref.addr, state, deleteTimeout)
			default:
				return tplErrorf("%s: timeout while waiting for state to become 'Bound' (last state: '%s', timeout: %s)", w.ref.addr, state, pvcCreateTimeout)
			}
		}
		s.log(j, "provisioner", "info", j.stage(), fmt.Sprintf("%s: Still %s... [id=%s]", w.ref.addr, waitVerb(w.what), w.ref.id()))
		remaining = append(remaining, w)
	}
	j.waits = remaining
	if len(remaining) > 0 {
		return nil
	}
	if b.transition == transitionDelete {
		b.ws.deleted = true
	}
	for _, a := range b.agents {
		a.createdAt = now // coderd inserts the agents when the job completes
	}
	s.finish(j, statusSucceeded)
	return nil
}

func waitVerb(what string) string {
	if what == "gone" {
		return "destroying"
	}
	return "creating"
}

// applyBuild plans the build and sends its objects to the cluster:
// create or update what the plan has, destroy what the state has that the
// plan does not (all of it for a delete).
func (s *Server) applyBuild(ctx context.Context, j *job) error {
	b := j.build
	v := s.work.versions[b.versionID]
	stage := j.stage()
	var objs []*kubeObj
	if b.transition != transitionDelete {
		if v == nil || v.parsed == nil {
			return tplErrorf("template version %s has no imported template", b.versionID)
		}
		s.log(j, "provisioner", "info", "Planning infrastructure", "Terraform plan")
		p, err := v.parsed.plan(s.buildWorkspace(b, v))
		if err != nil {
			return err
		}
		for _, inst := range p.instances {
			if inst.typ == resCoderAgent {
				for _, a := range b.agents {
					if a.name == inst.name {
						a.os, a.arch, a.dir = stringArg(inst.attrs, "os"), stringArg(inst.attrs, "arch"), stringArg(inst.attrs, "dir")
					}
				}
				continue
			}
			obj, err := toKube(inst)
			if err != nil {
				return err
			}
			objs = append(objs, obj)
			b.resources = append(b.resources, resourceRecord{id: newID(), typ: inst.typ, name: inst.name, agents: inst.agentRefs})
			if inst.typ == resPVC || inst.typ == resPVCv1 {
				if boolArg(inst, "wait_until_bound", true) {
					j.waits = append(j.waits, waitFor{ref: obj.ref, what: "bound", deadline: s.now().Add(pvcCreateTimeout)})
				}
			} else if boolArg(inst, "wait_for_rollout", true) {
				j.waits = append(j.waits, waitFor{ref: obj.ref, what: "rollout", deadline: s.now().Add(deployCreateTimeout)})
			}
		}
	}
	wanted := map[kubeRef]bool{}
	for _, o := range objs {
		wanted[o.ref] = true
	}
	// Destroy first, newest first, what the plan no longer has.
	var kept []kubeRef
	for i := len(b.ws.state) - 1; i >= 0; i-- {
		ref := b.ws.state[i]
		if wanted[ref] {
			kept = append([]kubeRef{ref}, kept...)
			continue
		}
		s.log(j, "provisioner", "info", stage, fmt.Sprintf("%s: Destroying... [id=%s]", ref.addr, ref.id()))
		if err := s.deleteObject(ctx, ref); err != nil {
			return fmt.Errorf("%s: %w", ref.addr, err)
		}
		j.waits = append(j.waits, waitFor{ref: ref, what: "gone", deadline: s.now().Add(deleteTimeout)})
	}
	b.ws.state = kept
	for _, o := range objs {
		s.log(j, "provisioner", "info", stage, fmt.Sprintf("%s: Creating...", o.ref.addr))
		if err := s.applyObject(ctx, o); err != nil {
			return tplErrorf("%s: %v", o.ref.addr, err)
		}
		s.log(j, "provisioner", "info", stage, fmt.Sprintf("%s: Creation complete after 0s [id=%s]", o.ref.addr, o.ref.id()))
		if !slices.Contains(b.ws.state, o.ref) {
			b.ws.state = append(b.ws.state, o.ref)
		}
	}
	return nil
}

func (s *Server) kubeOrError() error {
	if s.kube == nil {
		return fmt.Errorf("the coderapi double has no Kubernetes cluster (Options.Kube) to build workspaces on")
	}
	return nil
}

// applyObject creates the object, or updates it in place when it exists.
func (s *Server) applyObject(ctx context.Context, o *kubeObj) error {
	if err := s.kubeOrError(); err != nil {
		return err
	}
	switch {
	case o.pvc != nil:
		c := s.kube.CoreV1().PersistentVolumeClaims(o.ref.namespace)
		_, err := c.Create(ctx, o.pvc, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, gerr := c.Get(ctx, o.ref.name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			cur.Labels, cur.Annotations = o.pvc.Labels, o.pvc.Annotations
			_, err = c.Update(ctx, cur, metav1.UpdateOptions{})
		}
		return err
	case o.dep != nil:
		c := s.kube.AppsV1().Deployments(o.ref.namespace)
		_, err := c.Create(ctx, o.dep, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, gerr := c.Get(ctx, o.ref.name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			cur.Labels, cur.Annotations, cur.Spec = o.dep.Labels, o.dep.Annotations, o.dep.Spec
			_, err = c.Update(ctx, cur, metav1.UpdateOptions{})
		}
		return err
	}
	return nil
}

func (s *Server) deleteObject(ctx context.Context, ref kubeRef) error {
	if err := s.kubeOrError(); err != nil {
		return err
	}
	var err error
	switch ref.kind {
	case "PersistentVolumeClaim":
		err = s.kube.CoreV1().PersistentVolumeClaims(ref.namespace).Delete(ctx, ref.name, metav1.DeleteOptions{})
	case "Deployment":
		err = s.kube.AppsV1().Deployments(ref.namespace).Delete(ctx, ref.name, metav1.DeleteOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// check reports whether a wait is over, and the state it saw.
func (s *Server) check(ctx context.Context, w waitFor) (bool, string, error) {
	switch w.what {
	case "bound":
		pvc, err := s.kube.CoreV1().PersistentVolumeClaims(w.ref.namespace).Get(ctx, w.ref.name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return pvc.Status.Phase == corev1.ClaimBound, string(pvc.Status.Phase), nil
	case "rollout":
		d, err := s.kube.AppsV1().Deployments(w.ref.namespace).Get(ctx, w.ref.name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st := d.Status
		done := st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.AvailableReplicas == want && st.Replicas == want
		return done, fmt.Sprintf("%d of %d updated replicas are available...", st.AvailableReplicas, want), nil
	case "gone":
		var err error
		switch w.ref.kind {
		case "PersistentVolumeClaim":
			_, err = s.kube.CoreV1().PersistentVolumeClaims(w.ref.namespace).Get(ctx, w.ref.name, metav1.GetOptions{})
		case "Deployment":
			_, err = s.kube.AppsV1().Deployments(w.ref.namespace).Get(ctx, w.ref.name, metav1.GetOptions{})
		}
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "Terminating", err
	}
	return true, "", nil
}

// agentConnected reports whether an agent's pod runs it: a Running pod in
// the build's namespaces whose container starts the agent's init script
// with its token, every claim the pod mounts Bound. That is when a real
// agent would have dialled coderd.
func (s *Server) agentConnected(ctx context.Context, b *build, a *agentRecord) (bool, error) {
	if s.kube == nil {
		return false, nil
	}
	namespaces := map[string]bool{}
	for _, ref := range b.ws.state {
		namespaces[ref.namespace] = true
	}
	for ns := range namespaces {
		pods, err := s.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || !runsAgent(pod, a.identity) {
				continue
			}
			bound, err := s.claimsBound(ctx, pod)
			if err != nil {
				return false, err
			}
			if bound {
				return true, nil
			}
		}
	}
	return false, nil
}

func runsAgent(pod *corev1.Pod, id agentIdentity) bool {
	for _, c := range pod.Spec.Containers {
		token := false
		for _, e := range c.Env {
			if e.Name == "CODER_AGENT_TOKEN" && e.Value == id.token {
				token = true
			}
		}
		if token && strings.Contains(strings.Join(append(slices.Clone(c.Command), c.Args...), "\n"), id.initScript) {
			return true
		}
	}
	return false
}

func (s *Server) claimsBound(ctx context.Context, pod *corev1.Pod) (bool, error) {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		pvc, err := s.kube.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			return false, nil
		}
	}
	return true, nil
}
