package helmx

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/internal/fault"
)

// The fixture is a release shaped like the coder stage's: embedded
// defaults keeping the chart's Service in-cluster, computed env, CSI volume,
// placement and IRSA annotation, and the keys coderctl owns among them.
const (
	fixtureKey     = "CODER_VALUES_FILE"
	fixtureRoleARN = "arn:aws:iam::123456789012:role/coder-secrets"
	fixtureURL     = "https://coder.example.com"
)

var fixtureBase = []byte(`
coder:
  service:
    enable: true
    type: ClusterIP
  serviceAccount:
    name: coder
`)

func fixtureComputed() map[string]any {
	readOnly := true
	return map[string]any{"coder": map[string]any{
		"replicaCount": 2,
		"env": []corev1.EnvVar{
			{Name: "CODER_ACCESS_URL", Value: fixtureURL},
			{Name: "CODER_PROVISIONER_DAEMONS", Value: "0"},
			{Name: "CODER_PG_CONNECTION_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "coder-secrets"}, Key: "database-url"}}},
		},
		"volumes": []corev1.Volume{{Name: "coder-secrets", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
			Driver: "secrets-store.csi.k8s.io", ReadOnly: &readOnly}}}},
		"volumeMounts": []corev1.VolumeMount{{Name: "coder-secrets", MountPath: "/mnt/secrets-store", ReadOnly: true}},
		"tolerations":  []corev1.Toleration{{Key: "coder/node-type", Operator: corev1.TolerationOpEqual, Value: "coderd", Effect: corev1.TaintEffectNoSchedule}},
		"nodeSelector": map[string]string{"coder/node-type": "coderd"},
		"serviceAccount": map[string]any{
			"annotations": map[string]any{"eks.amazonaws.com/role-arn": fixtureRoleARN},
		},
	}}
}

func fixtureOwned() Owned {
	return Owned{
		Key: fixtureKey,
		Lists: []OwnedList{
			{Path: []string{"coder", "env"}, ByName: true, Refuse: map[string]string{"CODER_HTTP_ADDRESS": "the Services target port 8080"}},
			{Path: []string{"coder", "volumes"}, ByName: true},
			{Path: []string{"coder", "volumeMounts"}, ByName: true},
			{Path: []string{"coder", "tolerations"}},
		},
		Values: []OwnedValue{
			{Path: []string{"coder", "service", "enable"}, Why: "in-cluster clients use it"},
			{Path: []string{"coder", "service", "type"}, Why: "coder-lb is the only public Service"},
			{Path: []string{"coder", "tls", "secretNames"}, Allow: []any{[]any{}}, Why: "TLS ends at the NLB"},
			{Path: []string{"coder", "serviceAccount", "name"}, Why: "the IRSA trust names it"},
			{Path: []string{"coder", "serviceAccount", "annotations", "eks.amazonaws.com/role-arn"}, Why: "IRSA"},
			{Path: []string{"coder", "nodeSelector", "coder/node-type"}, Why: "placement"},
		},
	}
}

func mergeFixture(t *testing.T, override string) (map[string]any, []string, string, error) {
	t.Helper()
	file := writeTemp(t, "values.yaml", override)
	values, notes, err := MergeValues(fixtureBase, fixtureComputed(), file, fixtureOwned())
	return values, notes, file, err
}

// at reads a path of the merged values for assertions.
func at(t *testing.T, values map[string]any, path ...string) any {
	t.Helper()
	v, ok := lookup(values, path)
	if !ok {
		t.Fatalf("%s missing from %v", PathString(path), values)
	}
	return v
}

func names(t *testing.T, list any) []string {
	t.Helper()
	var out []string
	for _, e := range list.([]any) {
		name, _ := entryName(e)
		out = append(out, name)
	}
	return out
}

func env(name, value string) map[string]any { return map[string]any{"name": name, "value": value} }

