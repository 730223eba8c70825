package chartrepo

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/coderctl/coderctl/configs"
)

// The charts are rendered from one repository per test binary: rendering
// needs no server, only the unpacked charts.
var shared struct {
	sync.Once
	repo *Repo
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.repo != nil {
		shared.repo.Stop()
	}
	os.Exit(code)
}

func chartSource(t *testing.T, name string) string {
	t.Helper()
	shared.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared.repo, shared.err = Start(ctx)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.repo.ChartDir(name)
}

// coderdValues are values shaped like the ones the coder stage sets.
func coderdValues() map[string]any {
	return map[string]any{"coder": map[string]any{
		"replicaCount": 2,
		"env": []any{
			map[string]any{"name": "CODER_ACCESS_URL", "value": "https://coder.example.com"},
			map[string]any{"name": "CODER_WILDCARD_ACCESS_URL", "value": "*.coder.example.com"},
			map[string]any{"name": "CODER_PROVISIONER_DAEMONS", "value": "0"},
			map[string]any{"name": "CODER_PG_CONNECTION_URL", "valueFrom": map[string]any{
				"secretKeyRef": map[string]any{"name": "coder-secrets", "key": "database-url"}}},
		},
		"volumes": []any{map[string]any{"name": "secrets-store", "csi": map[string]any{
			"driver": "secrets-store.csi.k8s.io", "readOnly": true,
			"volumeAttributes": map[string]any{"secretProviderClass": "coder-secrets"}}}},
		"volumeMounts": []any{map[string]any{"name": "secrets-store", "mountPath": "/mnt/secrets-store", "readOnly": true}},
		"nodeSelector": map[string]any{"coder/node-type": "coderd"},
		"tolerations":  []any{map[string]any{"key": "coder/node-type", "operator": "Equal", "value": "coderd", "effect": "NoSchedule"}},
		"serviceAccount": map[string]any{"annotations": map[string]any{
			"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/coder-secrets"}},
		"resources": map[string]any{"requests": map[string]any{"cpu": "500m", "memory": "1Gi"}},
		"service": map[string]any{
			"type":            "LoadBalancer",
			"sessionAffinity": "None",
			"annotations":     map[string]any{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
		},
	}}
}

func TestCoderChartRendersCoderctlValues(t *testing.T) {
	m, err := Render(chartSource(t, "coder"), "coder", "coder", coderdValues())
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	if err := m.Decode("Deployment/coder", &dep); err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *dep.Spec.Replicas)
	}
	if pod.NodeSelector["coder/node-type"] != "coderd" {
		t.Errorf("nodeSelector = %v", pod.NodeSelector)
	}
	wantTol := corev1.Toleration{Key: "coder/node-type", Operator: "Equal", Value: "coderd", Effect: "NoSchedule"}
	if !slices.Contains(pod.Tolerations, wantTol) {
		t.Errorf("tolerations = %+v, want %+v", pod.Tolerations, wantTol)
	}
	if pod.ServiceAccountName != "coder" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].CSI == nil || pod.Volumes[0].CSI.VolumeAttributes["secretProviderClass"] != "coder-secrets" {
		t.Errorf("volumes = %+v, want the secrets-store CSI volume", pod.Volumes)
	}
	c := pod.Containers[0]
	if c.Image != "ghcr.io/coder/coder:v2.36.1" {
		t.Errorf("image = %q, want the appVersion tag with a v prefix", c.Image)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/mnt/secrets-store" {
		t.Errorf("volumeMounts = %+v", c.VolumeMounts)
	}
	if got := c.Resources.Requests.Cpu().String(); got != "500m" || c.Resources.Limits != nil {
		t.Errorf("resources = %+v, want only the given requests", c.Resources)
	}
	env := envMap(c.Env)
	if env["CODER_ACCESS_URL"].Value != "https://coder.example.com" || env["CODER_PROVISIONER_DAEMONS"].Value != "0" {
		t.Errorf("env = %+v", c.Env)
	}
	if ref := env["CODER_PG_CONNECTION_URL"].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "coder-secrets" || ref.SecretKeyRef.Key != "database-url" {
		t.Errorf("CODER_PG_CONNECTION_URL = %+v, want from secret coder-secrets/database-url", env["CODER_PG_CONNECTION_URL"])
	}
	if n := countEnv(c.Env, "CODER_ACCESS_URL"); n != 1 {
		t.Errorf("CODER_ACCESS_URL set %d times; the chart's default must give way to coder.env", n)
	}
	if env["CODER_HTTP_ADDRESS"].Value != "0.0.0.0:8080" {
		t.Errorf("CODER_HTTP_ADDRESS = %q", env["CODER_HTTP_ADDRESS"].Value)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports = %+v, want only http:8080", c.Ports)
	}

	var sa corev1.ServiceAccount
	if err := m.Decode("ServiceAccount/coder", &sa); err != nil {
		t.Fatal(err)
	}
	if sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/coder-secrets" {
		t.Errorf("service account annotations = %v", sa.Annotations)
	}

	var svc corev1.Service
	if err := m.Decode("Service/coder", &svc); err != nil {
		t.Fatal(err)
	}
	wantPorts := []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: "TCP"}}
	if !slices.Equal(svc.Spec.Ports, wantPorts) {
		t.Errorf("service ports = %+v, want only 80 -> http", svc.Spec.Ports)
	}
	if svc.Spec.Type != "LoadBalancer" || svc.Spec.SessionAffinity != "None" || svc.Spec.ExternalTrafficPolicy != "Cluster" {
		t.Errorf("service spec = %+v", svc.Spec)
	}
	if svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "nlb" {
		t.Errorf("service annotations = %v", svc.Annotations)
	}
}

