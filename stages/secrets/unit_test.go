package secrets

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func TestPostgresURLReadsBack(t *testing.T) {
	cases := []struct{ name, user, password, db string }{
		{"plain", "coder", "abcDEF123", "coder"},
		{"url syntax", "coder", `p@ss:w/rd?#[]`, "coder"},
		{"percent and plus", "coder", "100%+sure", "coder"},
		{"quotes, spaces, shell", "coder", `a b'c"d$e!f&g=h;i,j*k(l)m`, "coder"},
		{"every printable", "co der", func() string {
			b := make([]byte, 0, 95)
			for c := byte(' '); c <= '~'; c++ {
				b = append(b, c)
			}
			return string(b)
		}(), "my db"},
		{"utf-8", "coder", "pässwörd✓", "coder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := postgresURL(tc.user, tc.password, "db.example.com", 5432, tc.db)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("does not parse: %v", err)
			}
			pw, _ := u.User.Password()
			if u.User.Username() != tc.user || pw != tc.password {
				t.Errorf("credentials do not read back")
			}
			if u.Scheme != "postgres" || u.Host != "db.example.com:5432" || u.Path != "/"+tc.db || u.RawQuery != "sslmode=require" {
				t.Errorf("parsed as scheme %q host %q path %q query %q", u.Scheme, u.Host, u.Path, u.RawQuery)
			}
		})
	}
	if got := postgresURL("coder", "a@b", "h", 6543, "coder"); got != "postgres://coder:a%40b@h:6543/coder?sslmode=require" {
		t.Errorf("got %s", got)
	}
}

