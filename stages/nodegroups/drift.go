package nodegroups

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/config"
)

// groupWant is a node group as cluster-config.yaml asks for it, with its
// taints in the EKS API's spelling.
type groupWant struct {
	config.NodeGroupSpec
	taints []ekstypes.Taint
	// amiType is eksctl's choice for amiFamily and the instance type.
	amiType ekstypes.AMITypes
	// updateConfig is the group's updateConfig; nil leaves EKS's default
	// (one node at a time) alone.
	updateConfig *ekstypes.NodegroupUpdateConfig
}

// wantOf converts a configured group. The config loader has already
// rejected bad taint effects; the error is for a config built otherwise.
func wantOf(spec config.NodeGroupSpec) (groupWant, error) {
	w := groupWant{NodeGroupSpec: spec}
	for _, t := range spec.Taints {
		effect, err := config.NodeGroupTaintEffectToEKS(t.Effect)
		if err != nil {
			return groupWant{}, fmt.Errorf("node group %s, taint %s: %w", spec.Name, t.Key, err)
		}
		w.taints = append(w.taints, ekstypes.Taint{Key: aws.String(t.Key), Value: aws.String(t.Value), Effect: ekstypes.TaintEffect(effect)})
	}
	return w, nil
}

// wantOfManaged adds what eksctl's own type holds beyond NodeGroupSpec:
// the AMI type and updateConfig.
func wantOfManaged(spec config.NodeGroupSpec, ng *api.ManagedNodeGroup) (groupWant, error) {
	w, err := wantOf(spec)
	if err != nil || ng == nil {
		return w, err
	}
	w.amiType = amiTypeOf(ng)
	if uc := ng.UpdateConfig; uc != nil && (uc.MaxUnavailable != nil || uc.MaxUnavailablePercentage != nil) {
		w.updateConfig = &ekstypes.NodegroupUpdateConfig{}
		if uc.MaxUnavailable != nil {
			w.updateConfig.MaxUnavailable = aws.Int32(int32(*uc.MaxUnavailable))
		}
		if uc.MaxUnavailablePercentage != nil {
			w.updateConfig.MaxUnavailablePercentage = aws.Int32(int32(*uc.MaxUnavailablePercentage))
		}
	}
	return w, nil
}

// drift is how an existing node group differs from cluster-config.yaml:
// the UpdateNodegroupConfig payloads that converge it, a readable line per
// difference, and the differences EKS cannot change in place.
type drift struct {
	scaling *ekstypes.NodegroupScalingConfig
	labels  *ekstypes.UpdateLabelsPayload
	taints  *ekstypes.UpdateTaintsPayload
	update  *ekstypes.NodegroupUpdateConfig
	changes []string
	fixed   []string
}

// any reports whether an UpdateNodegroupConfig call is needed.
func (d drift) any() bool {
	return d.scaling != nil || d.labels != nil || d.taints != nil || d.update != nil
}

// placement is where the group should run; empty fields are not compared
// (plan may run before the role or the subnets are recorded).
type placement struct {
	roleARN string
	subnets []string
}

// diff compares an existing node group with what is wanted.
func diff(w groupWant, ng *ekstypes.Nodegroup, p placement) drift {
	var d drift
	d.scaling, d.changes = scalingDrift(w, ng.ScalingConfig)
	if add, remove := labelDrift(w.Labels, ng.Labels); len(add)+len(remove) > 0 {
		d.labels = &ekstypes.UpdateLabelsPayload{AddOrUpdateLabels: add, RemoveLabels: remove}
		for _, k := range sortedKeys(add) {
			d.changes = append(d.changes, labelChange(k, add[k], ng.Labels))
		}
		for _, k := range remove {
			d.changes = append(d.changes, fmt.Sprintf("label %s=%s is not configured", k, ng.Labels[k]))
		}
	}
	if add, remove := taintDrift(w.taints, ng.Taints); len(add)+len(remove) > 0 {
		d.taints = &ekstypes.UpdateTaintsPayload{AddOrUpdateTaints: add, RemoveTaints: remove}
		for _, t := range add {
			d.changes = append(d.changes, "taint "+taintString(t)+" missing")
		}
		for _, t := range remove {
			d.changes = append(d.changes, "taint "+taintString(t)+" is not configured")
		}
	}
	if w.updateConfig != nil && !sameUpdateConfig(w.updateConfig, ng.UpdateConfig) {
		d.update = w.updateConfig
		d.changes = append(d.changes, fmt.Sprintf("updateConfig %s (configured %s)", updateConfigString(ng.UpdateConfig), updateConfigString(w.updateConfig)))
	}
	d.fixed = fixedDrift(w, ng, p)
	return d
}

func sameUpdateConfig(a, b *ekstypes.NodegroupUpdateConfig) bool {
	if b == nil {
		return false
	}
	return aws.ToInt32(a.MaxUnavailable) == aws.ToInt32(b.MaxUnavailable) &&
		aws.ToInt32(a.MaxUnavailablePercentage) == aws.ToInt32(b.MaxUnavailablePercentage)
}

