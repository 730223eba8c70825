package coderapi

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/wstemplate"
)

// workspaceNode adds a node of the workspace group: labelled and tainted
// coder/node-type=workspace, as the node groups stage makes them.
func workspaceNode(t *testing.T, w *world) string {
	t.Helper()
	name := "coderapi-ws-" + suffix()
	err := w.g.AddNode(w.ctx, kubeground.NodeSpec{
		Name:   name,
		Labels: map[string]string{"coder/node-type": "workspace"},
		Taints: []corev1.Taint{{Key: "coder/node-type", Value: "workspace", Effect: corev1.TaintEffectNoSchedule}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// defaultClass makes a default StorageClass with no provisioner, so only
// volumes made by hand (pv) bind; removed when the test ends.
func defaultClass(t *testing.T, w *world) string {
	t.Helper()
	name := "coderapi-manual-" + suffix()
	immediate := storagev1.VolumeBindingImmediate
	_, err := w.kube.StorageV1().StorageClasses().Create(w.ctx, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name, Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       "kubernetes.io/no-provisioner",
		VolumeBindingMode: &immediate,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.kube.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// volume makes a 10Gi volume of the class for one claim to bind.
func volume(t *testing.T, w *world, class string) {
	t.Helper()
	name := "coderapi-pv-" + suffix()
	_, err := w.kube.CoreV1().PersistentVolumes().Create(w.ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:              class,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// templateFrom imports mainTF and makes it a template; returns its ID.
func templateFrom(t *testing.T, w *world, mainTF string) string {
	t.Helper()
	v := pushVersion(t, w, mainTF, createTemplateVersionRequest{})
	if got, _ := pollVersion(t, w, v.ID); got.Job.Status != statusSucceeded {
		t.Fatalf("import: %s %s", got.Job.Status, got.Job.Error)
	}
	var tpl templateJSON
	expect(t, w.s, "POST", "/api/v2/organizations/default/templates", w.token, createTemplateRequest{Name: "kubernetes-eks", VersionID: v.ID}, http.StatusCreated, &tpl)
	return tpl.ID
}

func getWorkspace(t *testing.T, w *world, id string) workspaceJSON {
	t.Helper()
	var ws workspaceJSON
	expect(t, w.s, "GET", "/api/v2/workspaces/"+id, w.token, nil, http.StatusOK, &ws)
	return ws
}

// until polls the workspace until done says so; the test's context bounds
// it. It returns the last workspace and the build statuses seen.
func until(t *testing.T, w *world, id string, done func(workspaceJSON) bool) (workspaceJSON, []string) {
	t.Helper()
	var last workspaceJSON
	var seen []string
	err := wait.PollUntilContextCancel(w.ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		last = getWorkspace(t, w, id)
		if s := last.LatestBuild.Status; len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return done(last), nil
	})
	if err != nil {
		t.Fatalf("workspace %s: %v; build statuses %v, last %+v", id, err, seen, last.LatestBuild)
	}
	return last, seen
}

func agents(ws workspaceJSON) []workspaceAgentJSON {
	var out []workspaceAgentJSON
	for _, r := range ws.LatestBuild.Resources {
		out = append(out, r.Agents...)
	}
	return out
}

func agentStatus(ws workspaceJSON) string {
	a := agents(ws)
	if len(a) != 1 {
		return ""
	}
	return a[0].Status
}

func buildDone(ws workspaceJSON) bool {
	return ws.LatestBuild.Job.Status == statusSucceeded || ws.LatestBuild.Job.Status == statusFailed
}

func newBuildOf(t *testing.T, w *world, wsID, transition string) workspaceBuildJSON {
	t.Helper()
	var b workspaceBuildJSON
	expect(t, w.s, "POST", "/api/v2/workspaces/"+wsID+"/builds", w.token, createWorkspaceBuildRequest{Transition: transition}, http.StatusCreated, &b)
	return b
}

// TestWorkspaceLifecycleOnTheCluster builds a workspace from the shipped
// template on the real control plane: its claim and Deployment appear,
// the agent connects once the pod runs on the workspace node with its
// claim bound; a stop removes the Deployment and keeps the home; a delete
// removes both and the workspace.
func TestWorkspaceLifecycleOnTheCluster(t *testing.T) {
	w := newWorld(t, nil)
	node := workspaceNode(t, w)
	class := defaultClass(t, w)
	volume(t, w, class)
	tplID := templateFrom(t, w, shippedMainTF(t, w.ns))

	var ws workspaceJSON
	expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{TemplateID: tplID, Name: "smoke"}, http.StatusCreated, &ws)
	if ws.LatestBuild.Transition != transitionStart || ws.LatestBuild.BuildNumber != 1 || ws.LatestBuild.Status != "pending" {
		t.Errorf("first build %+v, want start #1 pending", ws.LatestBuild)
	}
	expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{TemplateID: tplID, Name: "smoke"}, http.StatusConflict, nil)

	ws, seen := until(t, w, ws.ID, func(ws workspaceJSON) bool { return agentStatus(ws) == "connected" })
	if seen[len(seen)-1] != "running" || ws.LatestBuild.Job.Status != statusSucceeded {
		t.Errorf("build statuses %v, job %s, want ending running/succeeded", seen, ws.LatestBuild.Job.Status)
	}
	a := agents(ws)[0]
	if a.LifecycleState != "ready" || a.FirstConnectedAt == nil || a.Name != "main" || a.OperatingSystem != "linux" || !ws.Health.Healthy {
		t.Errorf("agent %+v, workspace health %+v", a, ws.Health)
	}
	types := map[string]bool{}
	for _, r := range ws.LatestBuild.Resources {
		types[r.Type+"."+r.Name] = true
	}
	if !types["kubernetes_deployment_v1.main"] || !types["kubernetes_persistent_volume_claim_v1.home"] {
		t.Errorf("resources %v", types)
	}

	dep, err := w.kube.AppsV1().Deployments(w.ns).Get(w.ctx, "coder-"+ws.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	podSpec := dep.Spec.Template.Spec
	if podSpec.NodeSelector["coder/node-type"] != "workspace" || len(podSpec.Tolerations) != 1 || podSpec.Tolerations[0].Key != "coder/node-type" ||
		dep.Spec.Template.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] != "false" {
		t.Errorf("deployment pod template: selector %v tolerations %v annotations %v", podSpec.NodeSelector, podSpec.Tolerations, dep.Spec.Template.Annotations)
	}
	pods, err := w.kube.CoreV1().Pods(w.ns).List(w.ctx, metav1.ListOptions{LabelSelector: "com.coder.workspace.id=" + ws.ID})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Spec.NodeName != node {
		t.Fatalf("workspace pods %v (err %v), want one on %s", pods, err, node)
	}
	pvc, err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Get(w.ctx, "coder-"+ws.ID+"-home", metav1.GetOptions{})
	if err != nil || pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != class {
		t.Fatalf("home claim %+v (err %v), want Bound on the default class %s", pvc, err, class)
	}

	var logs []provisionerJobLog
	expect(t, w.s, "GET", "/api/v2/workspacebuilds/"+ws.LatestBuild.ID+"/logs", w.token, nil, http.StatusOK, &logs)
	if text := logsText(logs); !strings.Contains(text, "kubernetes_deployment_v1.main[0]: Creation complete") {
		t.Errorf("build logs lack the deployment's creation:\n%s", text)
	}
	var newBuild response
	expect(t, w.s, "POST", "/api/v2/workspaces/"+ws.ID+"/builds", w.token, createWorkspaceBuildRequest{Transition: "restart"}, http.StatusBadRequest, &newBuild)

	stop := newBuildOf(t, w, ws.ID, transitionStop)
	expect(t, w.s, "POST", "/api/v2/workspaces/"+ws.ID+"/builds", w.token, createWorkspaceBuildRequest{Transition: transitionStart}, http.StatusConflict, nil)
	ws, _ = until(t, w, ws.ID, buildDone)
	if ws.LatestBuild.ID != stop.ID || ws.LatestBuild.Status != "stopped" || len(agents(ws)) != 0 {
		t.Errorf("after stop: build %s status %s agents %v", ws.LatestBuild.ID, ws.LatestBuild.Status, agents(ws))
	}
	if _, err := w.kube.AppsV1().Deployments(w.ns).Get(w.ctx, "coder-"+ws.ID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("deployment after stop: %v, want gone", err)
	}
	if _, err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Get(w.ctx, "coder-"+ws.ID+"-home", metav1.GetOptions{}); err != nil {
		t.Errorf("home claim after stop: %v, want kept", err)
	}

	// A new version with another CPU limit, promoted; the next start uses
	// it, comes back on the same home and connects a new agent.
	bigger := shippedParams(w.ns)
	bigger.CPULimit = "3"
	files, err := wstemplate.Render(bigger)
	if err != nil {
		t.Fatal(err)
	}
	v2 := pushVersion(t, w, string(files[wstemplate.MainFile]), createTemplateVersionRequest{TemplateID: tplID})
	pollVersion(t, w, v2.ID)
	expect(t, w.s, "PATCH", "/api/v2/templates/"+tplID+"/versions", w.token, updateActiveTemplateVersion{ID: v2.ID}, http.StatusOK, nil)
	if !getWorkspace(t, w, ws.ID).Outdated {
		t.Error("workspace on the old version is not outdated")
	}
	var restart workspaceBuildJSON
	expect(t, w.s, "POST", "/api/v2/workspaces/"+ws.ID+"/builds", w.token, createWorkspaceBuildRequest{Transition: transitionStart, TemplateVersionID: v2.ID}, http.StatusCreated, &restart)
	if restart.BuildNumber != 3 {
		t.Errorf("restart is build #%d, want #3", restart.BuildNumber)
	}
	ws, _ = until(t, w, ws.ID, func(ws workspaceJSON) bool { return agentStatus(ws) == "connected" })
	if got := agents(ws)[0].ID; got == a.ID {
		t.Error("the restarted workspace kept its old agent")
	}
	dep, err = w.kube.AppsV1().Deployments(w.ns).Get(w.ctx, "coder-"+ws.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Resources.Limits.Cpu().String(); got != "3" || ws.Outdated {
		t.Errorf("restarted with CPU limit %s (outdated %v), want 3 from the promoted version", got, ws.Outdated)
	}

	newBuildOf(t, w, ws.ID, transitionDelete)
	ws, _ = until(t, w, ws.ID, buildDone)
	if ws.LatestBuild.Status != "deleted" {
		t.Fatalf("after delete: %s %s", ws.LatestBuild.Status, ws.LatestBuild.Job.Error)
	}
	if _, err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Get(w.ctx, "coder-"+ws.ID+"-home", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("home claim after delete: %v, want gone", err)
	}
	expect(t, w.s, "GET", "/api/v2/users/me/workspace/smoke", w.token, nil, http.StatusNotFound, nil)
	var gone response
	expect(t, w.s, "POST", "/api/v2/workspaces/"+ws.ID+"/builds", w.token, createWorkspaceBuildRequest{Transition: transitionStart}, http.StatusConflict, &gone)
	if gone.Message != "Cannot start a deleted workspace!" {
		t.Errorf("start after delete: %q", gone.Message)
	}
}

var tolerationBlock = regexp.MustCompile(`(?s)\n\s*toleration \{.*?\}\n`)

// TestWorkspaceThatCannotRun: a template without the workspace group's
// toleration, or a home claim nothing binds, builds (the template does
// not wait for the rollout) but its agent never connects, and times out
// after the connection timeout on the double's clock; waiting for the
// rollout instead keeps the build running until the provider's timeout
// fails it.
func TestWorkspaceThatCannotRun(t *testing.T) {
	for _, tc := range []struct {
		name        string
		edit        func(tf, node string) string
		withVolume  bool
		noClass     bool   // the cluster has no default StorageClass
		pending     string // what the scheduler says; "" waits for the pod to run instead
		waitRollout bool
	}{
		{name: "no toleration", edit: func(s, _ string) string { return tolerationBlock.ReplaceAllString(s, "\n") }, withVolume: true, pending: "untolerated taint"},
		{name: "claim never bound", edit: func(s, _ string) string { return s }, pending: "unbound immediate PersistentVolumeClaims"},
		{name: "no default class", edit: func(s, _ string) string { return s }, noClass: true, pending: "unbound immediate PersistentVolumeClaims"},
		// Pinned to the node, the pod skips the scheduler and kwok runs it
		// with its claim still Pending: the agent needs its home too.
		{name: "running pod, claim not bound", edit: func(s, node string) string {
			return strings.Replace(s, "node_selector = local.node_selector", "node_selector = local.node_selector\n        node_name     = \""+node+"\"", 1)
		}},
		{name: "no toleration, waiting for rollout", edit: func(s, _ string) string {
			return strings.Replace(tolerationBlock.ReplaceAllString(s, "\n"), "wait_for_rollout = false", "wait_for_rollout = true", 1)
		}, withVolume: true, pending: "untolerated taint", waitRollout: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil)
			node := workspaceNode(t, w)
			if !tc.noClass {
				class := defaultClass(t, w)
				if tc.withVolume {
					volume(t, w, class)
				}
			}
			mainTF := tc.edit(shippedMainTF(t, w.ns), node)
			if mainTF == shippedMainTF(t, w.ns) && tc.withVolume {
				t.Fatal("the edit changed nothing")
			}
			tplID := templateFrom(t, w, mainTF)
			var ws workspaceJSON
			expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{TemplateID: tplID, Name: "stuck"}, http.StatusCreated, &ws)

			// Wait until the scheduler has said why the pod cannot run.
			err := wait.PollUntilContextCancel(w.ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				getWorkspace(t, w, ws.ID) // moves the build on
				pods, err := w.kube.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: "com.coder.workspace.id=" + ws.ID})
				if err != nil || len(pods.Items) != 1 {
					return false, nil //nolint:nilerr // not there yet
				}
				if tc.pending == "" {
					return pods.Items[0].Status.Phase == corev1.PodRunning, nil
				}
				for _, c := range pods.Items[0].Status.Conditions {
					if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, tc.pending) {
						return true, nil
					}
				}
				return false, nil
			})
			if err != nil {
				t.Fatalf("pod never reported %q (or ran, if empty): %v", tc.pending, err)
			}
			ws = getWorkspace(t, w, ws.ID)
			if tc.noClass {
				pvc, err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Get(w.ctx, "coder-"+ws.ID+"-home", metav1.GetOptions{})
				if err != nil || (pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName != "") {
					t.Fatalf("home claim %v (err %v), want one without a class", pvc.Spec.StorageClassName, err)
				}
			}
			if tc.waitRollout {
				if ws.LatestBuild.Job.Status != statusRunning || ws.LatestBuild.Status != "starting" {
					t.Fatalf("build waiting for the rollout: job %s status %s, want running/starting", ws.LatestBuild.Job.Status, ws.LatestBuild.Status)
				}
				w.s.Advance(11 * time.Minute)
				ws, _ = until(t, w, ws.ID, buildDone)
				if ws.LatestBuild.Job.Status != statusFailed || ws.LatestBuild.Status != "failed" || !strings.Contains(ws.LatestBuild.Job.Error, "Waiting for rollout to finish: 0 of 1 updated replicas are available") {
					t.Errorf("after the rollout timeout: %s %q", ws.LatestBuild.Job.Status, ws.LatestBuild.Job.Error)
				}
				return
			}
			if ws.LatestBuild.Job.Status != statusSucceeded || agentStatus(ws) != "connecting" || ws.Health.Healthy {
				t.Fatalf("build %s, agent %q, healthy %v; want succeeded, connecting, unhealthy", ws.LatestBuild.Job.Status, agentStatus(ws), ws.Health.Healthy)
			}
			w.s.Advance(agentConnectionTimeout + time.Second)
			if got := agentStatus(getWorkspace(t, w, ws.ID)); got != "timeout" {
				t.Errorf("agent after the connection timeout: %q, want timeout", got)
			}
		})
	}
}