func TestSamePolicy(t *testing.T) {
	want := AccessPolicy("aws", "us-west-2", "123456789012", "coder-prod")
	cases := []struct {
		name string
		doc  string
		same bool
	}{
		{"compact JSON", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-prod/*"}]}`, true},
		{"URL-encoded as IAM returns it", url.QueryEscape(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-prod/*"}]}`), true},
		{"statement not in a list, actions reordered, resource in a list", `{"Statement":{"Resource":["arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-prod/*"],"Action":["secretsmanager:DescribeSecret","secretsmanager:GetSecretValue"],"Effect":"Allow"},"Version":"2012-10-17"}`, true},
		{"wider resource", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*"}]}`, false},
		{"every deployment's secrets (before per-deployment names)", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/*"}]}`, false},
		{"another deployment's secrets", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-staging/*"}]}`, false},
		{"extra action", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret","secretsmanager:PutSecretValue"],"Resource":"arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-prod/*"}]}`, false},
		{"extra statement", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-west-2:123456789012:secret:coder/coder-prod/*"},{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`, false},
		{"not JSON", `Version: 2012-10-17`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := awsx.SamePolicy(tc.doc, want); got != tc.same {
				t.Errorf("samePolicy = %v, want %v", got, tc.same)
			}
		})
	}
}

func TestTrustPolicy(t *testing.T) {
	const provider = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"
	got, err := Role.Trust(provider)
	if err != nil {
		t.Fatal(err)
	}
	cond := got["Statement"].([]any)[0].(map[string]any)["Condition"].(map[string]any)["StringEquals"].(map[string]any)
	want := map[string]any{
		"oidc.eks.us-west-2.amazonaws.com/id/ABC:sub": "system:serviceaccount:coder:coder",
		"oidc.eks.us-west-2.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
	}
	if !reflect.DeepEqual(cond, want) {
		t.Errorf("condition %v, want %v", cond, want)
	}
	for _, bad := range []string{"", "oidc.eks.us-west-2.amazonaws.com/id/ABC", "arn:aws:iam::123456789012:role/x", "arn:aws:iam::1:oidc-provider/"} {
		if _, err := Role.Trust(bad); err == nil {
			t.Errorf("Role.Trust(%q) accepted", bad)
		}
	}
}

func TestRequestTokenShape(t *testing.T) {
	a, b := requestToken("coder-prod", "coder/coder-prod/database-url", "create"), requestToken("coder-prod", "coder/coder-prod/database-url", "put", "v1")
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a) || !uuid.MatchString(b) || a == b {
		t.Errorf("tokens %q %q", a, b)
	}
	if requestToken("coder-prod", "coder/coder-prod/database-url", "create") != a {
		t.Error("token is not deterministic")
	}
}

func TestManifestDaemonSets(t *testing.T) {
	manifest := "---\n# Source: x/templates/sa.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n" +
		"---\n# Source: x/templates/ds.yaml\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: b-driver\n" +
		"---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: a-provider\nspec: {}\n"
	if got := manifestDaemonSets(manifest); !reflect.DeepEqual(got, []string{"a-provider", "b-driver"}) {
		t.Errorf("got %v", got)
	}
}

// testStage builds a stage over the shipped (or a given) cluster config,
// with inputs from the env file; it reaches no AWS or Kubernetes.
func testStage(t *testing.T, inputs map[string]string, clusterConfig string) *stage {
	t.Helper()
	var d *deploy.Deps
	if clusterConfig != "" {
		d = stagetest.NewWithClusterConfig(t, inputs, clusterConfig).Deps
	} else {
		d = stagetest.New(t, inputs).Deps
	}
	return &stage{d: d.With(deploy.StageOptions{LookupEnv: func(string) (string, bool) { return "", false }})}
}

// TestTolerationsCoverEveryTaint: both DaemonSets tolerate every taint,
// whatever taints cluster-config.yaml lists today, so a node group added
// later with a taint of its own still gets the driver.
func TestTolerationsCoverEveryTaint(t *testing.T) {
	gpuGroup := stagetest.WriteClusterConfig(t, t.TempDir(),
		"        value: workspace\n        effect: NoSchedule",
		"        value: workspace\n        effect: NoSchedule\n      - key: nvidia.com/gpu\n        value: \"true\"\n        effect: NoExecute")
	taints := []corev1.Taint{
		{Key: "coder/node-type", Value: "coderd", Effect: corev1.TaintEffectNoSchedule},
		{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoExecute},
		{Key: "team/later", Value: "x", Effect: corev1.TaintEffectPreferNoSchedule},
	}
	for _, spec := range []releaseSpec{driverSpec(), providerSpec()} {
		for _, cfg := range []string{"", gpuGroup} {
			rel, err := testStage(t, nil, cfg).release(spec)
			if err != nil {
				t.Fatal(err)
			}
			tols := decodeTolerations(t, valueAt(rel.Values, spec.tolerationsPath))
			for _, taint := range taints {
				if !slices.ContainsFunc(tols, func(tl corev1.Toleration) bool { return tolerates(tl, taint) }) {
					t.Errorf("%s (cluster config %q): tolerations %+v miss taint %v", spec.release, cfg, tols, taint)
				}
			}
		}
	}
}

// tolerates matches as the scheduler does (corev1.Toleration.ToleratesTaint,
// whose logger argument would make klog a direct dependency): an empty
// effect or key matches any, Exists matches any value.
func tolerates(tl corev1.Toleration, taint corev1.Taint) bool {
	return (tl.Effect == "" || tl.Effect == taint.Effect) && (tl.Key == "" || tl.Key == taint.Key) &&
		(tl.Operator == corev1.TolerationOpExists || tl.Value == taint.Value)
}

func valueAt(values map[string]any, path []string) any {
	var v any = values
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func decodeTolerations(t *testing.T, v any) []corev1.Toleration {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Toleration
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("tolerations %s: %v", data, err)
	}
	return out
}

func TestReleaseValues(t *testing.T) {
	override := filepath.Join(t.TempDir(), "driver.yaml")
	if err := os.WriteFile(override, []byte("linux:\n  podLabels:\n    team: platform\nrotationPollInterval: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testStage(t, map[string]string{"CODER_DOMAIN": "coder.example.com", KeyDriverValuesFile: override}, "")
	rel, err := s.release(driverSpec())
	if err != nil {
		t.Fatal(err)
	}
	if rel.Name != DriverRelease || rel.Namespace != "kube-system" || !rel.Wait ||
		rel.Chart.Name != "secrets-store-csi-driver" || rel.Chart.Version != "1.5.5" ||
		rel.Chart.Repo != s.d.Inputs.Get(config.KeyCSIDriverRepo) {
		t.Errorf("release %+v", rel)
	}
	v := rel.Values
	linux := v["linux"].(map[string]any)
	checks := []struct {
		what      string
		got, want any
	}{
		{"syncSecret.enabled (embedded default)", v["syncSecret"].(map[string]any)["enabled"], true},
		{"rotationPollInterval (user file over default)", v["rotationPollInterval"], "30s"},
		{"linux.podLabels (user file)", linux["podLabels"], map[string]any{"team": "platform"}},
		{"linux.tolerations (computed)", linux["tolerations"], []any{map[string]any{"operator": "Exists"}}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	prov, err := s.release(providerSpec())
	if err != nil {
		t.Fatal(err)
	}
	if sub := prov.Values["secrets-store-csi-driver"].(map[string]any); sub["install"] != false {
		t.Errorf("provider installs the driver subchart too: %v", sub)
	}
	if prov.Values["tolerations"] == nil || prov.Chart.Version != "2.2.0" || prov.Name != ProviderRelease {
		t.Errorf("provider release %+v", prov)
	}
}

func TestIsSecretARN(t *testing.T) {
	const prefix = "arn:aws:secretsmanager:us-west-2:123456789012:secret:"
	cases := []struct {
		arn, name string
		want      bool
	}{
		{prefix + "coder/coder-prod/database-url-AbCdEf", "coder/coder-prod/database-url", true},
		{prefix + "coder/database-url-AbCdEf", "coder/coder-prod/database-url", false},
		{prefix + "coder/coder-prod/database-url-2-AbCdEf", "coder/coder-prod/database-url", false},
		{prefix + "coder/coder-prod/database-url", "coder/coder-prod/database-url", false},
		{"coder/coder-prod/database-url-AbCdEf", "coder/coder-prod/database-url", false},
		{"", "coder/coder-prod/database-url", false},
	}
	for _, tc := range cases {
		if got := isSecretARN(tc.arn, tc.name); got != tc.want {
			t.Errorf("isSecretARN(%q, %q) = %v, want %v", tc.arn, tc.name, got, tc.want)
		}
	}
}
