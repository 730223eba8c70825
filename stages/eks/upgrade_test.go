package eks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/eksversion"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// shippedVersion is the shipped cluster-config.yaml's metadata.version line.
const shippedVersion = `version: "1.34"`

func versionLine(v string) string { return `version: "` + v + `"` }

// upgradeCalls names the eks stage's upgrade calls among the double's
// mutations, in order: "control-plane" for UpdateClusterVersion,
// "addon:<name>" for UpdateAddon.
func upgradeCalls(muts []string) []string {
	var out []string
	for _, m := range muts {
		switch {
		case m == "POST /clusters/"+cluster+"/updates":
			out = append(out, "control-plane")
		case strings.HasPrefix(m, "POST /clusters/"+cluster+"/addons/") && strings.HasSuffix(m, "/update"):
			out = append(out, "addon:"+strings.TrimSuffix(strings.TrimPrefix(m, "POST /clusters/"+cluster+"/addons/"), "/update"))
		}
	}
	return out
}

// TestUpgradeRunsOneMinorAtATime raises metadata.version on a running
// cluster: plan shows each minor with its steps and the duration, apply
// upgrades the control plane one minor at a time (each waited through
// DescribeUpdate: the double keeps it InProgress for two looks and refuses
// anything meanwhile), each followed by the add-ons whose newest version
// differs for that minor (kube-proxy follows the minor), and a re-apply
// changes nothing.
func TestUpgradeRunsOneMinorAtATime(t *testing.T) {
	tests := []struct {
		name, from, to string
		hops           []string
	}{
		{name: "one minor", from: "1.33", to: "1.34", hops: []string{"1.34"}},
		{name: "two minors", from: "1.32", to: "1.34", hops: []string{"1.33", "1.34"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, emu := configEnv(t, ekstest.Options{UpdatePolls: 2, Polls: 1}, shippedVersion, versionLine(tc.from))
			runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{"network", Name}})
			reconfigure(t, e, emu, shippedVersion, versionLine(tc.to))

			e.Calls.Reset()
			sum, _ := runConfig(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
			if m := e.Calls.Mutations(); len(m) != 0 {
				t.Errorf("plan made mutating calls: %v", m)
			}
			a := actionsOf(sum)["kubernetes-version/"+cluster]
			if a.Kind != engine.Update {
				t.Fatalf("plan kubernetes-version = %s (%s), want update", a.Kind, a.Reason)
			}
			prev := tc.from
			for i, v := range tc.hops {
				for _, f := range []string{
					"Kubernetes " + tc.from + " to " + tc.to, "one minor at a time",
					string(rune('1'+i)) + ") " + v + ": control plane (UpdateClusterVersion)",
					"kube-proxy v" + prev + ".0-eksbuild.2 to v" + v + ".0-eksbuild.2", "typically about",
				} {
					if !strings.Contains(a.Reason, f) {
						t.Errorf("plan reason %q lacks %q", a.Reason, f)
					}
				}
				prev = v
			}

			before := len(emu.Mutations())
			runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
			var want []string
			for range tc.hops {
				want = append(want, "control-plane", "addon:kube-proxy")
			}
			if got := upgradeCalls(emu.Mutations()[before:]); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("upgrade calls %v, want %v", got, want)
			}
			var asked []string
			for _, body := range emu.Requests("POST", "/clusters/"+cluster+"/updates") {
				var in struct{ Version string }
				if err := json.Unmarshal(body, &in); err != nil {
					t.Fatal(err)
				}
				asked = append(asked, in.Version)
			}
			if strings.Join(asked, ",") != strings.Join(tc.hops, ",") {
				t.Errorf("UpdateClusterVersion asked for %v, want %v", asked, tc.hops)
			}
			if c := describe(t, e.Env); aws.ToString(c.Version) != tc.to || c.Status != ekstypes.ClusterStatusActive {
				t.Errorf("cluster %s %s after apply, want ACTIVE %s", c.Status, aws.ToString(c.Version), tc.to)
			}
			if _, _, v := emu.Addon(cluster, addonKubeProxy); v != "v"+tc.to+".0-eksbuild.2" {
				t.Errorf("kube-proxy %s, want v%s.0-eksbuild.2", v, tc.to)
			}

			e.Calls.Reset()
			sum, _ = runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
			if m := e.Calls.Mutations(); len(m) != 0 {
				t.Errorf("re-apply made mutating calls: %v", m)
			}
			sum, _ = runConfig(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
			if a, ok := actionsOf(sum)["kubernetes-version/"+cluster]; ok {
				t.Errorf("plan after the upgrade still shows %s (%s)", a.Kind, a.Reason)
			}
			if f := emu.Faults(); len(f) != 0 {
				t.Errorf("double faults: %v", f)
			}
		})
	}
}