func TestCoderChartServiceVariants(t *testing.T) {
	tests := []struct {
		name      string
		coder     map[string]any
		wantPorts []string // name:port->target; nil means no Service
		wantImage string
	}{
		{"defaults", map[string]any{}, []string{"http:80->http"}, "ghcr.io/coder/coder:v2.36.1"},
		{"coderd serves TLS", map[string]any{"tls": map[string]any{"secretNames": []any{"coder-tls"}}},
			[]string{"http:80->http", "https:443->https"}, "ghcr.io/coder/coder:v2.36.1"},
		{"service disabled", map[string]any{"service": map[string]any{"enable": false}}, nil, "ghcr.io/coder/coder:v2.36.1"},
		{"image tag pinned", map[string]any{"image": map[string]any{"tag": "v2.30.0"}}, []string{"http:80->http"}, "ghcr.io/coder/coder:v2.30.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(chartSource(t, "coder"), "coder", "coder", map[string]any{"coder": tc.coder})
			if err != nil {
				t.Fatal(err)
			}
			var svc corev1.Service
			err = m.Decode("Service/coder", &svc)
			switch {
			case tc.wantPorts == nil && err == nil:
				t.Errorf("service rendered although disabled")
			case tc.wantPorts != nil && err != nil:
				t.Fatal(err)
			}
			var got []string
			for _, p := range svc.Spec.Ports {
				got = append(got, p.Name+":"+itoa(p.Port)+"->"+p.TargetPort.String())
			}
			if !slices.Equal(got, tc.wantPorts) {
				t.Errorf("ports = %v, want %v", got, tc.wantPorts)
			}
			var dep appsv1.Deployment
			if err := m.Decode("Deployment/coder", &dep); err != nil {
				t.Fatal(err)
			}
			if img := dep.Spec.Template.Spec.Containers[0].Image; img != tc.wantImage {
				t.Errorf("image = %q, want %q", img, tc.wantImage)
			}
		})
	}
}

