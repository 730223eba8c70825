package secrets

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/coderctl/coderctl/configs"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
)

// releaseSpec names one of the two releases and how to build its values.
type releaseSpec struct {
	release, chart      string
	repoKey, versionKey string
	valuesKey           string
	defaults            string // embedded values file in configs
	// tolerationsPath is where the chart takes its DaemonSet's tolerations.
	tolerationsPath []string
	// owned is what the user's values file may extend but not undo.
	owned helmx.Owned
}

func driverSpec() releaseSpec {
	return releaseSpec{
		release: DriverRelease, chart: DriverChart,
		repoKey: config.KeyCSIDriverRepo, versionKey: config.KeyCSIDriverVersion,
		valuesKey: KeyDriverValuesFile, defaults: "csi-driver-values.yaml",
		tolerationsPath: []string{"linux", "tolerations"},
		owned: helmx.Owned{
			Key:   KeyDriverValuesFile,
			Lists: []helmx.OwnedList{{Path: []string{"linux", "tolerations"}}},
			Values: []helmx.OwnedValue{
				{Path: []string{"syncSecret", "enabled"},
					Why: leaveOut(KeyDriverValuesFile) + "coderd reads the database URL from secret coder-secrets, which exists only while the driver syncs it"},
				{Path: []string{"linux", "enabled"}, Allow: []any{true},
					Why: leaveOut(KeyDriverValuesFile) + "the driver must run on every Linux node, where coderd mounts its volume"},
			},
		},
	}
}

func providerSpec() releaseSpec {
	return releaseSpec{
		release: ProviderRelease, chart: ProviderChart,
		repoKey: config.KeyCSIAWSProviderRepo, versionKey: config.KeyCSIAWSProviderVersion,
		valuesKey: KeyProviderValuesFile, defaults: "csi-aws-provider-values.yaml",
		tolerationsPath: []string{"tolerations"},
		owned: helmx.Owned{
			Key:   KeyProviderValuesFile,
			Lists: []helmx.OwnedList{{Path: []string{"tolerations"}}},
			Values: []helmx.OwnedValue{
				{Path: []string{"secrets-store-csi-driver", "install"},
					Why: leaveOut(KeyProviderValuesFile) + "coderctl installs the driver as its own release " + DriverRelease + " with syncSecret.enabled; a second driver would compete with it"},
			},
		},
	}
}

// leaveOut starts the hint of a refused key of the file named by key.
func leaveOut(key string) string { return "leave it out of " + key + "; " }

// release builds the wanted release: embedded defaults, then the computed
// tolerations, then the user's values file held to spec.owned. Its
// tolerations add to coderctl's, so no values file can keep the driver
// off any node.
func (s *stage) release(spec releaseSpec) (helmx.Release, error) {
	computed := nest(spec.tolerationsPath, tolerateEverything())
	// No list here merges by name, so the merge has no notes to tell.
	values, _, err := helmx.MergeValues(configs.Read(spec.defaults), computed, s.d.Inputs.Get(spec.valuesKey), spec.owned)
	if err != nil {
		return helmx.Release{}, err
	}
	return helmx.Release{
		Name: spec.release, Namespace: ReleaseNamespace,
		Chart:  helmx.Chart{Name: spec.chart, Repo: s.d.Inputs.Get(spec.repoKey), Version: s.d.Inputs.Get(spec.versionKey)},
		Values: values,
		// Wait: the DaemonSets must be ready on every node before coderd
		// mounts the volume.
		Wait: true,
	}, nil
}

// nest puts v at path in a fresh map.
func nest(path []string, v any) map[string]any {
	out := map[string]any{path[len(path)-1]: v}
	for i := len(path) - 2; i >= 0; i-- {
		out = map[string]any{path[i]: out}
	}
	return out
}

// tolerateEverything is both DaemonSets' tolerations: the empty-key Exists
// toleration, which matches every taint. The driver must run on every node
// where a pod may mount the volume, including node groups added later with
// taints of their own that this run never saw; a list of today's taints
// would leave those nodes without the driver. The real driver chart's own
// default is the same ([{operator: Exists}]); the AWS provider's is none.
func tolerateEverything() []any {
	return []any{map[string]any{"operator": string(corev1.TolerationOpExists)}}
}

func (s *stage) planRelease(ctx context.Context, spec releaseSpec) ([]engine.Action, error) {
	res := "helm-release/" + ReleaseNamespace + "/" + spec.release
	rel, err := s.release(spec)
	if err != nil {
		return nil, err
	}
	k, err := s.kubeClients(ctx)
	if err != nil {
		return []engine.Action{{Kind: engine.Create, Resource: res,
			Reason: fmt.Sprintf("install %s once the cluster is reachable (%v)", rel.Chart, err)}}, nil
	}
	action, err := k.helm.PlanAction(ctx, res, rel)
	if err != nil {
		return nil, err
	}
	return []engine.Action{action}, nil
}

func (s *stage) applyRelease(ctx context.Context, r engine.Reporter, spec releaseSpec) error {
	rel, err := s.release(spec)
	if err != nil {
		return err
	}
	k, err := s.kubeClients(ctx)
	if err != nil {
		return err
	}
	r.Progress(fmt.Sprintf("release %s/%s: %s", ReleaseNamespace, spec.release, rel.Chart))
	_, _, err = k.helm.Apply(ctx, rel, r.Progress)
	return err
}

func (s *stage) destroyRelease(ctx context.Context, r engine.Reporter, spec releaseSpec) error {
	return s.d.UninstallRelease(ctx, r.Progress, ReleaseNamespace, spec.release)
}

// releaseStep is the step installing spec's chart: plan, apply and destroy
// of that one release.
func (s *stage) releaseStep(name string, needs []string, spec releaseSpec) engine.Step {
	return engine.Step{Name: name, Needs: needs, Typical: typicalRelease,
		Plan:    func(ctx context.Context) ([]engine.Action, error) { return s.planRelease(ctx, spec) },
		Apply:   func(ctx context.Context, r engine.Reporter) error { return s.applyRelease(ctx, r, spec) },
		Destroy: func(ctx context.Context, r engine.Reporter) error { return s.destroyRelease(ctx, r, spec) }}
}