// TestUpgradeBadInputIsRefusedBeforeAnythingChanges: a downgrade, a
// version EKS does not offer in the region, and a node group more than
// three minors behind the target are bad input (exit 2) found by
// validate, with no mutating call.
func TestUpgradeBadInputIsRefusedBeforeAnythingChanges(t *testing.T) {
	tests := []struct {
		name        string
		running, to string
		setup       func(t *testing.T, e *stagetest.ConfigEnv, emu *ekstest.Server)
		want        []string
	}{
		{name: "downgrade", running: "1.34", to: "1.33",
			want: []string{"cluster-config.yaml: metadata.version", "runs Kubernetes 1.34, the file says 1.33", "does not downgrade", `set it back to "1.34"`}},
		{name: "version EKS does not offer", running: "1.33", to: "1.35",
			setup: func(t *testing.T, e *stagetest.ConfigEnv, emu *ekstest.Server) {
				emu.OfferVersions("1.31", "1.32", "1.33", "1.34")
			},
			want: []string{"metadata.version", "does not offer Kubernetes 1.35", "1.31, 1.32, 1.33, 1.34"}},
		{name: "node group too far behind", running: "1.33", to: "1.34",
			setup: func(t *testing.T, e *stagetest.ConfigEnv, emu *ekstest.Server) {
				if _, err := e.Deps.AWS.EKS.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
					ClusterName: aws.String(cluster), NodegroupName: aws.String("old"), Version: aws.String("1.30"),
					NodeRole: aws.String("arn:aws:iam::123456789012:role/node"), Subnets: []string{"subnet-1"},
				}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"metadata.version", "node group old runs Kubernetes 1.30", "more than 3 minors behind 1.34", `at most "1.33"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := ekstest.Use(t, ekstest.Options{})
			e := stagetest.NewWithClusterConfig(t, nil, stagetest.WriteClusterConfig(t, t.TempDir(), shippedVersion, versionLine(tc.to)))
			emu.Wire(e.Deps)
			createCluster(t, e, tc.running, e.Deps.Tags(Name, nil))
			if tc.setup != nil {
				tc.setup(t, e, emu)
			}
			before := len(emu.Mutations())
			assertRefusedBeforeAnyChange(t, e.Env, tc.want)
			if m := emu.Mutations()[before:]; len(m) != 0 {
				t.Errorf("validation made mutating EKS calls: %v", m)
			}
			if c := describe(t, e.Env); aws.ToString(c.Version) != tc.running {
				t.Errorf("cluster at %s after the refusal, want %s", aws.ToString(c.Version), tc.running)
			}
		})
	}
}

// TestUpdateClusterVersionAsEKSRefusesIt: the double refuses a skipped
// minor and a downgrade (InvalidParameterException) and a second update
// while one runs (ResourceInUseException), as EKS documents.
func TestUpdateClusterVersionAsEKSRefusesIt(t *testing.T) {
	emu := ekstest.Use(t, ekstest.Options{UpdatePolls: 3})
	e := stagetest.NewWithClusterConfig(t, nil, stagetest.WriteClusterConfig(t, t.TempDir()))
	emu.Wire(e.Deps)
	createCluster(t, e, "1.33", e.Deps.Tags(Name, nil))
	update := func(v string) error {
		_, err := e.Deps.AWS.EKS.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String(cluster), Version: aws.String(v)})
		return err
	}
	tests := []struct{ version, wantCode, wantMsg string }{
		{"1.35", "InvalidParameterException", "from 1.33 to 1.35"},
		{"1.32", "InvalidParameterException", "from 1.33 to 1.32"},
		{"1.34", "", ""},
		{"1.35", "ResourceInUseException", "in progress"},
	}
	for _, tc := range tests {
		err := update(tc.version)
		switch {
		case tc.wantCode == "" && err != nil:
			t.Errorf("update to %s: %v", tc.version, err)
		case tc.wantCode != "" && (err == nil || !strings.Contains(err.Error(), tc.wantCode) || !strings.Contains(err.Error(), tc.wantMsg)):
			t.Errorf("update to %s: %v, want %s naming %q", tc.version, err, tc.wantCode, tc.wantMsg)
		}
	}
	if c := describe(t, e.Env); c.Status != ekstypes.ClusterStatusUpdating || aws.ToString(c.Version) != "1.33" {
		t.Errorf("during the update: %s %s, want UPDATING 1.33", c.Status, aws.ToString(c.Version))
	}
}

func TestHopsAndBatches(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		hops       string
	}{
		{"1.33", "1.34", "1.34"},
		{"1.32", "1.35", "1.33,1.34,1.35"},
		{"1.34", "1.34", ""},
		{"1.34", "1.33", ""},
		{"x", "1.34", ""},
	} {
		if got := strings.Join(hops(tc.have, tc.want), ","); got != tc.hops {
			t.Errorf("hops(%s, %s) = %q, want %q", tc.have, tc.want, got, tc.hops)
		}
	}
	for _, tc := range []struct {
		desired, maxUnavailable, pct int32
		want                         int
	}{
		{2, 0, 0, 2}, {6, 2, 0, 3}, {5, 2, 0, 3}, {10, 0, 50, 2}, {3, 0, 10, 3},
	} {
		ng := &ekstypes.Nodegroup{ScalingConfig: &ekstypes.NodegroupScalingConfig{DesiredSize: aws.Int32(tc.desired)}}
		if tc.maxUnavailable+tc.pct > 0 {
			ng.UpdateConfig = &ekstypes.NodegroupUpdateConfig{}
			if tc.maxUnavailable > 0 {
				ng.UpdateConfig.MaxUnavailable = aws.Int32(tc.maxUnavailable)
			}
			if tc.pct > 0 {
				ng.UpdateConfig.MaxUnavailablePercentage = aws.Int32(tc.pct)
			}
		}
		if got := eksversion.RolloutBatches(ng); got != tc.want {
			t.Errorf("batches(%d nodes, %d, %d%%) = %d, want %d", tc.desired, tc.maxUnavailable, tc.pct, got, tc.want)
		}
	}
}

// TestNodegroupVersionsAsEKSRefusesThem: the double refuses a control
// plane update while a managed node group does not run the cluster's
// version, and a node group version newer than the cluster's or older than
// the group's; without a version, UpdateNodegroupVersion moves the group
// to the cluster's (the API reference), after which the cluster may move.
func TestNodegroupVersionsAsEKSRefusesThem(t *testing.T) {
	emu := ekstest.Use(t, ekstest.Options{})
	e := stagetest.NewWithClusterConfig(t, nil, stagetest.WriteClusterConfig(t, t.TempDir()))
	emu.Wire(e.Deps)
	createCluster(t, e, "1.33", e.Deps.Tags(Name, nil))
	if _, err := e.Deps.AWS.EKS.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String(cluster), NodegroupName: aws.String("ng"), Version: aws.String("1.32"),
		NodeRole: aws.String("arn:aws:iam::123456789012:role/node"), Subnets: []string{"subnet-1"},
	}); err != nil {
		t.Fatal(err)
	}
	cluster134 := func() error {
		_, err := e.Deps.AWS.EKS.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String(cluster), Version: aws.String("1.34")})
		return err
	}
	group := func(v string) func() error {
		return func() error {
			in := &eks.UpdateNodegroupVersionInput{ClusterName: aws.String(cluster), NodegroupName: aws.String("ng")}
			if v != "" {
				in.Version = aws.String(v)
			}
			_, err := e.Deps.AWS.EKS.UpdateNodegroupVersion(ctx, in)
			return err
		}
	}
	tests := []struct {
		name              string
		call              func() error
		wantErr           string
		wantGroup, wantCP string
	}{
		{"control plane while a group trails it", cluster134, "must match the cluster's version 1.33", "1.32", "1.33"},
		{"group newer than the cluster", group("1.34"), "cannot be newer than the cluster (1.33)", "1.32", "1.33"},
		{"group downgrade", group("1.31"), "older than the node group's 1.32", "1.32", "1.33"},
		{"group without a version follows the cluster", group(""), "", "1.33", "1.33"},
		{"then the control plane may move", cluster134, "", "1.33", "1.34"},
	}
	for _, tc := range tests {
		err := tc.call()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "InvalidParameterException") || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want InvalidParameterException naming %q", tc.name, err, tc.wantErr)
		}
		out, err := e.Deps.AWS.EKS.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(cluster), NodegroupName: aws.String("ng")})
		if err != nil {
			t.Fatal(err)
		}
		if v := aws.ToString(out.Nodegroup.Version); v != tc.wantGroup {
			t.Errorf("%s: node group at %s, want %s", tc.name, v, tc.wantGroup)
		}
		if v := aws.ToString(describe(t, e.Env).Version); v != tc.wantCP {
			t.Errorf("%s: cluster at %s, want %s", tc.name, v, tc.wantCP)
		}
	}
}

// TestAddonsCatchUpAfterARunKilledMidHop: a run killed after a minor's
// control plane update, before its add-ons, leaves kube-proxy on a version
// EKS does not list for the new minor; the next apply, with the cluster
// already at the file's version, moves it.
func TestAddonsCatchUpAfterARunKilledMidHop(t *testing.T) {
	e, emu := configEnv(t, ekstest.Options{}, shippedVersion, versionLine("1.33"))
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{"network", Name}})
	if _, err := e.Deps.AWS.EKS.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String(cluster), Version: aws.String("1.34")}); err != nil {
		t.Fatal(err)
	}
	reconfigure(t, e, emu, shippedVersion, versionLine("1.34"))
	before := len(emu.Mutations())
	runConfig(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if got := upgradeCalls(emu.Mutations()[before:]); strings.Join(got, " ") != "addon:kube-proxy" {
		t.Errorf("upgrade calls %v, want only kube-proxy's update", got)
	}
	if _, _, v := emu.Addon(cluster, addonKubeProxy); v != "v1.34.0-eksbuild.2" {
		t.Errorf("kube-proxy %s, want v1.34.0-eksbuild.2", v)
	}
}
