package secrets

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Check names, as verify reports them.
const (
	CheckDatabaseURL        = "database-url-secret"
	CheckOAuth              = "oauth-secrets"
	CheckRoleTrust          = "irsa-role-trust"
	CheckRolePolicy         = "irsa-role-policy"
	CheckDriverRelease      = "csi-driver-release"
	CheckDriverDaemonSets   = "csi-driver-daemonsets"
	CheckProviderRelease    = "csi-aws-provider-release"
	CheckProviderDaemonSets = "csi-aws-provider-daemonsets"
	CheckSPC                = "secret-provider-class"
)

const applyHint = "run 'coderctl stage secrets apply'"

func (s *stage) verify(ctx context.Context) []engine.Check {
	checks := []engine.Check{s.checkDatabaseURL(ctx), s.checkOAuth(ctx)}
	checks = append(checks, s.checkRole(ctx)...)
	k, err := s.kubeClients(ctx)
	if err != nil {
		for _, name := range []string{CheckDriverRelease, CheckDriverDaemonSets, CheckProviderRelease, CheckProviderDaemonSets, CheckSPC} {
			checks = append(checks, engine.Failf(name, "check the cluster access (--kubeconfig, or the eks stage)", "%v", err))
		}
		return checks
	}
	for _, c := range []struct {
		spec           releaseSpec
		release, pods  string
		needSyncSecret bool
	}{
		{driverSpec(), CheckDriverRelease, CheckDriverDaemonSets, true},
		{providerSpec(), CheckProviderRelease, CheckProviderDaemonSets, false},
	} {
		rel, check := s.checkRelease(ctx, k, c.spec, c.release, c.needSyncSecret)
		checks = append(checks, check, s.checkDaemonSets(ctx, k, c.spec, rel, c.pods))
	}
	return append(checks, s.checkSPC(ctx, k))
}

func (s *stage) checkDatabaseURL(ctx context.Context) engine.Check {
	const name = CheckDatabaseURL
	secret := s.dbURL().name
	sec, err := s.findSecret(ctx, secret, s.d.State.Get(names.KeyDatabaseURLSecretARN))
	switch {
	case err != nil:
		return engine.Failf(name, applyHint, "%v", err)
	case sec == nil:
		return engine.Failf(name, applyHint, "secret %s does not exist", secret)
	case sec.deleted:
		return engine.Failf(name, applyHint+" to restore it", "secret %s is scheduled for deletion", secret)
	case s.d.State.Get(names.KeyDatabaseURLSecretARN) != sec.arn:
		return engine.Failf(name, applyHint+" to record it", "%s in %s is not the ARN of %s", names.KeyDatabaseURLSecretARN, s.d.State.Path(), secret)
	}
	want, err := s.databaseURL(ctx)
	if err != nil {
		return engine.Failf(name, "run 'coderctl stage rds apply', then "+applyHint, "cannot build the wanted value: %v", err)
	}
	have, _, err := s.currentValue(ctx, sec.arn)
	switch {
	case err != nil:
		return engine.Failf(name, applyHint, "%v", err)
	case have != want:
		return engine.Failf(name, applyHint+" to update it", "secret %s does not hold the URL of the current database endpoint and master password", secret)
	case !awsx.HasTags(sec.tags, s.secretTags(secret)):
		return engine.Warnf(name, applyHint+" to tag it", "secret %s is not tagged for deployment %s", secret, s.d.Deployment())
	}
	return engine.Passf(name, "secret %s holds the database URL (sslmode=require)", secret)
}

