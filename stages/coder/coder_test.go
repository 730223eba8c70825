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

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/coder"
	"github.com/coderctl/coderctl/stages/coder/codertest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStage(w *codertest.World, token string) engine.Stage {
	return coder.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(token)}))
}

func checksByName(checks []engine.Check) map[string]engine.Check {
	out := map[string]engine.Check{}
	for _, c := range checks {
		out[c.Name] = c
	}
	return out
}

func actions(sum *engine.Summary, stage string) []engine.Action {
	for _, s := range sum.Stages {
		if s.Stage == stage {
			return s.Actions
		}
	}
	return nil
}

// TestLifecycle is one deployment's life: plan, apply, verify, re-apply
// with nothing to do, breakage that verify names, destroy.
func TestLifecycle(t *testing.T) {
	w := codertest.New(t, codertest.Options{Licensed: true, HostedZone: true, CSISync: true})
	ctx := context.Background()
	token := w.Coder.Token()

	sum, _, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModePlan, coder.Name)
	if err != nil {
		t.Fatalf("plan on empty: %v", err)
	}
	kinds := map[string]engine.ActionKind{}
	for _, a := range actions(sum, coder.Name) {
		kinds[a.Resource] = a.Kind
	}
	if kinds["helm release coder/coder"] != engine.Create || kinds["service coder/coder-lb (NLB)"] != engine.Create {
		t.Errorf("plan on empty = %v, want release and service created", kinds)
	}

	start := time.Now()
	sum, events, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModeApply, coder.Name)
	if err != nil {
		t.Fatalf("apply: %v\nevents: %s", err, eventLog(events))
	}
	t.Logf("apply took %s", time.Since(start).Round(time.Millisecond))
	checks := checksByName(sum.Stages[len(sum.Stages)-1].Checks)
	for _, name := range []string{coder.CheckPods, coder.CheckSecret, coder.CheckLoadBalancer, coder.CheckTLSListener,
		coder.CheckHealthz, coder.CheckVersion, coder.CheckHA} {
		if checks[name].Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, checks[name])
		}
	}

	t.Run("release values", func(t *testing.T) { assertRelease(t, w, 1) })
	t.Run("coder-secrets synced through the CSI mount", func(t *testing.T) {
		sec, err := w.Kube.CoreV1().Secrets(names.CoderNamespace).Get(ctx, names.CoderSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(sec.Data["database-url"]) != codertest.DatabaseURL || len(sec.OwnerReferences) == 0 {
			t.Errorf("secret %s: database-url %d bytes, owners %v; want synced from Secrets Manager for the mounting pods",
				names.CoderSecret, len(sec.Data["database-url"]), sec.OwnerReferences)
		}
	})
	t.Run("pods on coderd nodes", func(t *testing.T) { assertPodsOn(t, w, "app.kubernetes.io/name=coder", "coderd", 2) })
	host := assertService(t, w)
	t.Run("NLB TLS listener", func(t *testing.T) { assertTLSListener(t, w, host) })
	t.Run("alias records", func(t *testing.T) { assertAliases(t, w, host) })
	if got := w.Deps.State.Get(names.KeyNLBHostname); got != host {
		t.Errorf("NLB_HOSTNAME = %q, want %q", got, host)
	}
	if got := w.Deps.State.Get(config.KeyCoderURL); got != w.Coder.URL() {
		t.Errorf("CODER_URL = %q, want the user's %q left as it is", got, w.Coder.URL())
	}

	// A new process finds everything in place: no AWS mutation, no new
	// helm revision, a plan of nothing.
	w.Reload(t)
	w.Calls.Reset()
	if _, events, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModeApply, coder.Name); err != nil {
		t.Fatalf("re-apply: %v\n%s", err, eventLog(events))
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("re-apply made mutating AWS calls: %v", m)
	}
	assertRelease(t, w, 1)

	// A lost state file: the outputs are found again, nothing is created.
	if err := w.Deps.State.Unset(names.KeyNLBHostname); err != nil {
		t.Fatal(err)
	}
	w.Reload(t)
	w.Calls.Reset()
	if _, events, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModeApply, coder.Name); err != nil {
		t.Fatalf("adopting apply: %v\n%s", err, eventLog(events))
	}
	if got := w.Deps.State.Get(names.KeyNLBHostname); got != host {
		t.Errorf("adopting apply recorded NLB_HOSTNAME %q, want %q", got, host)
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("adopting apply made mutating AWS calls: %v", m)
	}

	sum, _, err = w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModePlan, coder.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range actions(sum, coder.Name) {
		if a.Kind != engine.Nothing {
			t.Errorf("plan after apply: %+v, want nothing", a)
		}
	}

	t.Run("verify names what broke, apply repairs it", func(t *testing.T) {
		other := w.RequestCertificate(t, "other.example.com")
		svc, err := w.Kube.CoreV1().Services(names.CoderNamespace).Get(ctx, coder.ServiceName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Annotations[coder.AnnSSLCert] = other
		if _, err := w.Kube.CoreV1().Services(names.CoderNamespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitListenerCert(t, w, host, other)
		c := checksByName(newStage(w, token).Verify(ctx))[coder.CheckTLSListener]
		if c.Status != engine.Fail || !strings.Contains(c.Reason, "does not use CERT_ARN") {
			t.Errorf("tls-listener check after the certificate changed = %+v", c)
		}
		if _, events, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModeApply, coder.Name); err != nil {
			t.Fatalf("repairing apply: %v\n%s", err, eventLog(events))
		}
		waitListenerCert(t, w, host, w.CertARN)
		if c := checksByName(newStage(w, token).Verify(ctx))[coder.CheckTLSListener]; c.Status != engine.Pass {
			t.Errorf("tls-listener after the repairing apply = %+v", c)
		}
	})

	t.Run("unlicensed replicas warn plainly", func(t *testing.T) {
		w.Coder.SetLicensed(false)
		defer w.Coder.SetLicensed(true)
		c := checksByName(newStage(w, token).Verify(ctx))[coder.CheckHA]
		if c.Status != engine.Warn || !strings.Contains(c.Reason, "more than one coderd replica is a Coder Premium feature; without a license") {
			t.Errorf("HA check unlicensed = %+v", c)
		}
		c = checksByName(newStage(w, "").Verify(ctx))[coder.CheckHA]
		if c.Status != engine.Warn || !strings.Contains(c.Hint, "CODER_SESSION_TOKEN") {
			t.Errorf("HA check without a token = %+v, want a warning asking for the token", c)
		}
	})

	start = time.Now()
	if _, events, err := w.Run(t, []engine.Stage{newStage(w, token)}, engine.ModeDestroy, coder.Name); err != nil {
		t.Fatalf("destroy: %v\n%s", err, eventLog(events))
	}
	t.Logf("destroy took %s", time.Since(start).Round(time.Millisecond))
	assertDestroyed(t, w, host)
}

