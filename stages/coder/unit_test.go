package coder

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func unitStage(t *testing.T) *stage {
	t.Helper()
	return &stage{d: stagetest.New(t, nil).Deps}
}

func TestServiceDriftAndConverge(t *testing.T) {
	s := unitStage(t)
	want := s.wantService("arn:aws:acm:us-west-2:123456789012:certificate/new")
	live := want.DeepCopy()
	live.Spec.ClusterIP = "10.96.0.10"
	live.Spec.Ports[0].NodePort = 31443
	live.Spec.HealthCheckNodePort = 32000
	live.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = "{}" // someone else's
	if d := serviceDrift(live, want); len(d) != 0 {
		t.Fatalf("drift of an equal service: %v", d)
	}
	cases := []struct {
		name    string
		breakIt func(*corev1.Service)
		drift   string
	}{
		{"certificate", func(s *corev1.Service) { s.Annotations[AnnSSLCert] = "arn:old" }, "annotation " + AnnSSLCert},
		{"traffic policy", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster }, "externalTrafficPolicy"},
		{"affinity", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }, "sessionAffinity"},
		{"extra port", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
		}, "ports"},
		{"selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "other"} }, "selector"},
	}
	for _, tc := range cases {
		broken := live.DeepCopy()
		tc.breakIt(broken)
		d := serviceDrift(broken, want)
		if len(d) != 1 || d[0] != tc.drift {
			t.Errorf("%s: drift %v, want [%s]", tc.name, d, tc.drift)
			continue
		}
		fixed := converge(broken, want)
		if rest := serviceDrift(fixed, want); len(rest) != 0 {
			t.Errorf("%s: drift after converge %v", tc.name, rest)
		}
		if fixed.Spec.ClusterIP != "10.96.0.10" || fixed.Spec.Ports[0].NodePort != 31443 || fixed.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "{}" {
			t.Errorf("%s: converge lost server-assigned fields or foreign annotations: %+v", tc.name, fixed)
		}
	}
}

func TestWantService(t *testing.T) {
	s := unitStage(t)
	svc := s.wantService("arn:cert")
	if got := svc.Annotations[AnnAdditionalTags]; got != "coderctl/deployment=coder-prod,coderctl/stage=coder" {
		t.Errorf("additional tags %q", got)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("ports %+v, want only 443 -> http", svc.Spec.Ports)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, map[string]string{"app.kubernetes.io/name": "coder", "app.kubernetes.io/instance": "coder"}) {
		t.Errorf("selector %v", svc.Spec.Selector)
	}
}

func TestSameRecordName(t *testing.T) {
	cases := []struct {
		have, want string
		same       bool
	}{
		{"coder.example.com.", "coder.example.com", true},
		{`\052.coder.example.com.`, "*.coder.example.com", true},
		{"Coder.Example.com.", "coder.example.com", true},
		{"other.example.com.", "coder.example.com", false},
		{`\052.coder.example.com.`, "coder.example.com", false},
	}
	for _, tc := range cases {
		if got := sameRecordName(tc.have, tc.want); got != tc.same {
			t.Errorf("sameRecordName(%q, %q) = %v", tc.have, tc.want, got)
		}
	}
	if normalizeDNS("dualstack.NLB-1.elb.us-west-2.amazonaws.com.") != "nlb-1.elb.us-west-2.amazonaws.com" {
		t.Error("normalizeDNS keeps the dualstack prefix, case or trailing dot")
	}
}

func TestEnv(t *testing.T) {
	s := unitStage(t)
	env := map[string]corev1.EnvVar{}
	for _, e := range s.env() {
		env[e.Name] = e
	}
	if env["CODER_ACCESS_URL"].Value != "https://coder.example.com" || env["CODER_WILDCARD_ACCESS_URL"].Value != "*.coder.example.com" {
		t.Errorf("access URLs %+v %+v", env["CODER_ACCESS_URL"], env["CODER_WILDCARD_ACCESS_URL"])
	}
	for _, name := range []string{"CODER_OAUTH2_GITHUB_CLIENT_ID", "CODER_OAUTH2_GITHUB_CLIENT_SECRET", "CODER_OAUTH2_GITHUB_ALLOWED_ORGS"} {
		ref := env[name].ValueFrom.SecretKeyRef
		if ref.Name != names.CoderSecret || ref.Optional == nil || !*ref.Optional || !strings.HasPrefix(ref.Key, "github-") {
			t.Errorf("%s = %+v, want an optional key of %s", name, ref, names.CoderSecret)
		}
	}
}

func TestRecordOutputs(t *testing.T) {
	cases := []struct {
		name    string
		inputs  map[string]string
		wantURL string
	}{
		{"derived URL is recorded", map[string]string{"CODER_DOMAIN": "coder.example.com"}, "https://coder.example.com"},
		{"the user's URL is left alone", map[string]string{"CODER_DOMAIN": "coder.example.com", "CODER_URL": "https://dev.example.org"}, "https://dev.example.org"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := stagetest.New(t, tc.inputs)
			s := &stage{d: env.Deps}
			if err := s.recordOutputs("nlb-1.elb.us-west-2.amazonaws.com"); err != nil {
				t.Fatal(err)
			}
			env.Reload(t)
			if got := env.Deps.State.Get(names.KeyNLBHostname); got != "nlb-1.elb.us-west-2.amazonaws.com" {
				t.Errorf("NLB_HOSTNAME = %q", got)
			}
			if got := env.Deps.State.Get(config.KeyCoderURL); got != tc.wantURL {
				t.Errorf("CODER_URL = %q, want %q", got, tc.wantURL)
			}
		})
	}
}
