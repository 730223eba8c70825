package nodegroups

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
	instanceutils "github.com/weaveworks/eksctl/pkg/utils/instance"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/fault"
)

// EBS's limits between a volume's size, IOPS and throughput
// (docs.aws.amazon.com/ebs/latest/userguide/ebs-volume-types.html). eksctl
// checks each number's own range (volumeIOPS 3000-16000 for gp3, ...) but
// not these ratios; EC2 refuses the launch, which a managed group reports
// only after ~20 minutes as a group that never gets nodes.
const (
	gp3IOPSPerGiB           = 500
	io1IOPSPerGiB           = 50
	io2IOPSPerGiB           = 1000
	gp3ThroughputPerIOPSDiv = 4 // at most 0.25 MiB/s per provisioned IOPS
)

// validateLaunchSettings refuses, per group, an amiFamily that has no AMI
// for the instance type (eksctl's GetAMIType in strict mode, as its own
// validation of self-managed groups does) and root volume settings EBS
// would refuse.
func (s *stage) validateLaunchSettings() error {
	if s.d.Cluster == nil {
		return nil
	}
	for i, ng := range s.d.Cluster.ManagedNodeGroups {
		if ng == nil || ng.NodeGroupBase == nil {
			continue
		}
		if err := s.checkAMI(i, ng); err != nil {
			return err
		}
		if err := s.checkVolume(i, ng); err != nil {
			return err
		}
	}
	return nil
}

func (s *stage) checkAMI(i int, ng *api.ManagedNodeGroup) error {
	field := func(f string) string { return fmt.Sprintf("managedNodeGroups[%d].%s", i, f) }
	switch api.GetAMIType(ng.AMIFamily, ng.InstanceType, true) {
	case ekstypes.AMITypesCustom:
		return fault.Input(s.d.ConfigPath, field("amiFamily"),
			"use AmazonLinux2023 (eksctl's default) or Bottlerocket, which EKS provides AMI types for",
			"EKS has no AMI type for %s: its managed groups need a custom AMI and bootstrap script, which coderctl does not build", ng.AMIFamily)
	case "":
		return fault.Input(s.d.ConfigPath, field("instanceType"),
			fmt.Sprintf("choose a %s instance type, or an amiFamily with %s images (AmazonLinux2023, Bottlerocket)", otherArch(ng.InstanceType), kindOf(ng.InstanceType)),
			"amiFamily %s has no image for %s instances such as %s", ng.AMIFamily, kindOf(ng.InstanceType), ng.InstanceType)
	}
	return nil
}

// kindOf says what kind of instance eksctl's instance table says a type is.
func kindOf(instanceType string) string {
	arch := "x86_64"
	if instanceutils.IsARMInstanceType(instanceType) {
		arch = "arm64"
	}
	if instanceutils.IsGPUInstanceType(instanceType) {
		return arch + " GPU"
	}
	return arch
}

func otherArch(instanceType string) string {
	if instanceutils.IsARMInstanceType(instanceType) {
		return "x86_64"
	}
	return "non-GPU"
}

// archOf is the EC2 architecture an AMI type boots on ("" for CUSTOM).
func archOf(t ekstypes.AMITypes) string {
	switch {
	case t == "" || t == ekstypes.AMITypesCustom:
		return ""
	case strings.Contains(string(t), "ARM_64"):
		return "arm64"
	}
	return "x86_64"
}

// checkVolume refuses the size, IOPS and throughput combinations EBS
// refuses (eksctl has already checked each value's own range).
func (s *stage) checkVolume(i int, ng *api.ManagedNodeGroup) error {
	size, iops, tput := aws.ToInt(ng.VolumeSize), aws.ToInt(ng.VolumeIOPS), aws.ToInt(ng.VolumeThroughput)
	field := func(f string) string { return fmt.Sprintf("managedNodeGroups[%d].%s", i, f) }
	perGiB := map[string]int{api.NodeVolumeTypeGP3: gp3IOPSPerGiB, api.NodeVolumeTypeIO1: io1IOPSPerGiB, api.NodeVolumeTypeIO2: io2IOPSPerGiB}
	vt := aws.ToString(ng.VolumeType)
	if limit, ok := perGiB[vt]; ok && size > 0 && iops > limit*size {
		return fault.Input(s.d.ConfigPath, field("volumeIOPS"),
			fmt.Sprintf("lower volumeIOPS to at most %d, or raise volumeSize to at least %d", limit*size, (iops+limit-1)/limit),
			"%d IOPS on a %d GiB %s volume: EBS allows at most %d IOPS per GiB", iops, size, vt, limit)
	}
	if vt == api.NodeVolumeTypeGP3 && tput > 0 && tput*gp3ThroughputPerIOPSDiv > iops {
		return fault.Input(s.d.ConfigPath, field("volumeThroughput"),
			fmt.Sprintf("lower volumeThroughput to at most %d, or raise volumeIOPS to at least %d", iops/gp3ThroughputPerIOPSDiv, tput*gp3ThroughputPerIOPSDiv),
			"%d MiB/s with %d IOPS: gp3 allows at most 0.25 MiB/s per provisioned IOPS", tput, iops)
	}
	return nil
}

// validateArchitectures asks EC2 which architectures each instance type
// runs: eksctl picks the AMI type from a table compiled into it, which
// does not know types launched after its release (it takes them for
// x86_64). EC2 answering otherwise is left to the prereqs checkpoint.
func (s *stage) validateArchitectures(ctx context.Context) error {
	if s.d.Cluster == nil {
		return nil
	}
	var types []ec2types.InstanceType
	for _, ng := range s.d.Cluster.ManagedNodeGroups {
		if ng != nil && ng.NodeGroupBase != nil && !slices.Contains(types, ec2types.InstanceType(ng.InstanceType)) {
			types = append(types, ec2types.InstanceType(ng.InstanceType))
		}
	}
	if len(types) == 0 {
		return nil
	}
	out, err := s.d.AWS.EC2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: types})
	if awsx.IsCredentialsError(err) {
		return awsx.CredentialsInput(err)
	}
	if err != nil {
		return nil
	}
	archs := map[string][]ec2types.ArchitectureType{}
	for _, it := range out.InstanceTypes {
		if it.ProcessorInfo != nil {
			archs[string(it.InstanceType)] = it.ProcessorInfo.SupportedArchitectures
		}
	}
	for i, ng := range s.d.Cluster.ManagedNodeGroups {
		if ng == nil || ng.NodeGroupBase == nil {
			continue
		}
		amiType := amiTypeOf(ng)
		arch, supported := archOf(amiType), archs[ng.InstanceType]
		if arch == "" || supported == nil || slices.Contains(supported, ec2types.ArchitectureType(arch)) {
			continue
		}
		return fault.Input(s.d.ConfigPath, fmt.Sprintf("managedNodeGroups[%d].instanceType", i),
			"choose an instance type eksctl v0.230.0 knows, of the same family generation or older",
			"%s runs %v, but eksctl's table takes it for %s and would give it AMI type %s, which EKS refuses for it", ng.InstanceType, supported, arch, amiType)
	}
	return nil
}