// TestBuildRefusals: builds of a version whose import failed, or of an
// unknown workspace, are refused as coderd refuses them.
func TestBuildRefusals(t *testing.T) {
	w := newWorld(t, nil)
	tplID := templateFrom(t, w, shippedMainTF(t, w.ns))
	broken := pushVersion(t, w, "resource \"aws_instance\" \"x\" {}\n", createTemplateVersionRequest{TemplateID: tplID})
	pollVersion(t, w, broken.ID)
	// No daemon carries this tag: the import stays pending.
	importing := pushVersion(t, w, shippedMainTF(t, w.ns)+"\n# next\n", createTemplateVersionRequest{TemplateID: tplID, ProvisionerTags: map[string]string{"pool": "nowhere"}})

	var msg response
	expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{TemplateVersionID: broken.ID, Name: "x"}, http.StatusBadRequest, &msg)
	if !strings.Contains(msg.Message, "has failed to import") {
		t.Errorf("workspace of a failed version: %q", msg.Message)
	}
	expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{TemplateVersionID: importing.ID, Name: "x"}, http.StatusNotAcceptable, &msg)
	if !strings.Contains(msg.Message, "Wait for it to complete importing!") {
		t.Errorf("workspace of an importing version: %q", msg.Message)
	}
	expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{TemplateID: newID(), Name: "x"}, http.StatusBadRequest, nil)
	expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{TemplateID: tplID, Name: "bad_name"}, http.StatusBadRequest, nil)
	expect(t, w.s, "POST", "/api/v2/users/me/workspaces", w.token, createWorkspaceRequest{Name: "x"}, http.StatusBadRequest, nil)
	expect(t, w.s, "GET", "/api/v2/workspaces/"+newID(), w.token, nil, http.StatusNotFound, nil)
	expect(t, w.s, "GET", "/api/v2/workspacebuilds/"+newID(), w.token, nil, http.StatusNotFound, nil)
	expect(t, w.s, "POST", "/api/v2/workspaces/"+newID()+"/builds", w.token, createWorkspaceBuildRequest{Transition: transitionStop}, http.StatusNotFound, nil)

	// A member's workspace is theirs; another member cannot see it.
	var mine workspaceJSON
	expect(t, w.s, "POST", "/api/v2/organizations/default/members/me/workspaces", w.s.MemberToken(), createWorkspaceRequest{TemplateID: tplID, Name: "mine"}, http.StatusCreated, &mine)
	if mine.OwnerName != "member" {
		t.Errorf("member's workspace owner %q", mine.OwnerName)
	}
	expect(t, w.s, "POST", "/api/v2/users/admin/workspaces", w.s.MemberToken(), createWorkspaceRequest{TemplateID: tplID, Name: "theirs"}, http.StatusForbidden, nil)
	expect(t, w.s, "GET", "/api/v2/workspaces/"+mine.ID, w.token, nil, http.StatusOK, nil)
}
