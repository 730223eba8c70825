package ekstest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// The package's TestMain (moto.Main) stops the shared moto these tests use.

// ngWorld is a cluster in moto behind a stand-in, and a launch template
// with two versions (the second with a custom AMI).
type ngWorld struct {
	eks  *eks.Client
	ec2  *ec2.Client
	ltID string
}

func newNGWorld(t *testing.T, opts Options) *ngWorld {
	t.Helper()
	m := moto.Require(t)
	s := Start(t, m.URL, opts)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	w := &ngWorld{
		eks: eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(s.URL) }),
		ec2: ec2.NewFromConfig(cfg),
	}
	if _, err := w.eks.CreateCluster(ctx, &eks.CreateClusterInput{
		Name: aws.String("c"), RoleArn: aws.String("arn:aws:iam::123456789012:role/c"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1"}},
	}); err != nil {
		t.Fatal(err)
	}
	lt, err := w.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("c-ng"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.ltID = aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	if _, err := w.ec2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId: aws.String(w.ltID), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *ngWorld) create(name string, mod func(in *eks.CreateNodegroupInput)) error {
	in := &eks.CreateNodegroupInput{
		ClusterName: aws.String("c"), NodegroupName: aws.String(name), NodeRole: aws.String("arn:aws:iam::123456789012:role/n"),
		Subnets: []string{"subnet-1"}, InstanceTypes: []string{"m7i.xlarge"}, AmiType: ekstypes.AMITypesAl2023X8664Standard,
		ScalingConfig:  &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(1), MaxSize: aws.Int32(2), DesiredSize: aws.Int32(1)},
		LaunchTemplate: &ekstypes.LaunchTemplateSpecification{Id: aws.String(w.ltID)},
	}
	if mod != nil {
		mod(in)
	}
	_, err := w.eks.CreateNodegroup(context.Background(), in)
	return err
}

func (w *ngWorld) describe(t *testing.T, name string) *ekstypes.Nodegroup {
	t.Helper()
	out, err := w.eks.DescribeNodegroup(context.Background(), &eks.DescribeNodegroupInput{ClusterName: aws.String("c"), NodegroupName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Nodegroup
}

// wantErr checks an error's code and message.
func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if awsx.ErrorCode(err) != code || !strings.Contains(err.Error(), msg) {
		t.Errorf("error = %v, want %s mentioning %q", err, code, msg)
	}
}

// TestCreateNodegroupRefusesAsEKSDoes: the requests EKS refuses and moto
// accepts, each answered with InvalidParameterException; a group with a
// launch template is described with the template's default version and
// without diskSize or remoteAccess.
func TestCreateNodegroupRefusesAsEKSDoes(t *testing.T) {
	w := newNGWorld(t, Options{})
	tests := []struct {
		name string
		mod  func(in *eks.CreateNodegroupInput)
		msg  string
	}{
		{"disk size beside a template", func(in *eks.CreateNodegroupInput) { in.DiskSize = aws.Int32(50) }, "Disk size must be specified within the launch template"},
		{"remote access beside a template", func(in *eks.CreateNodegroupInput) {
			in.RemoteAccess = &ekstypes.RemoteAccessConfig{Ec2SshKey: aws.String("k")}
		}, "Remote access configuration cannot be specified with a launch template"},
		{"template that does not exist", func(in *eks.CreateNodegroupInput) { in.LaunchTemplate.Id = aws.String("lt-0123456789abcdef0") }, "does not exist"},
		{"version that does not exist", func(in *eks.CreateNodegroupInput) { in.LaunchTemplate.Version = aws.String("9") }, "version 9 does not exist"},
		{"ARM AMI on an x86 type", func(in *eks.CreateNodegroupInput) { in.AmiType = ekstypes.AMITypesAl2023Arm64Standard },
			"[m7i.xlarge] is not a valid instance type for requested amiType AL2023_ARM_64_STANDARD"},
		{"x86 AMI on an ARM type", func(in *eks.CreateNodegroupInput) { in.InstanceTypes = []string{"m7g.xlarge"} },
			"[m7g.xlarge] is not a valid instance type for requested amiType AL2023_x86_64_STANDARD"},
		{"both updateConfig fields", func(in *eks.CreateNodegroupInput) {
			in.UpdateConfig = &ekstypes.NodegroupUpdateConfig{MaxUnavailable: aws.Int32(1), MaxUnavailablePercentage: aws.Int32(10)}
		}, "Only one of maxUnavailable or maxUnavailablePercentage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, w.create("bad", tc.mod), "InvalidParameterException", tc.msg)
		})
	}
	out, err := w.eks.ListNodegroups(context.Background(), &eks.ListNodegroupsInput{ClusterName: aws.String("c")})
	if err != nil || len(out.Nodegroups) != 0 {
		t.Fatalf("refused creates left groups %v (%v)", out, err)
	}

	if err := w.create("arm", func(in *eks.CreateNodegroupInput) {
		in.InstanceTypes, in.AmiType = []string{"m7g.xlarge"}, ekstypes.AMITypesAl2023Arm64Standard
	}); err != nil {
		t.Fatal(err)
	}
	ng := w.describe(t, "arm")
	if aws.ToString(ng.LaunchTemplate.Version) != "1" || aws.ToString(ng.LaunchTemplate.Name) != "c-ng" || ng.AmiType != ekstypes.AMITypesAl2023Arm64Standard {
		t.Errorf("described launch template %+v, AMI type %s; want c-ng version 1 (the default), AL2023_ARM_64_STANDARD", ng.LaunchTemplate, ng.AmiType)
	}
	if ng.DiskSize != nil || ng.RemoteAccess != nil {
		t.Errorf("diskSize %v, remoteAccess %+v: EKS describes neither for a launch-template group", ng.DiskSize, ng.RemoteAccess)
	}
}

