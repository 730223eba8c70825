package awsx

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// PrincipalOf turns an assumed-role session ARN
// (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) into its role's ARN, the
// principal an access entry names; other ARNs stay as they are.
func PrincipalOf(caller string) string {
	a, err := arn.Parse(caller)
	if err != nil || a.Service != "sts" {
		return caller
	}
	if strings.HasPrefix(a.Resource, "user/") {
		// moto answers an IAM user as arn:aws:sts::ACCOUNT:user/NAME; AWS
		// says arn:aws:iam::ACCOUNT:user/NAME, the principal EKS takes.
		return fmt.Sprintf("arn:%s:iam::%s:%s", a.Partition, a.AccountID, a.Resource)
	}
	if !strings.HasPrefix(a.Resource, "assumed-role/") {
		return caller
	}
	parts := strings.Split(a.Resource, "/")
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", a.Partition, a.AccountID, parts[1])
}
