package eks

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/kube"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/state"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

var ctx = context.Background()

func TestApplyFromEmptyBuildsTheClusterAsConfigured(t *testing.T) {
	// The double makes EKS refuse the first CreateCluster as it does while
	// a new role propagates, and keeps the cluster CREATING for two polls.
	e, emu := newEnv(t, ekstest.Options{Polls: 2, ClusterPolls: 2, RoleNotReady: 1})
	sum, events := run(t, e, engine.Options{Mode: engine.ModeApply})
	out := outputs(e)
	for k, v := range out {
		if v == "" {
			t.Errorf("%s not recorded", k)
		}
	}

	c := describe(t, e)
	if c.Status != "ACTIVE" || aws.ToString(c.Version) != "1.34" {
		t.Errorf("cluster %s, version %s; want ACTIVE 1.34", c.Status, aws.ToString(c.Version))
	}
	vc := c.ResourcesVpcConfig
	if !vc.EndpointPublicAccess || !vc.EndpointPrivateAccess {
		t.Errorf("endpoint public=%v private=%v, want both", vc.EndpointPublicAccess, vc.EndpointPrivateAccess)
	}
	wantSubnets := append(state.SplitList(e.Deps.State.Get(names.KeyPrivateSubnetIDs)), state.SplitList(e.Deps.State.Get(names.KeyPublicSubnetIDs))...)
	if len(wantSubnets) != 6 || !slices.Equal(vc.SubnetIds, wantSubnets) {
		t.Errorf("subnets %v, want private then public %v", vc.SubnetIds, wantSubnets)
	}
	if got := enabledLogTypes(c); len(got) != 3 || !got["api"] || !got["audit"] || !got["authenticator"] {
		t.Errorf("logging %v, want api, audit, authenticator", got)
	}
	if c.Tags["coderctl/deployment"] != cluster || c.Tags["coderctl/stage"] != Name {
		t.Errorf("cluster tags %v", c.Tags)
	}

	// moto reports no cluster security group: the shared one stands in.
	sg := sharedSG(t, e)
	if sg == "" || out[names.KeyClusterSecurityGroupID] != sg || !slices.Equal(vc.SecurityGroupIds, []string{sg}) {
		t.Errorf("CLUSTER_SECURITY_GROUP_ID %s, shared group %q, cluster groups %v", out[names.KeyClusterSecurityGroupID], sg, vc.SecurityGroupIds)
	}

	create := emu.Requests("POST", "/clusters")
	if tokens := clusterTokens(t, emu); len(tokens) != 2 || tokens[0] != tokens[1] {
		t.Fatalf("CreateCluster tokens %q, want the refused call and a retry with the same token", tokens)
	}
	clusterProgress := strings.Join(progressMessages(events, names.EKSStepCluster), "\n")
	for _, want := range []string{"cannot assume the new cluster role yet", "waiting for EKS cluster coder-prod: CREATING", "waiting for EKS cluster coder-prod: ACTIVE"} {
		if !strings.Contains(clusterProgress, want) {
			t.Errorf("cluster progress lacks %q:\n%s", want, clusterProgress)
		}
	}
	var body struct {
		AccessConfig struct {
			AuthenticationMode                      string `json:"authenticationMode"`
			BootstrapClusterCreatorAdminPermissions bool   `json:"bootstrapClusterCreatorAdminPermissions"`
		} `json:"accessConfig"`
		ClientRequestToken string `json:"clientRequestToken"`
		RoleArn            string `json:"roleArn"`
	}
	mustJSON(t, create[0], &body)
	if body.AccessConfig.AuthenticationMode != "API_AND_CONFIG_MAP" || !body.AccessConfig.BootstrapClusterCreatorAdminPermissions {
		t.Errorf("access config %+v, want API_AND_CONFIG_MAP with the creator as admin", body.AccessConfig)
	}
	if body.ClientRequestToken == "" || body.RoleArn != out[names.KeyClusterRoleARN] {
		t.Errorf("CreateCluster token %q role %q", body.ClientRequestToken, body.RoleArn)
	}

	assertRole(t, e, cluster+"-eks-cluster", "AmazonEKSClusterPolicy", `"Service":"eks.amazonaws.com"`)
	issuerHost := strings.TrimPrefix(aws.ToString(c.Identity.Oidc.Issuer), "https://")
	assertRole(t, e, cluster+"-ebs-csi", "AmazonEBSCSIDriverPolicy",
		`"Federated":"`+out[names.KeyOIDCProviderARN]+`"`, `"`+issuerHost+`:sub":"system:serviceaccount:kube-system:ebs-csi-controller-sa"`)

	p, err := e.Deps.AWS.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(out[names.KeyOIDCProviderARN])})
	if err != nil {
		t.Fatalf("OIDC provider %s: %v", out[names.KeyOIDCProviderARN], err)
	}
	if !strings.HasSuffix(out[names.KeyOIDCProviderARN], ":oidc-provider/"+issuerHost) || !slices.Equal(p.ClientIDList, []string{"sts.amazonaws.com"}) ||
		!slices.Equal(p.ThumbprintList, []string{eksRootCAThumbprint}) {
		t.Errorf("OIDC provider %s: clients %v thumbprints %v (issuer %s)", out[names.KeyOIDCProviderARN], p.ClientIDList, p.ThumbprintList, issuerHost)
	}

	for _, name := range defaultAddons() {
		status, role, _ := emu.Addon(cluster, name)
		if status == "" {
			t.Errorf("add-on %s not created", name)
		}
		if wantRole := map[bool]string{true: out[names.KeyEBSCSIRoleARN]}[name == addonEBSCSI]; role != wantRole {
			t.Errorf("add-on %s role %q, want %q", name, role, wantRole)
		}
	}
	for _, b := range emu.Requests("POST", "/clusters/"+cluster+"/addons") {
		var in struct{ ClientRequestToken, ResolveConflicts string }
		mustJSON(t, b, &in)
		if in.ClientRequestToken == "" || in.ResolveConflicts != "OVERWRITE" {
			t.Errorf("CreateAddon %s: token %q, resolveConflicts %q", b, in.ClientRequestToken, in.ResolveConflicts)
		}
	}

	progress := strings.Join(progressMessages(events, StepAddons), "\n")
	for _, want := range []string{"waiting for add-on vpc-cni: CREATING", "waiting for add-on kube-proxy: ACTIVE", "coredns becomes ACTIVE once node groups exist"} {
		if !strings.Contains(progress, want) {
			t.Errorf("addons progress lacks %q:\n%s", want, progress)
		}
	}

	checks := checksOf(sum)
	for _, name := range []string{"cluster-role", "cluster-active", "cluster-version", "endpoint-access", "control-plane-logging",
		"cluster-security-group", "oidc-provider", "ebs-csi-role", "addon-vpc-cni", "addon-kube-proxy"} {
		if c, ok := checks[name]; !ok || c.Status != engine.Pass {
			t.Errorf("check %s = %+v, want pass", name, c)
		}
	}
	for _, name := range []string{"addon-coredns", "addon-aws-ebs-csi-driver", "api-server"} {
		if c := checks[name]; c.Status != engine.Warn {
			t.Errorf("check %s = %+v, want warn (no node groups, no Kubernetes access)", name, c)
		}
	}
}

