package nodegroups

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
)

// What goes into a group's launch template, read from eksctl's own
// managed node group builder (pkg/cfn/builder, v0.230.0):
// makeLaunchTemplateData puts the root volume (makeBlockDeviceMappings),
// the metadata options (makeMetadataOptions) and the tags
// (makeTags: instance, volume and network-interface) in the template, and
// leaves the instance type and the AMI type on the node group itself.

// rootDevice is the root device of the Linux AMIs (eksctl's
// rootDeviceForLinux); Windows AMIs boot from /dev/sda1.
const (
	rootDeviceLinux   = "/dev/xvda"
	rootDeviceWindows = "/dev/sda1"
)

// tagResourceTypes are the resources an instance launched from the
// template creates, each tagged with the group's tags (eksctl's makeTags).
var tagResourceTypes = []ec2types.ResourceType{
	ec2types.ResourceTypeInstance, ec2types.ResourceTypeVolume, ec2types.ResourceTypeNetworkInterface,
}

// ltFields is a launch template's content as coderctl manages it, in one
// comparable shape for what is wanted and what EC2 holds.
type ltFields struct {
	device     string
	volumeSize int32
	volumeType string
	iops       int32 // 0: not set
	throughput int32 // 0: not set
	encrypted  *bool
	kmsKeyID   string
	httpTokens string
	hopLimit   int32
	// tags per resource type (instance, volume, network-interface).
	tags map[string]map[string]string
}

// managedGroup returns eksctl's view of the group (defaults applied), or
// nil when cluster-config.yaml has no group of that name.
func (s *stage) managedGroup(name string) *api.ManagedNodeGroup {
	if s.d.Cluster == nil {
		return nil
	}
	for _, ng := range s.d.Cluster.ManagedNodeGroups {
		if ng != nil && ng.NodeGroupBase != nil && ng.Name == name {
			return ng
		}
	}
	return nil
}

// ltName is the launch template coderctl owns for a group. eksctl limits
// cluster names to 63 characters and EKS group names are at most 63, so
// the name stays within EC2's 128.
func (s *stage) ltName(group string) string { return s.clusterName() + "-" + group }

// amiTypeOf is the AMI type eksctl sets on a managed group without a
// custom AMI: api.GetAMIType, not strict (eksctl's builder falls back to
// the family's plain type for accelerated instances it has no image for).
func amiTypeOf(ng *api.ManagedNodeGroup) ekstypes.AMITypes {
	return api.GetAMIType(ng.AMIFamily, ng.InstanceType, false)
}

// wantedLT is what the group's launch template should hold.
func (s *stage) wantedLT(ng *api.ManagedNodeGroup) ltFields {
	f := ltFields{
		device:     rootDeviceLinux,
		volumeSize: int32(aws.ToInt(ng.VolumeSize)),
		volumeType: aws.ToString(ng.VolumeType),
		encrypted:  ng.VolumeEncrypted,
		kmsKeyID:   aws.ToString(ng.VolumeKmsKeyID),
		tags:       map[string]map[string]string{},
	}
	if api.IsWindowsImage(ng.AMIFamily) {
		f.device = rootDeviceWindows
	}
	// eksctl sends IOPS only to the types that take them, throughput only to gp3.
	switch f.volumeType {
	case api.NodeVolumeTypeGP3:
		f.iops, f.throughput = int32(aws.ToInt(ng.VolumeIOPS)), int32(aws.ToInt(ng.VolumeThroughput))
	case api.NodeVolumeTypeIO1, api.NodeVolumeTypeIO2:
		f.iops = int32(aws.ToInt(ng.VolumeIOPS))
	}
	f.httpTokens, f.hopLimit = metadataOptions(ng.NodeGroupBase)
	tags := s.instanceTags(ng)
	for _, rt := range tagResourceTypes {
		f.tags[string(rt)] = tags
	}
	return f
}

// metadataOptions is eksctl's makeMetadataOptions: IMDSv2 required unless
// disableIMDSv1 is false (its default is true), and a hop limit of 2 so
// pods behind the node's network namespace reach IMDS, 1 when
// disablePodIMDS asks that only the node itself reaches it.
func metadataOptions(ng *api.NodeGroupBase) (tokens string, hopLimit int32) {
	tokens = string(ec2types.LaunchTemplateHttpTokensStateOptional)
	if api.IsEnabled(ng.DisableIMDSv1) || api.IsEnabled(ng.DisablePodIMDS) {
		tokens = string(ec2types.LaunchTemplateHttpTokensStateRequired)
	}
	hopLimit = 2
	if api.IsEnabled(ng.DisablePodIMDS) {
		hopLimit = 1
	}
	return tokens, hopLimit
}