// TestUpdateNodegroupVersion: a group rolls to another version of its own
// template as an update that DescribeUpdate follows (InProgress for
// Options.Polls answers, the group UPDATING meanwhile); a second update
// during it is refused with ResourceInUseException; a repeated token
// returns the same update; the documented refusals answer
// InvalidParameterException.
func TestUpdateNodegroupVersion(t *testing.T) {
	w := newNGWorld(t, Options{Polls: 2})
	ctx := context.Background()
	if err := w.create("ng", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.create("plain", func(in *eks.CreateNodegroupInput) { in.LaunchTemplate = nil }); err != nil {
		t.Fatal(err)
	}
	update := func(group string, lt *ekstypes.LaunchTemplateSpecification, mod func(*eks.UpdateNodegroupVersionInput)) (*ekstypes.Update, error) {
		in := &eks.UpdateNodegroupVersionInput{ClusterName: aws.String("c"), NodegroupName: aws.String(group), LaunchTemplate: lt}
		if mod != nil {
			mod(in)
		}
		out, err := w.eks.UpdateNodegroupVersion(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Update, nil
	}
	ref := func(id, version string) *ekstypes.LaunchTemplateSpecification {
		return &ekstypes.LaunchTemplateSpecification{Id: aws.String(id), Version: aws.String(version)}
	}

	refusals := []struct {
		name, group string
		lt          *ekstypes.LaunchTemplateSpecification
		mod         func(*eks.UpdateNodegroupVersionInput)
		code, msg   string
	}{
		{"group without a template", "plain", ref(w.ltID, "2"), nil, "InvalidParameterException", "not created with a launch template"},
		{"another template", "ng", ref("lt-0123456789abcdef0", "1"), nil, "InvalidParameterException", "must be the one the nodegroup was created with"},
		{"missing version", "ng", ref(w.ltID, "7"), nil, "InvalidParameterException", "version 7 does not exist"},
		{"kubernetes version with a custom AMI", "ng", ref(w.ltID, "2"), func(in *eks.UpdateNodegroupVersionInput) { in.Version = aws.String("1.34") },
			"InvalidParameterException", "custom AMI"},
		{"missing group", "nope", ref(w.ltID, "2"), nil, "ResourceNotFoundException", "No node group found for name: nope"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := update(tc.group, tc.lt, tc.mod)
			wantErr(t, err, tc.code, tc.msg)
		})
	}

	tokenMod := func(in *eks.UpdateNodegroupVersionInput) { in.ClientRequestToken = aws.String("tok-1") }
	u, err := update("ng", ref(w.ltID, "2"), tokenMod)
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != ekstypes.UpdateStatusInProgress || u.Type != ekstypes.UpdateTypeVersionUpdate {
		t.Errorf("update = %s %s, want VersionUpdate InProgress", u.Type, u.Status)
	}
	again, err := update("ng", ref(w.ltID, "2"), tokenMod)
	if err != nil || aws.ToString(again.Id) != aws.ToString(u.Id) {
		t.Errorf("same token: update %v (%v), want the same update %s", again, err, aws.ToString(u.Id))
	}
	_, err = update("ng", ref(w.ltID, "1"), nil)
	wantErr(t, err, "ResourceInUseException", "already in progress")
	_, err = w.eks.UpdateNodegroupConfig(ctx, &eks.UpdateNodegroupConfigInput{ClusterName: aws.String("c"), NodegroupName: aws.String("ng"),
		UpdateConfig: &ekstypes.NodegroupUpdateConfig{MaxUnavailable: aws.Int32(2)}})
	wantErr(t, err, "ResourceInUseException", "already in progress")
	_, err = w.eks.DeleteNodegroup(ctx, &eks.DeleteNodegroupInput{ClusterName: aws.String("c"), NodegroupName: aws.String("ng")})
	wantErr(t, err, "ResourceInUseException", "being updated")

	ng := w.describe(t, "ng")
	if ng.Status != ekstypes.NodegroupStatusUpdating || aws.ToString(ng.LaunchTemplate.Version) != "2" {
		t.Errorf("during the update: %s, version %s; want UPDATING, version 2", ng.Status, aws.ToString(ng.LaunchTemplate.Version))
	}
	du, err := w.eks.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String("c"), NodegroupName: aws.String("ng"), UpdateId: u.Id})
	if err != nil || du.Update.Status != ekstypes.UpdateStatusSuccessful {
		t.Fatalf("DescribeUpdate after the polls = %+v (%v), want Successful", du, err)
	}
	if len(du.Update.Params) != 2 || aws.ToString(du.Update.Params[1].Value) != "2" {
		t.Errorf("update params = %+v, want the template's name and version 2", du.Update.Params)
	}
	if ng := w.describe(t, "ng"); ng.Status != ekstypes.NodegroupStatusActive {
		t.Errorf("after the update: %s, want ACTIVE", ng.Status)
	}
	_, err = w.eks.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String("c"), NodegroupName: aws.String("ng"), UpdateId: aws.String("nope")})
	wantErr(t, err, "ResourceNotFoundException", "No update found for ID: nope")

	// updateConfig converges through moto, and DescribeUpdate knows it.
	cu, err := w.eks.UpdateNodegroupConfig(ctx, &eks.UpdateNodegroupConfigInput{ClusterName: aws.String("c"), NodegroupName: aws.String("ng"),
		UpdateConfig: &ekstypes.NodegroupUpdateConfig{MaxUnavailablePercentage: aws.Int32(25)}})
	if err != nil {
		t.Fatal(err)
	}
	if du, err := w.eks.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String("c"), NodegroupName: aws.String("ng"), UpdateId: cu.Update.Id}); err != nil ||
		du.Update.Type != ekstypes.UpdateTypeConfigUpdate {
		t.Errorf("DescribeUpdate of the config update = %+v (%v)", du, err)
	}
	if got := aws.ToInt32(w.describe(t, "ng").UpdateConfig.MaxUnavailablePercentage); got != 25 {
		t.Errorf("maxUnavailablePercentage = %d, want 25", got)
	}
}