func TestProvisionerChart(t *testing.T) {
	keyed := func(extra map[string]any) map[string]any {
		pd := map[string]any{"keySecretName": "coder-provisioner-key", "keySecretKey": "key"}
		for k, v := range extra {
			pd[k] = v
		}
		return pd
	}
	tests := []struct {
		name        string
		values      map[string]any
		wantErr     string
		wantKeyFrom string // secret/key of CODER_PROVISIONER_DAEMON_KEY
		wantURL     string
	}{
		{
			name: "key and CODER_URL from coder.env",
			values: map[string]any{
				"provisionerDaemon": keyed(nil),
				"coder": map[string]any{
					"env":          []any{map[string]any{"name": "CODER_URL", "value": "https://coder.example.com"}},
					"replicaCount": 3,
					"nodeSelector": map[string]any{"coder/node-type": "provisioner"},
					"tolerations":  []any{map[string]any{"key": "coder/node-type", "operator": "Equal", "value": "provisioner", "effect": "NoSchedule"}},
				},
			},
			wantKeyFrom: "coder-provisioner-key/key",
			wantURL:     "https://coder.example.com",
		},
		{
			name:        "CODER_URL defaults to the in-cluster service",
			values:      map[string]any{"provisionerDaemon": keyed(map[string]any{"pskSecretName": ""})},
			wantKeyFrom: "coder-provisioner-key/key",
			wantURL:     "http://coder.coder.svc.cluster.local",
		},
		{
			name:    "key with tags fails",
			values:  map[string]any{"provisionerDaemon": keyed(map[string]any{"tags": map[string]any{"scope": "org"}})},
			wantErr: "provisionerDaemon.tags may not be specified with provisionerDaemon.keySecretName",
		},
		{
			name:    "key with another psk secret fails",
			values:  map[string]any{"provisionerDaemon": keyed(map[string]any{"pskSecretName": "my-psk"})},
			wantErr: "but not both",
		},
		{
			name:    "neither key nor psk fails",
			values:  map[string]any{"provisionerDaemon": map[string]any{"pskSecretName": ""}},
			wantErr: "Either provisionerDaemon.pskSecretName or provisionerDaemon.keySecretName must be specified",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(chartSource(t, "coder-provisioner"), "coder-provisioner", "coder", tc.values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var dep appsv1.Deployment
			if err := m.Decode("Deployment/coder-provisioner", &dep); err != nil {
				t.Fatal(err)
			}
			c := dep.Spec.Template.Spec.Containers[0]
			env := envMap(c.Env)
			key := env["CODER_PROVISIONER_DAEMON_KEY"].ValueFrom
			if key == nil || key.SecretKeyRef.Name+"/"+key.SecretKeyRef.Key != tc.wantKeyFrom {
				t.Errorf("CODER_PROVISIONER_DAEMON_KEY = %+v, want from %s", env["CODER_PROVISIONER_DAEMON_KEY"], tc.wantKeyFrom)
			}
			if _, ok := env["CODER_PROVISIONER_DAEMON_PSK"]; ok {
				t.Errorf("PSK env set together with the key")
			}
			if _, ok := env["CODER_PROVISIONERD_TAGS"]; ok {
				t.Errorf("CODER_PROVISIONERD_TAGS set together with the key")
			}
			if env["CODER_URL"].Value != tc.wantURL || countEnv(c.Env, "CODER_URL") != 1 {
				t.Errorf("CODER_URL = %q (set %d times), want %q once", env["CODER_URL"].Value, countEnv(c.Env, "CODER_URL"), tc.wantURL)
			}
			if c.Image != "ghcr.io/coder/coder:v2.36.1" || dep.Spec.Template.Spec.ServiceAccountName != "coder-provisioner" {
				t.Errorf("image %q, service account %q", c.Image, dep.Spec.Template.Spec.ServiceAccountName)
			}
		})
	}

	t.Run("replicas, node selector and tolerations", func(t *testing.T) {
		m, err := Render(chartSource(t, "coder-provisioner"), "coder-provisioner", "coder", tests[0].values)
		if err != nil {
			t.Fatal(err)
		}
		var dep appsv1.Deployment
		if err := m.Decode("Deployment/coder-provisioner", &dep); err != nil {
			t.Fatal(err)
		}
		spec := dep.Spec.Template.Spec
		if *dep.Spec.Replicas != 3 || spec.NodeSelector["coder/node-type"] != "provisioner" ||
			len(spec.Tolerations) != 1 || spec.Tolerations[0].Value != "provisioner" {
			t.Errorf("replicas %d, nodeSelector %v, tolerations %+v", *dep.Spec.Replicas, spec.NodeSelector, spec.Tolerations)
		}
		if *spec.TerminationGracePeriodSeconds != 600 {
			t.Errorf("terminationGracePeriodSeconds = %d, want the chart's 600", *spec.TerminationGracePeriodSeconds)
		}
	})
}

