package eks

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/fault"
)

// keyField is where the file names the secrets key.
const keyField = "secretsEncryption.keyARN"

// validateKeyARN checks the key's ARN without AWS: EKS takes the ARN of a
// KMS key or alias "created in the same AWS Region as the cluster" (EKS API
// reference, EncryptionConfig). eksctl has already checked that it parses
// as an ARN.
func (s *stage) validateKeyARN(context.Context) error {
	key := s.want().keyARN
	if key == "" {
		return nil
	}
	a, err := arn.Parse(key)
	if err != nil || a.Service != "kms" || !(strings.HasPrefix(a.Resource, "key/") || strings.HasPrefix(a.Resource, "alias/")) {
		return fault.Input(s.d.ConfigPath, keyField, "use the ARN of a KMS key, arn:"+s.partition()+":kms:"+s.d.Region()+":ACCOUNT:key/KEY-ID",
			"%q is not the ARN of a KMS key or alias", key)
	}
	if a.Region != s.d.Region() {
		return fault.Input(s.d.ConfigPath, keyField, "use a KMS key in "+s.d.Region()+": EKS needs the key in the cluster's region",
			"KMS key %s is in region %s, the cluster in %s", key, a.Region, s.d.Region())
	}
	if a.Partition != s.partition() {
		return fault.Input(s.d.ConfigPath, keyField, "use a KMS key of partition "+s.partition(),
			"KMS key %s is in partition %s, the cluster in %s", key, a.Partition, s.partition())
	}
	return nil
}

// validateKey asks KMS about the key: one that does not exist, is not
// enabled or is not a symmetric encryption key would fail CreateCluster
// minutes in. Errors of the query itself (a key in another account that
// this identity may not describe) are not bad input: EKS decides.
func (s *stage) validateKey(ctx context.Context) error {
	key := s.want().keyARN
	if key == "" || s.d.AWS == nil {
		return nil
	}
	out, err := kms.NewFromConfig(s.d.AWS.Config).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	switch {
	case awsx.IsNotFound(err):
		return fault.Input(s.d.ConfigPath, keyField, "create the key in "+s.d.Region()+", or fix the ARN", "KMS key %s does not exist", key)
	case err != nil:
		return nil
	}
	m := out.KeyMetadata
	switch {
	case m.KeyState != kmstypes.KeyStateEnabled:
		return fault.Input(s.d.ConfigPath, keyField, "enable the key, or name another one", "KMS key %s is %s", key, m.KeyState)
	case m.KeySpec != "" && m.KeySpec != kmstypes.KeySpecSymmetricDefault,
		m.KeyUsage != "" && m.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt:
		return fault.Input(s.d.ConfigPath, keyField, "use a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)",
			"KMS key %s is %s for %s; EKS encrypts secrets only with a symmetric encryption key", key, m.KeySpec, m.KeyUsage)
	}
	return nil
}

// clusterKeyOf is clusterKey for a cluster that may not exist.
func clusterKeyOf(c *ekstypes.Cluster) string {
	if c == nil {
		return ""
	}
	return clusterKey(c)
}
