package nodegroups_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/nodegroups"
)

// mixedConfig has one group per AMI type coderctl picks, each with its own
// launch template settings.
const mixedConfig = `apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata:
  name: coder-prod
  region: us-west-2
  version: "1.34"
  tags:
    cost-center: "42"
availabilityZones: ["us-west-2a", "us-west-2b", "us-west-2c"]
managedNodeGroups:
  - name: x86
    instanceType: m7i.xlarge
    minSize: 1
    maxSize: 3
    desiredCapacity: 1
    volumeSize: 50
    privateNetworking: true
    tags:
      team: infra
    updateConfig:
      maxUnavailable: 2
  - name: arm
    instanceType: m7g.xlarge
    minSize: 2
    maxSize: 2
    desiredCapacity: 2
    privateNetworking: true
    labels:
      coder/node-type: arm
  - name: br-arm
    amiFamily: Bottlerocket
    instanceType: m7g.large
    minSize: 1
    maxSize: 1
    privateNetworking: true
  - name: gpu
    instanceType: g5.xlarge
    minSize: 1
    maxSize: 1
    privateNetworking: true
    disableIMDSv1: false
  - name: io
    instanceType: c7i.2xlarge
    minSize: 1
    maxSize: 1
    volumeSize: 60
    volumeType: io1
    volumeIOPS: 2000
    volumeEncrypted: true
    volumeKmsKeyID: arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    disablePodIMDS: true
    privateNetworking: true
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster-config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ltWant is what one group's launch template and node group must hold.
type ltWant struct {
	group, amiType   string
	tokens           ec2types.LaunchTemplateHttpTokensState
	hopLimit         int32
	size             int32
	volumeType       string
	iops, throughput int32
	encrypted        bool
	kms              string
	tags             map[string]string
	updateConfig     *ekstypes.NodegroupUpdateConfig
}

var mixedWants = []ltWant{
	{group: "x86", amiType: "AL2023_x86_64_STANDARD", tokens: "required", hopLimit: 2, size: 50, volumeType: "gp3", iops: 3000, throughput: 125,
		tags:         map[string]string{"Name": "coder-prod-x86-Node", "team": "infra", "cost-center": "42"},
		updateConfig: &ekstypes.NodegroupUpdateConfig{MaxUnavailable: aws.Int32(2)}},
	{group: "arm", amiType: "AL2023_ARM_64_STANDARD", tokens: "required", hopLimit: 2, size: 80, volumeType: "gp3", iops: 3000, throughput: 125,
		tags: map[string]string{"Name": "coder-prod-arm-Node", "cost-center": "42"}},
	{group: "br-arm", amiType: "BOTTLEROCKET_ARM_64", tokens: "required", hopLimit: 2, size: 80, volumeType: "gp3", iops: 3000, throughput: 125,
		tags: map[string]string{"Name": "coder-prod-br-arm-Node", "cost-center": "42"}},
	{group: "gpu", amiType: "AL2023_x86_64_NVIDIA", tokens: "optional", hopLimit: 2, size: 80, volumeType: "gp3", iops: 3000, throughput: 125,
		tags: map[string]string{"Name": "coder-prod-gpu-Node", "cost-center": "42"}},
	{group: "io", amiType: "AL2023_x86_64_STANDARD", tokens: "required", hopLimit: 1, size: 60, volumeType: "io1", iops: 2000, encrypted: true,
		kms:  "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		tags: map[string]string{"Name": "coder-prod-io-Node", "cost-center": "42"}},
}

// TestLaunchTemplatesAsEksctlBuildsThem: each group gets eksctl's AMI type
// for its family and instance type (ARM, Bottlerocket ARM, NVIDIA) and a
// launch template of its own holding the root volume, IMDSv2 and hop limit
// as eksctl sets them and the group's tags for instances, volumes and
// network interfaces; the group runs version 1 of it, without a disk size,
// with its updateConfig; verify passes the launch-template checks.
func TestLaunchTemplatesAsEksctlBuildsThem(t *testing.T) {
	w := newWorldWith(t, writeConfig(t, mixedConfig))
	w.apply(t)
	creates := w.creates.byName()
	checks := w.checks(t)
	for _, want := range mixedWants {
		t.Run(want.group, func(t *testing.T) {
			in := creates[want.group]
			if string(in.AmiType) != want.amiType {
				t.Errorf("CreateNodegroup amiType = %q, want %q", in.AmiType, want.amiType)
			}
			if in.DiskSize != nil {
				t.Errorf("CreateNodegroup diskSize = %d, want none (the template holds the volume)", *in.DiskSize)
			}
			if in.LaunchTemplate == nil || aws.ToString(in.LaunchTemplate.Version) != "1" {
				t.Fatalf("CreateNodegroup launchTemplate = %+v, want version 1 of coderctl's", in.LaunchTemplate)
			}
			if in.Tags["team"] != want.tags["team"] || in.Tags["coderctl/deployment"] != "coder-prod" {
				t.Errorf("node group tags = %v, want the group's tags and coderctl's", in.Tags)
			}
			ng := w.describe(t, want.group)
			if string(ng.AmiType) != want.amiType || aws.ToString(ng.LaunchTemplate.Version) != "1" {
				t.Errorf("described amiType %s, launch template %+v", ng.AmiType, ng.LaunchTemplate)
			}
			if want.updateConfig != nil && aws.ToInt32(ng.UpdateConfig.MaxUnavailable) != aws.ToInt32(want.updateConfig.MaxUnavailable) {
				t.Errorf("updateConfig = %+v, want maxUnavailable %d", ng.UpdateConfig, aws.ToInt32(want.updateConfig.MaxUnavailable))
			}
			lt := w.launchTemplate(t, "coder-prod-"+want.group, "1")
			checkTemplate(t, lt, want)
			if c := checks["launch-template/"+want.group]; c.Status != engine.Pass {
				t.Errorf("check launch-template/%s = %+v, want pass", want.group, c)
			}
		})
	}
}

func checkTemplate(t *testing.T, d *ec2types.ResponseLaunchTemplateData, want ltWant) {
	t.Helper()
	mo := d.MetadataOptions
	if mo == nil || mo.HttpTokens != want.tokens || aws.ToInt32(mo.HttpPutResponseHopLimit) != want.hopLimit {
		t.Errorf("metadata options = %+v, want HttpTokens %s, hop limit %d", mo, want.tokens, want.hopLimit)
	}
	if len(d.BlockDeviceMappings) != 1 || d.BlockDeviceMappings[0].Ebs == nil {
		t.Fatalf("block devices = %+v, want the root volume", d.BlockDeviceMappings)
	}
	bd := d.BlockDeviceMappings[0]
	ebs := bd.Ebs
	got := []any{aws.ToString(bd.DeviceName), aws.ToInt32(ebs.VolumeSize), string(ebs.VolumeType), aws.ToInt32(ebs.Iops), aws.ToInt32(ebs.Throughput), aws.ToBool(ebs.Encrypted), aws.ToString(ebs.KmsKeyId)}
	wantVol := []any{"/dev/xvda", want.size, want.volumeType, want.iops, want.throughput, want.encrypted, want.kms}
	if !slices.Equal(got, wantVol) {
		t.Errorf("root volume = %v, want %v", got, wantVol)
	}
	var types []string
	for _, ts := range d.TagSpecifications {
		if ts.ResourceType == ec2types.ResourceTypeLaunchTemplate {
			continue // moto 5.2.1 copies the template's own tags into its data; EC2 does not
		}
		types = append(types, string(ts.ResourceType))
		tags := map[string]string{}
		for _, tag := range ts.Tags {
			tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if !maps.Equal(tags, want.tags) {
			t.Errorf("tags on %s = %v, want %v", ts.ResourceType, tags, want.tags)
		}
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"instance", "network-interface", "volume"}) {
		t.Errorf("tag specifications for %v, want instance, network-interface, volume", types)
	}
}

// launchTemplate reads one version of a launch template from EC2.
func (w *world) launchTemplate(t *testing.T, name, version string) *ec2types.ResponseLaunchTemplateData {
	t.Helper()
	out, err := w.env.Deps.AWS.EC2.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(name), Versions: []string{version},
	})
	if err != nil || len(out.LaunchTemplateVersions) != 1 {
		t.Fatalf("launch template %s version %s: %v", name, version, err)
	}
	return out.LaunchTemplateVersions[0].LaunchTemplateData
}

// plan runs plan and returns the actions by resource.
func (w *world) plan(t *testing.T) map[string][]engine.Action {
	t.Helper()
	sum, _ := w.run(t, engine.ModePlan)
	out := map[string][]engine.Action{}
	for _, st := range sum.Stages {
		for _, a := range st.Actions {
			out[a.Resource] = append(out[a.Resource], a)
		}
	}
	return out
}

func onlyNothing(acts map[string][]engine.Action) []string {
	var out []string
	for res, as := range acts {
		for _, a := range as {
			if a.Kind != engine.Nothing {
				out = append(out, res+": "+a.Reason)
			}
		}
	}
	return out
}

// TestChangedVolumeRollsTheGroup: a larger volume is planned as an update
// of the group naming the field; apply writes launch template version 2
// and rolls the group to it with UpdateNodegroupVersion (nothing else);
// plan and apply then have nothing to do. A changed updateConfig is
// converged with UpdateNodegroupConfig.
func TestChangedVolumeRollsTheGroup(t *testing.T) {
	w := newWorldWith(t, writeConfig(t, mixedConfig))
	w.apply(t)
	w.env.Deps.Cluster.ManagedNodeGroups[0].VolumeSize = aws.Int(80)

	acts := w.plan(t)
	var reasons []string
	for _, a := range acts["nodegroup/x86"] {
		reasons = append(reasons, a.Reason)
		if a.Kind == engine.Update && strings.Contains(a.Reason, "volumeSize 50 → 80") && strings.Contains(a.Reason, "UpdateNodegroupVersion") {
			reasons = nil
			break
		}
	}
	if reasons != nil {
		t.Fatalf("plan for nodegroup/x86 = %v, want an update naming volumeSize 50 → 80 and UpdateNodegroupVersion", reasons)
	}
	if got := onlyNothing(acts); len(got) != 2 { // the template's new version and the group's roll
		t.Errorf("plan changes = %v, want only x86's template and group", got)
	}
	if c := w.checks(t)["launch-template/x86"]; c.Status != engine.Fail || !strings.Contains(c.Reason, "volumeSize") {
		t.Errorf("check before apply = %+v, want a failure naming volumeSize", c)
	}
	w.env.Calls.Reset()

	w.apply(t)

	if got := w.env.Calls.Mutations(); !slices.Equal(got, []string{"EC2.CreateLaunchTemplateVersion", "EKS.UpdateNodegroupVersion"}) {
		t.Errorf("mutations = %v, want a new template version and one UpdateNodegroupVersion", got)
	}
	if v := aws.ToString(w.describe(t, "x86").LaunchTemplate.Version); v != "2" {
		t.Errorf("group runs launch template version %s, want 2", v)
	}
	if ebs := w.launchTemplate(t, "coder-prod-x86", "2").BlockDeviceMappings[0].Ebs; aws.ToInt32(ebs.VolumeSize) != 80 {
		t.Errorf("version 2 volume = %d GiB, want 80", aws.ToInt32(ebs.VolumeSize))
	}
	if got := onlyNothing(w.plan(t)); len(got) != 0 {
		t.Errorf("plan after apply = %v, want nothing to do", got)
	}

	t.Run("updateConfig converges", func(t *testing.T) {
		uc := w.env.Deps.Cluster.ManagedNodeGroups[0].UpdateConfig
		uc.MaxUnavailable, uc.MaxUnavailablePercentage = nil, aws.Int(50)
		acts := w.plan(t)["nodegroup/x86"]
		if len(acts) != 1 || acts[0].Kind != engine.Update || !strings.Contains(acts[0].Reason, "maxUnavailablePercentage 50") {
			t.Fatalf("plan = %+v, want an update naming maxUnavailablePercentage 50", acts)
		}
		w.env.Calls.Reset()
		w.apply(t)
		if got := w.env.Calls.Mutations(); !slices.Equal(got, []string{"EKS.UpdateNodegroupConfig"}) {
			t.Errorf("mutations = %v, want one UpdateNodegroupConfig", got)
		}
		if got := aws.ToInt32(w.describe(t, "x86").UpdateConfig.MaxUnavailablePercentage); got != 50 {
			t.Errorf("maxUnavailablePercentage = %d, want 50", got)
		}
		w.env.Calls.Reset()
		w.apply(t)
		if got := w.env.Calls.Mutations(); len(got) != 0 {
			t.Errorf("third apply made mutating calls: %v", got)
		}
	})
}

// TestDestroyDeletesLaunchTemplates: destroy removes the groups, then
// their launch templates, and a template left by a group no longer
// configured; a template of the same deployment's other stage stays.
func TestDestroyDeletesLaunchTemplates(t *testing.T) {
	w := newWorldWith(t, writeConfig(t, mixedConfig))
	w.apply(t)
	ctx := context.Background()
	tagged := func(stage string) []ec2types.TagSpecification {
		return []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: []ec2types.Tag{
			{Key: aws.String("coderctl/deployment"), Value: aws.String("coder-prod")}, {Key: aws.String("coderctl/stage"), Value: aws.String(stage)},
		}}}
	}
	for name, stage := range map[string]string{"coder-prod-gone": "nodegroups", "coder-prod-other": "eks"} {
		if _, err := w.env.Deps.AWS.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String(name), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{}, TagSpecifications: tagged(stage),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if sum, events := w.run(t, engine.ModeDestroy); !sum.OK {
		t.Fatalf("destroy failed:\n%s", stagetest.EventLog(events))
	}
	out, err := w.env.Deps.AWS.EC2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, lt := range out.LaunchTemplates {
		left = append(left, aws.ToString(lt.LaunchTemplateName))
	}
	if !slices.Equal(left, []string{"coder-prod-other"}) {
		t.Errorf("launch templates left = %v, want only the eks stage's", left)
	}
	if got := w.listGroups(t); len(got) != 0 {
		t.Errorf("node groups left = %v", got)
	}
}

// TestArmNodesOnKubernetes: the fake nodes of the ARM groups say arm64 (and
// linux, with the launch template they came from), the others amd64, so
// the scheduler places arch-selecting pods as on EKS.
func TestArmNodesOnKubernetes(t *testing.T) {
	ground := kubeground.Require(t)
	w := newWorldWith(t, writeConfig(t, mixedConfig))
	useKube(t, w, ground)
	startNodes(t, w, ground)
	w.apply(t)
	nodes, err := ground.Client().CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	arch := map[string]string{}
	for _, n := range nodes.Items {
		if g := n.Labels["eks.amazonaws.com/nodegroup"]; g != "" && n.Annotations["coderctl/fake-eks-cluster"] == "coder-prod" {
			arch[g] = n.Labels[corev1.LabelArchStable] + "/" + n.Labels[corev1.LabelOSStable] + "/v" + n.Labels["eks.amazonaws.com/sourceLaunchTemplateVersion"]
		}
	}
	want := map[string]string{"x86": "amd64/linux/v1", "arm": "arm64/linux/v1", "br-arm": "arm64/linux/v1", "gpu": "amd64/linux/v1", "io": "amd64/linux/v1"}
	if !maps.Equal(arch, want) {
		t.Errorf("node arch/os/template version by group = %v, want %v", arch, want)
	}
}

// TestValidateLaunchSettings: what EKS or EBS would refuse only minutes
// into the run is bad input naming the group's field, before any call
// that changes AWS.
func TestValidateLaunchSettings(t *testing.T) {
	tests := []struct {
		name   string
		change func(ng *api.ManagedNodeGroup)
		field  string
		reason string
	}{
		{"ARM type, family without ARM images", func(ng *api.ManagedNodeGroup) {
			ng.InstanceType, ng.AMIFamily = "m7g.xlarge", api.NodeImageFamilyWindowsServer2022CoreContainer
		}, "managedNodeGroups[1].instanceType", "has no image for arm64 instances such as m7g.xlarge"},
		{"ARM GPU type, family without ARM GPU images", func(ng *api.ManagedNodeGroup) {
			ng.InstanceType, ng.AMIFamily = "g5g.xlarge", api.NodeImageFamilyAmazonLinux2
		}, "managedNodeGroups[1].instanceType", "has no image for arm64 GPU instances such as g5g.xlarge"},
		{"family without an EKS AMI type", func(ng *api.ManagedNodeGroup) { ng.AMIFamily = api.NodeImageFamilyUbuntu2404 },
			"managedNodeGroups[1].amiFamily", "EKS has no AMI type for Ubuntu2404"},
		{"io1 IOPS above 50 per GiB", func(ng *api.ManagedNodeGroup) { ng.VolumeType, ng.VolumeIOPS = aws.String("io1"), aws.Int(5000) },
			"managedNodeGroups[1].volumeIOPS", "at most 50 IOPS per GiB"},
		{"gp3 IOPS above 500 per GiB", func(ng *api.ManagedNodeGroup) { ng.VolumeSize, ng.VolumeIOPS = aws.Int(20), aws.Int(12000) },
			"managedNodeGroups[1].volumeIOPS", "at most 500 IOPS per GiB"},
		{"gp3 throughput above a quarter of IOPS", func(ng *api.ManagedNodeGroup) { ng.VolumeThroughput = aws.Int(800) },
			"managedNodeGroups[1].volumeThroughput", "at most 0.25 MiB/s per provisioned IOPS"},
	}
	env := stagetest.New(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env.Reload(t)
			tc.change(env.Deps.Cluster.ManagedNodeGroups[1])
			env.Calls.Reset()
			err := nodegroups.New(env.Deps).Validate(context.Background())
			if !fault.IsInput(err) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Validate = %v, want bad input naming %s: %q", err, tc.field, tc.reason)
			}
			if got := env.Calls.Mutations(); len(got) != 0 {
				t.Errorf("validation made mutating calls: %v", got)
			}
		})
	}
	env.Reload(t)
	if err := nodegroups.New(env.Deps).Validate(context.Background()); err != nil {
		t.Errorf("Validate of the shipped groups = %v", err)
	}
}