func TestSecretsStoreDriverChart(t *testing.T) {
	tolerateAll := []any{map[string]any{"operator": "Exists"}}
	coderTaints := []any{map[string]any{"key": "coder/node-type", "operator": "Exists", "effect": "NoSchedule"}}
	tests := []struct {
		name            string
		values          map[string]any
		wantSync        bool
		wantTolerateAll bool
	}{
		// The real chart tolerates every taint unless told otherwise.
		{"defaults", map[string]any{}, false, true},
		{"tolerations narrowed to the coder taints", map[string]any{
			"syncSecret": map[string]any{"enabled": true},
			"linux":      map[string]any{"tolerations": coderTaints},
		}, true, false},
		{"sync and tolerate all", map[string]any{
			"syncSecret": map[string]any{"enabled": true},
			"linux":      map[string]any{"tolerations": tolerateAll},
		}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(chartSource(t, "secrets-store-csi-driver"), "csi-secrets-store", "kube-system", tc.values)
			if err != nil {
				t.Fatal(err)
			}
			var spc apiextensionsv1.CustomResourceDefinition
			if err := m.Decode("CustomResourceDefinition/secretproviderclasses.secrets-store.csi.x-k8s.io", &spc); err != nil {
				t.Fatal(err)
			}
			if spc.Spec.Group != "secrets-store.csi.x-k8s.io" || spc.Spec.Versions[0].Name != "v1" || !spc.Spec.Versions[0].Storage {
				t.Errorf("SecretProviderClass CRD group %q versions %+v", spc.Spec.Group, spc.Spec.Versions)
			}
			if _, ok := m["CustomResourceDefinition/secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io"]; !ok {
				t.Errorf("no SecretProviderClassPodStatus CRD; have %v", m.Keys())
			}
			// As the real chart: the release name does not contain the chart
			// name, so the DaemonSet is <release>-secrets-store-csi-driver.
			var ds appsv1.DaemonSet
			if err := m.Decode("DaemonSet/csi-secrets-store-secrets-store-csi-driver", &ds); err != nil {
				t.Fatal(err)
			}
			spec := ds.Spec.Template.Spec
			if c := spec.Containers[1]; c.Name != "secrets-store" || c.SecurityContext == nil || !*c.SecurityContext.Privileged {
				t.Errorf("driver container %q is not privileged", c.Name)
			}
			if got := toleratesAll(spec.Tolerations); got != tc.wantTolerateAll {
				t.Errorf("tolerations = %+v, want tolerate-all %v", spec.Tolerations, tc.wantTolerateAll)
			}
			var role rbacv1.ClusterRole
			gotSync := m.Decode("ClusterRole/secretprovidersyncing-role", &role) == nil
			if gotSync != tc.wantSync {
				t.Errorf("sync ClusterRole rendered = %v, want %v", gotSync, tc.wantSync)
			}
			if gotSync && !slices.Contains(role.Rules[0].Resources, "secrets") {
				t.Errorf("sync role rules = %+v", role.Rules)
			}
			if _, ok := m["CSIDriver/secrets-store.csi.k8s.io"]; !ok {
				t.Errorf("no CSIDriver secrets-store.csi.k8s.io")
			}
			var job batchv1.Job
			if err := m.Decode("Job/secrets-store-csi-driver-upgrade-crds", &job); err != nil {
				t.Fatal(err)
			}
			if job.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" || len(job.Spec.Template.Spec.Tolerations) != len(spec.Tolerations) {
				t.Errorf("CRD hook job annotations %v tolerations %+v, want the install/upgrade hook with the DaemonSet's tolerations",
					job.Annotations, job.Spec.Template.Spec.Tolerations)
			}
		})
	}
}

