package ebscsi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
)

// The tags the driver's CreateVolume puts on every volume (docs/tagging.md
// in aws-ebs-csi-driver): CSIVolumeName (the PV's name, also how a retried
// CreateVolume finds the volume it made), ebs.csi.aws.com/cluster=true, the
// claim and PV names the external provisioner passes with
// --extra-create-metadata (on in the EKS add-on), and, only when the
// controller runs with --k8s-tag-cluster-id=<id> (the add-on's
// controller.k8sTagClusterId), kubernetes.io/cluster/<id>=owned,
// KubernetesCluster=<id> and Name=<id>-dynamic-<pv>.
const (
	TagCSIVolumeName  = "CSIVolumeName"
	TagDriverCluster  = "ebs.csi.aws.com/cluster"
	TagClaimName      = "kubernetes.io/created-for/pvc/name"
	TagClaimNamespace = "kubernetes.io/created-for/pvc/namespace"
	TagPVName         = "kubernetes.io/created-for/pv/name"
	TagKubernetes     = "KubernetesCluster"
	tagClusterPrefix  = "kubernetes.io/cluster/"
)

// ec2Client is the client volumes are made with: Options.EC2, else one on
// the add-on API's endpoint (on the ground the add-on stand-in passes
// every other call through to moto), else none (no EBS volumes: the PV
// gets a made-up handle).
func (p *Provisioner) ec2Client() *ec2.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ec2 == nil && p.opts.EC2 != nil {
		p.ec2 = p.opts.EC2
	}
	if p.ec2 == nil && p.opts.Addons != nil {
		o := p.opts.Addons.Options()
		p.ec2 = ec2.New(ec2.Options{Region: o.Region, Credentials: o.Credentials, BaseEndpoint: o.BaseEndpoint, HTTPClient: o.HTTPClient})
	}
	return p.ec2
}

// volumeTags are the tags the driver puts on the volume for claim, plus
// the class's tagSpecification_N parameters ("key=value").
func (p *Provisioner) volumeTags(pvName string, claim *corev1.PersistentVolumeClaim, params map[string]string) map[string]string {
	tags := map[string]string{
		TagCSIVolumeName: pvName, TagDriverCluster: "true",
		TagClaimName: claim.Name, TagClaimNamespace: claim.Namespace, TagPVName: pvName,
	}
	if id := p.opts.TagClusterID; id != "" {
		tags[tagClusterPrefix+id] = "owned"
		tags[TagKubernetes] = id
		tags["Name"] = id + "-dynamic-" + pvName
	}
	for k, v := range params {
		if strings.HasPrefix(strings.ToLower(k), "tagspecification") {
			key, value, _ := strings.Cut(v, "=")
			tags[key] = value
		}
	}
	return tags
}

// createEBSVolume is the driver's CreateVolume: the volume made before,
// found by its CSIVolumeName tag, or a new one in zone, sized in GiB, of
// the class's type, encrypted as the class says. It returns the volume ID
// the PV's handle carries.
func (p *Provisioner) createEBSVolume(ctx context.Context, c *ec2.Client, pvName string, claim *corev1.PersistentVolumeClaim, class map[string]string, params Parameters, zone string, sizeGiB int64) (string, error) {
	out, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + TagCSIVolumeName), Values: []string{pvName}},
	}})
	if err != nil {
		return "", fmt.Errorf("describe volumes named %s: %w", pvName, err)
	}
	for _, v := range out.Volumes {
		if v.State != ec2types.VolumeStateDeleting && v.State != ec2types.VolumeStateDeleted {
			return aws.ToString(v.VolumeId), nil
		}
	}
	tags := p.volumeTags(pvName, claim, class)
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		list = append(list, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	in := &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String(zone), Size: aws.Int32(int32(sizeGiB)),
		VolumeType: ec2types.VolumeType(params.Type), Encrypted: aws.Bool(params.Encrypted),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume, Tags: list}},
	}
	if params.KMSKeyID != "" {
		in.KmsKeyId = aws.String(params.KMSKeyID)
	}
	made, err := c.CreateVolume(ctx, in)
	if err != nil {
		return "", fmt.Errorf("rpc error: code = Internal desc = Could not create volume %q: %w", pvName, err)
	}
	return aws.ToString(made.VolumeId), nil
}

// deleteEBSVolume is the driver's DeleteVolume: a volume already gone is
// success.
func deleteEBSVolume(ctx context.Context, c *ec2.Client, id string) error {
	_, err := c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.HasSuffix(ae.ErrorCode(), ".NotFound") {
		return nil
	}
	return err
}
