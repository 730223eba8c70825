package eksnodes

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
)

// TestNodeTemplatePlatform: a node's os and arch labels (and the kubelet's
// node info) follow the group's AMI type as on EKS, and a group with a
// launch template carries EKS's template labels.
func TestNodeTemplatePlatform(t *testing.T) {
	tests := []struct {
		amiType    ekstypes.AMITypes
		os, arch   string
		imagePrefx string
	}{
		{"", "linux", "amd64", "Amazon Linux 2023"},
		{ekstypes.AMITypesAl2023X8664Standard, "linux", "amd64", "Amazon Linux 2023"},
		{ekstypes.AMITypesAl2023Arm64Standard, "linux", "arm64", "Amazon Linux 2023"},
		{ekstypes.AMITypesAl2023X8664Nvidia, "linux", "amd64", "Amazon Linux 2023"},
		{ekstypes.AMITypesBottlerocketArm64, "linux", "arm64", "Bottlerocket"},
		{ekstypes.AMITypesBottlerocketX8664Nvidia, "linux", "amd64", "Bottlerocket"},
		{ekstypes.AMITypesWindowsCore2022X8664, "windows", "amd64", "Windows"},
	}
	for _, tc := range tests {
		t.Run(string(tc.amiType), func(t *testing.T) {
			g := &ekstypes.Nodegroup{NodegroupName: aws.String("g"), AmiType: tc.amiType, InstanceTypes: []string{"m7g.xlarge"},
				LaunchTemplate: &ekstypes.LaunchTemplateSpecification{Id: aws.String("lt-1"), Version: aws.String("3")}}
			n, err := NodeTemplate(g, "us-west-2", "us-west-2a")
			if err != nil {
				t.Fatal(err)
			}
			if n.Labels[corev1.LabelOSStable] != tc.os || n.Labels[corev1.LabelArchStable] != tc.arch {
				t.Errorf("labels os %s arch %s, want %s %s", n.Labels[corev1.LabelOSStable], n.Labels[corev1.LabelArchStable], tc.os, tc.arch)
			}
			if ni := n.Status.NodeInfo; ni.Architecture != tc.arch || ni.OperatingSystem != tc.os || len(ni.OSImage) < len(tc.imagePrefx) || ni.OSImage[:len(tc.imagePrefx)] != tc.imagePrefx {
				t.Errorf("node info %+v, want %s/%s on %s", ni, tc.os, tc.arch, tc.imagePrefx)
			}
			if n.Labels[LabelLaunchTemplateID] != "lt-1" || n.Labels[LabelLaunchTemplateVersion] != "3" {
				t.Errorf("launch template labels %s/%s, want lt-1/3", n.Labels[LabelLaunchTemplateID], n.Labels[LabelLaunchTemplateVersion])
			}
			if (tc.amiType == "") != (n.Labels[LabelImage] == "") {
				t.Errorf("image label %q for AMI type %q", n.Labels[LabelImage], tc.amiType)
			}
		})
	}
}