// checkOAuth compares the secrets whose variables are set, and reports the
// others as present or not configured.
func (s *stage) checkOAuth(ctx context.Context) engine.Check {
	const name = CheckOAuth
	var present, absent []string
	for _, o := range s.oauthSecrets() {
		sec, err := s.findSecret(ctx, o.name, "")
		if err != nil {
			return engine.Failf(name, applyHint, "%v", err)
		}
		exists := sec != nil && !sec.deleted
		value := s.envValue(o.env)
		switch {
		case value != "" && !exists:
			return engine.Failf(name, applyHint, "%s is set but secret %s does not exist", o.env, o.name)
		case value != "":
			have, _, err := s.currentValue(ctx, sec.arn)
			if err != nil {
				return engine.Failf(name, applyHint, "%v", err)
			}
			if have != value {
				return engine.Failf(name, applyHint+" to update it", "secret %s differs from %s", o.name, o.env)
			}
		}
		if exists {
			present = append(present, o.name)
		} else {
			absent = append(absent, o.name)
		}
	}
	if len(present) == 0 {
		return engine.Passf(name, "GitHub OAuth not configured (optional: set %s and %s)", EnvGitHubClientID, EnvGitHubClientSecret)
	}
	reason := "present: " + strings.Join(present, ", ")
	if len(absent) > 0 {
		reason += "; not configured: " + strings.Join(absent, ", ")
	}
	return engine.Passf(name, "%s", reason)
}

func (s *stage) checkRole(ctx context.Context) []engine.Check {
	fail := func(hint, format string, args ...any) []engine.Check {
		return []engine.Check{engine.Failf(CheckRoleTrust, hint, format, args...), engine.Failf(CheckRolePolicy, hint, format, args...)}
	}
	st, err := s.d.ReadIRSARole(ctx, Role)
	switch {
	case err != nil:
		return fail(applyHint, "%v", err)
	case st == nil:
		return fail(applyHint, "IAM role %s does not exist", s.roleName())
	}
	var out []engine.Check
	switch {
	case !st.TrustOK:
		out = append(out, engine.Failf(CheckRoleTrust, applyHint+" to restore it",
			"IAM role %s's trust policy is not exactly: %s:%s with aud %s through %s", s.roleName(), names.CoderNamespace, names.CoderServiceAccount, awsx.STSAudience, s.d.State.Get(names.KeyOIDCProviderARN)))
	case s.d.State.Get(names.KeySecretsRoleARN) != st.ARN:
		out = append(out, engine.Failf(CheckRoleTrust, applyHint+" to record it", "%s in %s is not the ARN of IAM role %s", names.KeySecretsRoleARN, s.d.State.Path(), s.roleName()))
	default:
		out = append(out, engine.Passf(CheckRoleTrust, "IAM role %s is trusted only by %s/%s through the cluster's OIDC provider", s.roleName(), names.CoderNamespace, names.CoderServiceAccount))
	}
	if drift := st.Drift(); !st.PolicyOK || len(st.ExtraInline)+len(st.Attached) > 0 {
		out = append(out, engine.Failf(CheckRolePolicy, applyHint+" to restore it", "IAM role %s: %s", s.roleName(), strings.Join(drift, "; ")))
	} else {
		out = append(out, engine.Passf(CheckRolePolicy, "IAM role %s may only GetSecretValue and DescribeSecret on %s* secrets", s.roleName(), names.SecretPrefix(s.d.Deployment())))
	}
	return out
}

// checkRelease: deployed, at the pinned chart version, and (for the
// driver) syncing secrets into Kubernetes secrets.
func (s *stage) checkRelease(ctx context.Context, k *kubeAccess, spec releaseSpec, name string, needSyncSecret bool) (*release.Release, engine.Check) {
	rel, err := k.helm.Status(ctx, spec.release, ReleaseNamespace)
	want := s.d.Inputs.Get(spec.versionKey)
	switch {
	case err != nil:
		return nil, engine.Failf(name, "check the cluster access", "read release %s/%s: %v", ReleaseNamespace, spec.release, err)
	case rel == nil:
		return nil, engine.Failf(name, applyHint, "release %s/%s is not installed", ReleaseNamespace, spec.release)
	case rel.Info == nil || rel.Info.Status != release.StatusDeployed:
		return rel, engine.Failf(name, applyHint, "release %s/%s revision %d is %s", ReleaseNamespace, spec.release, rel.Version, releaseStatus(rel))
	case rel.Chart == nil || rel.Chart.Metadata == nil || rel.Chart.Metadata.Version != want:
		return rel, engine.Failf(name, applyHint+" to upgrade it", "release %s/%s is not chart %s %s", ReleaseNamespace, spec.release, spec.chart, want)
	case needSyncSecret && !syncSecretEnabled(rel.Config):
		return rel, engine.Failf(name, "remove syncSecret.enabled=false from "+KeyDriverValuesFile+", then "+applyHint,
			"release %s/%s has syncSecret.enabled off: %s would never be created", ReleaseNamespace, spec.release, names.CoderSecret)
	}
	return rel, engine.Passf(name, "release %s/%s deployed: chart %s %s, revision %d", ReleaseNamespace, spec.release, spec.chart, want, rel.Version)
}

