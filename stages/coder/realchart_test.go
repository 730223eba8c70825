package coder

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
)

// TestRealChartRendersStageValues renders the real coder chart of every
// served version with the values this stage computes: the objects below
// are what the real templates make of them, without a cluster.
func TestRealChartRendersStageValues(t *testing.T) {
	const roleARN = "arn:aws:iam::123456789012:role/coder-prod-coder-secrets"
	repo := chartrepo.Require(t)
	values, _, err := unitStage(t).values(roleARN)
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range chartrepo.CoderVersions {
		t.Run(version, func(t *testing.T) {
			m, err := chartrepo.Render(repo.ChartArchive(ChartName, version), ReleaseName, names.CoderNamespace, values)
			if err != nil {
				t.Fatal(err)
			}
			var dep appsv1.Deployment
			if err := m.Decode("Deployment/coder", &dep); err != nil {
				t.Fatal(err)
			}
			c := dep.Spec.Template.Spec.Containers[0]
			assertPrometheus(t, c)
			assertReadinessProbe(t, c)
			var sa corev1.ServiceAccount
			if err := m.Decode("ServiceAccount/"+names.CoderServiceAccount, &sa); err != nil {
				t.Fatal(err)
			}
			if sa.Annotations[annRoleARN] != roleARN {
				t.Errorf("service account annotations %v, want %s=%s", sa.Annotations, annRoleARN, roleARN)
			}
			if !slices.ContainsFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
				return v.CSI != nil && v.CSI.Driver == csiDriver && v.CSI.VolumeAttributes["secretProviderClass"] == names.SecretProviderClass
			}) {
				t.Errorf("volumes %+v, want the CSI volume of class %s", dep.Spec.Template.Spec.Volumes, names.SecretProviderClass)
			}
		})
	}
}

// assertPrometheus: the metrics endpoint is on, on every interface, and the
// pod spec names its port so a PodMonitor or scrape config can find it.
func assertPrometheus(t *testing.T, c corev1.Container) {
	t.Helper()
	var enable, address []string
	for _, e := range c.Env {
		switch e.Name {
		case "CODER_PROMETHEUS_ENABLE":
			enable = append(enable, e.Value)
		case "CODER_PROMETHEUS_ADDRESS":
			address = append(address, e.Value)
		}
	}
	if !slices.Equal(enable, []string{"true"}) || !slices.Equal(address, []string{PrometheusAddress}) {
		t.Errorf("CODER_PROMETHEUS_ENABLE %q, CODER_PROMETHEUS_ADDRESS %q; want each once: true, %s", enable, address, PrometheusAddress)
	}
	want := corev1.ContainerPort{Name: "prometheus-http", ContainerPort: 2112, Protocol: corev1.ProtocolTCP}
	if !slices.Contains(c.Ports, want) {
		t.Errorf("ports %+v, want %+v", c.Ports, want)
	}
}

func assertReadinessProbe(t *testing.T, c corev1.Container) {
	t.Helper()
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != intstr.FromString("http") {
		t.Errorf("readiness probe %+v, want GET /healthz on the http port", p)
	}
}
