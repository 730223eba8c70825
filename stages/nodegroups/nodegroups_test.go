package nodegroups_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/nodegroups"
)

const (
	roleARN    = "arn:aws:iam::123456789012:role/coder-prod-node"
	groupsList = "system,coder-coderd,coder-provisioner,coder-workspace"
)

// TestApplyFromEmpty: the role with its four policies and the four groups,
// each created with its scaling, disk, labels and taints in the
// CreateNodegroup call itself (no update afterwards), in the private
// subnets, tagged, with a client token.
func TestApplyFromEmpty(t *testing.T) {
	w := newWorld(t)
	sum := w.apply(t)

	if got := w.env.Deps.State.Get(names.KeyNodeRoleARN); got != roleARN {
		t.Errorf("NODE_ROLE_ARN = %q, want %q", got, roleARN)
	}
	if got := w.env.Deps.State.Get(names.KeyNodeGroups); got != groupsList {
		t.Errorf("NODEGROUPS = %q, want %q", got, groupsList)
	}
	wantMutations := []string{
		"EC2.CreateLaunchTemplate", "EC2.CreateLaunchTemplate", "EC2.CreateLaunchTemplate", "EC2.CreateLaunchTemplate",
		"EKS.CreateNodegroup", "EKS.CreateNodegroup", "EKS.CreateNodegroup", "EKS.CreateNodegroup",
		"IAM.AttachRolePolicy", "IAM.AttachRolePolicy", "IAM.AttachRolePolicy", "IAM.AttachRolePolicy",
		"IAM.CreateRole",
	}
	if got := w.env.Calls.Mutations(); !slices.Equal(got, wantMutations) {
		t.Errorf("mutations = %v, want %v", got, wantMutations)
	}

	attached, err := w.env.Deps.AWS.IAM.ListAttachedRolePolicies(context.Background(), &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("coder-prod-node")})
	if err != nil {
		t.Fatal(err)
	}
	var policies []string
	for _, p := range attached.AttachedPolicies {
		policies = append(policies, aws.ToString(p.PolicyName))
	}
	slices.Sort(policies)
	wantPolicies := []string{"AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonSSMManagedInstanceCore"}
	if !slices.Equal(policies, wantPolicies) {
		t.Errorf("node role policies = %v, want %v", policies, wantPolicies)
	}

	creates := w.creates.byName()
	for _, g := range shippedGroups {
		t.Run(g.name, func(t *testing.T) {
			in, ok := creates[g.name]
			if !ok {
				t.Fatalf("no CreateNodegroup call for %s", g.name)
			}
			if got := taintStrings(in.Taints); !slices.Equal(got, taintStrings(g.taints())) {
				t.Errorf("CreateNodegroup taints = %v, want %v", got, taintStrings(g.taints()))
			}
			if in.Labels["coder/node-type"] != g.nodeType {
				t.Errorf("CreateNodegroup labels = %v, want coder/node-type=%s", in.Labels, g.nodeType)
			}
			if tok := aws.ToString(in.ClientRequestToken); len(tok) != 32 {
				t.Errorf("ClientRequestToken = %q, want a 32-character token", tok)
			}
			if in.CapacityType != ekstypes.CapacityTypesOnDemand {
				t.Errorf("capacity type = %q, want ON_DEMAND", in.CapacityType)
			}

			ng := w.describe(t, g.name)
			if ng.Status != ekstypes.NodegroupStatusActive {
				t.Errorf("status = %s, want ACTIVE", ng.Status)
			}
			if !slices.Equal(ng.InstanceTypes, []string{g.instanceType}) {
				t.Errorf("instance types = %v, want %s", ng.InstanceTypes, g.instanceType)
			}
			sc := ng.ScalingConfig
			if got := [3]int32{aws.ToInt32(sc.MinSize), aws.ToInt32(sc.MaxSize), aws.ToInt32(sc.DesiredSize)}; got != [3]int32{g.min, g.max, g.desired} {
				t.Errorf("scaling min/max/desired = %v, want %v", got, [3]int32{g.min, g.max, g.desired})
			}
			// The disk is the launch template's root volume (EKS refuses
			// a diskSize beside a template).
			if in.DiskSize != nil || ng.DiskSize != nil {
				t.Errorf("disk size set on the group (create %v, described %v)", in.DiskSize, ng.DiskSize)
			}
			if ebs := w.launchTemplate(t, "coder-prod-"+g.name, "1").BlockDeviceMappings[0].Ebs; aws.ToInt32(ebs.VolumeSize) != g.disk {
				t.Errorf("root volume = %d GiB, want %d", aws.ToInt32(ebs.VolumeSize), g.disk)
			}
			if ng.AmiType != ekstypes.AMITypesAl2023X8664Standard {
				t.Errorf("AMI type = %s, want AL2023_x86_64_STANDARD", ng.AmiType)
			}
			if !maps.Equal(ng.Labels, map[string]string{"coder/node-type": g.nodeType}) {
				t.Errorf("labels = %v, want coder/node-type=%s only", ng.Labels, g.nodeType)
			}
			if got := taintStrings(ng.Taints); !slices.Equal(got, taintStrings(g.taints())) {
				t.Errorf("taints = %v, want %v", got, taintStrings(g.taints()))
			}
			if !slices.Equal(ng.Subnets, w.private) {
				t.Errorf("subnets = %v, want the private subnets %v", ng.Subnets, w.private)
			}
			if aws.ToString(ng.NodeRole) != roleARN {
				t.Errorf("node role = %s, want %s", aws.ToString(ng.NodeRole), roleARN)
			}
			if ng.Tags["coderctl/deployment"] != "coder-prod" || ng.Tags["coderctl/stage"] != "nodegroups" || ng.Tags["Name"] != g.name {
				t.Errorf("tags = %v", ng.Tags)
			}
		})
	}

	// The checkpoint ran after apply: AWS checks pass, Kubernetes is not
	// reachable in this test, which is a warning, not a failure.
	checks := map[string]engine.Check{}
	for _, st := range sum.Stages {
		for _, c := range st.Checks {
			checks[c.Name] = c
		}
	}
	for _, name := range []string{"node-role", "nodegroup/system", "nodegroup/coder-coderd", "nodegroup/coder-provisioner", "nodegroup/coder-workspace",
		"launch-template/system", "launch-template/coder-coderd", "launch-template/coder-provisioner", "launch-template/coder-workspace"} {
		if checks[name].Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, checks[name])
		}
	}
	if c := checks["nodes"]; c.Status != engine.Warn || !strings.Contains(c.Reason, "cluster not reachable") {
		t.Errorf("check nodes = %+v, want a 'cluster not reachable' warning", c)
	}
}