// waitListenerCert waits until the load balancer controller has put cert
// on the NLB's TLS listener.
func waitListenerCert(t *testing.T, w *codertest.World, host, cert string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if lb := loadBalancer(t, w, host); lb != nil {
			out, err := w.ELB.DescribeListeners(context.Background(), &elbv2.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn})
			if err == nil && len(out.Listeners) == 1 && len(out.Listeners[0].Certificates) == 1 &&
				aws.ToString(out.Listeners[0].Certificates[0].CertificateArn) == cert {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the NLB's listener never got certificate %s", cert)
}

func eventLog(events []engine.Event) string {
	var b strings.Builder
	for _, e := range events {
		if e.Type == engine.EventStep || e.Error != "" {
			line, _ := json.Marshal(e)
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func helmClient(t *testing.T, w *codertest.World) *helmx.Client {
	t.Helper()
	c, err := helmx.New(w.Ground.RESTConfig(), helmx.Options{CacheDir: w.HelmDir})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func assertRelease(t *testing.T, w *codertest.World, wantRevision int) {
	t.Helper()
	rel, err := helmClient(t, w).Status(context.Background(), coder.ReleaseName, names.CoderNamespace)
	if err != nil || rel == nil {
		t.Fatalf("release status: %v, %v", rel, err)
	}
	if rel.Version != wantRevision || rel.Info.Status != "deployed" {
		t.Errorf("release at revision %d (%s), want %d deployed", rel.Version, rel.Info.Status, wantRevision)
	}
	raw, _ := json.Marshal(rel.Config)
	var v struct {
		Coder struct {
			ReplicaCount int               `json:"replicaCount"`
			NodeSelector map[string]string `json:"nodeSelector"`
			Tolerations  []corev1.Toleration
			Resources    corev1.ResourceRequirements `json:"resources"`
			Env          []corev1.EnvVar             `json:"env"`
			Volumes      []corev1.Volume             `json:"volumes"`
			VolumeMounts []corev1.VolumeMount        `json:"volumeMounts"`
			Image        struct{ Tag string }        `json:"image"`
			Service      struct {
				Enable bool   `json:"enable"`
				Type   string `json:"type"`
			} `json:"service"`
			ServiceAccount struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"serviceAccount"`
		} `json:"coder"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Coder
	if c.ReplicaCount != 2 || c.NodeSelector["coder/node-type"] != "coderd" || c.Image.Tag != "v2.36.1" {
		t.Errorf("replicas %d, nodeSelector %v, image tag %q", c.ReplicaCount, c.NodeSelector, c.Image.Tag)
	}
	if len(c.Tolerations) != 1 || c.Tolerations[0].Key != "coder/node-type" || c.Tolerations[0].Value != "coderd" || c.Tolerations[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("tolerations %+v, want coder/node-type=coderd:NoSchedule", c.Tolerations)
	}
	if c.Resources.Requests.Cpu().String() != "2" || c.Resources.Limits.Memory().String() != "8Gi" {
		t.Errorf("resources %+v, want requests 2 CPU, limits 8Gi", c.Resources)
	}
	if c.ServiceAccount.Annotations["eks.amazonaws.com/role-arn"] != codertest.RoleARN {
		t.Errorf("service account annotations %v", c.ServiceAccount.Annotations)
	}
	if c.Service.Type != "ClusterIP" || !c.Service.Enable {
		t.Errorf("chart service %+v, want the in-cluster ClusterIP", c.Service)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["CODER_PROVISIONER_DAEMONS"].Value != "0" || env["CODER_ACCESS_URL"].Value != w.Coder.URL() ||
		env["CODER_WILDCARD_ACCESS_URL"].Value != "*."+codertest.Domain {
		t.Errorf("env %+v", c.Env)
	}
	pg := env["CODER_PG_CONNECTION_URL"].ValueFrom
	if pg == nil || pg.SecretKeyRef.Name != "coder-secrets" || pg.SecretKeyRef.Key != "database-url" || pg.SecretKeyRef.Optional != nil {
		t.Errorf("CODER_PG_CONNECTION_URL = %+v, want the required coder-secrets/database-url", env["CODER_PG_CONNECTION_URL"])
	}
	gh := env["CODER_OAUTH2_GITHUB_CLIENT_SECRET"].ValueFrom
	if gh == nil || gh.SecretKeyRef.Key != "github-client-secret" || gh.SecretKeyRef.Optional == nil || !*gh.SecretKeyRef.Optional {
		t.Errorf("GitHub client secret env = %+v, want an optional coder-secrets key", env["CODER_OAUTH2_GITHUB_CLIENT_SECRET"])
	}
	if len(c.Volumes) != 1 || c.Volumes[0].CSI == nil || c.Volumes[0].CSI.Driver != "secrets-store.csi.k8s.io" ||
		c.Volumes[0].CSI.VolumeAttributes["secretProviderClass"] != "coder-secrets" || !*c.Volumes[0].CSI.ReadOnly {
		t.Errorf("volumes %+v, want the read-only CSI volume of class coder-secrets", c.Volumes)
	}
	if len(c.VolumeMounts) != 1 || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("volume mounts %+v", c.VolumeMounts)
	}
}

func assertPodsOn(t *testing.T, w *codertest.World, selector, role string, want int) {
	t.Helper()
	ctx := context.Background()
	pods, err := w.Kube.CoreV1().Pods(names.CoderNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, p := range pods.Items {
		node, err := w.Kube.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s node %q: %v", p.Name, p.Spec.NodeName, err)
		}
		if node.Labels["coder/node-type"] != role {
			t.Errorf("pod %s on node %s of type %q, want %s", p.Name, node.Name, node.Labels["coder/node-type"], role)
		}
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if running != want {
		t.Errorf("%d pods running, want %d", running, want)
	}
}

func assertService(t *testing.T, w *codertest.World) string {
	t.Helper()
	svc, err := w.Kube.CoreV1().Services(names.CoderNamespace).Get(context.Background(), coder.ServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host := coder.Hostname(svc)
	if host == "" {
		t.Fatalf("service %s has no hostname", coder.ServiceName)
	}
	spec := svc.Spec
	if spec.Type != corev1.ServiceTypeLoadBalancer || spec.SessionAffinity != corev1.ServiceAffinityNone ||
		spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("service spec type %s affinity %s policy %s", spec.Type, spec.SessionAffinity, spec.ExternalTrafficPolicy)
	}
	if len(spec.Ports) != 1 || spec.Ports[0].Port != 443 || spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("service ports %+v, want only 443 -> http", spec.Ports)
	}
	if svc.Annotations[coder.AnnSSLCert] != w.CertARN || svc.Annotations[coder.AnnSSLPorts] != "443" || svc.Annotations[coder.AnnType] != "nlb" {
		t.Errorf("service annotations %v", svc.Annotations)
	}
	return host
}

func loadBalancer(t *testing.T, w *codertest.World, host string) *elbtypes.LoadBalancer {
	t.Helper()
	lb, err := coder.LoadBalancerByHostname(context.Background(), w.ELB, host)
	if err != nil {
		t.Fatal(err)
	}
	return lb
}

func assertTLSListener(t *testing.T, w *codertest.World, host string) {
	lb := loadBalancer(t, w, host)
	if lb == nil {
		t.Fatalf("no load balancer %s in moto", host)
	}
	out, err := w.ELB.DescribeListeners(context.Background(), &elbv2.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Listeners) != 1 {
		t.Fatalf("listeners %+v, want one (443 only)", out.Listeners)
	}
	l := out.Listeners[0]
	if l.Protocol != elbtypes.ProtocolEnumTls || aws.ToInt32(l.Port) != 443 || len(l.Certificates) != 1 ||
		aws.ToString(l.Certificates[0].CertificateArn) != w.CertARN || aws.ToString(l.SslPolicy) != coder.TLSPolicy {
		t.Errorf("listener %s:%d certs %+v policy %s", l.Protocol, aws.ToInt32(l.Port), l.Certificates, aws.ToString(l.SslPolicy))
	}
}

func assertAliases(t *testing.T, w *codertest.World, host string) {
	lb := loadBalancer(t, w, host)
	out, err := w.Route53.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.ZoneID)})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, rr := range out.ResourceRecordSets {
		name := strings.ReplaceAll(strings.TrimSuffix(aws.ToString(rr.Name), "."), `\052`, "*")
		if rr.AliasTarget == nil {
			continue
		}
		if strings.TrimSuffix(aws.ToString(rr.AliasTarget.DNSName), ".") != aws.ToString(lb.DNSName) ||
			aws.ToString(rr.AliasTarget.HostedZoneId) != aws.ToString(lb.CanonicalHostedZoneId) {
			t.Errorf("record %s aliases %s in %s, want %s in %s", name, aws.ToString(rr.AliasTarget.DNSName),
				aws.ToString(rr.AliasTarget.HostedZoneId), aws.ToString(lb.DNSName), aws.ToString(lb.CanonicalHostedZoneId))
		}
		found[name] = true
	}
	for _, name := range []string{codertest.Domain, "*." + codertest.Domain} {
		if !found[name] {
			t.Errorf("no alias A record %s in %v", name, found)
		}
	}
}

func assertDestroyed(t *testing.T, w *codertest.World, host string) {
	t.Helper()
	ctx := context.Background()
	if lb := loadBalancer(t, w, host); lb != nil {
		t.Errorf("load balancer %s still exists after destroy", aws.ToString(lb.LoadBalancerName))
	}
	if _, err := w.Kube.CoreV1().Services(names.CoderNamespace).Get(ctx, coder.ServiceName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("service still there after destroy: %v", err)
	}
	rel, err := helmClient(t, w).Status(ctx, coder.ReleaseName, names.CoderNamespace)
	if err != nil || rel != nil {
		t.Errorf("release after destroy: %v, %v; want none", rel, err)
	}
	out, err := w.Route53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.ZoneID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range out.ResourceRecordSets {
		if rr.AliasTarget != nil {
			t.Errorf("alias record %s left after destroy", aws.ToString(rr.Name))
		}
	}
	if v := w.Deps.State.Get(names.KeyNLBHostname); v != "" {
		t.Errorf("NLB_HOSTNAME = %q after destroy", v)
	}
}

// TestBadInput: each case is refused by the validator as bad input naming
// the key, before any AWS call.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notYAML := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(notYAML, []byte("coder: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := chartrepo.Require(t).URL
	cases := []struct {
		name    string
		inputs  map[string]string
		mention []string
	}{
		{"values file not YAML", map[string]string{"CODER_VALUES_FILE": notYAML}, []string{"CODER_VALUES_FILE", notYAML}},
		{"values file missing", map[string]string{"CODER_VALUES_FILE": filepath.Join(dir, "nope.yaml")}, []string{"CODER_VALUES_FILE", "cannot read"}},
		{"chart version not in the repository", map[string]string{"CODER_CHART_VERSION": "9.9.9"}, []string{"CODER_CHART_VERSION", "9.9.9", "2.36.1"}},
		// The chart version follows CODER_VERSION: the message names the
		// input the user set, not CODER_CHART_VERSION or the chart URL alone.
		{"Coder version without a chart", map[string]string{"CODER_VERSION": "99.0.0"}, []string{": CODER_VERSION: 99.0.0", "no version 99.0.0", "2.36.1"}},
		{"CA file not PEM", map[string]string{"CODER_CA_FILE": notPEM}, []string{"CODER_CA_FILE", "no PEM"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inputs := stagetest.DefaultInputs()
			inputs["CODER_CHART_REPO"] = repo
			for k, v := range tc.inputs {
				inputs[k] = v
			}
			env := stagetest.New(t, inputs)
			st := coder.New(env.Deps.With(deploy.StageOptions{HelmCacheDir: t.TempDir()}))
			err := st.Validate(context.Background())
			if !fault.IsInput(err) {
				t.Fatalf("Validate() = %v, want bad input", err)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if fault.ExitCode(err) != fault.ExitInput {
				t.Errorf("exit code %d, want %d", fault.ExitCode(err), fault.ExitInput)
			}
			if calls := slices.Concat(env.Calls.Mutations(), env.Calls.Reads()); len(calls) != 0 {
				t.Errorf("validation called AWS: %v", calls)
			}
		})
	}
	t.Run("valid inputs pass", func(t *testing.T) {
		inputs := stagetest.DefaultInputs()
		inputs["CODER_CHART_REPO"] = repo
		env := stagetest.New(t, inputs)
		if err := coder.New(env.Deps.With(deploy.StageOptions{HelmCacheDir: t.TempDir()})).Validate(context.Background()); err != nil {
			t.Errorf("Validate() = %v, want nil", err)
		}
	})
	t.Run("USERS not a positive number", func(t *testing.T) {
		for _, users := range []string{"0", "-3", "many"} {
			_, err := config.ResolveInputs("coder-infra.env", map[string]string{"USERS": users, "CODER_DOMAIN": "coder.example.com"}, nil, nil, "")
			if !fault.IsInput(err) || !strings.Contains(err.Error(), "USERS") {
				t.Errorf("USERS=%s: %v, want bad input naming USERS", users, err)
			}
		}
	})
}

// TestUnreachableURL: without DNS records, verify fails healthz with a hint
// and wait-healthy is left pending rather than failed.
func TestUnreachableURL(t *testing.T) {
	inputs := stagetest.DefaultInputs()
	inputs["CODER_URL"] = "https://coder.does-not-exist.invalid"
	env := stagetest.New(t, inputs)
	st := coder.New(env.Deps.With(deploy.StageOptions{HelmCacheDir: t.TempDir()}))
	checks := checksByName(st.Verify(context.Background()))
	c := checks[coder.CheckHealthz]
	if c.Status != engine.Fail || !strings.Contains(c.Reason, "unreachable") || !strings.Contains(c.Hint, "create the DNS records") {
		t.Errorf("healthz check = %+v, want a failure with a DNS hint", c)
	}
	var healthy engine.Step
	for _, s := range st.Steps {
		if s.Name == coder.StepWaitHealthy {
			healthy = s
		}
	}
	err := healthy.Apply(context.Background(), engine.Discard)
	if !engine.IsPending(err) || !strings.Contains(err.Error(), "does not resolve") {
		t.Errorf("wait-healthy = %v, want pending on DNS", err)
	}
}
