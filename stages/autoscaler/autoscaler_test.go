package autoscaler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/helmx"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/autoscaler"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const oidcHost = "oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"

// The policy is the autoscaler's documented minimum, written out by hand:
// describe calls on "*", DescribeNodegroup on this cluster's groups, and
// resizing only groups tagged for this cluster.
func TestAccessPolicyIsTheDocumentedMinimum(t *testing.T) {
	want := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"Discover","Effect":"Allow","Resource":"*","Action":[
	   "autoscaling:DescribeAutoScalingGroups","autoscaling:DescribeAutoScalingInstances",
	   "autoscaling:DescribeLaunchConfigurations","autoscaling:DescribeScalingActivities","autoscaling:DescribeTags",
	   "ec2:DescribeImages","ec2:DescribeInstanceTypes","ec2:DescribeLaunchTemplateVersions",
	   "ec2:GetInstanceTypesFromInstanceRequirements"]},
	 {"Sid":"ReadOwnNodeGroups","Effect":"Allow","Action":"eks:DescribeNodegroup",
	  "Resource":"arn:aws-cn:eks:cn-north-1:111122223333:nodegroup/coder-prod/*/*"},
	 {"Sid":"ScaleOwnGroups","Effect":"Allow","Resource":"*",
	  "Action":["autoscaling:SetDesiredCapacity","autoscaling:TerminateInstanceInAutoScalingGroup"],
	  "Condition":{"StringEquals":{"aws:ResourceTag/k8s.io/cluster-autoscaler/enabled":"true",
	                               "aws:ResourceTag/k8s.io/cluster-autoscaler/coder-prod":"owned"}}}]}`
	assertSameJSON(t, "policy", autoscaler.AccessPolicy("aws-cn", "cn-north-1", "111122223333", "coder-prod"), want)

	trust, err := autoscaler.Role.Trust("arn:aws:iam::123456789012:oidc-provider/" + oidcHost)
	if err != nil {
		t.Fatal(err)
	}
	assertSameJSON(t, "trust", trust, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
	  "Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/`+oidcHost+`"},
	  "Action":"sts:AssumeRoleWithWebIdentity",
	  "Condition":{"StringEquals":{"`+oidcHost+`:sub":"system:serviceaccount:kube-system:cluster-autoscaler",
	                               "`+oidcHost+`:aud":"sts.amazonaws.com"}}}]}`)
	if _, err := autoscaler.Role.Trust("not-an-arn"); err == nil || !strings.Contains(err.Error(), "OIDC_PROVIDER_ARN") {
		t.Errorf("Role.Trust(not-an-arn) error = %v, want one naming OIDC_PROVIDER_ARN", err)
	}
}

func assertSameJSON(t *testing.T, what string, got map[string]any, want string) {
	t.Helper()
	var g, w any
	b, _ := json.Marshal(got)
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s =\n%s\nwant\n%s", what, b, want)
	}
}