func TestProviderAWSChart(t *testing.T) {
	tolerations := []any{map[string]any{"operator": "Exists"}}
	tests := []struct {
		name       string
		values     map[string]any
		wantDriver bool
	}{
		{"bundles the driver by default", map[string]any{"tolerations": tolerations}, true},
		{"driver installed separately", map[string]any{
			"tolerations":              tolerations,
			"secrets-store-csi-driver": map[string]any{"install": false},
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(chartSource(t, "secrets-store-csi-driver-provider-aws"), "secrets-provider-aws", "kube-system", tc.values)
			if err != nil {
				t.Fatal(err)
			}
			var ds appsv1.DaemonSet
			if err := m.Decode("DaemonSet/secrets-provider-aws-secrets-store-csi-driver-provider-aws", &ds); err != nil {
				t.Fatal(err)
			}
			if tol := ds.Spec.Template.Spec.Tolerations; len(tol) != 1 || tol[0].Operator != "Exists" {
				t.Errorf("provider tolerations = %+v", tol)
			}
			_, gotDriver := m["DaemonSet/secrets-provider-aws-secrets-store-csi-driver"]
			if gotDriver != tc.wantDriver {
				t.Errorf("driver DaemonSet rendered = %v, want %v (objects %v)", gotDriver, tc.wantDriver, m.Keys())
			}
		})
	}
}

// toleratesAll says whether tolerations hold the empty-key Exists toleration
// that matches every taint.
func toleratesAll(tols []corev1.Toleration) bool {
	return slices.ContainsFunc(tols, func(t corev1.Toleration) bool {
		return t.Key == "" && t.Operator == corev1.TolerationOpExists && t.Effect == ""
	})
}

func envMap(env []corev1.EnvVar) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range env {
		out[e.Name] = e
	}
	return out
}

