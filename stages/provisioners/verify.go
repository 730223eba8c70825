package provisioners

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
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
	CheckPods      = "pods"
	CheckKeySecret = "key-secret"
	CheckDaemons   = "daemons"
	CheckCapacity  = "capacity"
)

// PremiumProvisionersMessage is what an unlicensed deployment is told.
const PremiumProvisionersMessage = "external provisioners are a Coder Premium feature and this deployment has no license for them: " +
	"coderd refuses their connections, so no workspace can be built"

func selector() string {
	return labels.SelectorFromSet(map[string]string{"app.kubernetes.io/name": ChartName, "app.kubernetes.io/instance": ReleaseName}).String()
}

func (s *stage) verify(ctx context.Context) []engine.Check {
	kc, _, kubeErr := s.d.KubeClient(ctx)
	want := helmx.DeploymentReplicas(ctx, kc, names.CoderNamespace, ChartName, s.sizing().Provisioners.Replicas)
	pods := func(ctx context.Context) engine.Check {
		if kubeErr != nil {
			return engine.Failf(CheckPods, "check --kubeconfig or that the EKS cluster exists", "cannot reach the cluster: %v", kubeErr)
		}
		return sizing.PodsOnNodes(ctx, kc, sizing.PodsSpec{Namespace: names.CoderNamespace,
			Check: CheckPods, What: "provisioner", Selector: selector(), Role: sizing.RoleProvisioner, Want: want,
			Hint: "kubectl -n coder describe pods -l app.kubernetes.io/name=coder-provisioner (Pending: the provisioner node group is too small, see the capacity check)",
		})
	}
	return engine.Concurrently(ctx, engine.One(pods),
		engine.One(func(ctx context.Context) engine.Check { return s.checkKeySecret(ctx, kc, kubeErr) }),
		engine.One(func(ctx context.Context) engine.Check { return s.checkDaemons(ctx, kc, want) }),
		engine.One(func(context.Context) engine.Check {
			return sizing.CapacityCheck(s.sizing(), s.d.NodeGroups(), s.d.Inputs.Autoscaling())
		}))
}

func (s *stage) checkKeySecret(ctx context.Context, kc kubernetes.Interface, kubeErr error) engine.Check {
	hint := fmt.Sprintf("run 'coderctl stage %s apply' with %s set: it creates the key and the secret", Name, coderapi.EnvSessionToken)
	if kubeErr != nil {
		return engine.Failf(CheckKeySecret, hint, "cannot reach the cluster: %v", kubeErr)
	}
	sec, err := readKeySecret(ctx, kc)
	switch {
	case err != nil:
		return engine.Failf(CheckKeySecret, hint, "%v", err)
	case !sec.exists:
		return engine.Failf(CheckKeySecret, hint, "secret %s/%s does not exist", names.CoderNamespace, KeySecretName)
	case !sec.filled:
		return engine.Failf(CheckKeySecret, hint, "secret %s/%s has no %q key", names.CoderNamespace, KeySecretName, KeySecretKey)
	}
	return engine.Passf(CheckKeySecret, "secret %s/%s holds provisioner key %s", names.CoderNamespace, KeySecretName, KeyName)
}

// checkDaemons asks coderd which daemons are connected with the key and
// counts only the live ones: coderd keeps listing a daemon for three
// minutes after its pod is gone (coderapi.StaleInterval), so a rollout
// whose new pods never connect would otherwise pass on the old pods'
// daemons.
func (s *stage) checkDaemons(ctx context.Context, kc kubernetes.Interface, want int) engine.Check {
	client, org, fail := s.daemonsClient(ctx)
	if fail != nil {
		return *fail
	}
	list, err := client.DaemonsForKey(ctx, org, KeyName)
	switch {
	case err != nil:
		return engine.Failf(CheckDaemons, hintFor(s, err), "%v", err)
	case list.Key == nil:
		return engine.Failf(CheckDaemons, fmt.Sprintf("run 'coderctl stage %s apply' with %s set: it creates the key", Name, coderapi.EnvSessionToken),
			"Coder has no provisioner key %s", KeyName)
	}
	live, notLive := countDaemons(list, runningPodNames(ctx, kc))
	if len(live) < want {
		return engine.Failf(CheckDaemons, "kubectl -n coder logs -l app.kubernetes.io/name=coder-provisioner (a rotated key needs the pods restarted: re-apply)",
			"%d of %d provisioner daemons connected with key %s%s", len(live), want, KeyName, notCounted(notLive))
	}
	return engine.Passf(CheckDaemons, "%d provisioner daemons connected with key %s (%d wanted)%s", len(live), KeyName, want, notCounted(notLive))
}

