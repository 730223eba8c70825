package coder

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/sizing"
)

// Check names of the checkpoint.
const (
	CheckPods         = "pods"
	CheckSecret       = "secret"
	CheckLoadBalancer = "load-balancer"
	CheckTLSListener  = "tls-listener"
	CheckHealthz      = "healthz"
	CheckVersion      = "version"
	CheckHA           = "high-availability"
	// CheckPublicServices: coder-lb is the only Service in the namespace
	// reachable from outside the cluster (decisions.md 6).
	CheckPublicServices = "public-services"
	// CheckEnv: coderd's container runs with coderctl's environment.
	CheckEnv = "coderd-env"
	// CheckDebugHealth: with a session token, coderd's own health report
	// (GET /api/v2/debug/health) and its failing sections by name.
	CheckDebugHealth = "coderd-health"
)

// PremiumHAMessage is what an unlicensed deployment with more than one
// coderd replica is told.
const PremiumHAMessage = "more than one coderd replica is a Coder Premium feature; without a license the replicas do not " +
	"coordinate (users may fail to reach workspaces through the other replica)"

// verify runs the checkpoint's independent groups of checks concurrently.
func (s *stage) verify(ctx context.Context) []engine.Check {
	return engine.Concurrently(ctx, s.checkPods, s.checkSecret, s.checkLoadBalancer, s.checkAPI, s.checkGuarantees)
}

// wantReplicas is the coderd Deployment's replica count, else the sizing's.
func (s *stage) wantReplicas(ctx context.Context, kc kubernetes.Interface) int {
	return helmx.DeploymentReplicas(ctx, kc, names.CoderNamespace, ChartName, s.sizing().Coderd.Replicas)
}

func (s *stage) checkPods(ctx context.Context) []engine.Check {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return []engine.Check{engine.Failf(CheckPods, "check --kubeconfig or that the EKS cluster exists", "cannot reach the cluster: %v", err)}
	}
	return []engine.Check{sizing.PodsOnNodes(ctx, kc, sizing.PodsSpec{Namespace: names.CoderNamespace,
		Check: CheckPods, What: "coderd", Selector: labels.SelectorFromSet(selectorLabels()).String(),
		Role: sizing.RoleCoderd, Want: s.wantReplicas(ctx, kc),
		Hint: "kubectl -n coder describe pods -l app.kubernetes.io/name=coder (Pending: coderd node group or taints; CrashLoop: database URL in coder-secrets)",
	})}
}

func (s *stage) checkSecret(ctx context.Context) []engine.Check {
	const hint = "the Secrets Store CSI driver syncs it only while a coderd pod mounts SecretProviderClass " + names.SecretProviderClass +
		": check the coderd pods' events for mount errors, and that the IRSA role SECRETS_ROLE_ARN may read coder/* secrets"
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return []engine.Check{engine.Failf(CheckSecret, hint, "cannot reach the cluster: %v", err)}
	}
	sec, err := kc.CoreV1().Secrets(names.CoderNamespace).Get(ctx, names.CoderSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return []engine.Check{engine.Failf(CheckSecret, hint, "Kubernetes secret %s/%s does not exist", names.CoderNamespace, names.CoderSecret)}
	case err != nil:
		return []engine.Check{engine.Failf(CheckSecret, hint, "cannot read secret %s/%s: %v", names.CoderNamespace, names.CoderSecret, err)}
	case len(sec.Data[names.SecretKeyDatabaseURL]) == 0:
		return []engine.Check{engine.Failf(CheckSecret, hint, "secret %s/%s has no %s key", names.CoderNamespace, names.CoderSecret, names.SecretKeyDatabaseURL)}
	}
	keys := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return []engine.Check{engine.Passf(CheckSecret, "secret %s/%s synced with keys %s", names.CoderNamespace, names.CoderSecret, strings.Join(keys, ", "))}
}

