package provisioners

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/sizing"
	"github.com/coderctl/coderctl/stages/coder"
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
	kc, _, kubeErr := coder.Kube(ctx, s.d)
	want := s.wantReplicas(ctx, kc)
	checks := make([]engine.Check, 4)
	var wg sync.WaitGroup
	run := func(i int, f func() engine.Check) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks[i] = f()
		}()
	}
	run(0, func() engine.Check {
		if kubeErr != nil {
			return engine.Failf(CheckPods, "check --kubeconfig or that the EKS cluster exists", "cannot reach the cluster: %v", kubeErr)
		}
		return coder.PodsOnNodes(ctx, kc, coder.PodsSpec{
			Check: CheckPods, What: "provisioner", Selector: selector(), Role: sizing.RoleProvisioner, Want: want,
			Hint: "kubectl -n coder describe pods -l app.kubernetes.io/name=coder-provisioner (Pending: the provisioner node group is too small, see the capacity check)",
		})
	})
	run(1, func() engine.Check { return s.checkKeySecret(ctx, kc, kubeErr) })
	run(2, func() engine.Check { return s.checkDaemons(ctx, want) })
	run(3, func() engine.Check { return sizing.CapacityCheck(s.sizing(), s.d.NodeGroups()) })
	wg.Wait()
	return checks
}

// wantReplicas is the Deployment's replica count (a values override may
// change it), else the sizing's.
func (s *stage) wantReplicas(ctx context.Context, kc kubernetes.Interface) int {
	if kc != nil {
		dep, err := kc.AppsV1().Deployments(coder.Namespace).Get(ctx, ChartName, metav1.GetOptions{})
		if err == nil && dep.Spec.Replicas != nil {
			return int(*dep.Spec.Replicas)
		}
	}
	return s.sizing().Provisioners.Replicas
}

func (s *stage) checkKeySecret(ctx context.Context, kc kubernetes.Interface, kubeErr error) engine.Check {
	hint := fmt.Sprintf("run 'coderctl stage %s apply' with %s set: it creates the key and the secret", Name, coder.EnvSessionToken)
	if kubeErr != nil {
		return engine.Failf(CheckKeySecret, hint, "cannot reach the cluster: %v", kubeErr)
	}
	sec, err := readKeySecret(ctx, kc)
	switch {
	case err != nil:
		return engine.Failf(CheckKeySecret, hint, "%v", err)
	case !sec.exists:
		return engine.Failf(CheckKeySecret, hint, "secret %s/%s does not exist", coder.Namespace, KeySecretName)
	case !sec.filled:
		return engine.Failf(CheckKeySecret, hint, "secret %s/%s has no %q key", coder.Namespace, KeySecretName, KeySecretKey)
	}
	return engine.Passf(CheckKeySecret, "secret %s/%s holds provisioner key %s", coder.Namespace, KeySecretName, KeyName)
}

// checkDaemons asks coderd which daemons are connected with the key.
func (s *stage) checkDaemons(ctx context.Context, want int) engine.Check {
	token := s.token()
	if token == "" {
		return engine.Warnf(CheckDaemons, "export "+coder.EnvSessionToken+" (an owner's token) to check the connected daemons",
			"connected provisioner daemons not checked: no session token")
	}
	client, err := coder.APIClient(s.d, token)
	if err != nil {
		return engine.Failf(CheckDaemons, "check CODER_URL and CODER_CA_FILE", "%v", err)
	}
	ent, err := client.Entitlements(ctx)
	if err != nil {
		return engine.Failf(CheckDaemons, hintFor(s, err), "cannot read entitlements: %v", err)
	}
	if !ent.HasLicense || !ent.Entitled(coderapi.FeatureExternalProvisioners) {
		return engine.Failf(CheckDaemons, "add a Premium license with `coder licenses add`", "%s", PremiumProvisionersMessage)
	}
	org, err := client.DefaultOrganization(ctx)
	if err != nil {
		return engine.Failf(CheckDaemons, hintFor(s, err), "%v", err)
	}
	daemons, err := client.DaemonsForKey(ctx, org.ID, KeyName)
	switch {
	case err != nil:
		return engine.Failf(CheckDaemons, hintFor(s, err), "%v", err)
	case len(daemons) < want:
		return engine.Failf(CheckDaemons, "kubectl -n coder logs -l app.kubernetes.io/name=coder-provisioner (a rotated key needs the pods restarted: re-apply)",
			"%d of %d provisioner daemons connected with key %s", len(daemons), want, KeyName)
	}
	return engine.Passf(CheckDaemons, "%d provisioner daemons connected with key %s (%d wanted)", len(daemons), KeyName, want)
}

func hintFor(s *stage, err error) string {
	if coderapi.IsUnauthorized(err) {
		return tokenHint
	}
	return coder.UnreachableHint(s.d, err)
}