func TestReapplyMakesNoMutatingCalls(t *testing.T) {
	e, emu := newEnv(t, ekstest.Options{})
	applyAll(t, e)
	before := outputs(e)

	reload(t, e, emu)
	e.Calls.Reset()
	run(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if m := e.Calls.Mutations(); len(m) != 0 {
		t.Errorf("second apply made mutating calls: %v", m)
	}
	if after := outputs(e); !mapsEqual(before, after) {
		t.Errorf("outputs changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestApplyAdoptsWhatExistsWhenOutputsAreLost(t *testing.T) {
	e, emu := newEnv(t, ekstest.Options{})
	applyAll(t, e)
	before := outputs(e)
	if err := e.Deps.State.Unset(names.KeyClusterRoleARN, names.KeyClusterEndpoint, names.KeyClusterSecurityGroupID, names.KeyOIDCProviderARN, names.KeyEBSCSIRoleARN); err != nil {
		t.Fatal(err)
	}

	reload(t, e, emu)
	if got := outputs(e); got[names.KeyClusterEndpoint] != "" {
		t.Fatalf("outputs still in the state file after unset: %v", got)
	}
	e.Calls.Reset()
	run(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if m := e.Calls.Mutations(); len(m) != 0 {
		t.Errorf("adopting apply made mutating calls: %v", m)
	}
	if after := outputs(e); !mapsEqual(before, after) {
		t.Errorf("adopted outputs differ:\nbefore %v\nafter  %v", before, after)
	}
	if n := len(emu.Requests("POST", "/clusters")); n != 1 {
		t.Errorf("%d CreateCluster calls in all, want 1", n)
	}
}

func TestPlanSaysCreateOnEmptyAndNothingAfterApply(t *testing.T) {
	e, _ := newEnv(t, ekstest.Options{})
	e.Calls.Reset()
	sum, _ := run(t, e, engine.Options{Mode: engine.ModePlan})
	if m := e.Calls.Mutations(); len(m) != 0 {
		t.Errorf("plan made mutating calls: %v", m)
	}
	wanted := []string{
		"iam-role/coder-prod-eks-cluster", "security-group/coder-prod-cluster-shared", "eks-cluster/coder-prod",
		"iam-oidc-provider/coder-prod", "iam-role/coder-prod-ebs-csi",
		"eks-addon/vpc-cni", "eks-addon/coredns", "eks-addon/kube-proxy", "eks-addon/aws-ebs-csi-driver",
	}
	acts := actionsOf(sum)
	for _, res := range wanted {
		if a, ok := acts[res]; !ok || a.Kind != engine.Create {
			t.Errorf("empty plan for %s = %+v, want create", res, a)
		}
	}
	if len(acts) != len(wanted) {
		t.Errorf("empty plan has %d actions, want %d: %v", len(acts), len(wanted), keys(acts))
	}

	applyAll(t, e)
	sum, _ = run(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
	acts = actionsOf(sum)
	if len(acts) < 8 {
		t.Errorf("plan after apply has %d actions, want one per resource: %v", len(acts), keys(acts))
	}
	for res, a := range acts {
		if a.Kind != engine.Nothing {
			t.Errorf("plan after apply: %s = %s (%s), want nothing", res, a.Kind, a.Reason)
		}
	}
}

// TestVerifyNamesWhatBrokeAndApplyRepairsIt breaks one thing at a time
// behind coderctl's back: the checkpoint must fail with the named check,
// plan must say what it would change, and apply must repair it.
func TestVerifyNamesWhatBrokeAndApplyRepairsIt(t *testing.T) {
	e, emu := newEnv(t, ekstest.Options{})
	applyAll(t, e)
	ebsRole := e.Deps.State.Get(names.KeyEBSCSIRoleARN)
	tests := []struct {
		name, check, resource string
		kind                  engine.ActionKind
		breakIt               func(t *testing.T) error
	}{
		{"cluster policy detached", "cluster-role", "iam-role/coder-prod-eks-cluster", engine.Update, func(t *testing.T) error {
			_, err := e.Deps.AWS.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(cluster + "-eks-cluster"),
				PolicyArn: aws.String("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")})
			return err
		}},
		{"ebs-csi trust widened", "ebs-csi-role", "iam-role/coder-prod-ebs-csi", engine.Update, func(t *testing.T) error {
			_, err := e.Deps.AWS.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(cluster + "-ebs-csi"),
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`)})
			return err
		}},
		{"logging turned off", "control-plane-logging", "eks-cluster/coder-prod", engine.Update, func(t *testing.T) error {
			_, err := e.Deps.AWS.EKS.UpdateClusterConfig(ctx, &eks.UpdateClusterConfigInput{Name: aws.String(cluster),
				Logging: loggingRequest(nil, []string{"api", "audit", "authenticator"})})
			return err
		}},
		{"private endpoint turned off", "endpoint-access", "eks-cluster/coder-prod", engine.Update, func(t *testing.T) error {
			_, err := e.Deps.AWS.EKS.UpdateClusterConfig(ctx, &eks.UpdateClusterConfigInput{Name: aws.String(cluster),
				ResourcesVpcConfig: &ekstypes.VpcConfigRequest{EndpointPublicAccess: aws.Bool(true), EndpointPrivateAccess: aws.Bool(false)}})
			return err
		}},
		{"OIDC provider deleted", "oidc-provider", "", engine.Create, func(t *testing.T) error {
			_, err := e.Deps.AWS.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{
				OpenIDConnectProviderArn: aws.String(e.Deps.State.Get(names.KeyOIDCProviderARN))})
			return err
		}},
		{"vpc-cni add-on deleted", "addon-vpc-cni", "eks-addon/vpc-cni", engine.Create, func(t *testing.T) error {
			_, err := e.Deps.AWS.EKS.DeleteAddon(ctx, &eks.DeleteAddonInput{ClusterName: aws.String(cluster), AddonName: aws.String(addonVPCCNI)})
			return err
		}},
		{"ebs-csi add-on role swapped", "addon-aws-ebs-csi-driver", "eks-addon/aws-ebs-csi-driver", engine.Update, func(t *testing.T) error {
			emu.SetAddonRole(cluster, addonEBSCSI, "arn:aws:iam::123456789012:role/someone-else")
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.breakIt(t); err != nil {
				t.Fatalf("breaking it: %v", err)
			}
			if c := verifyEKS(t, e)[tc.check]; c.Status != engine.Fail {
				t.Fatalf("check %s after %s = %+v, want fail", tc.check, tc.name, c)
			}
			sum, _ := run(t, e, engine.Options{Mode: engine.ModePlan, Only: []string{Name}})
			changed := false
			for res, a := range actionsOf(sum) {
				if a.Kind == tc.kind && (tc.resource == "" || res == tc.resource) {
					changed = true
				}
			}
			if !changed {
				t.Errorf("plan after %s lacks a %s of %q: %v", tc.name, tc.kind, tc.resource, actionsOf(sum))
			}
			run(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
			if c := verifyEKS(t, e)[tc.check]; c.Status != engine.Pass {
				t.Errorf("check %s after repair = %+v, want pass", tc.check, c)
			}
		})
	}
	if _, role, _ := emu.Addon(cluster, addonEBSCSI); role != ebsRole {
		t.Errorf("ebs-csi add-on role %q after repair, want %s", role, ebsRole)
	}
}

func TestDestroyLeavesNothingTagged(t *testing.T) {
	e, _ := newEnv(t, ekstest.Options{Polls: 1})
	applyAll(t, e)
	for i := range 2 { // the second destroy finds everything gone
		_, events := run(t, e, engine.Options{Mode: engine.ModeDestroy})
		if i == 0 && !strings.Contains(strings.Join(progressMessages(events, names.EKSStepCluster), "\n"), "deleting EKS cluster") {
			t.Errorf("destroy did not report deleting the cluster")
		}
	}
	assertNothingLeft(t, e)
}

func TestDestroyAfterTheClusterVanishedStillRemovesTheRest(t *testing.T) {
	e, _ := newEnv(t, ekstest.Options{})
	applyAll(t, e)
	if _, err := e.Deps.AWS.EKS.DeleteCluster(ctx, &eks.DeleteClusterInput{Name: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	run(t, e, engine.Options{Mode: engine.ModeDestroy, Only: []string{Name}})
	assertNothingLeft(t, e)
}

func TestDestroyWithNodeGroupsSaysWhichStageToDestroyFirst(t *testing.T) {
	e, _ := newEnv(t, ekstest.Options{})
	applyAll(t, e)
	if _, err := e.Deps.AWS.EKS.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String(cluster), NodegroupName: aws.String("system"),
		NodeRole: aws.String("arn:aws:iam::123456789012:role/nodes"), Subnets: state.SplitList(e.Deps.State.Get(names.KeyPrivateSubnetIDs)),
	}); err != nil {
		t.Fatal(err)
	}
	sum, events, err := e.Run(t, graph(e.Deps), engine.Options{Mode: engine.ModeDestroy, Only: []string{Name}})
	if err == nil || sum.OK {
		t.Fatalf("destroy with a node group succeeded")
	}
	msg := stagetest.Failures(sum, events)
	if !strings.Contains(msg, "still has node groups (system)") || !strings.Contains(msg, "coderctl stage nodegroups destroy") {
		t.Errorf("destroy error does not say what to do: %s", msg)
	}
	if c := describe(t, e); c.Status != "ACTIVE" {
		t.Errorf("cluster %s after refused destroy", c.Status)
	}
}

// assertNothingLeft proves the eks stage left no cluster, role, OIDC
// provider, security group or output behind.
func assertNothingLeft(t *testing.T, e *stagetest.Env) {
	t.Helper()
	if _, err := e.Deps.AWS.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(cluster)}); !awsx.IsNotFound(err) {
		t.Errorf("cluster still there (err %v)", err)
	}
	for _, role := range []string{cluster + "-eks-cluster", cluster + "-ebs-csi"} {
		if _, err := e.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)}); !awsx.IsNotFound(err) {
			t.Errorf("role %s still there (err %v)", role, err)
		}
	}
	providers, err := e.Deps.AWS.IAM.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(providers.OpenIDConnectProviderList) != 0 {
		t.Errorf("OIDC providers left: %v (err %v)", providers, err)
	}
	if sg := sharedSG(t, e); sg != "" {
		t.Errorf("shared security group %s left", sg)
	}
	if left := outputs(e); slices.ContainsFunc(slices.Collect(maps.Values(left)), func(v string) bool { return v != "" }) {
		t.Errorf("outputs left in the state file: %v", left)
	}
}

func TestMissingNetworkOutputsNameTheStageToRunFirst(t *testing.T) {
	e, emu := newEnv(t, ekstest.Options{})
	sum, events, err := e.Run(t, graph(e.Deps), engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	if err == nil || sum.OK {
		t.Fatal("apply without network outputs succeeded")
	}
	if fault.IsInput(err) {
		t.Errorf("missing network outputs reported as bad input: %v", err)
	}
	if msg := stagetest.Failures(sum, events); !strings.Contains(msg, "VPC_ID is not in") || !strings.Contains(msg, "coderctl stage network apply") {
		t.Errorf("error does not name the network stage: %s", msg)
	}
	if n := len(emu.Requests("POST", "/clusters")); n != 0 {
		t.Errorf("%d CreateCluster calls without a network", n)
	}
}

// TestBadInputIsRefusedBeforeAnythingChanges runs the validator the CLI
// runs before any step: each case must be bad input (exit 2) naming the
// file and field to fix, with no mutating call.
func TestBadInputIsRefusedBeforeAnythingChanges(t *testing.T) {
	long := strings.Repeat("c", 53) // + "-eks-cluster" is 65 characters
	tests := []struct {
		name   string
		config []string                                   // replacements in the shipped cluster-config.yaml
		setup  func(t *testing.T, e *stagetest.ConfigEnv) // may create things; calls are reset after it
		want   []string                                   // fragments of the error
	}{
		{name: "unsupported Kubernetes version", setup: func(t *testing.T, e *stagetest.ConfigEnv) {
			e.Deps.Cluster.Metadata.Version = "1.29" // past the config loader, as a hand-built Deps could be
		}, want: []string{"metadata.version", `"1.29"`, "1.30"}},
		{name: "cluster name too long for IAM role names", config: []string{"name: coder-prod", "name: " + long},
			want: []string{"cluster-config.yaml: metadata.name", "too long", "at most 52 characters"}},
		{name: "unknown add-on", config: []string{"- name: kube-proxy", "- name: kube-prxy"},
			want: []string{"cluster-config.yaml: addons[2].name", `no add-on "kube-prxy"`}},
		{name: "add-on version EKS does not offer", config: []string{"- name: coredns", "- name: coredns\n    version: v0.0.1-eksbuild.1"},
			want: []string{"addons[1].version", `no version "v0.0.1-eksbuild.1"`}},
		{name: "someone else's cluster of that name", setup: func(t *testing.T, e *stagetest.ConfigEnv) {
			createCluster(t, e, "1.34", nil)
		}, want: []string{"cluster-config.yaml: metadata.name", "already exists", "not this deployment's"}},
		{name: "cluster at a newer version (a downgrade)", setup: func(t *testing.T, e *stagetest.ConfigEnv) {
			createCluster(t, e, "1.35", e.Deps.Tags(Name, nil))
		}, want: []string{"metadata.version", "runs Kubernetes 1.35", "does not downgrade", `set it back to "1.35"`}},
		{name: "someone else's IAM role of our name", setup: func(t *testing.T, e *stagetest.ConfigEnv) {
			if _, err := e.Deps.AWS.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(cluster + "-ebs-csi"),
				AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`)}); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"cluster-config.yaml: metadata.name", "IAM role coder-prod-ebs-csi already exists"}},
		{name: "the same cluster name deployed in another region", setup: func(t *testing.T, e *stagetest.ConfigEnv) {
			tags := awsx.Tags(cluster, Name, map[string]string{awsx.TagRegion: "eu-west-1"})
			if _, err := e.Deps.AWS.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(cluster + "-eks-cluster"),
				AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`), Tags: awsx.IAMTagList(tags)}); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"cluster-config.yaml: metadata.name", "IAM role coder-prod-eks-cluster belongs to deployment coder-prod in eu-west-1", "account-wide"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := ekstest.Use(t, ekstest.Options{})
			e := stagetest.NewWithClusterConfig(t, nil, stagetest.WriteClusterConfig(t, t.TempDir(), tc.config...))
			emu.Wire(e.Deps)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			assertRefusedBeforeAnyChange(t, e.Env, tc.want)
		})
	}
}

// createCluster makes a cluster of the deployment's name directly.
func createCluster(t *testing.T, e *stagetest.ConfigEnv, version string, tags map[string]string) {
	t.Helper()
	if _, err := e.Deps.AWS.EKS.CreateCluster(ctx, &eks.CreateClusterInput{
		Name: aws.String(cluster), Version: aws.String(version), RoleArn: aws.String("arn:aws:iam::123456789012:role/other"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1", "subnet-2"}}, Tags: tags,
	}); err != nil {
		t.Fatal(err)
	}
}

func TestAPIServerCheck(t *testing.T) {
	t.Run("moto's certificate authority is not PEM: a warning, no panic", func(t *testing.T) {
		e, _ := newEnv(t, ekstest.Options{})
		applyAll(t, e)
		e.Deps.Kube = kube.Factory("", e.Deps.AWS, cluster)
		c := verifyEKS(t, e)["api-server"]
		if c.Status != engine.Warn || !strings.Contains(c.Reason, "not a PEM certificate") {
			t.Errorf("api-server = %+v, want a warning about the CA", c)
		}
	})
	t.Run("an API server behind the endpoint answers, authenticated with an EKS token", func(t *testing.T) {
		var mu sync.Mutex
		var auth string
		api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth = r.Header.Get("Authorization")
			mu.Unlock()
			if r.URL.Path != "/version" {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write([]byte(`{"major":"1","minor":"34","gitVersion":"v1.34.2-eks-1234"}`))
		}))
		defer api.Close()
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
		e, _ := newEnv(t, ekstest.Options{ClusterCA: ca, ClusterEndpoint: api.URL})
		applyAll(t, e)
		e.Deps.Kube = kube.Factory("", e.Deps.AWS, cluster)
		if c := verifyEKS(t, e)["api-server"]; c.Status != engine.Pass || !strings.Contains(c.Reason, "v1.34.2") {
			t.Errorf("api-server = %+v, want pass with the server's version", c)
		}
		mu.Lock()
		defer mu.Unlock()
		token, ok := strings.CutPrefix(auth, "Bearer "+kube.TokenPrefix)
		if !ok {
			t.Fatalf("Authorization %q is not an EKS bearer token", auth)
		}
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			t.Fatalf("token does not decode: %v", err)
		}
		if u, err := url.Parse(string(raw)); err != nil || u.Query().Get("Action") != "GetCallerIdentity" ||
			!strings.Contains(u.Query().Get("X-Amz-SignedHeaders"), kube.ClusterIDHeader) {
			t.Errorf("token URL %s: not a presigned GetCallerIdentity signing %s", raw, kube.ClusterIDHeader)
		}
	})
}

// TestClientTokensAreStableAcrossRerunsAndNewAfterDestroy: a re-run that
// must create the cluster again sends the same clientRequestToken (so AWS
// answers with the cluster the first call made), while a cluster built
// after a destroy gets a new one (AWS would otherwise return the old one).
func TestClientTokensAreStableAcrossRerunsAndNewAfterDestroy(t *testing.T) {
	e, emu := newEnv(t, ekstest.Options{})
	applyAll(t, e)
	if _, err := e.Deps.AWS.EKS.DeleteCluster(ctx, &eks.DeleteClusterInput{Name: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	run(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	run(t, e, engine.Options{Mode: engine.ModeDestroy, Only: []string{Name}})
	run(t, e, engine.Options{Mode: engine.ModeApply, Only: []string{Name}})
	tokens := clusterTokens(t, emu)
	if len(tokens) != 3 || tokens[0] != tokens[1] || tokens[2] == tokens[0] || tokens[0] == "" {
		t.Errorf("CreateCluster tokens %q: want the first two equal and the third new", tokens)
	}
}

// clusterTokens are the clientRequestTokens of every CreateCluster call.
func clusterTokens(t *testing.T, emu *ekstest.Server) []string {
	t.Helper()
	var tokens []string
	for _, b := range emu.Requests("POST", "/clusters") {
		var in struct{ ClientRequestToken string }
		mustJSON(t, b, &in)
		tokens = append(tokens, in.ClientRequestToken)
	}
	return tokens
}
