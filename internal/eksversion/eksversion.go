// Package eksversion holds what the eks and nodegroups stages both need to
// know about Kubernetes versions on EKS: the minor of a "1.NN" version and
// how many rounds a managed node group's rolling update takes, and how long.
package eksversion

import (
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
)

// Minor reads the minor of a "1.NN" version.
func Minor(v string) (int, bool) {
	rest, ok := strings.CutPrefix(v, "1.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// typicalBatch is one batch of a managed node group's rollout on real AWS:
// launch, join, drain and terminate.
const typicalBatch = 6 * time.Minute

// TypicalRollout is how long a rollout of batches rounds usually takes on
// AWS, for plan.
func TypicalRollout(batches int) time.Duration { return time.Duration(batches) * typicalBatch }

// RolloutBatches is how many rounds EKS needs to replace a group's nodes, at
// most updateConfig's maxUnavailable (or its percentage of the desired size)
// at a time; EKS's default is one node at a time.
func RolloutBatches(ng *ekstypes.Nodegroup) int {
	nodes := 1
	if sc := ng.ScalingConfig; sc != nil && aws.ToInt32(sc.DesiredSize) > 0 {
		nodes = int(aws.ToInt32(sc.DesiredSize))
	}
	at := 1
	if uc := ng.UpdateConfig; uc != nil {
		switch {
		case aws.ToInt32(uc.MaxUnavailable) > 0:
			at = int(aws.ToInt32(uc.MaxUnavailable))
		case aws.ToInt32(uc.MaxUnavailablePercentage) > 0:
			at = max(1, nodes*int(aws.ToInt32(uc.MaxUnavailablePercentage))/100)
		}
	}
	return (nodes + at - 1) / at
}