// userTags are the group's tags as eksctl sets them on the node group:
// its own `tags`, and metadata.tags where the group does not set the key.
// The bookkeeping tags eksctl's defaults add (alpha.eksctl.io/...) are
// left out, as the config package leaves out its labels: coderctl, not
// eksctl, owns these groups.
func (s *stage) userTags(ng *api.ManagedNodeGroup) map[string]string {
	out := maps.Clone(ng.Tags)
	if out == nil {
		out = map[string]string{}
	}
	maps.DeleteFunc(out, func(k, _ string) bool { return strings.HasPrefix(k, "alpha.eksctl.io/") })
	if s.d.Cluster.Metadata != nil {
		for k, v := range s.d.Cluster.Metadata.Tags {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
	}
	return out
}

// instanceTags are the tags of the group's instances, volumes and network
// interfaces: eksctl's Name (<cluster>-<group>-Node) and the group's tags.
func (s *stage) instanceTags(ng *api.ManagedNodeGroup) map[string]string {
	tags := s.userTags(ng)
	tags["Name"] = fmt.Sprintf("%s-%s-Node", s.clusterName(), ng.Name)
	return tags
}

// groupTags are the node group's own tags: the group's tags under
// coderctl's, which find and own the group.
func (s *stage) groupTags(ng *api.ManagedNodeGroup) map[string]string {
	tags := s.userTags(ng)
	maps.Copy(tags, s.tags(ng.Name))
	return tags
}

// request is the launch template data EC2 is given: always the whole
// template (a new version copies nothing from an older one).
func (f ltFields) request() *ec2types.RequestLaunchTemplateData {
	ebs := &ec2types.LaunchTemplateEbsBlockDeviceRequest{
		VolumeSize: aws.Int32(f.volumeSize),
		VolumeType: ec2types.VolumeType(f.volumeType),
		Encrypted:  f.encrypted,
	}
	if f.iops > 0 {
		ebs.Iops = aws.Int32(f.iops)
	}
	if f.throughput > 0 {
		ebs.Throughput = aws.Int32(f.throughput)
	}
	if f.kmsKeyID != "" {
		ebs.KmsKeyId = aws.String(f.kmsKeyID)
	}
	data := &ec2types.RequestLaunchTemplateData{
		BlockDeviceMappings: []ec2types.LaunchTemplateBlockDeviceMappingRequest{{DeviceName: aws.String(f.device), Ebs: ebs}},
		MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpTokens:              ec2types.LaunchTemplateHttpTokensState(f.httpTokens),
			HttpPutResponseHopLimit: aws.Int32(f.hopLimit),
			HttpEndpoint:            ec2types.LaunchTemplateInstanceMetadataEndpointStateEnabled,
		},
	}
	for _, rt := range slices.Sorted(maps.Keys(f.tags)) {
		var tags []ec2types.Tag
		for _, k := range slices.Sorted(maps.Keys(f.tags[rt])) {
			tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(f.tags[rt][k])})
		}
		data.TagSpecifications = append(data.TagSpecifications, ec2types.LaunchTemplateTagSpecificationRequest{
			ResourceType: ec2types.ResourceType(rt), Tags: tags,
		})
	}
	return data
}

// fieldsOf reads a launch template version's data; a template someone
// else changed reads as it is, and compares as drift.
func fieldsOf(d *ec2types.ResponseLaunchTemplateData) ltFields {
	f := ltFields{tags: map[string]map[string]string{}}
	if d == nil {
		return f
	}
	for _, m := range d.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		f.device = aws.ToString(m.DeviceName)
		f.volumeSize, f.volumeType = aws.ToInt32(m.Ebs.VolumeSize), string(m.Ebs.VolumeType)
		f.iops, f.throughput = aws.ToInt32(m.Ebs.Iops), aws.ToInt32(m.Ebs.Throughput)
		f.encrypted, f.kmsKeyID = m.Ebs.Encrypted, aws.ToString(m.Ebs.KmsKeyId)
		break // the root volume: coderctl writes only that one
	}
	if mo := d.MetadataOptions; mo != nil {
		f.httpTokens, f.hopLimit = string(mo.HttpTokens), aws.ToInt32(mo.HttpPutResponseHopLimit)
	}
	for _, ts := range d.TagSpecifications {
		tags := map[string]string{}
		for _, t := range ts.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		f.tags[string(ts.ResourceType)] = tags
	}
	return f
}

// ltChanges names, in cluster-config.yaml's terms, each field in which a
// launch template differs from what is wanted: the reason plan shows.
func ltChanges(have, want ltFields) []string {
	var out []string
	add := func(field string, h, w any) {
		if h != w {
			out = append(out, fmt.Sprintf("%s %v → %v", field, h, w))
		}
	}
	add("root device", have.device, want.device)
	add("volumeSize", have.volumeSize, want.volumeSize)
	add("volumeType", have.volumeType, want.volumeType)
	add("volumeIOPS", have.iops, want.iops)
	add("volumeThroughput", have.throughput, want.throughput)
	add("volumeEncrypted", aws.ToBool(have.encrypted), aws.ToBool(want.encrypted))
	add("volumeKmsKeyID", orNone(have.kmsKeyID), orNone(want.kmsKeyID))
	add("IMDS HttpTokens (disableIMDSv1)", orNone(have.httpTokens), want.httpTokens)
	add("IMDS hop limit (disablePodIMDS)", have.hopLimit, want.hopLimit)
	for _, rt := range tagResourceTypes {
		if h, w := have.tags[string(rt)], want.tags[string(rt)]; !maps.Equal(h, w) {
			out = append(out, fmt.Sprintf("tags on %s: %s", rt, tagDiff(h, w)))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// tagDiff says which tags differ: k=v added, k changed, k removed.
func tagDiff(have, want map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if hv, ok := have[k]; !ok {
			parts = append(parts, "+"+k+"="+want[k])
		} else if hv != want[k] {
			parts = append(parts, fmt.Sprintf("%s=%s → %s", k, hv, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			parts = append(parts, "-"+k)
		}
	}
	return strings.Join(parts, ", ")
}