// daemonsClient is an authenticated client and the default organization,
// or the check that says why there is none: no token, no license.
func (s *stage) daemonsClient(ctx context.Context) (*coderapi.Client, string, *engine.Check) {
	fail := func(c engine.Check) (*coderapi.Client, string, *engine.Check) { return nil, "", &c }
	token := s.token()
	if token == "" {
		return fail(engine.Warnf(CheckDaemons, "export "+coderapi.EnvSessionToken+" (an owner's token) to check the connected daemons",
			"connected provisioner daemons not checked: no session token"))
	}
	client, err := coderapi.ForInputs(s.d.Inputs, token)
	if err != nil {
		return fail(engine.Failf(CheckDaemons, "check CODER_URL and CODER_CA_FILE", "%v", err))
	}
	ent, err := client.Entitlements(ctx)
	if err != nil {
		return fail(engine.Failf(CheckDaemons, hintFor(s, err), "cannot read entitlements: %v", err))
	}
	if !ent.HasLicense || !ent.Entitled(coderapi.FeatureExternalProvisioners) {
		return fail(engine.Failf(CheckDaemons, "add a Premium license with `coder licenses add`", "%s", PremiumProvisionersMessage))
	}
	org, err := client.DefaultOrganization(ctx)
	if err != nil {
		return fail(engine.Failf(CheckDaemons, hintFor(s, err), "%v", err))
	}
	return client, org.ID, nil
}

// countDaemons splits the key's daemons into those that count — coderd
// heard from them within StaleInterval by its own clock, and, when the
// provisioner pods are known, one of them runs under that name — and the
// names of the others, each with why it does not count.
func countDaemons(list coderapi.KeyDaemonList, pods map[string]bool) (live, notLive []string) {
	for _, d := range list.Daemons {
		switch {
		case !d.Live(list.At):
			notLive = append(notLive, d.Name+" (not seen for "+lastSeen(d, list.At)+")")
		case pods != nil && !pods[d.Name]:
			notLive = append(notLive, d.Name+" (its pod is gone)")
		default:
			live = append(live, d.Name)
		}
	}
	return live, notLive
}

func lastSeen(d coderapi.ProvisionerDaemon, at time.Time) string {
	if d.LastSeenAt == nil {
		return "ever"
	}
	return at.Sub(*d.LastSeenAt).Round(time.Second).String()
}

func notCounted(names []string) string {
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	if len(names) > 5 {
		names = append(names[:5:5], fmt.Sprintf("and %d more", len(names)-5))
	}
	return fmt.Sprintf("; not counted: %s", strings.Join(names, ", "))
}

// daemonNameEnv overrides the name `coder provisioner start` registers
// with, which is otherwise its hostname (enterprise/cli/
// provisionerdaemonstart.go) — in Kubernetes the pod's name.
const daemonNameEnv = "CODER_PROVISIONER_DAEMON_NAME"

// runningPodNames names the provisioner pods running now, which are the
// names their daemons register under; nil when that is unknown (no
// cluster, or a values file that renames the daemons), and then only
// last_seen_at decides.
func runningPodNames(ctx context.Context, kc kubernetes.Interface) map[string]bool {
	if kc == nil {
		return nil
	}
	pods, err := kc.CoreV1().Pods(names.CoderNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector()})
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, p := range pods.Items {
		if renamesDaemon(&p) {
			return nil
		}
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			names[p.Name] = true
		}
	}
	return names
}

func renamesDaemon(p *corev1.Pod) bool {
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == daemonNameEnv {
				return true
			}
		}
	}
	return false
}

func hintFor(s *stage, err error) string {
	if coderapi.IsUnauthorized(err) {
		return tokenHint
	}
	return coderapi.UnreachableHint(s.d.Inputs, s.d.State.Get(names.KeyNLBHostname), err)
}
