package awsx

import (
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"
)

// ChooseZones is the deployment's availability zones: the configured ones
// when cluster-config.yaml lists any, else the region's first available
// regular zones in name order, as many as eksctl recommends. prereqs checks
// and network builds on this one choice, so the two cannot disagree.
func ChooseZones(configured []string, region []ec2types.AvailabilityZone) []string {
	if len(configured) > 0 {
		return configured
	}
	var names []string
	for _, z := range region {
		// Local and Wavelength zones cannot host an EKS control plane.
		regular := z.ZoneType == nil || aws.ToString(z.ZoneType) == "availability-zone"
		if z.State == ec2types.AvailabilityZoneStateAvailable && regular {
			names = append(names, aws.ToString(z.ZoneName))
		}
	}
	sort.Strings(names)
	return names[:min(len(names), api.RecommendedAvailabilityZones)]
}