// checkLoadBalancer checks the Service's hostname and, in AWS, the NLB's
// TLS listener.
func (s *stage) checkLoadBalancer(ctx context.Context) []engine.Check {
	const lbHint = "the AWS cloud controller creates the NLB: `kubectl -n coder describe service coder-lb`; public subnets need kubernetes.io/role/elb=1"
	svc, err := serviceOf(ctx, s)
	switch {
	case err != nil:
		return []engine.Check{engine.Failf(CheckLoadBalancer, lbHint, "cannot read service %s/%s: %v", names.CoderNamespace, ServiceName, err)}
	case svc == nil:
		return []engine.Check{engine.Failf(CheckLoadBalancer, "run 'coderctl stage coder apply'", "service %s/%s does not exist", names.CoderNamespace, ServiceName)}
	case Hostname(svc) == "":
		return []engine.Check{engine.Failf(CheckLoadBalancer, lbHint, "service %s/%s has no load balancer hostname yet", names.CoderNamespace, ServiceName)}
	}
	host := Hostname(svc)
	checks := []engine.Check{engine.Passf(CheckLoadBalancer, "service %s/%s has load balancer %s", names.CoderNamespace, ServiceName, host)}
	return append(checks, s.checkListener(ctx, host))
}

func (s *stage) checkListener(ctx context.Context, host string) engine.Check {
	certARN := s.d.State.Get(names.KeyCertARN)
	if s.d.AWS == nil {
		return engine.Failf(CheckTLSListener, "run with AWS credentials", "no AWS clients to read the load balancer with")
	}
	lb, err := LoadBalancerByHostname(ctx, s.d.AWS.ELB, host)
	switch {
	case err != nil:
		return engine.Failf(CheckTLSListener, "check AWS credentials and region", "%v", err)
	case lb == nil:
		return engine.Failf(CheckTLSListener, "the Service status points at a load balancer that is gone: delete the Service and re-apply",
			"no load balancer %s in %s", host, s.d.Region())
	}
	found, hasCert, err := tlsListener(ctx, s.d.AWS.ELB, aws.ToString(lb.LoadBalancerArn), certARN)
	switch {
	case err != nil:
		return engine.Failf(CheckTLSListener, "check AWS credentials and region", "%v", err)
	case !found:
		return engine.Failf(CheckTLSListener, "check the service's ssl-cert and ssl-ports annotations", "load balancer %s has no TLS listener on 443", lbLabel(lb))
	case !hasCert:
		return engine.Failf(CheckTLSListener, "re-apply the coder stage so the service's ssl-cert annotation names CERT_ARN",
			"the TLS listener of %s does not use CERT_ARN %s", lbLabel(lb), certARN)
	}
	return engine.Passf(CheckTLSListener, "TLS listener on 443 of %s uses %s", aws.ToString(lb.LoadBalancerName), certARN)
}

// checkAPI calls coderd through CODER_URL: health, version and, with a
// session token, the license behind more than one replica.
func (s *stage) checkAPI(ctx context.Context) []engine.Check {
	url := s.d.Inputs.CoderURL()
	client, err := coderapi.ForInputs(s.d.Inputs, s.token())
	if err != nil {
		return []engine.Check{engine.Failf(CheckHealthz, "check CODER_URL and CODER_CA_FILE", "%v", err)}
	}
	h, err := client.Healthz(ctx)
	switch {
	case err != nil:
		return []engine.Check{engine.Failf(CheckHealthz, s.unreachableHint(err), "%v", err)}
	case !h.OK():
		return []engine.Check{engine.Failf(CheckHealthz, "see the coderd logs: kubectl -n coder logs -l app.kubernetes.io/name=coder",
			"GET %s/healthz answered %d %q, want 200 OK", url, h.StatusCode, h.Body)}
	}
	checks := []engine.Check{engine.Passf(CheckHealthz, "GET %s/healthz: 200 OK", url)}
	checks = append(checks, s.checkVersion(ctx, client))
	if client.HasToken() {
		checks = append(checks, checkDebugHealth(ctx, client))
	}
	return append(checks, s.checkHA(ctx, client))
}