// TestReapplyMakesNoChanges: a second apply on a finished deployment makes
// no mutating AWS call and keeps the outputs.
func TestReapplyMakesNoChanges(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	before := w.env.Deps.State.Snapshot()
	w.env.Calls.Reset()

	w.apply(t)

	if got := w.env.Calls.Mutations(); len(got) != 0 {
		t.Errorf("second apply made mutating calls: %v", got)
	}
	after := w.env.Deps.State.Snapshot()
	for _, k := range []string{names.KeyNodeRoleARN, names.KeyNodeGroups} {
		if before[k] != after[k] || after[k] == "" {
			t.Errorf("%s changed from %q to %q", k, before[k], after[k])
		}
	}
}

// TestAdopt: with the outputs gone from the state file, a new process finds
// the role and the groups by name and tags, creates nothing, and writes
// the same outputs back.
func TestAdopt(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	if err := w.env.Deps.State.Unset(names.KeyNodeRoleARN, names.KeyNodeGroups); err != nil {
		t.Fatal(err)
	}
	w.env.Reload(t)
	w.watchCreates()
	w.env.Calls.Reset()

	w.apply(t)

	if got := w.env.Calls.Mutations(); len(got) != 0 {
		t.Errorf("adopting apply made mutating calls: %v", got)
	}
	if got := w.env.Deps.State.Get(names.KeyNodeRoleARN); got != roleARN {
		t.Errorf("NODE_ROLE_ARN = %q, want %q", got, roleARN)
	}
	if got := w.env.Deps.State.Get(names.KeyNodeGroups); got != groupsList {
		t.Errorf("NODEGROUPS = %q, want %q", got, groupsList)
	}
}

