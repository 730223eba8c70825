package ekstest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EKS reads the launch template and the instance types of a node group
// from EC2; the stand-in asks moto's EC2 the same questions.

// ec2For is an EC2 client for moto in the request's region.
func (s *Server) ngEC2(r *http.Request) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       regionOf(r),
		BaseEndpoint: aws.String(s.moto.String()),
		Credentials:  credentials.NewStaticCredentialsProvider("ekstest", "ekstest", ""),
	})
}

// ngTemplateVersion is one launch template version as EKS resolves it.
type ngTemplateVersion struct {
	id, name, version     string
	imageID, instanceType string
}

// launchTemplate resolves a node group's launch template reference (ID or
// name, and a version: the default one when none is given) as EKS does,
// or says why EKS would refuse it.
func (s *Server) ngLaunchTemplate(r *http.Request, spec ngLTSpec) (ngTemplateVersion, string) {
	in := &ec2.DescribeLaunchTemplateVersionsInput{}
	ref := spec.ID
	if spec.ID != "" {
		in.LaunchTemplateId = aws.String(spec.ID)
	} else {
		in.LaunchTemplateName, ref = aws.String(spec.Name), spec.Name
	}
	switch v := spec.Version; {
	case v == "" || v == "$Default":
		in.Versions = []string{"$Default"}
	case v == "$Latest":
		in.Versions = []string{"$Latest"}
	default:
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return ngTemplateVersion{}, fmt.Sprintf("Launch template version %q is not valid.", v)
		}
		in.Versions = []string{v}
	}
	out, err := s.ngEC2(r).DescribeLaunchTemplateVersions(r.Context(), in)
	if err != nil || len(out.LaunchTemplateVersions) == 0 {
		return ngTemplateVersion{}, fmt.Sprintf("Launch template %s version %s does not exist.", ref, ngOrDefault(spec.Version))
	}
	v := out.LaunchTemplateVersions[0]
	tv := ngTemplateVersion{
		id: aws.ToString(v.LaunchTemplateId), name: aws.ToString(v.LaunchTemplateName),
		version: strconv.FormatInt(aws.ToInt64(v.VersionNumber), 10),
	}
	if d := v.LaunchTemplateData; d != nil {
		tv.imageID, tv.instanceType = aws.ToString(d.ImageId), string(d.InstanceType)
	}
	return tv, ""
}

func ngOrDefault(v string) string {
	if v == "" {
		return "$Default"
	}
	return v
}

// checkArchitecture refuses an AMI type whose architecture none of the
// instance types supports, as EKS does; EC2's instance type data (moto
// carries AWS's) says which architectures a type runs. Types EC2 does not
// know are left to EC2 itself.
func (s *Server) ngCheckArchitecture(r *http.Request, amiType string, instanceTypes []string) string {
	arch := ngAMIArchitecture(amiType)
	if arch == "" || len(instanceTypes) == 0 {
		return ""
	}
	var types []ec2types.InstanceType
	for _, t := range instanceTypes {
		types = append(types, ec2types.InstanceType(t))
	}
	out, err := s.ngEC2(r).DescribeInstanceTypes(r.Context(), &ec2.DescribeInstanceTypesInput{InstanceTypes: types})
	if err != nil {
		return ""
	}
	var wrong []string
	for _, it := range out.InstanceTypes {
		if it.ProcessorInfo == nil {
			continue
		}
		if !slices.Contains(it.ProcessorInfo.SupportedArchitectures, ec2types.ArchitectureType(arch)) {
			wrong = append(wrong, string(it.InstanceType))
		}
	}
	if len(wrong) == 0 {
		return ""
	}
	return fmt.Sprintf("[%s] is not a valid instance type for requested amiType %s", strings.Join(wrong, ", "), amiType)
}
