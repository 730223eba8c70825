package provisioners

import (
	"context"
	"fmt"
	"slices"

	"github.com/Masterminds/semver/v3"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/configs"
	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/sizing"
)

// lastPSKDefaultChart is the last provisioner chart version whose PSK
// default must be cleared explicitly when a key is used.
const lastPSKDefaultChart = "2.17.0"

// NeedsEmptyPSK reports whether chart version v needs
// provisionerDaemon.pskSecretName: "" next to a key (versions ≤ 2.17.0).
// An unparsable version is treated as old: the empty name is harmless.
func NeedsEmptyPSK(v string) bool {
	ver, err := semver.NewVersion(v)
	if err != nil {
		return true
	}
	return !ver.GreaterThan(semver.MustParse(lastPSKDefaultChart))
}

// GracePeriodSeconds is the provisioner pods' terminationGracePeriodSeconds
// in configs/provisioner-values.yaml (the chart's default too): the
// longest build a rollout or a scale-down lets finish.
const GracePeriodSeconds = 600

// computedValues are the values coderctl derives; keyID rolls the pods
// when the key is rotated.
func (s *stage) computedValues(keyID string) map[string]any {
	sz := s.sizing()
	selector, tolerations := sizing.NodePlacement(s.d.NodeGroups(), sizing.RoleProvisioner)
	daemon := map[string]any{"keySecretName": KeySecretName, "keySecretKey": KeySecretKey}
	if NeedsEmptyPSK(s.chart().Version) {
		daemon["pskSecretName"] = ""
	}
	values := map[string]any{
		"coder": map[string]any{
			"replicaCount": sz.Provisioners.Replicas,
			"resources":    sz.Provisioners.Pod.Values(),
			"image":        map[string]any{"tag": "v" + s.d.Inputs.CoderVersion()},
			"nodeSelector": selector,
			"tolerations":  tolerations,
			// coderd through its in-cluster Service; no CODER_PROVISIONERD_TAGS:
			// the tags come from the key.
			"env": []map[string]any{{"name": "CODER_URL", "value": names.CoderInClusterURL}},
		},
		"provisionerDaemon": daemon,
	}
	if keyID != "" {
		values["coder"].(map[string]any)["podAnnotations"] = map[string]any{annKeyID: keyID}
	}
	return values
}

// Owned is what PROVISIONER_VALUES_FILE may extend but not undo
// (decisions.md 12): the env merges by name and the tolerations add up; the
// key the daemons authenticate with is coderctl's, and nothing may add tags
// or a PSK beside it (the daemons would not start).
func Owned() helmx.Owned {
	const leaveOut = "leave it out of " + KeyValuesFile + "; "
	const keyWhy = leaveOut + "the daemons authenticate with the provisioner key coderctl keeps in secret " + KeySecretName
	return helmx.Owned{
		Key: KeyValuesFile,
		Lists: []helmx.OwnedList{
			{Path: []string{"coder", "env"}, ByName: true, Refuse: map[string]string{
				"CODER_PROVISIONERD_TAGS":      leaveOut + "the tags come from the provisioner key; with a key set the daemons do not start",
				"CODER_PROVISIONER_DAEMON_KEY": keyWhy,
				"CODER_PROVISIONER_DAEMON_PSK": keyWhy,
			}},
			{Path: []string{"coder", "tolerations"}},
		},
		Values: []helmx.OwnedValue{
			{Path: []string{"provisionerDaemon", "keySecretName"}, Why: keyWhy},
			{Path: []string{"provisionerDaemon", "keySecretKey"}, Why: keyWhy},
			// "" is what the guide writes for charts up to 2.17.0; newer
			// charts ignore it next to a key.
			{Path: []string{"provisionerDaemon", "pskSecretName"}, Allow: []any{""}, Why: keyWhy},
			{Path: []string{"provisionerDaemon", "tags"}, Allow: []any{map[string]any{}, nil},
				Why: leaveOut + "the tags come from the provisioner key; with a key set the chart refuses tags"},
			{Path: []string{"coder", "nodeSelector", sizing.NodeTypeLabel},
				Why: leaveOut + "provisioners run on the node group labelled " + sizing.NodeTypeLabel + "=" + sizing.RoleProvisioner + " in cluster-config.yaml"},
		},
	}
}

// release is the wanted release and the notes of its values merge.
func (s *stage) release(keyID string) (helmx.Release, []string, error) {
	values, notes, err := helmx.MergeValues(configs.Read(ValuesFile), s.computedValues(keyID), s.d.Inputs.Get(KeyValuesFile), Owned())
	if err != nil {
		return helmx.Release{}, nil, err
	}
	return helmx.Release{Name: ReleaseName, Namespace: names.CoderNamespace, Chart: s.chart(), Values: values,
		Wait: true, Timeout: releaseTimeout, Strategies: helmx.Strategies{ChartName: Strategy}, RolledOut: []string{ChartName}}, notes, nil
}