// healthDocs explains each health code (EDB01, EPD01, ...), per
// health.Message.URL in coderd/healthcheck/health/model.go.
const healthDocs = "https://coder.com/docs/admin/monitoring/health-check"

// checkDebugHealth reads coderd's health report. Only owners may
// (coderd/coderd.go: /debug needs debug_info read), so other answers warn
// rather than fail: the deployment may be fine.
func checkDebugHealth(ctx context.Context, client *coderapi.Client) engine.Check {
	rep, err := client.DebugHealth(ctx)
	switch {
	case coderapi.IsForbidden(err) || coderapi.IsUnauthorized(err):
		return engine.Warnf(CheckDebugHealth, "export an owner's "+coderapi.EnvSessionToken+" to read it",
			"coderd's health report not read: the token may not read it (%v)", err)
	case err != nil:
		return engine.Warnf(CheckDebugHealth, "see the coderd logs: kubectl -n coder logs -l app.kubernetes.io/name=coder",
			"cannot read coderd's health report: %v", err)
	}
	return JudgeHealth(rep)
}

// JudgeHealth words the report's sections that are not ok, by their
// healthsdk names. A section at severity "error" fails the check and one
// at "warning" warns, except that a dismissed section, and the
// ProvisionerDaemons section, only warn: coderd here runs no built-in
// provisioners (CODER_PROVISIONER_DAEMONS=0), so until the provisioners
// stage connects its daemons that section is an error by design, and the
// provisioners stage's own daemons check judges them.
func JudgeHealth(rep coderapi.HealthReport) engine.Check {
	var failing, warning []string
	for _, sec := range rep.Sections() {
		level := sec.Level()
		if level == coderapi.SeverityOK {
			continue
		}
		line := fmt.Sprintf("%s %s", sec.Name, level)
		if sum := sec.Summary(); sum != "" {
			line += " (" + sum + ")"
		}
		switch {
		case sec.Dismissed:
			warning = append(warning, line+" [dismissed]")
		case level == coderapi.SeverityError && sec.Name != coderapi.SectionProvisionerDaemons:
			failing = append(failing, line)
		default:
			warning = append(warning, line)
		}
	}
	hint := "see " + healthDocs + " for each code; the dashboard's /health page shows the same report"
	switch {
	case len(failing) > 0:
		return engine.Failf(CheckDebugHealth, hint, "coderd's health report: %s", strings.Join(append(failing, warning...), "; "))
	case len(warning) > 0:
		return engine.Warnf(CheckDebugHealth, hint, "coderd's health report: %s", strings.Join(warning, "; "))
	}
	return engine.Passf(CheckDebugHealth, "coderd's health report: every section ok")
}

func (s *stage) checkVersion(ctx context.Context, client *coderapi.Client) engine.Check {
	want := s.d.Inputs.CoderVersion()
	bi, err := client.BuildInfo(ctx)
	switch {
	case err != nil:
		return engine.Failf(CheckVersion, "see the coderd logs", "GET /api/v2/buildinfo: %v", err)
	case bi.SemVer() != want:
		return engine.Failf(CheckVersion, "re-apply the coder stage; if CODER_VALUES_FILE sets coder.image.tag, make it match CODER_VERSION",
			"coderd reports %s, CODER_VERSION is %s", bi.Version, want)
	}
	// The API answers from one replica: during (or after a stalled) rollout
	// the others may still run the old image.
	if kc, _, err := s.d.KubeClient(ctx); err == nil {
		if stale := podsNotOn(ctx, kc, "v"+want); len(stale) > 0 {
			return engine.Failf(CheckVersion, "the rollout has not finished: kubectl -n coder rollout status deployment/"+DeploymentName+
				"; re-apply the coder stage", "coderd reports %s but pods still run another image: %s", bi.Version, strings.Join(stale, ", "))
		}
	}
	return engine.Passf(CheckVersion, "coderd reports %s", bi.Version)
}

