package eks

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/coderctl/coderctl/internal/engine"
)

// Envelope encryption of Kubernetes secrets (secretsEncryption.keyARN), as
// eksctl does it: encryptionConfig on CreateCluster; on a cluster without
// it, AssociateEncryptionConfig (eksctl's `utils enable-secrets-encryption`).
// EKS cannot remove the configuration or change its key afterwards, so
// plan says so before it happens, and a file naming another key than the
// cluster's is bad input (validate.go), as eksctl refuses it.

// encryptionTimeout bounds the association: eksctl says "this may take up
// to 45 minutes".
const encryptionTimeout = 60 * time.Minute

// encryptionConfig is the CreateCluster/AssociateEncryptionConfig field
// for a key (nil for none).
func encryptionConfig(keyARN string) []ekstypes.EncryptionConfig {
	if keyARN == "" {
		return nil
	}
	return []ekstypes.EncryptionConfig{{Resources: []string{"secrets"}, Provider: &ekstypes.Provider{KeyArn: aws.String(keyARN)}}}
}

// clusterKey is the key a cluster encrypts secrets with ("" for none).
func clusterKey(c *ekstypes.Cluster) string {
	for _, e := range c.EncryptionConfig {
		if len(e.Resources) == 1 && e.Resources[0] == "secrets" && e.Provider != nil {
			return aws.ToString(e.Provider.KeyArn)
		}
	}
	return ""
}

func encryptionWords(keyARN string) string {
	if keyARN == "" {
		return "secrets not envelope-encrypted"
	}
	return "secrets encrypted with KMS key " + keyARN
}

// unmanagedKeyWords notes a key the cluster has and the file does not
// name: coderctl leaves it (EKS cannot remove it).
func unmanagedKeyWords(c *ekstypes.Cluster, w clusterWant) string {
	if have := clusterKey(c); have != "" && w.keyARN == "" {
		return "; secrets are encrypted with " + have + ", which the file does not name (EKS cannot remove it)"
	}
	return ""
}

// convergeEncryption associates the file's key with a cluster that has
// none, once, and waits for it.
func (s *stage) convergeEncryption(ctx context.Context, r engine.Reporter, c *ekstypes.Cluster, w clusterWant) error {
	have := clusterKey(c)
	switch {
	case w.keyARN == "" || have == w.keyARN:
		return nil
	case have != "":
		return fmt.Errorf("EKS cluster %s encrypts secrets with KMS key %s, the file says %s: EKS cannot change the key", s.clusterName(), have, w.keyARN)
	}
	r.Progress("associating secrets encryption with KMS key " + w.keyARN + " (irreversible; EKS takes up to 45 minutes)")
	return s.runUpdate(ctx, r, "AssociateEncryptionConfig", encryptionTimeout, func(ctx context.Context) (*ekstypes.Update, error) {
		out, err := s.d.AWS.EKS.AssociateEncryptionConfig(ctx, &eks.AssociateEncryptionConfigInput{
			ClusterName:      aws.String(s.clusterName()),
			EncryptionConfig: encryptionConfig(w.keyARN),
			// Tied to the cluster and the key: a run killed while waiting
			// gets the same update back instead of an error.
			ClientRequestToken: aws.String(s.clientToken("encryption", incarnation(c)+"|"+w.keyARN)),
		})
		if err != nil {
			return nil, err
		}
		return out.Update, nil
	})
}

// checkEncryption is the secrets-encryption checkpoint.
func (s *stage) checkEncryption(c *ekstypes.Cluster) engine.Check {
	const name = "secrets-encryption"
	want, have := s.want().keyARN, clusterKey(c)
	switch {
	case want == "" && have == "":
		return engine.Passf(name, "not configured")
	case want == "":
		return engine.Warnf(name, "add secretsEncryption.keyARN: "+have+" to "+s.d.ConfigPath, "secrets are encrypted with %s, which the file does not name", have)
	case have == "":
		return engine.Failf(name, applyHint+" to associate the key", "secrets are not envelope-encrypted; the file asks for %s", want)
	case have != want:
		return engine.Failf(name, "set secretsEncryption.keyARN to "+have+": EKS cannot change the key", "secrets are encrypted with %s, the file says %s", have, want)
	}
	return engine.Passf(name, "secrets encrypted with %s", have)
}