// TestPlan: on an empty account every resource is to be created; after
// apply, nothing is to be done; after drift, exactly the drifted group is
// to be updated. Plan itself changes nothing.
func TestPlan(t *testing.T) {
	w := newWorld(t)
	kinds := func() map[string]engine.ActionKind {
		sum, _ := w.run(t, engine.ModePlan)
		out := map[string]engine.ActionKind{}
		for _, st := range sum.Stages {
			for _, a := range st.Actions {
				out[a.Resource] = a.Kind
			}
		}
		return out
	}

	empty := kinds()
	want := map[string]engine.ActionKind{
		"iam-role/coder-prod-node":                     engine.Create,
		"launch-template/coder-prod-system":            engine.Create,
		"launch-template/coder-prod-coder-coderd":      engine.Create,
		"launch-template/coder-prod-coder-provisioner": engine.Create,
		"launch-template/coder-prod-coder-workspace":   engine.Create,
		"nodegroup/system":                             engine.Create,
		"nodegroup/coder-coderd":                       engine.Create,
		"nodegroup/coder-provisioner":                  engine.Create,
		"nodegroup/coder-workspace":                    engine.Create,
		"node-taints":                                  engine.Nothing,
	}
	if !maps.Equal(empty, want) {
		t.Errorf("plan on empty = %v, want %v", empty, want)
	}
	if got := w.env.Calls.Mutations(); len(got) != 0 {
		t.Fatalf("plan made mutating calls: %v", got)
	}

	w.apply(t)
	for res, kind := range kinds() {
		if kind != engine.Nothing {
			t.Errorf("plan after apply: %s = %s, want nothing", res, kind)
		}
	}

	updateLabels(t, w, "coder-provisioner", map[string]string{"team": "infra"}, nil)
	w.env.Calls.Reset()
	drifted := kinds()
	for res, kind := range drifted {
		wantKind := engine.Nothing
		if res == "nodegroup/coder-provisioner" {
			wantKind = engine.Update
		}
		if kind != wantKind {
			t.Errorf("plan after drift: %s = %s, want %s", res, kind, wantKind)
		}
	}
	if got := w.env.Calls.Mutations(); len(got) != 0 {
		t.Errorf("plan made mutating calls: %v", got)
	}
}