func releaseStatus(rel *release.Release) string {
	if rel.Info == nil {
		return "unknown"
	}
	return string(rel.Info.Status)
}

func syncSecretEnabled(values map[string]any) bool {
	sync, _ := values["syncSecret"].(map[string]any)
	enabled, _ := sync["enabled"].(bool)
	return enabled
}

// checkDaemonSets: each DaemonSet of the release is scheduled on every
// node that runs Linux pods, tainted ones included, and ready there.
func (s *stage) checkDaemonSets(ctx context.Context, k *kubeAccess, spec releaseSpec, rel *release.Release, name string) engine.Check {
	if rel == nil {
		return engine.Failf(name, applyHint, "release %s/%s is not installed", ReleaseNamespace, spec.release)
	}
	names := manifestDaemonSets(rel.Manifest)
	if len(names) == 0 {
		return engine.Failf(name, "check the chart and "+spec.valuesKey, "release %s/%s renders no DaemonSet", ReleaseNamespace, spec.release)
	}
	nodes, err := k.kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return engine.Failf(name, "check the cluster access", "list nodes: %v", err)
	}
	eligible := linuxNodes(nodes.Items)
	var ok []string
	for _, ds := range names {
		msg, good := s.daemonSetOnEveryNode(ctx, k, ds, eligible)
		if !good {
			return engine.Failf(name, "the release's tolerations must cover every node taint (check "+spec.valuesKey+"), and its pods must be able to start", "%s", msg)
		}
		ok = append(ok, msg)
	}
	return engine.Passf(name, "%s", strings.Join(ok, "; "))
}

func (s *stage) daemonSetOnEveryNode(ctx context.Context, k *kubeAccess, name string, eligible []corev1.Node) (string, bool) {
	ds, err := k.kc.AppsV1().DaemonSets(ReleaseNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("DaemonSet %s/%s: %v", ReleaseNamespace, name, err), false
	}
	desired, ready := ds.Status.DesiredNumberScheduled, ds.Status.NumberReady
	if int(desired) == len(eligible) && ready == desired {
		return fmt.Sprintf("DaemonSet %s ready on all %d nodes", name, desired), true
	}
	missing := s.nodesWithoutReadyPod(ctx, k, ds, eligible)
	return fmt.Sprintf("DaemonSet %s/%s: %d nodes, %d scheduled, %d ready; no ready pod on %s",
		ReleaseNamespace, name, len(eligible), desired, ready, strings.Join(missing, ", ")), false
}