func updateConfigString(u *ekstypes.NodegroupUpdateConfig) string {
	switch {
	case u == nil:
		return "unset"
	case u.MaxUnavailablePercentage != nil:
		return fmt.Sprintf("maxUnavailablePercentage %d", aws.ToInt32(u.MaxUnavailablePercentage))
	case u.MaxUnavailable != nil:
		return fmt.Sprintf("maxUnavailable %d", aws.ToInt32(u.MaxUnavailable))
	}
	return "empty"
}

// scalingDrift converges minSize and maxSize. desiredSize is set at
// creation and afterwards belongs to the cluster autoscaler (as in the
// terraform-aws-eks module's ignore_changes): it is changed only when it
// falls outside the configured range, and then only into it.
func scalingDrift(w groupWant, have *ekstypes.NodegroupScalingConfig) (*ekstypes.NodegroupScalingConfig, []string) {
	var hMin, hMax, hDesired int32
	if have != nil {
		hMin, hMax, hDesired = aws.ToInt32(have.MinSize), aws.ToInt32(have.MaxSize), aws.ToInt32(have.DesiredSize)
	}
	var changes []string
	if hMin != w.Min {
		changes = append(changes, fmt.Sprintf("minSize %d (configured %d)", hMin, w.Min))
	}
	if hMax != w.Max {
		changes = append(changes, fmt.Sprintf("maxSize %d (configured %d)", hMax, w.Max))
	}
	desired := min(max(hDesired, w.Min), w.Max)
	if desired != hDesired {
		changes = append(changes, fmt.Sprintf("desiredSize %d outside %d..%d", hDesired, w.Min, w.Max))
	}
	if len(changes) == 0 {
		return nil, nil
	}
	return &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(w.Min), MaxSize: aws.Int32(w.Max), DesiredSize: aws.Int32(desired)}, changes
}

// labelDrift returns the labels to add or change and the keys to remove.
func labelDrift(want, have map[string]string) (map[string]string, []string) {
	var add map[string]string
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			if add == nil {
				add = map[string]string{}
			}
			add[k] = v
		}
	}
	var remove []string
	for k := range have {
		if _, ok := want[k]; !ok {
			remove = append(remove, k)
		}
	}
	sort.Strings(remove)
	return add, remove
}

func labelChange(k, want string, have map[string]string) string {
	if v, ok := have[k]; ok {
		return fmt.Sprintf("label %s is %q, configured %q", k, v, want)
	}
	return fmt.Sprintf("label %s=%s missing", k, want)
}

// taintDrift returns the taints to add (or whose value to change) and the
// ones to remove. Like Kubernetes, EKS identifies a taint by key and
// effect.
func taintDrift(want, have []ekstypes.Taint) (add, remove []ekstypes.Taint) {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h ekstypes.Taint) bool { return sameTaint(h, w) }) {
			add = append(add, w)
		}
	}
	for _, h := range have {
		if !slices.ContainsFunc(want, func(w ekstypes.Taint) bool { return sameSlot(h, w) }) {
			remove = append(remove, h)
		}
	}
	return add, remove
}

func sameSlot(a, b ekstypes.Taint) bool {
	return aws.ToString(a.Key) == aws.ToString(b.Key) && a.Effect == b.Effect
}

func sameTaint(a, b ekstypes.Taint) bool {
	return sameSlot(a, b) && aws.ToString(a.Value) == aws.ToString(b.Value)
}

func taintString(t ekstypes.Taint) string {
	return fmt.Sprintf("%s=%s:%s", aws.ToString(t.Key), aws.ToString(t.Value), t.Effect)
}

// fixedDrift lists differences EKS cannot change on an existing group: it
// would have to be replaced, which drains every node, so apply only says so.
func fixedDrift(w groupWant, ng *ekstypes.Nodegroup, p placement) []string {
	var out []string
	if len(ng.InstanceTypes) > 0 && !slices.Equal(ng.InstanceTypes, []string{w.InstanceType}) {
		out = append(out, fmt.Sprintf("instance type is %s, configured %s", strings.Join(ng.InstanceTypes, ","), w.InstanceType))
	}
	// UpdateNodegroupVersion keeps a group's AMI type: a new one needs a new group.
	if w.amiType != "" && ng.AmiType != "" && ng.AmiType != w.amiType {
		out = append(out, fmt.Sprintf("AMI type is %s, amiFamily and instanceType ask for %s", ng.AmiType, w.amiType))
	}
	if p.roleARN != "" && ng.NodeRole != nil && aws.ToString(ng.NodeRole) != p.roleARN {
		out = append(out, fmt.Sprintf("node role is %s, not %s", aws.ToString(ng.NodeRole), p.roleARN))
	}
	if len(p.subnets) > 0 && len(ng.Subnets) > 0 && !sameSet(ng.Subnets, p.subnets) {
		out = append(out, fmt.Sprintf("subnets are %s, not %s", strings.Join(ng.Subnets, ","), strings.Join(p.subnets, ",")))
	}
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
