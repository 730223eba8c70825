package coder

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/configs"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/sizing"
)

// ValuesFile is the embedded default values file of the coder release.
const ValuesFile = "coder-values.yaml"

// csiVolume is the Secrets Store CSI volume coderd mounts: the driver syncs
// coder-secrets only while some pod mounts the class.
const (
	csiVolumeName = "coder-secrets"
	csiMountPath  = "/mnt/secrets-store"
	csiDriver     = names.CSIDriver
)

// values builds the release's values: the embedded defaults, what coderctl
// computes, then CODER_VALUES_FILE, held to Owned. The notes say where
// coderctl's entries were kept over the file's.
func (s *stage) values(roleARN string) (map[string]any, []string, error) {
	return helmx.MergeValues(configs.Read(ValuesFile), s.computedValues(roleARN), s.d.Inputs.Get(KeyValuesFile), Owned())
}

// PrometheusAddress is where coderd serves its metrics: every interface of
// the pod, so a scraper in the cluster reaches it on port 2112.
const PrometheusAddress = "0.0.0.0:2112"

// annRoleARN is the IRSA annotation of coderd's service account.
const annRoleARN = "eks.amazonaws.com/role-arn"

// Owned is what CODER_VALUES_FILE may extend but not undo (decisions.md
// 12): coderd's env, volumes and mounts merge by name and its tolerations
// add up; the rest is what decision 6, the IRSA trust and the verify checks
// rely on.
func Owned() helmx.Owned {
	const leaveOut = "leave it out of " + KeyValuesFile + "; "
	return helmx.Owned{
		Key: KeyValuesFile,
		Lists: []helmx.OwnedList{
			{Path: []string{"coder", "env"}, ByName: true, Refuse: map[string]string{
				"CODER_HTTP_ADDRESS": leaveOut + "the Services coder and coder-lb reach coderd on its http port, 8080",
				"CODER_TLS_ENABLE":   leaveOut + "TLS ends at the NLB with CERT_ARN (decisions.md 6)",
			}},
			{Path: []string{"coder", "volumes"}, ByName: true},
			{Path: []string{"coder", "volumeMounts"}, ByName: true},
			{Path: []string{"coder", "tolerations"}},
		},
		Values: []helmx.OwnedValue{
			{Path: []string{"coder", "service", "enable"},
				Why: leaveOut + "provisioners reach coderd through the chart's in-cluster Service " + names.CoderInClusterURL},
			{Path: []string{"coder", "service", "type"},
				Why: leaveOut + "the chart's Service stays ClusterIP; the public entry is coderctl's Service " + ServiceName + ", an NLB on 443 only (decisions.md 6)"},
			{Path: []string{"coder", "tls", "secretNames"}, Allow: []any{[]any{}, nil},
				Why: leaveOut + "TLS ends at the NLB with the ACM certificate CERT_ARN, which cannot be exported into the cluster (decisions.md 6)"},
			{Path: []string{"coder", "serviceAccount", "name"},
				Why: leaveOut + "the IRSA role trusts only system:serviceaccount:" + names.CoderNamespace + ":" + names.CoderServiceAccount},
			{Path: []string{"coder", "serviceAccount", "disableCreate"}, Allow: []any{false},
				Why: leaveOut + "the chart's service account carries the IRSA annotation"},
			{Path: []string{"coder", "serviceAccount", "annotations", annRoleARN},
				Why: leaveOut + "coderctl sets it to the secrets stage's SECRETS_ROLE_ARN"},
			{Path: []string{"coder", "nodeSelector", sizing.NodeTypeLabel},
				Why: leaveOut + "coderd runs on the node group labelled " + sizing.NodeTypeLabel + "=" + sizing.RoleCoderd + " in cluster-config.yaml"},
		},
	}
}

func (s *stage) computedValues(roleARN string) map[string]any {
	sz := s.sizing()
	selector, tolerations := sizing.NodePlacement(s.d.NodeGroups(), sizing.RoleCoderd)
	return map[string]any{
		"coder": map[string]any{
			"replicaCount": sz.Coderd.Replicas,
			"resources":    sz.Coderd.Pod.Values(),
			"image":        map[string]any{"tag": "v" + s.d.Inputs.CoderVersion()},
			"nodeSelector": selector,
			"tolerations":  tolerations,
			"serviceAccount": map[string]any{
				"name":        names.CoderServiceAccount,
				"annotations": map[string]any{annRoleARN: roleARN},
			},
			"env":          s.env(),
			"volumes":      []corev1.Volume{csiVolume()},
			"volumeMounts": []corev1.VolumeMount{{Name: csiVolumeName, MountPath: csiMountPath, ReadOnly: true}},
		},
	}
}

// env is coderd's environment. The GitHub OAuth variables read optional
// keys: a deployment without GitHub OAuth secrets simply lacks them.
func (s *stage) env() []corev1.EnvVar {
	in := s.d.Inputs
	return []corev1.EnvVar{
		{Name: "CODER_ACCESS_URL", Value: in.CoderURL()},
		{Name: "CODER_WILDCARD_ACCESS_URL", Value: "*." + in.Domain()},
		// External provisioners only (the provisioners stage): builds never
		// run inside coderd.
		{Name: "CODER_PROVISIONER_DAEMONS", Value: "0"},
		// TLS ends at the NLB, but users only ever reach coderd over https:
		// session cookies must never travel in clear.
		{Name: "CODER_SECURE_AUTH_COOKIE", Value: "true"},
		// Metrics for monitoring the deployment. The chart exposes container
		// port 2112 (prometheus-http) only when this is literally "true".
		{Name: "CODER_PROMETHEUS_ENABLE", Value: "true"},
		{Name: "CODER_PROMETHEUS_ADDRESS", Value: PrometheusAddress},
		secretEnv("CODER_PG_CONNECTION_URL", names.SecretKeyDatabaseURL, false),
		secretEnv("CODER_OAUTH2_GITHUB_CLIENT_ID", names.SecretKeyGitHubClientID, true),
		secretEnv("CODER_OAUTH2_GITHUB_CLIENT_SECRET", names.SecretKeyGitHubClientSecret, true),
		secretEnv("CODER_OAUTH2_GITHUB_ALLOWED_ORGS", names.SecretKeyGitHubAllowedOrgs, true),
	}
}

func secretEnv(name, key string, optional bool) corev1.EnvVar {
	ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: names.CoderSecret}, Key: key}
	if optional {
		ref.Optional = &optional
	}
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref}}
}

func csiVolume() corev1.Volume {
	readOnly := true
	return corev1.Volume{
		Name: csiVolumeName,
		VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
			Driver:           csiDriver,
			ReadOnly:         &readOnly,
			VolumeAttributes: map[string]string{"secretProviderClass": names.SecretProviderClass},
		}},
	}
}

// noteActions puts the values merge's notes into the plan, where they are
// read before anything changes. A file validate refuses has no notes.
func (s *stage) noteActions() []engine.Action {
	_, notes, err := s.values(roleARNStandIn)
	if err != nil {
		return nil
	}
	return helmx.NoteActions(KeyValuesFile, notes)
}