// nodesWithoutReadyPod names the nodes the DaemonSet misses, with their
// taints, so the reason says which toleration is missing.
func (s *stage) nodesWithoutReadyPod(ctx context.Context, k *kubeAccess, ds *appsv1.DaemonSet, eligible []corev1.Node) []string {
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return []string{"(unknown: bad selector)"}
	}
	pods, err := k.kc.CoreV1().Pods(ds.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return []string{fmt.Sprintf("(unknown: %v)", err)}
	}
	covered := map[string]bool{}
	for _, p := range pods.Items {
		if podReady(&p) {
			covered[p.Spec.NodeName] = true
		}
	}
	var out []string
	for _, n := range eligible {
		if covered[n.Name] {
			continue
		}
		desc := n.Name
		if len(n.Spec.Taints) > 0 {
			var taints []string
			for _, t := range n.Spec.Taints {
				taints = append(taints, fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect))
			}
			desc += " (taints " + strings.Join(taints, ", ") + ")"
		}
		out = append(out, desc)
	}
	if len(out) == 0 {
		out = []string{"(none: status not updated yet)"}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// linuxNodes are the nodes the DaemonSets must cover: not Windows, not
// Fargate or other virtual kubelets (which run no DaemonSets).
func linuxNodes(nodes []corev1.Node) []corev1.Node {
	var out []corev1.Node
	for _, n := range nodes {
		l := n.Labels
		if nodeOS := l[corev1.LabelOSStable]; nodeOS != "" && nodeOS != "linux" {
			continue
		}
		if l["eks.amazonaws.com/compute-type"] == "fargate" || l["type"] == "virtual-kubelet" {
			continue
		}
		out = append(out, n)
	}
	return out
}

// manifestDaemonSets lists the DaemonSets a release's manifest renders.
func manifestDaemonSets(manifest string) []string {
	var names []string
	for _, doc := range strings.Split(manifest, "\n---") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal([]byte(doc), &obj) == nil && obj.Kind == "DaemonSet" && obj.Metadata.Name != "" {
			names = append(names, obj.Metadata.Name)
		}
	}
	slices.Sort(names)
	return names
}

// checkSPC: the class exists and lists exactly the secrets to sync.
func (s *stage) checkSPC(ctx context.Context, k *kubeAccess) engine.Check {
	const name = CheckSPC
	objs, ok, err := s.syncedObjects(ctx)
	switch {
	case err != nil:
		return engine.Failf(name, applyHint, "%v", err)
	case !ok:
		return engine.Failf(name, applyHint, "%s is not recorded in %s", names.KeyDatabaseURLSecretARN, s.d.State.Path())
	}
	st, err := s.readSPC(ctx, k, objs)
	switch {
	case err != nil:
		return engine.Failf(name, "check the cluster access", "%v", err)
	case st.existing == nil:
		return engine.Failf(name, applyHint, "SecretProviderClass %s/%s does not exist", names.CoderNamespace, names.SecretProviderClass)
	case !st.same:
		return engine.Failf(name, applyHint+" to update it", "SecretProviderClass %s/%s: %s", names.CoderNamespace, names.SecretProviderClass, describeSPCDrift(st.existing, objs))
	}
	var arns []string
	for _, o := range objs {
		arns = append(arns, o.key+"="+o.arn)
	}
	return engine.Passf(name, "SecretProviderClass %s/%s syncs %s into secret %s", names.CoderNamespace, names.SecretProviderClass, strings.Join(arns, ", "), names.CoderSecret)
}

// describeSPCDrift says which ARNs the class lists that it should not, and
// which it misses.
func describeSPCDrift(u *unstructured.Unstructured, want []syncedObject) string {
	text, _, _ := unstructured.NestedString(u.Object, "spec", "parameters", "objects")
	var listed []spcObject
	_ = yaml.Unmarshal([]byte(text), &listed)
	have := map[string]string{}
	for _, o := range listed {
		have[o.ObjectName] = o.ObjectAlias
	}
	var problems []string
	for _, o := range want {
		switch alias, ok := have[o.arn]; {
		case !ok:
			problems = append(problems, "does not list "+o.arn)
		case alias != o.key:
			problems = append(problems, fmt.Sprintf("lists %s as %q, not %q", o.arn, alias, o.key))
		}
		delete(have, o.arn)
	}
	for arn := range have {
		problems = append(problems, "lists unexpected "+arn)
	}
	if len(problems) == 0 {
		return "provider, parameters or secretObjects differ from what coderctl wants"
	}
	slices.Sort(problems)
	return strings.Join(problems, "; ")
}
