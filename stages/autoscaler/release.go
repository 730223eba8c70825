package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/sizing"
)

// AnnotationSafeToEvict is the annotation the autoscaler honours before it
// removes a node: "false" keeps the pod's node. Workspaces carry it; so does
// the autoscaler itself, which must not evict itself mid-decision.
const AnnotationSafeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict"

// releaseTimeout bounds waiting for the autoscaler's one pod.
const releaseTimeout = 5 * time.Minute

// kubernetesMinor is the cluster's "1.34", from cluster-config.yaml.
func (s *stage) kubernetesMinor() string {
	if s.d.Cluster == nil || s.d.Cluster.Metadata == nil {
		return ""
	}
	parts := strings.SplitN(s.d.Cluster.Metadata.Version, ".", 3)
	if len(parts) < 2 {
		return s.d.Cluster.Metadata.Version
	}
	return parts[0] + "." + parts[1]
}

// errNoRelease says the repository has no release for the cluster's minor.
var errNoRelease = errors.New("no cluster-autoscaler release for the cluster's Kubernetes minor")

// chartVersion is AUTOSCALER_CHART_VERSION, or the newest chart release
// whose autoscaler is of the cluster's Kubernetes minor: the autoscaler
// supports only the control plane minor it was built for. Resolved once
// per run.
func (s *stage) chartVersion() (string, error) {
	if v := s.d.Inputs.Get(config.KeyAutoscalerVersion); v != "" {
		return v, nil
	}
	s.versionMu.Lock()
	defer s.versionMu.Unlock()
	if s.version != "" {
		return s.version, nil
	}
	repo := s.d.Inputs.Get(config.KeyAutoscalerChartRepo)
	releases, err := helmx.Releases(repo, Chart, s.d.HelmCacheDir)
	if err != nil {
		return "", err
	}
	minor := s.kubernetesMinor()
	r, ok := helmx.NewestForMinor(releases, minor)
	if !ok {
		return "", fmt.Errorf("%w: %s has none for Kubernetes %s (lines it has: %s)", errNoRelease, repo, minor, appLines(releases))
	}
	s.version = r.Version
	return r.Version, nil
}

// appLines lists the Kubernetes minors the releases cover, newest first.
func appLines(releases []helmx.ChartVersion) string {
	var lines []string
	seen := map[string]bool{}
	for _, r := range releases {
		parts := strings.SplitN(strings.TrimPrefix(r.AppVersion, "v"), ".", 3)
		if len(parts) < 2 || seen[parts[0]+"."+parts[1]] {
			continue
		}
		seen[parts[0]+"."+parts[1]] = true
		lines = append(lines, parts[0]+"."+parts[1])
	}
	if len(lines) == 0 {
		return "none"
	}
	return strings.Join(lines, ", ")
}

// values are the chart values coderctl sets (the official chart's keys).
func (s *stage) values(roleARN string) map[string]any {
	cluster := s.d.Deployment()
	v := map[string]any{
		"cloudProvider":    "aws",
		"awsRegion":        s.d.Region(),
		"fullnameOverride": Deployment,
		"autoDiscovery": map[string]any{
			"clusterName": cluster,
			"tags":        []any{TagEnabled, TagCluster(cluster)},
		},
		"rbac": map[string]any{"serviceAccount": map[string]any{
			"create":      true,
			"name":        ServiceAccount,
			"annotations": map[string]any{"eks.amazonaws.com/role-arn": roleARN},
		}},
		"podAnnotations": map[string]any{AnnotationSafeToEvict: "false"},
		"extraArgs": map[string]any{
			// Spread growth over similar groups (one per zone, say), so
			// the loss of a zone takes fewer nodes with it.
			"balance-similar-node-groups": true,
			// Of the groups that fit, grow the one that wastes least.
			"expander": "least-waste",
		},
	}
	if _, ok := sizing.GroupFor(s.d.NodeGroups(), sizing.RoleSystem); ok {
		v["nodeSelector"] = map[string]any{sizing.NodeTypeLabel: sizing.RoleSystem}
	}
	return v
}

func (s *stage) wantedRelease() (helmx.Release, error) {
	version, err := s.chartVersion()
	if err != nil {
		return helmx.Release{}, err
	}
	roleARN, err := s.d.Output(KeyRoleARN, Name)
	if err != nil {
		return helmx.Release{}, err
	}
	return helmx.Release{
		Name: Release, Namespace: Namespace,
		Chart:  helmx.Chart{Name: Chart, Repo: s.d.Inputs.Get(config.KeyAutoscalerChartRepo), Version: version},
		Values: s.values(roleARN),
		// Wait: verify and the stages after rely on it running. Helm's wait
		// reads the ReplicaSet, whose status the Deployment's lags by a
		// controller sync, so Apply also waits for the Deployment's own
		// rollout, as 'kubectl rollout status' does.
		Wait:      true,
		Timeout:   releaseTimeout,
		RolledOut: []string{Deployment},
	}, nil
}

func (s *stage) planRelease(ctx context.Context) ([]engine.Action, error) {
	res := "helm-release/" + Namespace + "/" + Release
	helm, err := s.helm(ctx)
	if !s.enabled() {
		if err != nil {
			return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "AUTOSCALER=none"}}, nil
		}
		if rel, _ := helm.Status(ctx, Release, Namespace); rel != nil {
			return []engine.Action{{Kind: engine.Delete, Resource: res, Reason: "AUTOSCALER=none: uninstall"}}, nil
		}
		return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "AUTOSCALER=none"}}, nil
	}
	if s.d.State.Get(KeyRoleARN) == "" {
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "install once the IAM role exists"}}, nil
	}
	rel, rerr := s.wantedRelease()
	if rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return []engine.Action{{Kind: engine.Create, Resource: res,
			Reason: fmt.Sprintf("install %s once the cluster is reachable (%v)", rel.Chart, err)}}, nil
	}
	action, err := helm.PlanAction(ctx, res, rel)
	if err != nil {
		return nil, err
	}
	return []engine.Action{action}, nil
}

func (s *stage) applyRelease(ctx context.Context, r engine.Reporter) error {
	if !s.enabled() {
		return s.destroyRelease(ctx, r)
	}
	rel, err := s.wantedRelease()
	if err != nil {
		return err
	}
	helm, err := s.helm(ctx)
	if err != nil {
		return err
	}
	r.Progress(fmt.Sprintf("release %s/%s: %s", Namespace, Release, rel.Chart))
	_, _, err = helm.Apply(ctx, rel, r.Progress)
	return err
}

func (s *stage) destroyRelease(ctx context.Context, r engine.Reporter) error {
	return s.d.UninstallRelease(ctx, r.Progress, Namespace, Release)
}

// helm returns a helm client for the cluster.
func (s *stage) helm(ctx context.Context) (*helmx.Client, error) {
	return s.d.Helm(ctx)
}