// Strategy is how provisioner pods are replaced on an upgrade (decisions.md,
// "Coder upgrades"). A replaced daemon stops taking jobs and finishes the
// build it runs within terminationGracePeriodSeconds (600 s, configs/provisioner-values.yaml)
// before it exits, so no build is cut short. Kubernetes' default
// (maxUnavailable 25%, rounded down) is 0 below four replicas: the rollout
// then waits for surge pods, which a group at its maximum size cannot
// schedule. So a quarter of the replicas (at least one) may be replaced at
// once, and a quarter more are surged where the autoscaler finds room.
func Strategy(replicas int32) appsv1.DeploymentStrategy {
	surge := intstr.FromString("25%")
	unavailable := intstr.FromInt32(max(1, replicas/4))
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

func (s *stage) planRelease(ctx context.Context) ([]engine.Action, error) {
	resource := fmt.Sprintf("helm release %s/%s (%d replicas)", names.CoderNamespace, ReleaseName, s.sizing().Provisioners.Replicas)
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		_, notes, _ := s.release("") // a file validate refused never gets here
		return slices.Concat([]engine.Action{{Kind: engine.Create, Resource: resource,
			Reason: fmt.Sprintf("install chart %s (cluster not reachable yet: %v)", s.chart(), err)}},
			helmx.NoteActions(KeyValuesFile, notes), s.capacityWarning()), nil
	}
	sec, err := readKeySecret(ctx, kc)
	if err != nil {
		return nil, err
	}
	rel, notes, err := s.release(sec.keyID)
	if err != nil {
		return nil, err
	}
	helm, err := s.d.Helm(ctx)
	if err != nil {
		return nil, err
	}
	action, err := helm.PlanAction(ctx, resource, rel)
	if err != nil {
		return nil, err
	}
	if action.Kind == engine.Update {
		n := int32(s.sizing().Provisioners.Replicas)
		action.Reason += fmt.Sprintf("; provisioners replaced by %s; each replaced daemon finishes its running build first (up to %ds)",
			helmx.DescribeStrategy(Strategy(n), n), GracePeriodSeconds)
	}
	return slices.Concat([]engine.Action{action}, helmx.NoteActions(KeyValuesFile, notes), s.capacityWarning()), nil
}

// capacityWarning puts the capacity check's warning into the plan, where it
// is read before anything is built.
func (s *stage) capacityWarning() []engine.Action {
	c := sizing.CapacityCheck(s.sizing(), s.d.NodeGroups(), s.d.Inputs.Autoscaling())
	if c.Status == engine.Pass {
		return nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: "node group capacity", Reason: "warning: " + c.Reason}}
}

func (s *stage) applyRelease(ctx context.Context, r engine.Reporter) error {
	kc, sec, err := s.clusterKeySecret(ctx)
	if err != nil {
		return err
	}
	if !sec.filled {
		return fmt.Errorf("secret %s/%s holds no key: run 'coderctl stage %s apply' with %s set", names.CoderNamespace, KeySecretName, Name, coderapi.EnvSessionToken)
	}
	rel, notes, err := s.release(sec.keyID)
	if err != nil {
		return err
	}
	helmx.ReportNotes(r, KeyValuesFile, notes)
	helm, err := s.d.Helm(ctx)
	if err != nil {
		return err
	}
	if err := s.mustFit(ctx, kc); err != nil {
		return err
	}
	sz := s.sizing().Provisioners
	r.Progress(fmt.Sprintf("installing or upgrading %s: %d provisioners (%s)", rel.Chart, sz.Replicas, sz.Basis))
	_, _, err = helm.Apply(ctx, rel, r.Progress)
	return err
}

func (s *stage) destroyRelease(ctx context.Context, r engine.Reporter) error {
	return s.d.UninstallRelease(ctx, r.Progress, names.CoderNamespace, ReleaseName)
}

// mustFit fails the release at once when the provisioners can never all be
// scheduled: the provisioner nodes in the cluster cannot hold them and the
// node group could not grow enough even at its maximum size. Plan and verify
// warn about the group's size; installing would only wait out helm's
// timeout for pods that never start.
func (s *stage) mustFit(ctx context.Context, kc kubernetes.Interface) error {
	sz := s.sizing()
	for _, f := range sizing.Fits(sz, s.d.NodeGroups(), s.d.Inputs.Autoscaling()) {
		if f.Role != sizing.RoleProvisioner || f.PerNode == 0 || f.NodesNeeded <= f.MaxNodes {
			continue
		}
		room, err := provisionerRoom(ctx, kc, sz.Provisioners.Pod)
		if err != nil || room >= f.Pods {
			return nil // the nodes there now hold them (or cannot be counted): let the install decide
		}
		return fmt.Errorf("%s; the provisioner nodes in the cluster hold %d (%s; see 'coderctl size')", f.Problem, room, s.d.ConfigPath)
	}
	return nil
}

// provisionerRoom counts how many provisioner pods the Ready provisioner
// nodes can take by their allocatable CPU and memory.
func provisionerRoom(ctx context.Context, kc kubernetes.Interface, p sizing.Pod) (int, error) {
	cpu, err := resource.ParseQuantity(p.Requests.CPU)
	if err != nil {
		return 0, err
	}
	mem, err := resource.ParseQuantity(p.Requests.Memory)
	if err != nil {
		return 0, err
	}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sizing.NodeTypeLabel + "=" + sizing.RoleProvisioner})
	if err != nil {
		return 0, err
	}
	room := 0
	for _, n := range nodes.Items {
		byCPU := n.Status.Allocatable.Cpu().MilliValue() / max(cpu.MilliValue(), 1)
		byMem := n.Status.Allocatable.Memory().Value() / max(mem.Value(), 1)
		room += int(min(byCPU, byMem))
	}
	return room, nil
}