// updateLabels changes a group's labels behind coderctl's back.
func updateLabels(t *testing.T, w *world, group string, add map[string]string, remove []string) {
	t.Helper()
	_, err := w.env.Deps.AWS.EKS.UpdateNodegroupConfig(context.Background(), &eks.UpdateNodegroupConfigInput{
		ClusterName: aws.String("coder-prod"), NodegroupName: aws.String(group),
		Labels: &ekstypes.UpdateLabelsPayload{AddOrUpdateLabels: add, RemoveLabels: remove},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDriftIsConverged: labels, taints and scaling changed directly in EKS
// are restored by one UpdateNodegroupConfig on the next apply; a desired
// size the autoscaler moved within the range is left alone.
func TestDriftIsConverged(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	ctx := context.Background()
	_, err := w.env.Deps.AWS.EKS.UpdateNodegroupConfig(ctx, &eks.UpdateNodegroupConfigInput{
		ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("coder-coderd"),
		Labels: &ekstypes.UpdateLabelsPayload{
			AddOrUpdateLabels: map[string]string{"coder/node-type": "general", "extra": "yes"},
		},
		Taints: &ekstypes.UpdateTaintsPayload{RemoveTaints: shippedGroups[1].taints()},
		ScalingConfig: &ekstypes.NodegroupScalingConfig{
			MinSize: aws.Int32(1), MaxSize: aws.Int32(5), DesiredSize: aws.Int32(4),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The autoscaler's business: within 2..20, not drift.
	if _, err := w.env.Deps.AWS.EKS.UpdateNodegroupConfig(ctx, &eks.UpdateNodegroupConfigInput{
		ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("coder-workspace"),
		ScalingConfig: &ekstypes.NodegroupScalingConfig{DesiredSize: aws.Int32(7)},
	}); err != nil {
		t.Fatal(err)
	}
	if c := w.checks(t)["nodegroup/coder-coderd"]; c.Status != engine.Fail || !strings.Contains(c.Reason, "coder/node-type") {
		t.Fatalf("verify after drift: %+v, want a failure naming the label", c)
	}
	w.env.Calls.Reset()

	w.apply(t)

	if got := w.env.Calls.Mutations(); !slices.Equal(got, []string{"EKS.UpdateNodegroupConfig"}) {
		t.Errorf("mutations = %v, want exactly one EKS.UpdateNodegroupConfig", got)
	}
	ng := w.describe(t, "coder-coderd")
	if !maps.Equal(ng.Labels, map[string]string{"coder/node-type": "coderd"}) {
		t.Errorf("labels after apply = %v, want coder/node-type=coderd only", ng.Labels)
	}
	if got := taintStrings(ng.Taints); !slices.Equal(got, []string{"coder/node-type=coderd:NO_SCHEDULE"}) {
		t.Errorf("taints after apply = %v", got)
	}
	sc := ng.ScalingConfig
	if got := [3]int32{aws.ToInt32(sc.MinSize), aws.ToInt32(sc.MaxSize), aws.ToInt32(sc.DesiredSize)}; got != [3]int32{2, 2, 2} {
		t.Errorf("coder-coderd scaling = %v, want [2 2 2]", got)
	}
	if got := aws.ToInt32(w.describe(t, "coder-workspace").ScalingConfig.DesiredSize); got != 7 {
		t.Errorf("coder-workspace desired = %d, want the autoscaler's 7 kept", got)
	}
	for name, c := range w.checks(t) {
		if strings.HasPrefix(name, "nodegroup/") && c.Status != engine.Pass {
			t.Errorf("verify after convergence: %s = %+v", name, c)
		}
	}
}

// TestVerifyNamesWhatBroke: each thing broken directly in AWS fails its
// own check and leaves the others passing; the next apply repairs it.
// The cases share one deployment (a moto reset reloads IAM's managed
// policies, which takes seconds), each repaired before the next.
func TestVerifyNamesWhatBroke(t *testing.T) {
	tests := []struct {
		name   string
		check  string
		reason string
		breakf func(t *testing.T, w *world)
		also   string // a check that fails with it, for the same reason
	}{
		{"policy detached", "node-role", "AmazonEKS_CNI_Policy", func(t *testing.T, w *world) {
			_, err := w.env.Deps.AWS.IAM.DetachRolePolicy(context.Background(), &iam.DetachRolePolicyInput{
				RoleName: aws.String("coder-prod-node"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"),
			})
			if err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"label changed", "nodegroup/coder-workspace", "coder/node-type", func(t *testing.T, w *world) {
			updateLabels(t, w, "coder-workspace", map[string]string{"coder/node-type": "coderd"}, nil)
		}, ""},
		{"group deleted", "nodegroup/coder-provisioner", "does not exist", func(t *testing.T, w *world) {
			if _, err := w.env.Deps.AWS.EKS.DeleteNodegroup(context.Background(), &eks.DeleteNodegroupInput{
				ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("coder-provisioner"),
			}); err != nil {
				t.Fatal(err)
			}
		}, "launch-template/coder-provisioner"},
		{"max size raised", "nodegroup/system", "maxSize", func(t *testing.T, w *world) {
			if _, err := w.env.Deps.AWS.EKS.UpdateNodegroupConfig(context.Background(), &eks.UpdateNodegroupConfigInput{
				ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("system"),
				ScalingConfig: &ekstypes.NodegroupScalingConfig{MaxSize: aws.Int32(4)},
			}); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	w := newWorld(t)
	w.apply(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.breakf(t, w)
			checks := w.checks(t)
			if _, ok := checks[tc.check]; !ok {
				t.Fatalf("no check named %s in %v", tc.check, slices.Collect(maps.Keys(checks)))
			}
			for name, c := range checks {
				switch {
				case name == tc.check || name == tc.also:
					if c.Status != engine.Fail || !strings.Contains(c.Reason, tc.reason) || c.Hint == "" {
						t.Errorf("%s = %+v, want fail mentioning %q with a hint", name, c, tc.reason)
					}
				case name == "nodes":
					if c.Status != engine.Warn {
						t.Errorf("nodes = %+v, want warn", c)
					}
				case c.Status != engine.Pass:
					t.Errorf("%s = %+v, want pass (only %s is broken)", name, c, tc.check)
				}
			}

			w.apply(t) // its checkpoint fails the test unless everything passes again
			if c := w.checks(t)[tc.check]; c.Status != engine.Pass {
				t.Errorf("after apply %s = %+v, want pass", tc.check, c)
			}
		})
	}
}

// TestDestroy: the groups and the role go (policies detached first), the
// outputs leave the state file, a group this deployment made that is no
// longer configured goes too, and a second destroy finds nothing to do.
func TestDestroy(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	ctx := context.Background()
	// A group a previous cluster-config.yaml had.
	if _, err := w.env.Deps.AWS.EKS.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("coder-old"), NodeRole: aws.String(roleARN),
		Subnets: w.private, Tags: map[string]string{"coderctl/deployment": "coder-prod", "coderctl/stage": "nodegroups"},
	}); err != nil {
		t.Fatal(err)
	}
	// Someone else's group in the same cluster is left alone.
	if _, err := w.env.Deps.AWS.EKS.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("gpu"), NodeRole: aws.String(roleARN),
		Subnets: w.private,
	}); err != nil {
		t.Fatal(err)
	}

	sum, events := w.run(t, engine.ModeDestroy)
	if !sum.OK {
		t.Fatalf("destroy failed:\n%s", stagetest.EventLog(events))
	}
	if got := w.listGroups(t); !slices.Equal(got, []string{"gpu"}) {
		t.Errorf("node groups left = %v, want only the untagged gpu group", got)
	}
	if _, err := w.env.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("coder-prod-node")}); !awsx.IsNotFound(err) {
		t.Errorf("node role still exists (err %v)", err)
	}
	for _, k := range []string{names.KeyNodeRoleARN, names.KeyNodeGroups} {
		if v, ok := w.env.Deps.State.Lookup(k); ok {
			t.Errorf("%s = %q still in state after destroy", k, v)
		}
	}
	roles, err := w.env.Deps.AWS.IAM.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles.Roles {
		if strings.HasPrefix(aws.ToString(r.RoleName), "coder-prod") {
			t.Errorf("role %s left behind", aws.ToString(r.RoleName))
		}
	}

	// Already gone: no error, no mutation.
	w.env.Calls.Reset()
	if sum, events := w.run(t, engine.ModeDestroy); !sum.OK {
		t.Fatalf("second destroy failed:\n%s", stagetest.EventLog(events))
	}
	if got := w.env.Calls.Mutations(); len(got) != 0 {
		t.Errorf("second destroy made mutating calls: %v", got)
	}
}

// TestDestroyWithoutCluster: the cluster is already gone (or never came):
// destroy still removes the role and succeeds.
func TestDestroyWithoutCluster(t *testing.T) {
	w := newWorld(t)
	w.apply(t)
	ctx := context.Background()
	for _, g := range w.listGroups(t) {
		if _, err := w.env.Deps.AWS.EKS.DeleteNodegroup(ctx, &eks.DeleteNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String(g)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.env.Deps.AWS.EKS.DeleteCluster(ctx, &eks.DeleteClusterInput{Name: aws.String("coder-prod")}); err != nil {
		t.Fatal(err)
	}
	if sum, events := w.run(t, engine.ModeDestroy); !sum.OK {
		t.Fatalf("destroy failed:\n%s", stagetest.EventLog(events))
	}
	if _, err := w.env.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("coder-prod-node")}); !awsx.IsNotFound(err) {
		t.Errorf("node role still exists (err %v)", err)
	}
}

// TestGroupsRunInParallel: each group needs only the node role and the
// cluster, so the four overlap; the critical path is one group long.
func TestGroupsRunInParallel(t *testing.T) {
	w := &world{env: &stagetest.Env{Deps: configOnlyDeps(t, stagetest.ClusterConfigPath(t))}}
	steps := map[string]engine.Step{}
	for _, st := range w.stage().Steps {
		steps[st.Name] = st
	}
	for _, g := range shippedGroups {
		st, ok := steps[g.name]
		if !ok {
			t.Fatalf("no step %s", g.name)
		}
		if want := []string{"nodegroups/node-role", "eks/cluster"}; !slices.Equal(st.Needs, want) {
			t.Errorf("step %s needs %v, want %v", g.name, st.Needs, want)
		}
		if st.Typical != 3*time.Minute {
			t.Errorf("step %s typical = %s, want 3m", g.name, st.Typical)
		}
	}
	wantTaintNeeds := []string{"nodegroups/system", "nodegroups/coder-coderd", "nodegroups/coder-provisioner", "nodegroups/coder-workspace"}
	if got := steps["taints"].Needs; !slices.Equal(got, wantTaintNeeds) {
		t.Errorf("taints needs %v, want %v", got, wantTaintNeeds)
	}
	if got := w.stage().Needs; !slices.Equal(got, []string{"eks"}) {
		t.Errorf("stage needs %v, want [eks]", got)
	}
	g, err := engine.NewGraph(w.stages())
	if err != nil {
		t.Fatal(err)
	}
	if cp, path := g.CriticalPath(nil); cp != 5*time.Second+3*time.Minute+5*time.Second {
		t.Errorf("critical path = %s via %v, want 3m10s (node-role, one group, taints)", cp, path)
	}
}

// TestBadInstanceType: an instance type the region does not offer is bad
// input (exit 2) before anything is created.
func TestBadInstanceType(t *testing.T) {
	w := &world{env: stagetest.New(t, nil)}
	w.env.Deps.Cluster.ManagedNodeGroups[2].InstanceType = "hpc6a.48xlarge" // offered in us-east-2, not us-west-2
	err := w.stage().Validate(context.Background())
	if !fault.IsInput(err) {
		t.Fatalf("Validate = %v, want bad input", err)
	}
	for _, part := range []string{"cluster-config.yaml", "managedNodeGroups[2].instanceType", "hpc6a.48xlarge", "us-west-2"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	if got := w.env.Calls.Mutations(); len(got) != 0 {
		t.Errorf("validation made mutating calls: %v", got)
	}
	if got := w.env.Calls.Reads(); !slices.Contains(got, "EC2.DescribeInstanceTypeOfferings") {
		t.Errorf("validation did not ask EC2 (reads %v)", got)
	}

	// The shipped types are all offered.
	w.env.Deps.Cluster.ManagedNodeGroups[2].InstanceType = "c7i.2xlarge"
	if err := w.stage().Validate(context.Background()); err != nil {
		t.Errorf("Validate with the shipped types = %v", err)
	}
}

// TestConfigErrorsStopBeforeTheStage: duplicate group names and minSize >
// maxSize are refused when cluster-config.yaml is loaded, so no Deps (and
// no nodegroups stage) can be built from such a file.
func TestConfigErrorsStopBeforeTheStage(t *testing.T) {
	shipped, err := os.ReadFile(stagetest.ClusterConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new, field string
	}{
		{"duplicate name", "- name: coder-provisioner", "- name: coder-coderd", "managedNodeGroups[2].name"},
		{"min above max", "minSize: 1\n    maxSize: 6\n    desiredCapacity: 2", "minSize: 7\n    maxSize: 6\n    desiredCapacity: 6", "managedNodeGroups[2].minSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(shipped), tc.old) {
				t.Fatalf("shipped cluster-config.yaml no longer contains %q", tc.old)
			}
			path := filepath.Join(t.TempDir(), "cluster-config.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(shipped), tc.old, tc.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.LoadCluster(path)
			if !fault.IsInput(err) || cfg != nil {
				t.Fatalf("LoadCluster = %v, %v; want bad input and no config", cfg != nil, err)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s in %s", err, tc.field, path)
			}
		})
	}
}

// TestLongClusterNameIsBadInput: the node role's name would exceed IAM's
// 64 characters.
func TestLongClusterNameIsBadInput(t *testing.T) {
	shipped, err := os.ReadFile(stagetest.ClusterConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	// eksctl refuses cluster names over 63 characters (they become a label
	// value); 61 still makes a 66-character role name.
	long := "coder-" + strings.Repeat("x", 55)
	path := filepath.Join(t.TempDir(), "cluster-config.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(shipped), "name: coder-prod", "name: "+long, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// No AWS clients at all: the check must not need them.
	deps := configOnlyDeps(t, path)
	err = nodegroups.New(deps).Validate(context.Background())
	// The name came from cluster-config.yaml's metadata.name: the message
	// points there, not at a CLUSTER_NAME the user never set.
	if !fault.IsInput(err) || !strings.Contains(err.Error(), "metadata.name") || !strings.Contains(err.Error(), long+"-node") {
		t.Errorf("Validate = %v, want bad input naming metadata.name and the role name", err)
	}
}

// configOnlyDeps builds Deps from a cluster-config.yaml and no state, AWS
// or Kubernetes: enough to build the stage and run what needs no AWS.
func configOnlyDeps(t *testing.T, path string) *deploy.Deps {
	t.Helper()
	cfg, err := config.LoadCluster(path)
	if err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	inputs, err := config.ResolveInputs(filepath.Join(t.TempDir(), "coder-infra.env"), stagetest.DefaultInputs(), noEnv, cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	return &deploy.Deps{Inputs: inputs, Cluster: cfg, ConfigPath: path}
}
