package awsx

import "testing"

func TestPrincipalOf(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:sts::123456789012:assumed-role/ci/run-42": "arn:aws:iam::123456789012:role/ci",
		"arn:aws-cn:sts::123456789012:assumed-role/ci/s":   "arn:aws-cn:iam::123456789012:role/ci",
		// moto answers an IAM user in the sts service
		"arn:aws:sts::123456789012:user/moto":              "arn:aws:iam::123456789012:user/moto",
		"arn:aws:iam::123456789012:user/alice":             "arn:aws:iam::123456789012:user/alice",
		"arn:aws:sts::123456789012:federated-user/someone": "arn:aws:sts::123456789012:federated-user/someone",
		"not an arn": "not an arn",
	} {
		if got := PrincipalOf(in); got != want {
			t.Errorf("PrincipalOf(%s) = %s, want %s", in, got, want)
		}
	}
}