// podsNotOn lists the running coderd pods whose image tag is not tag, as
// "pod (image)".
func podsNotOn(ctx context.Context, kc kubernetes.Interface, tag string) []string {
	pods, err := kc.CoreV1().Pods(names.CoderNamespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selectorLabels()).String()})
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || len(p.Spec.Containers) == 0 {
			continue
		}
		image := p.Spec.Containers[0].Image
		if !strings.HasSuffix(image, ":"+tag) {
			out = append(out, fmt.Sprintf("%s (%s)", p.Name, image))
		}
	}
	sort.Strings(out)
	return out
}

// checkHA says plainly when replicas need a license the deployment lacks.
func (s *stage) checkHA(ctx context.Context, client *coderapi.Client) engine.Check {
	replicas := s.sizing().Coderd.Replicas
	if kc, _, err := s.d.KubeClient(ctx); err == nil {
		replicas = s.wantReplicas(ctx, kc)
	}
	if replicas <= 1 {
		return engine.Passf(CheckHA, "one coderd replica: no license needed")
	}
	if !client.HasToken() {
		return engine.Warnf(CheckHA, "export "+coderapi.EnvSessionToken+" (an owner's token: coder login, then coder tokens create) to check the license",
			"%d coderd replicas; the license could not be checked without a session token (more than one replica is a Coder Premium feature)", replicas)
	}
	ent, err := client.Entitlements(ctx)
	if err != nil {
		return engine.Warnf(CheckHA, "check that "+coderapi.EnvSessionToken+" is a valid owner token", "cannot read entitlements: %v", err)
	}
	if !ent.HasLicense || !ent.Entitled(coderapi.FeatureHighAvailability) {
		return engine.Warnf(CheckHA, "add a Premium license (coder licenses add), or set coder.replicaCount: 1 in CODER_VALUES_FILE",
			"%s; this deployment runs %d replicas", PremiumHAMessage, replicas)
	}
	return engine.Passf(CheckHA, "%d coderd replicas, high availability licensed", replicas)
}

// restoreHint undoes a hand edit of the release's objects: coderctl
// upgrades the release only when its values change, so re-applying alone
// would leave the edit in place.
const restoreHint = "re-apply the coder stage if its inputs changed; a hand edit is undone by re-applying the release's manifests: " +
	"helm -n " + names.CoderNamespace + " get manifest " + ReleaseName + " | kubectl apply -f -"

// checkGuarantees checks the live objects, not only the release's values,
// so that a hand edit after apply is caught too.
func (s *stage) checkGuarantees(ctx context.Context) []engine.Check {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		hint := "check --kubeconfig or that the EKS cluster exists"
		return []engine.Check{
			engine.Failf(CheckPublicServices, hint, "cannot reach the cluster: %v", err),
			engine.Failf(CheckEnv, hint, "cannot reach the cluster: %v", err),
		}
	}
	return []engine.Check{s.checkPublicServices(ctx, kc), s.checkEnv(ctx, kc)}
}

func (s *stage) checkPublicServices(ctx context.Context, kc kubernetes.Interface) engine.Check {
	list, err := kc.CoreV1().Services(names.CoderNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return engine.Failf(CheckPublicServices, "check the cluster's API server", "cannot list services in %s: %v", names.CoderNamespace, err)
	}
	exposed := PublicServices(list.Items)
	if len(exposed) == 0 {
		return engine.Passf(CheckPublicServices, "only %s/%s is reachable from outside the cluster", names.CoderNamespace, ServiceName)
	}
	return engine.Failf(CheckPublicServices,
		"the public entry is "+ServiceName+" alone, TLS on 443 (decisions.md 6): remove coder.service.* overrides from "+KeyValuesFile+
			" and "+restoreHint+"; delete any other: kubectl -n "+names.CoderNamespace+" delete service NAME",
		"service(s) reachable from outside the cluster besides %s: %s", ServiceName, strings.Join(exposed, ", "))
}

