package coder_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/coder"
	"github.com/coderctl/coderctl/stages/coder/codertest"
)

// TestOwnedPathsAreChartKeys: every key coderctl owns is one the chart
// takes (or lies in one of its free-form maps), so a typo cannot make a
// guard that guards nothing.
func TestOwnedPathsAreChartKeys(t *testing.T) {
	chartrepo.Require(t).RequireChartKeys(t, coder.ChartName, coder.Owned().Paths())
}

func writeValues(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestValuesFileGuards: the validator refuses a CODER_VALUES_FILE that
// undoes an owned key, naming the file, the input and the YAML path,
// before any AWS call; a file that only adds to coderctl's lists passes.
func TestValuesFileGuards(t *testing.T) {
	repo := chartrepo.Require(t).URL
	cases := []struct {
		name, values string
		state        map[string]string
		refused      string // "" means accepted; else the YAML path named
	}{
		{name: "public load balancer", values: "coder:\n  service:\n    type: LoadBalancer\n", refused: "coder.service.type"},
		{name: "node ports", values: "coder: {service: {type: NodePort}}", refused: "coder.service.type"},
		{name: "chart service off", values: "coder: {service: {enable: false}}", refused: "coder.service.enable"},
		{name: "service account renamed", values: "coder: {serviceAccount: {name: coderd}}", refused: "coder.serviceAccount.name"},
		{name: "service account not created", values: "coder: {serviceAccount: {disableCreate: true}}", refused: "coder.serviceAccount.disableCreate"},
		{name: "IRSA annotation, even the recorded ARN", state: map[string]string{"SECRETS_ROLE_ARN": codertest.RoleARN},
			values:  "coder: {serviceAccount: {annotations: {eks.amazonaws.com/role-arn: \"" + codertest.RoleARN + "\"}}}",
			refused: `coder.serviceAccount.annotations["eks.amazonaws.com/role-arn"]`},
		{name: "coderd terminating TLS", values: "coder: {tls: {secretNames: [tls]}}", refused: "coder.tls.secretNames"},
		{name: "env replaced by a mapping", values: "coder: {env: {A: b}}", refused: "coder.env"},
		{name: "http port moved", values: "coder: {env: [{name: CODER_HTTP_ADDRESS, value: \"0.0.0.0:3000\"}]}", refused: "coder.env"},
		{name: "placement moved", values: "coder: {nodeSelector: {coder/node-type: workspace}}", refused: `coder.nodeSelector["coder/node-type"]`},
		{name: "coder mapping dropped", values: "coder: null\n", refused: "coder"},
		{name: "extra env, coderctl's names, volumes, tolerations, replicas", values: `coder:
  replicaCount: 1
  env:
    - {name: CODER_ACCESS_URL, value: "http://elsewhere"}
    - {name: CODER_TELEMETRY_ENABLE, value: "false"}
  volumes: [{name: cache, emptyDir: {}}]
  volumeMounts: [{name: cache, mountPath: /cache}]
  tolerations: [{key: dedicated, operator: Exists}]
  nodeSelector: {disk: ssd}
  service: {type: ClusterIP, annotations: {team: platform}}
  tls: {secretNames: []}
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeValues(t, tc.values)
			inputs := stagetest.DefaultInputs()
			inputs["CODER_CHART_REPO"] = repo
			inputs[coder.KeyValuesFile] = file
			for k, v := range tc.state {
				inputs[k] = v
			}
			env := stagetest.New(t, inputs)
			err := coder.New(env.Deps.With(deploy.StageOptions{HelmCacheDir: t.TempDir()})).Validate(context.Background())
			if calls := slices.Concat(env.Calls.Mutations(), env.Calls.Reads()); len(calls) != 0 {
				t.Errorf("validation called AWS: %v", calls)
			}
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want the file accepted", err)
				}
				return
			}
			if fault.ExitCode(err) != fault.ExitInput {
				t.Fatalf("Validate() = %v, want bad input (exit 2)", err)
			}
			for _, want := range []string{file + ": ", coder.KeyValuesFile + " " + tc.refused + ": "} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

// TestValuesFileMergedAndVerified runs the stage with a values file that
// sets its own coder.env, against the real API server: coderctl's variables
// are kept and it says so, the user's are added, and the checkpoint then
// catches hand edits of the Deployment's env and a second public Service.
func TestValuesFileMergedAndVerified(t *testing.T) {
	file := writeValues(t, "coder:\n  env:\n    - {name: CODER_ACCESS_URL, value: \"http://coder.internal\"}\n"+
		"    - {name: CODER_SECURE_AUTH_COOKIE, value: \"true\"}\n    - {name: TEAM_GREETING, value: hello}\n")
	w := codertest.New(t, codertest.Options{Licensed: true, Inputs: map[string]string{coder.KeyValuesFile: file}})
	token := w.Coder.Token()
	const note = "CODER_VALUES_FILE sets coder.env CODER_ACCESS_URL: coderctl's value is kept"

	sum, _, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModePlan, coder.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(actions(sum, coder.Name), engine.Action{Kind: engine.Nothing, Resource: coder.KeyValuesFile, Reason: "warning: " + note}) {
		t.Errorf("plan %+v does not say coderctl's CODER_ACCESS_URL is kept", actions(sum, coder.Name))
	}
	sum, events, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModeApply, coder.Name)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, eventLog(events))
	}
	if notices := noticesAbout(events, coder.KeyValuesFile); !slices.Equal(notices, []string{note}) {
		t.Errorf("apply notices about %s: %q, want only %q", coder.KeyValuesFile, notices, note)
	}
	checks := checksByName(sum.Stages[len(sum.Stages)-1].Checks)
	for _, name := range []string{coder.CheckEnv, coder.CheckPublicServices} {
		if checks[name].Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, checks[name])
		}
	}
	t.Run("release env is coderctl's plus the file's", func(t *testing.T) { assertMergedEnv(t, w) })
	t.Run("hand-edited env fails verify", func(t *testing.T) { handEditedEnv(t, w, token) })
	t.Run("a second public service fails verify", func(t *testing.T) { extraPublicServices(t, w, token) })
}

func noticesAbout(events []engine.Event, key string) []string {
	var out []string
	for _, e := range events {
		if e.Type == engine.EventNotice && strings.Contains(e.Message, key) {
			out = append(out, e.Message)
		}
	}
	return out
}

func assertMergedEnv(t *testing.T, w *codertest.World) {
	rel, err := helmClient(t, w).Status(context.Background(), coder.ReleaseName, names.CoderNamespace)
	if err != nil || rel == nil {
		t.Fatalf("release status: %v, %v", rel, err)
	}
	raw, _ := json.Marshal(rel.Config["coder"].(map[string]any)["env"])
	var env []corev1.EnvVar
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]corev1.EnvVar{}
	for _, e := range env {
		names = append(names, e.Name)
		byName[e.Name] = e
	}
	if names[len(names)-1] != "TEAM_GREETING" || slices.Index(names, "CODER_ACCESS_URL") != 0 {
		t.Errorf("env names %v, want coderctl's first and the file's TEAM_GREETING last", names)
	}
	if got := byName["CODER_ACCESS_URL"].Value; got != w.Coder.URL() {
		t.Errorf("CODER_ACCESS_URL = %q, want coderctl's %q", got, w.Coder.URL())
	}
	if byName["CODER_PG_CONNECTION_URL"].ValueFrom == nil || byName["CODER_PROVISIONER_DAEMONS"].Value != "0" {
		t.Errorf("coderctl's variables lost: %+v", env)
	}
}

// editDeployment changes the coderd container's env and returns a func
// that puts the original back.
func editDeployment(t *testing.T, w *codertest.World, edit func([]corev1.EnvVar) []corev1.EnvVar) func() {
	t.Helper()
	ctx := context.Background()
	deployments := w.Kube.AppsV1().Deployments(names.CoderNamespace)
	dep, err := deployments.Get(ctx, coder.ChartName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	original := slices.Clone(coderContainer(t, dep).Env)
	setDeploymentEnv(t, w, func(env []corev1.EnvVar) []corev1.EnvVar { return edit(env) })
	return func() {
		setDeploymentEnv(t, w, func([]corev1.EnvVar) []corev1.EnvVar { return original })
	}
}

// setDeploymentEnv updates the coderd container's env, retrying while the
// controller-manager updates the Deployment too.
func setDeploymentEnv(t *testing.T, w *codertest.World, edit func([]corev1.EnvVar) []corev1.EnvVar) {
	t.Helper()
	ctx := context.Background()
	deployments := w.Kube.AppsV1().Deployments(names.CoderNamespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep, err := deployments.Get(ctx, coder.ChartName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := coderContainer(t, dep)
		c.Env = edit(slices.Clone(c.Env))
		_, err = deployments.Update(ctx, dep, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func coderContainer(t *testing.T, dep *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i := range dep.Spec.Template.Spec.Containers {
		if c := &dep.Spec.Template.Spec.Containers[i]; c.Name == coder.ChartName {
			return c
		}
	}
	t.Fatalf("deployment %s has no container %s", dep.Name, coder.ChartName)
	return nil
}

func setEnv(name, value string) func([]corev1.EnvVar) []corev1.EnvVar {
	return func(env []corev1.EnvVar) []corev1.EnvVar {
		for i := range env {
			if env[i].Name == name {
				env[i] = corev1.EnvVar{Name: name, Value: value}
			}
		}
		return env
	}
}

func handEditedEnv(t *testing.T, w *codertest.World, token string) {
	const leaked = "postgres://coder:hunter2@db:5432/coder"
	cases := []struct {
		name string
		edit func([]corev1.EnvVar) []corev1.EnvVar
		want string
	}{
		{"cookie no longer secure", setEnv("CODER_SECURE_AUTH_COOKIE", "false"), `CODER_SECURE_AUTH_COOKIE is "false", want "true"`},
		{"built-in provisioners turned on", setEnv("CODER_PROVISIONER_DAEMONS", "3"), `CODER_PROVISIONER_DAEMONS is "3", want "0"`},
		{"wildcard URL removed", func(env []corev1.EnvVar) []corev1.EnvVar {
			return slices.DeleteFunc(env, func(e corev1.EnvVar) bool { return e.Name == "CODER_WILDCARD_ACCESS_URL" })
		}, "CODER_WILDCARD_ACCESS_URL is missing"},
		{"a later duplicate wins in Kubernetes", func(env []corev1.EnvVar) []corev1.EnvVar {
			return append(env, corev1.EnvVar{Name: "CODER_ACCESS_URL", Value: "http://plain"})
		}, `CODER_ACCESS_URL is "http://plain"`},
		{"database URL pasted in", setEnv("CODER_PG_CONNECTION_URL", leaked),
			"CODER_PG_CONNECTION_URL is set to a literal value, want from secret coder-secrets key database-url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			restore := editDeployment(t, w, tc.edit)
			c := checksByName(newStage(w, token).Verify(context.Background()))[coder.CheckEnv]
			if c.Status != engine.Fail || !strings.Contains(c.Reason, tc.want) || !strings.Contains(c.Hint, "get manifest") {
				t.Errorf("check %s = %+v, want a failure saying %q with a restoring hint", coder.CheckEnv, c, tc.want)
			}
			if strings.Contains(c.Reason+c.Hint, "hunter2") {
				t.Errorf("check %s quotes the literal database URL: %+v", coder.CheckEnv, c)
			}
			restore()
			if c := checksByName(newStage(w, token).Verify(context.Background()))[coder.CheckEnv]; c.Status != engine.Pass {
				t.Errorf("after restoring the env: %+v", c)
			}
		})
	}
}

func extraPublicServices(t *testing.T, w *codertest.World, token string) {
	ctx := context.Background()
	services := w.Kube.CoreV1().Services(names.CoderNamespace)
	selector := map[string]string{"app.kubernetes.io/name": "coder"}
	port := []corev1.ServicePort{{Name: "http", Port: 80}}
	cases := []struct {
		name string
		svc  corev1.ServiceSpec
		want string
	}{
		{"load balancer on port 80", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: selector, Ports: port}, "plain-lb (LoadBalancer)"},
		{"node port", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: selector, Ports: port}, "plain-lb (NodePort)"},
		{"external IP", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector, Ports: port, ExternalIPs: []string{"203.0.113.7"}},
			"plain-lb (externalIPs 203.0.113.7)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "plain-lb", Namespace: names.CoderNamespace}, Spec: tc.svc}
			if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			c := checksByName(newStage(w, token).Verify(ctx))[coder.CheckPublicServices]
			if c.Status != engine.Fail || !strings.Contains(c.Reason, tc.want) || strings.Contains(c.Reason, coder.ServiceName+" (") {
				t.Errorf("check %s = %+v, want a failure naming %q and not coder-lb", coder.CheckPublicServices, c, tc.want)
			}
			deleteService(t, w, "plain-lb")
		})
	}
	t.Run("the chart's own service edited by hand", func(t *testing.T) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			chartSvc, err := services.Get(ctx, coder.ChartName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			chartSvc.Spec.Type = corev1.ServiceTypeNodePort
			_, err = services.Update(ctx, chartSvc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c := checksByName(newStage(w, token).Verify(ctx))[coder.CheckPublicServices]
		if c.Status != engine.Fail || !strings.Contains(c.Reason, "coder (NodePort)") {
			t.Errorf("check %s = %+v, want a failure naming the chart's service", coder.CheckPublicServices, c)
		}
	})
}

// deleteService deletes a Service and waits until it is gone (the load
// balancer controller double may hold a finalizer for a moment).
func deleteService(t *testing.T, w *codertest.World, name string) {
	t.Helper()
	ctx := context.Background()
	if err := w.Kube.CoreV1().Services(names.CoderNamespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		if _, err := w.Kube.CoreV1().Services(names.CoderNamespace).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("service %s not deleted", name)
}