// roleWorld is moto with the eks stage's OIDC provider recorded.
func roleWorld(t *testing.T, inputs map[string]string) *stagetest.Env {
	t.Helper()
	all := stagetest.DefaultInputs()
	for k, v := range inputs {
		all[k] = v
	}
	env := stagetest.New(t, all)
	out, err := env.Deps.AWS.IAM.CreateOpenIDConnectProvider(context.Background(), &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://" + oidcHost), ClientIDList: []string{"sts.amazonaws.com"},
		ThumbprintList: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Deps.State.SetMany(map[string]string{names.KeyOIDCProviderARN: aws.ToString(out.OpenIDConnectProviderArn)}); err != nil {
		t.Fatal(err)
	}
	return env
}

func step(t *testing.T, s engine.Stage, name string) engine.Step {
	t.Helper()
	for _, st := range s.Steps {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no step %s", name)
	return engine.Step{}
}

func check(t *testing.T, checks []engine.Check, name string) engine.Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", name, checks)
	return engine.Check{}
}

func planKinds(t *testing.T, st engine.Step) string {
	t.Helper()
	acts, err := st.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range acts {
		out = append(out, string(a.Kind)+" "+a.Resource)
	}
	return strings.Join(out, ", ")
}

// The role is created exactly as wanted, recorded, repaired when widened,
// and removed when AUTOSCALER=none.
func TestRoleLifecycle(t *testing.T) {
	env := roleWorld(t, nil)
	ctx := context.Background()
	s := autoscaler.New(env.Deps)
	role := step(t, s, autoscaler.StepRole)
	if got := planKinds(t, role); got != "create iam-role/coder-prod-cluster-autoscaler" {
		t.Fatalf("plan = %s", got)
	}
	if err := role.Apply(ctx, &enginetest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	out, err := env.Deps.AWS.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{
		RoleName: aws.String("coder-prod-cluster-autoscaler"), PolicyName: aws.String(autoscaler.RolePolicyName)})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := url.QueryUnescape(aws.ToString(out.PolicyDocument))
	if !strings.Contains(doc, `"aws:ResourceTag/k8s.io/cluster-autoscaler/coder-prod":"owned"`) {
		t.Errorf("stored policy %s lacks the tag condition", doc)
	}
	if arn := env.Deps.State.Get(autoscaler.KeyRoleARN); !strings.HasSuffix(arn, ":role/coder-prod-cluster-autoscaler") {
		t.Errorf("%s = %q", autoscaler.KeyRoleARN, arn)
	}
	if c := check(t, s.Verify(ctx), autoscaler.CheckRole); c.Status != engine.Pass {
		t.Errorf("role check after apply: %+v", c)
	}
	if got := planKinds(t, role); got != "nothing iam-role/coder-prod-cluster-autoscaler" {
		t.Errorf("second plan = %s", got)
	}

	// Someone widens the role: verify fails naming it, apply narrows it.
	if _, err := env.Deps.AWS.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("coder-prod-cluster-autoscaler"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/AutoScalingFullAccess")}); err != nil {
		t.Fatal(err)
	}
	if c := check(t, s.Verify(ctx), autoscaler.CheckRole); c.Status != engine.Fail || !strings.Contains(c.Reason, "AutoScalingFullAccess") {
		t.Errorf("widened role: %+v, want a failure naming the attached policy", c)
	}
	if err := role.Apply(ctx, &enginetest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	if c := check(t, s.Verify(ctx), autoscaler.CheckRole); c.Status != engine.Pass {
		t.Errorf("role check after repair: %+v", c)
	}

	// AUTOSCALER=none: the plan deletes the role, apply does, verify says so.
	if err := env.Deps.State.Set("AUTOSCALER", "none"); err != nil {
		t.Fatal(err)
	}
	env.Reload(t)
	s = autoscaler.New(env.Deps)
	role = step(t, s, autoscaler.StepRole)
	if got := planKinds(t, role); got != "delete iam-role/coder-prod-cluster-autoscaler" {
		t.Errorf("plan with AUTOSCALER=none = %s", got)
	}
	if err := role.Apply(ctx, &enginetest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("coder-prod-cluster-autoscaler")}); err == nil {
		t.Error("role still exists with AUTOSCALER=none")
	}
	if env.Deps.State.Get(autoscaler.KeyRoleARN) != "" {
		t.Errorf("%s still recorded", autoscaler.KeyRoleARN)
	}
	checks := s.Verify(ctx)
	if len(checks) != 1 || checks[0].Name != autoscaler.CheckDisabled || !strings.Contains(checks[0].Reason, "desiredCapacity") {
		t.Errorf("verify with AUTOSCALER=none = %+v", checks)
	}
}

// nodesOnce adds the test nodes to the control plane this binary shares.
var nodesOnce struct {
	sync.Once
	err error
}

// releaseWorld adds the shared control plane (with a system node and a
// tainted workspace node) and the loopback chart repository to roleWorld.
func releaseWorld(t *testing.T, inputs map[string]string) (*stagetest.Env, kubernetes.Interface, string) {
	t.Helper()
	g := kubeground.Require(t)
	ctx := context.Background()
	nodesOnce.Do(func() {
		for _, n := range []kubeground.NodeSpec{
			{Name: "as-system-0", Labels: map[string]string{"coder/node-type": "system"}},
			{Name: "as-workspace-0", Labels: map[string]string{"coder/node-type": "workspace"},
				Taints: []corev1.Taint{{Key: "coder/node-type", Value: "workspace", Effect: corev1.TaintEffectNoSchedule}}},
		} {
			if nodesOnce.err = g.AddNode(ctx, n); nodesOnce.err != nil {
				return
			}
		}
	})
	if nodesOnce.err != nil {
		t.Fatal(nodesOnce.err)
	}
	repo := chartrepo.Require(t)
	all := map[string]string{"AUTOSCALER_CHART_REPO": repo.URL}
	for k, v := range inputs {
		all[k] = v
	}
	env := roleWorld(t, all)
	rc := g.RESTConfig()
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) { return kc, rc, nil }
	helmDir := t.TempDir()
	hc, err := helmx.New(rc, helmx.Options{CacheDir: helmDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := hc.Uninstall(ctx, autoscaler.Release, autoscaler.Namespace, true); err != nil {
		t.Fatal(err)
	}
	return env, kc, helmDir
}

// The release installs the chart line of the cluster's minor on the
// system nodes, discovering this cluster's groups with the IRSA role; a
// re-run changes nothing; AUTOSCALER=none uninstalls it.
func TestReleaseOnSystemNodes(t *testing.T) {
	env, kc, helmDir := releaseWorld(t, nil)
	ctx := context.Background()
	s := autoscaler.New(env.Deps.With(deploy.StageOptions{HelmCacheDir: helmDir}))
	if err := s.Validate(ctx); err != nil {
		t.Fatalf("validate: %v", err)
	}
	for _, name := range []string{autoscaler.StepRole, autoscaler.StepRelease} {
		if err := step(t, s, name).Apply(ctx, &enginetest.Recorder{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	dep, err := kc.AppsV1().Deployments(autoscaler.Namespace).Get(ctx, autoscaler.Deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := dep.Spec.Template.Spec
	args := strings.Join(append(spec.Containers[0].Command, spec.Containers[0].Args...), " ")
	for _, want := range []string{
		"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/coder-prod",
		"--balance-similar-node-groups=true", "--expander=least-waste",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("autoscaler command line %q lacks %s", args, want)
		}
	}
	if spec.NodeSelector["coder/node-type"] != "system" || dep.Spec.Template.Annotations[autoscaler.AnnotationSafeToEvict] != "false" {
		t.Errorf("placement %v / annotations %v, want the system nodes and not safe to evict", spec.NodeSelector, dep.Spec.Template.Annotations)
	}
	if img := spec.Containers[0].Image; !strings.Contains(img, ":v1.34.") {
		t.Errorf("image %s is not of the cluster's minor 1.34", img)
	}
	sa, err := kc.CoreV1().ServiceAccounts(autoscaler.Namespace).Get(ctx, autoscaler.ServiceAccount, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sa.Annotations["eks.amazonaws.com/role-arn"]; got != env.Deps.State.Get(autoscaler.KeyRoleARN) || got == "" {
		t.Errorf("service account role %q, want %s", got, env.Deps.State.Get(autoscaler.KeyRoleARN))
	}
	if c := check(t, s.Verify(ctx), autoscaler.CheckRunning); c.Status != engine.Pass {
		t.Errorf("running check: %+v", c)
	}
	if got := planKinds(t, step(t, s, autoscaler.StepRelease)); got != "nothing helm-release/kube-system/cluster-autoscaler" {
		t.Errorf("second plan = %s", got)
	}

	if err := env.Deps.State.Set("AUTOSCALER", "none"); err != nil {
		t.Fatal(err)
	}
	env.Reload(t)
	rc := kubeground.Require(t).RESTConfig()
	env.Deps.Kube = func(context.Context) (kubernetes.Interface, *rest.Config, error) { return kc, rc, nil }
	s = autoscaler.New(env.Deps.With(deploy.StageOptions{HelmCacheDir: helmDir}))
	rel := step(t, s, autoscaler.StepRelease)
	if got := planKinds(t, rel); got != "delete helm-release/kube-system/cluster-autoscaler" {
		t.Errorf("plan with AUTOSCALER=none = %s", got)
	}
	if err := rel.Apply(ctx, &enginetest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.AppsV1().Deployments(autoscaler.Namespace).Get(ctx, autoscaler.Deployment, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment after AUTOSCALER=none: err = %v, want not found", err)
	}
}

// Bad chart input is refused before anything changes.
func TestValidateChart(t *testing.T) {
	env, _, helmDir := releaseWorld(t, map[string]string{"AUTOSCALER_CHART_VERSION": "9.9.9"})
	s := autoscaler.New(env.Deps.With(deploy.StageOptions{HelmCacheDir: helmDir}))
	err := s.Validate(context.Background())
	var ie *fault.InputError
	if !errors.As(err, &ie) || ie.Field != "AUTOSCALER_CHART_VERSION" || !strings.Contains(err.Error(), "no version 9.9.9") {
		t.Errorf("validate with an unknown version = %v, want bad input naming AUTOSCALER_CHART_VERSION", err)
	}
}

// The discovery-tags check reads each growable group's Auto Scaling group
// (kept in moto as EKS keeps it) and fails naming a group whose tags are
// gone.
func TestDiscoveryTags(t *testing.T) {
	env := roleWorld(t, nil)
	ctx := context.Background()
	d := env.Deps
	vpc, err := d.AWS.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	var subnets []string
	for i, zone := range []string{"us-west-2a", "us-west-2b", "us-west-2c"} {
		sn, err := d.AWS.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(zone),
			CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i))})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	if _, err := d.AWS.EKS.CreateCluster(ctx, &eks.CreateClusterInput{Name: aws.String("coder-prod"),
		RoleArn: aws.String("arn:aws:iam::123456789012:role/cluster"), ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: subnets}}); err != nil {
		t.Fatal(err)
	}
	s := autoscaler.New(d)
	if c := check(t, s.Verify(ctx), autoscaler.CheckDiscoveryTag); c.Status != engine.Fail || !strings.Contains(c.Reason, "coder-provisioner") {
		t.Errorf("without node groups: %+v, want a failure naming coder-provisioner", c)
	}
	// The shipped config's growable groups, as the nodegroups stage makes them.
	for _, g := range []struct {
		name          string
		min, max, des int32
	}{{"coder-provisioner", 1, 6, 2}, {"coder-workspace", 2, 20, 2}} {
		if _, err := d.AWS.EKS.CreateNodegroup(ctx, &eks.CreateNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String(g.name),
			NodeRole: aws.String("arn:aws:iam::123456789012:role/node"), Subnets: subnets, InstanceTypes: []string{"m7i.xlarge"},
			ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(g.min), MaxSize: aws.Int32(g.max), DesiredSize: aws.Int32(g.des)}}); err != nil {
			t.Fatal(err)
		}
	}
	syncer := &eksnodes.Syncer{EKS: d.AWS.EKS, EC2: d.AWS.EC2, AutoScaling: d.AWS.AutoScaling, Cluster: "coder-prod",
		Kube: kubeground.Require(t).Client(), ReadyTimeout: -1}
	t.Cleanup(func() {
		for _, g := range []string{"coder-provisioner", "coder-workspace"} {
			_, _ = d.AWS.EKS.DeleteNodegroup(ctx, &eks.DeleteNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String(g)})
		}
		_, _ = syncer.Sync(ctx)
	})
	if _, err := syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c := check(t, s.Verify(ctx), autoscaler.CheckDiscoveryTag)
	if c.Status != engine.Pass || !strings.Contains(c.Reason, "all 2 growable node groups") {
		t.Errorf("with EKS's tags: %+v, want a pass for 2 growable groups", c)
	}
	out, err := d.AWS.EKS.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String("coder-prod"), NodegroupName: aws.String("coder-workspace")})
	if err != nil {
		t.Fatal(err)
	}
	asg := eksnodes.ASGName(out.Nodegroup)
	if _, err := d.AWS.AutoScaling.DeleteTags(ctx, &autoscaling.DeleteTagsInput{Tags: []astypes.Tag{{
		ResourceId: aws.String(asg), ResourceType: aws.String("auto-scaling-group"), Key: aws.String("k8s.io/cluster-autoscaler/coder-prod")}}}); err != nil {
		t.Fatal(err)
	}
	c = check(t, s.Verify(ctx), autoscaler.CheckDiscoveryTag)
	if c.Status != engine.Fail || !strings.Contains(c.Reason, "node group coder-workspace: Auto Scaling group "+asg+" lacks tag k8s.io/cluster-autoscaler/coder-prod") {
		t.Errorf("after removing a tag: %+v, want a failure naming the group and the tag", c)
	}
}