// PublicServices names the Services other than coder-lb that take traffic
// from outside the cluster (a LoadBalancer or NodePort type, or external
// IPs), each with how.
func PublicServices(services []corev1.Service) []string {
	var out []string
	for _, svc := range services {
		if svc.Name == ServiceName {
			continue
		}
		switch {
		case svc.Spec.Type == corev1.ServiceTypeLoadBalancer || svc.Spec.Type == corev1.ServiceTypeNodePort:
			out = append(out, fmt.Sprintf("%s (%s)", svc.Name, svc.Spec.Type))
		case len(svc.Spec.ExternalIPs) > 0:
			out = append(out, fmt.Sprintf("%s (externalIPs %s)", svc.Name, strings.Join(svc.Spec.ExternalIPs, ",")))
		}
	}
	sort.Strings(out)
	return out
}

func (s *stage) checkEnv(ctx context.Context, kc kubernetes.Interface) engine.Check {
	dep, err := kc.AppsV1().Deployments(names.CoderNamespace).Get(ctx, ChartName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return engine.Failf(CheckEnv, "run 'coderctl stage coder apply'", "deployment %s/%s does not exist", names.CoderNamespace, ChartName)
	case err != nil:
		return engine.Failf(CheckEnv, "check the cluster's API server", "cannot read deployment %s/%s: %v", names.CoderNamespace, ChartName, err)
	}
	var live []corev1.EnvVar
	found := false
	for _, c := range dep.Spec.Template.Spec.Containers {
		if c.Name == ChartName {
			live, found = c.Env, true
		}
	}
	if !found {
		return engine.Failf(CheckEnv, restoreHint, "deployment %s/%s has no container %q", names.CoderNamespace, ChartName, ChartName)
	}
	want := s.env()
	if problems := EnvDrift(live, want); len(problems) > 0 {
		return engine.Failf(CheckEnv, restoreHint, "coderd's environment is not coderctl's: %s", strings.Join(problems, "; "))
	}
	return engine.Passf(CheckEnv, "coderd runs with the %d variables coderctl sets", len(want))
}

// EnvDrift compares a container's environment with the variables coderctl
// requires and words each difference. Where a name repeats, Kubernetes
// uses the last one, and so does this. A variable coderctl reads from a
// secret is never quoted when it has been replaced by a literal: the
// literal is likely the secret itself (a database password).
func EnvDrift(live, want []corev1.EnvVar) []string {
	effective := map[string]corev1.EnvVar{}
	for _, e := range live {
		effective[e.Name] = e
	}
	var out []string
	for _, w := range want {
		got, ok := effective[w.Name]
		switch {
		case !ok:
			out = append(out, w.Name+" is missing")
		case !equality.Semantic.DeepEqual(got, w):
			out = append(out, fmt.Sprintf("%s is %s, want %s", w.Name, envSource(got, w.ValueFrom != nil), envSource(w, false)))
		}
	}
	return out
}

// envSource words where a variable's value comes from; secretish hides a
// literal value.
func envSource(e corev1.EnvVar, secretish bool) string {
	switch {
	case e.ValueFrom == nil && secretish:
		return "set to a literal value"
	case e.ValueFrom == nil:
		return fmt.Sprintf("%q", e.Value)
	case e.ValueFrom.SecretKeyRef != nil:
		ref := e.ValueFrom.SecretKeyRef
		optional := ""
		if ref.Optional != nil && *ref.Optional {
			optional = " (optional)"
		}
		return fmt.Sprintf("from secret %s key %s%s", ref.Name, ref.Key, optional)
	default:
		return "read from another source"
	}
}