func TestMergeValuesOwnedAccepts(t *testing.T) {
	ourEnv := []string{"CODER_ACCESS_URL", "CODER_PROVISIONER_DAEMONS", "CODER_PG_CONNECTION_URL"}
	cases := []struct {
		name     string
		override string
		notes    []string
		check    func(t *testing.T, v map[string]any)
	}{
		{
			name:     "extra env variables are added after coderctl's",
			override: "coder:\n  env:\n    - {name: CODER_TELEMETRY_ENABLE, value: \"false\"}\n    - {name: GREETING, value: \"$(CODER_ACCESS_URL)/hi\"}\n",
			check: func(t *testing.T, v map[string]any) {
				want := append(slices.Clone(ourEnv), "CODER_TELEMETRY_ENABLE", "GREETING")
				if got := names(t, at(t, v, "coder", "env")); !slices.Equal(got, want) {
					t.Errorf("env names %v, want %v", got, want)
				}
			},
		},
		{
			name:     "coderctl's variables win, and it is said",
			override: "coder:\n  env:\n    - {name: CODER_ACCESS_URL, value: \"http://coder.internal\"}\n    - {name: CODER_PROVISIONER_DAEMONS, value: \"3\"}\n    - {name: EXTRA, value: x}\n",
			notes: []string{
				"CODER_VALUES_FILE sets coder.env CODER_ACCESS_URL: coderctl's value is kept",
				"CODER_VALUES_FILE sets coder.env CODER_PROVISIONER_DAEMONS: coderctl's value is kept",
			},
			check: func(t *testing.T, v map[string]any) {
				list := at(t, v, "coder", "env").([]any)
				if !reflect.DeepEqual(list[0], env("CODER_ACCESS_URL", fixtureURL)) || !reflect.DeepEqual(list[1], env("CODER_PROVISIONER_DAEMONS", "0")) {
					t.Errorf("env %v, want coderctl's values first", list)
				}
				if got := names(t, list); !slices.Equal(got, append(slices.Clone(ourEnv), "EXTRA")) {
					t.Errorf("env names %v", got)
				}
			},
		},
		{
			name:     "repeating coderctl's own entry is silent",
			override: "coder:\n  env:\n    - {name: CODER_PROVISIONER_DAEMONS, value: \"0\"}\n",
			check: func(t *testing.T, v map[string]any) {
				if got := names(t, at(t, v, "coder", "env")); !slices.Equal(got, ourEnv) {
					t.Errorf("env names %v, want %v", got, ourEnv)
				}
			},
		},
		{
			name:     "an empty env list keeps coderctl's",
			override: "coder:\n  env: []\n",
			check: func(t *testing.T, v map[string]any) {
				if got := names(t, at(t, v, "coder", "env")); !slices.Equal(got, ourEnv) {
					t.Errorf("env names %v, want %v", got, ourEnv)
				}
			},
		},
		{
			name:     "volumes and mounts merge by name; the CSI volume stays coderctl's",
			override: "coder:\n  volumes:\n    - {name: coder-secrets, emptyDir: {}}\n    - {name: cache, emptyDir: {}}\n  volumeMounts:\n    - {name: cache, mountPath: /cache}\n",
			notes:    []string{"CODER_VALUES_FILE sets coder.volumes coder-secrets: coderctl's value is kept"},
			check: func(t *testing.T, v map[string]any) {
				vols := at(t, v, "coder", "volumes").([]any)
				if got := names(t, vols); !slices.Equal(got, []string{"coder-secrets", "cache"}) {
					t.Errorf("volumes %v", got)
				}
				if _, csi := vols[0].(map[string]any)["csi"]; !csi {
					t.Errorf("coder-secrets volume %v lost its CSI source", vols[0])
				}
				if got := names(t, at(t, v, "coder", "volumeMounts")); !slices.Equal(got, []string{"coder-secrets", "cache"}) {
					t.Errorf("volumeMounts %v", got)
				}
			},
		},
		{
			name:     "tolerations are added to coderctl's, equal ones once",
			override: "coder:\n  tolerations:\n    - {key: coder/node-type, operator: Equal, value: coderd, effect: NoSchedule}\n    - {key: dedicated, operator: Exists}\n",
			check: func(t *testing.T, v map[string]any) {
				if got := len(at(t, v, "coder", "tolerations").([]any)); got != 2 {
					t.Errorf("%d tolerations, want coderctl's and the new one", got)
				}
			},
		},
		{
			name:     "owned values repeated, allowed values, and free keys",
			override: "coder:\n  replicaCount: 1\n  service: {type: ClusterIP, enable: true, annotations: {team: a}}\n  tls: {secretNames: []}\n  nodeSelector: {disk: ssd}\n",
			check: func(t *testing.T, v map[string]any) {
				if got := at(t, v, "coder", "replicaCount"); got != float64(1) {
					t.Errorf("replicaCount %v, want the file's 1", got)
				}
				if got := at(t, v, "coder", "nodeSelector"); !reflect.DeepEqual(got, map[string]any{"coder/node-type": "coderd", "disk": "ssd"}) {
					t.Errorf("nodeSelector %v", got)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, notes, _, err := mergeFixture(t, tc.override)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(notes, tc.notes) {
				t.Errorf("notes %q, want %q", notes, tc.notes)
			}
			tc.check(t, v)
		})
	}
}

func TestMergeValuesOwnedRefuses(t *testing.T) {
	cases := []struct {
		name     string
		override string
		field    string // after "CODER_VALUES_FILE "
		msg      string
	}{
		{"service of type LoadBalancer", "coder:\n  service:\n    type: LoadBalancer\n",
			"coder.service.type", `set to "LoadBalancer"; coderctl keeps it "ClusterIP"`},
		{"service of type NodePort", "coder: {service: {type: NodePort}}", "coder.service.type", `"NodePort"`},
		{"service type null (the chart's default is LoadBalancer)", "coder: {service: {type: null}}", "coder.service.type", "set to null; coderctl keeps it \"ClusterIP\""},
		{"chart service turned off", "coder: {service: {enable: false}}", "coder.service.enable", `set to false; coderctl keeps it true`},
		{"service mapping replaced by null", "coder: {service: null}", "coder.service", "is null, not a mapping; it would remove coder.service.enable"},
		{"coder mapping replaced by text", "coder: hello\n", "coder", `is "hello", not a mapping`},
		{"TLS in coderd", "coder: {tls: {secretNames: [my-cert]}}", "coder.tls.secretNames", "coderctl leaves it unset"},
		{"other service account", "coder: {serviceAccount: {name: mine}}", "coder.serviceAccount.name", `"mine"`},
		{"IRSA annotation replaced", "coder:\n  serviceAccount:\n    annotations:\n      eks.amazonaws.com/role-arn: arn:aws:iam::1:role/other\n",
			`coder.serviceAccount.annotations["eks.amazonaws.com/role-arn"]`, "arn:aws:iam::1:role/other"},
		{"IRSA annotations emptied by null", "coder: {serviceAccount: {annotations: null}}", "coder.serviceAccount.annotations", "is null"},
		{"placement label changed", "coder: {nodeSelector: {coder/node-type: workspace}}", `coder.nodeSelector["coder/node-type"]`, `"workspace"`},
		{"env not a list", "coder: {env: {CODER_ACCESS_URL: x}}", "coder.env", "not a list"},
		{"env null", "coder: {env: null}", "coder.env", "is null, not a list"},
		{"env entry without a name", "coder: {env: [{value: x}]}", "coder.env", "entry 1 has no name"},
		{"env entry not a mapping", "coder: {env: [{name: A, value: b}, plain]}", "coder.env", "entry 2 has no name"},
		{"env name twice", "coder: {env: [{name: A, value: b}, {name: A, value: c}]}", "coder.env", "lists A twice"},
		{"env name coderctl refuses", "coder: {env: [{name: CODER_HTTP_ADDRESS, value: \"0.0.0.0:3000\"}]}", "coder.env", "sets CODER_HTTP_ADDRESS"},
		{"tolerations not a list", "coder: {tolerations: {key: a}}", "coder.tolerations", "not a list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, file, err := mergeFixture(t, tc.override)
			var ie *fault.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want bad input", err)
			}
			if ie.Source != file || ie.Field != fixtureKey+" "+tc.field || !strings.Contains(ie.Msg, tc.msg) {
				t.Errorf("err = %#v,\nwant source %s, field %q, message containing %q", ie, file, fixtureKey+" "+tc.field, tc.msg)
			}
			if fault.ExitCode(err) != fault.ExitInput {
				t.Errorf("exit code %d", fault.ExitCode(err))
			}
		})
	}
}

func TestMergeValuesReadErrors(t *testing.T) {
	dir := t.TempDir()
	_, _, err := MergeValues(fixtureBase, nil, dir, fixtureOwned())
	if !fault.IsInput(err) || !strings.Contains(err.Error(), dir+": "+fixtureKey+": cannot read values file") {
		t.Errorf("a directory as values file: %v, want bad input naming it and the key", err)
	}
}

func TestPathString(t *testing.T) {
	cases := []struct {
		path []string
		want string
	}{
		{[]string{"coder", "service", "type"}, "coder.service.type"},
		{[]string{"coder", "serviceAccount", "annotations", "eks.amazonaws.com/role-arn"}, `coder.serviceAccount.annotations["eks.amazonaws.com/role-arn"]`},
		{[]string{"secrets-store-csi-driver", "install"}, "secrets-store-csi-driver.install"},
		{[]string{"a.b", "c"}, `["a.b"].c`},
	}
	for _, tc := range cases {
		if got := PathString(tc.path); got != tc.want {
			t.Errorf("PathString(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
}