func countEnv(env []corev1.EnvVar, name string) int {
	n := 0
	for _, e := range env {
		if e.Name == name {
			n++
		}
	}
	return n
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// TestShippedDefaultsRender renders each chart with the values file
// coderctl ships for it, so the two cannot drift apart unseen.
func TestShippedDefaultsRender(t *testing.T) {
	tests := []struct {
		chart, file, release string
		check                func(t *testing.T, m Manifests)
	}{
		{"coder", "coder-values.yaml", "coder", func(t *testing.T, m Manifests) {
			var svc corev1.Service
			if err := m.Decode("Service/coder", &svc); err != nil {
				t.Fatal(err)
			}
			if svc.Spec.Type != "ClusterIP" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
				t.Errorf("service %s ports %+v", svc.Spec.Type, svc.Spec.Ports)
			}
		}},
		{"coder-provisioner", "provisioner-values.yaml", "coder-provisioner", func(t *testing.T, m Manifests) {
			var dep appsv1.Deployment
			if err := m.Decode("Deployment/coder-provisioner", &dep); err != nil {
				t.Fatal(err)
			}
			if key := envMap(dep.Spec.Template.Spec.Containers[0].Env)["CODER_PROVISIONER_DAEMON_KEY"]; key.ValueFrom == nil {
				t.Errorf("no provisioner key env")
			}
		}},
		{"secrets-store-csi-driver", "csi-driver-values.yaml", "csi-secrets-store", func(t *testing.T, m Manifests) {
			var ds appsv1.DaemonSet
			if err := m.Decode("DaemonSet/csi-secrets-store-secrets-store-csi-driver", &ds); err != nil {
				t.Fatal(err)
			}
			if !toleratesAll(ds.Spec.Template.Spec.Tolerations) {
				t.Errorf("driver tolerations %+v, want every taint tolerated", ds.Spec.Template.Spec.Tolerations)
			}
			if !slices.Contains(ds.Spec.Template.Spec.Containers[1].Args, "--rotation-poll-interval=2m") {
				t.Errorf("driver args %v lack the rotation interval", ds.Spec.Template.Spec.Containers[1].Args)
			}
			if _, ok := m["ClusterRole/secretprovidersyncing-role"]; !ok {
				t.Errorf("no sync ClusterRole")
			}
		}},
		{"secrets-store-csi-driver-provider-aws", "csi-aws-provider-values.yaml", "secrets-provider-aws", func(t *testing.T, m Manifests) {
			if _, ok := m["DaemonSet/secrets-provider-aws-secrets-store-csi-driver"]; ok {
				t.Errorf("provider release would install a second driver")
			}
			var ds appsv1.DaemonSet
			if err := m.Decode("DaemonSet/secrets-provider-aws-secrets-store-csi-driver-provider-aws", &ds); err != nil {
				t.Fatal(err)
			}
			if !toleratesAll(ds.Spec.Template.Spec.Tolerations) {
				t.Errorf("provider tolerations %+v, want every taint tolerated", ds.Spec.Template.Spec.Tolerations)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.chart, func(t *testing.T) {
			var values map[string]any
			if err := yaml.Unmarshal(configs.Read(tc.file), &values); err != nil {
				t.Fatal(err)
			}
			m, err := Render(chartSource(t, tc.chart), tc.release, "coder", values)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
		})
	}
}

// autoscalerValues are values shaped like the ones the autoscaler stage sets.
func autoscalerValues() map[string]any {
	return map[string]any{
		"cloudProvider": "aws",
		"awsRegion":     "us-west-2",
		"autoDiscovery": map[string]any{"clusterName": "coder"},
		"rbac": map[string]any{"serviceAccount": map[string]any{
			"create": true, "name": "cluster-autoscaler",
			"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/coder-cluster-autoscaler"},
		}},
		"extraArgs": map[string]any{
			"balance-similar-node-groups":   true,
			"skip-nodes-with-local-storage": false,
			"expander":                      "least-waste",
			"balancing-ignore-label_1":      "topology.ebs.csi.aws.com/zone",
			"balancing-ignore-label_2":      "eks.amazonaws.com/nodegroup",
		},
		"nodeSelector":   map[string]any{"coder/node-type": "system"},
		"tolerations":    []any{map[string]any{"key": "CriticalAddonsOnly", "operator": "Exists"}},
		"image":          map[string]any{"tag": "v1.37.0"},
		"replicaCount":   1,
		"podAnnotations": map[string]any{"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
	}
}

// TestClusterAutoscalerChart: the stand-in renders, for the keys coderctl
// sets, the objects the real chart renders: names and labels from the
// cloud provider and release, the command line the autoscaler reads.
func TestClusterAutoscalerChart(t *testing.T) {
	tests := []struct {
		name        string
		values      func() map[string]any
		wantArgs    []string
		notArgs     []string
		wantSA      string
		wantNoDeply bool
		fullname    string // the objects' name; "" = the default
	}{
		{
			name:   "coderctl's values",
			values: autoscalerValues,
			wantArgs: []string{
				"./cluster-autoscaler", "--cloud-provider=aws", "--namespace=kube-system",
				"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/coder",
				"--balance-similar-node-groups=true", "--skip-nodes-with-local-storage=false", "--expander=least-waste",
				"--balancing-ignore-label=topology.ebs.csi.aws.com/zone", "--balancing-ignore-label=eks.amazonaws.com/nodegroup",
				"--logtostderr=true", "--stderrthreshold=info", "--v=4",
			},
			wantSA: "cluster-autoscaler",
		},
		{
			name: "own discovery tags, generated service account, flag without value",
			values: func() map[string]any {
				v := autoscalerValues()
				v["autoDiscovery"] = map[string]any{"clusterName": "coder", "tags": []any{"team=platform", "k8s.io/cluster-autoscaler/{{ .Values.autoDiscovery.clusterName }}"}}
				v["rbac"] = map[string]any{"serviceAccount": map[string]any{"name": ""}}
				v["extraArgs"] = map[string]any{"scale-down-enabled": nil}
				return v
			},
			wantArgs: []string{"--node-group-auto-discovery=asg:tag=team=platform,k8s.io/cluster-autoscaler/coder", "--scale-down-enabled"},
			notArgs:  []string{"--balance-similar-node-groups=true"},
			wantSA:   "cluster-autoscaler-aws-cluster-autoscaler",
		},
		{
			name: "fullnameOverride names the objects, not the labels",
			values: func() map[string]any {
				v := autoscalerValues()
				v["fullnameOverride"] = "cluster-autoscaler"
				return v
			},
			wantArgs: []string{"--balance-similar-node-groups=true"},
			wantSA:   "cluster-autoscaler",
			fullname: "cluster-autoscaler",
		},
		{
			name: "no cluster name: no Deployment, as the real chart",
			values: func() map[string]any {
				v := autoscalerValues()
				v["autoDiscovery"] = map[string]any{}
				return v
			},
			wantNoDeply: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(chartSource(t, "cluster-autoscaler"), "cluster-autoscaler", "kube-system", tc.values())
			if err != nil {
				t.Fatal(err)
			}
			name := "cluster-autoscaler-aws-cluster-autoscaler"
			if tc.fullname != "" {
				name = tc.fullname
			}
			var d appsv1.Deployment
			err = m.Decode("Deployment/"+name, &d)
			if tc.wantNoDeply {
				if err == nil {
					t.Fatal("Deployment rendered without autoDiscovery.clusterName")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Spec.Template.Labels["app.kubernetes.io/name"] != "aws-cluster-autoscaler" || d.Spec.Selector.MatchLabels["app.kubernetes.io/instance"] != "cluster-autoscaler" {
				t.Errorf("pod labels %v selector %v", d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)
			}
			c := d.Spec.Template.Spec.Containers[0]
			args := append(slices.Clone(c.Command), c.Args...)
			for _, a := range tc.wantArgs {
				if !slices.Contains(args, a) {
					t.Errorf("command lacks %q: %v", a, args)
				}
			}
			for _, a := range tc.notArgs {
				if slices.Contains(args, a) {
					t.Errorf("command has %q: %v", a, args)
				}
			}
			if env := envMap(c.Env); env["AWS_REGION"].Value != "us-west-2" {
				t.Errorf("AWS_REGION = %q", env["AWS_REGION"].Value)
			}
			if c.Image != "registry.k8s.io/autoscaling/cluster-autoscaler:v1.37.0" {
				t.Errorf("image %s", c.Image)
			}
			spec := d.Spec.Template.Spec
			if spec.ServiceAccountName != tc.wantSA || spec.NodeSelector["coder/node-type"] != "system" ||
				len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "CriticalAddonsOnly" || spec.PriorityClassName != "system-cluster-critical" {
				t.Errorf("pod spec: sa %s nodeSelector %v tolerations %v priority %s", spec.ServiceAccountName, spec.NodeSelector, spec.Tolerations, spec.PriorityClassName)
			}
			if d.Spec.Template.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] != "false" || *d.Spec.Replicas != 1 {
				t.Errorf("pod annotations %v replicas %d", d.Spec.Template.Annotations, *d.Spec.Replicas)
			}
			var sa corev1.ServiceAccount
			if err := m.Decode("ServiceAccount/"+tc.wantSA, &sa); err != nil {
				t.Fatal(err)
			}
			var crb rbacv1.ClusterRoleBinding
			if err := m.Decode("ClusterRoleBinding/"+name, &crb); err != nil {
				t.Fatal(err)
			}
			if len(crb.Subjects) != 1 || crb.Subjects[0].Name != tc.wantSA || crb.Subjects[0].Namespace != "kube-system" || crb.RoleRef.Name != name {
				t.Errorf("binding %+v", crb)
			}
			for _, key := range []string{"ClusterRole/" + name, "Role/" + name, "RoleBinding/" + name, "Service/" + name, "PodDisruptionBudget/" + name} {
				if _, ok := m[key]; !ok {
					t.Errorf("no %s rendered (have %v)", key, m.Keys())
				}
			}
		})
	}
	t.Run("IRSA annotation", func(t *testing.T) {
		m, err := Render(chartSource(t, "cluster-autoscaler"), "cluster-autoscaler", "kube-system", autoscalerValues())
		if err != nil {
			t.Fatal(err)
		}
		var sa corev1.ServiceAccount
		if err := m.Decode("ServiceAccount/cluster-autoscaler", &sa); err != nil {
			t.Fatal(err)
		}
		if sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/coder-cluster-autoscaler" {
			t.Errorf("service account annotations %v", sa.Annotations)
		}
	})
}

// TestClusterAutoscalerVersions: every served version says which
// autoscaler it packages, and its image defaults to that release.
func TestClusterAutoscalerVersions(t *testing.T) {
	chartSource(t, "cluster-autoscaler")
	r := shared.repo
	var got []string
	for _, v := range AutoscalerVersions {
		got = append(got, v.Version)
		ch, err := loader.Load(r.ChartArchive("cluster-autoscaler", v.Version))
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.AppVersion != v.AppVersion || !strings.HasPrefix(ch.Metadata.Description, "TEST STAND-IN") {
			t.Errorf("%s: appVersion %s description %q", v.Version, ch.Metadata.AppVersion, ch.Metadata.Description)
		}
		vals := autoscalerValues()
		delete(vals, "image")
		m, err := Render(r.ChartArchive("cluster-autoscaler", v.Version), "ca", "kube-system", vals)
		if err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		if err := m.Decode("Deployment/ca-aws-cluster-autoscaler", &d); err != nil {
			t.Fatal(err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.k8s.io/autoscaling/cluster-autoscaler:v"+v.AppVersion {
			t.Errorf("%s: default image %s, want tag v%s", v.Version, img, v.AppVersion)
		}
	}
	if !slices.Equal(r.Versions("cluster-autoscaler"), got) {
		t.Errorf("served %v, want %v", r.Versions("cluster-autoscaler"), got)
	}
	minors := map[string]bool{}
	for _, v := range AutoscalerVersions {
		minors[v.AppVersion[:strings.LastIndex(v.AppVersion, ".")]] = true
	}
	for _, want := range []string{"1.34", "1.35", "1.36", "1.37"} {
		if !minors[want] {
			t.Errorf("no chart for Kubernetes %s", want)
		}
	}
}

func TestClusterAutoscalerKeys(t *testing.T) {
	chartSource(t, "cluster-autoscaler")
	shared.repo.RequireChartKeys(t, "cluster-autoscaler", [][]string{
		{"autoDiscovery", "clusterName"}, {"autoDiscovery", "tags"}, {"awsRegion"}, {"cloudProvider"},
		{"rbac", "serviceAccount", "create"}, {"rbac", "serviceAccount", "name"}, {"rbac", "serviceAccount", "annotations", "eks.amazonaws.com/role-arn"},
		{"extraArgs"}, {"nodeSelector", "coder/node-type"}, {"tolerations"}, {"image", "tag"},
		{"replicaCount"}, {"podAnnotations", "cluster-autoscaler.kubernetes.io/safe-to-evict"},
	})
}
