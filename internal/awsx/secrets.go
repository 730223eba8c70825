package awsx

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretRecoveryWindowDays is how long a secret coderctl deletes can be
// restored (aws secretsmanager restore-secret), unless deleted with force.
// A database password or the first owner's may be the only copy, so the
// default keeps it; Secrets Manager allows 7 to 30.
const SecretRecoveryWindowDays = 7

// SecretDeleter is the part of the Secrets Manager client DeleteSecret
// needs.
type SecretDeleter interface {
	DeleteSecret(context.Context, *secretsmanager.DeleteSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
}

// DeleteSecret deletes the secret id (its name or ARN), called name in
// progress and errors: scheduled for deletion after the recovery window,
// or at once with force. A secret already gone is not an error. progress
// may be nil.
func DeleteSecret(ctx context.Context, sm SecretDeleter, progress func(string), id, name string, force bool) error {
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(id)}
	msg := fmt.Sprintf("scheduling secret %s for deletion in %d days (restorable until then)", name, SecretRecoveryWindowDays)
	if force {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
		msg = "deleting secret " + name + " without a recovery window"
	} else {
		in.RecoveryWindowInDays = aws.Int64(SecretRecoveryWindowDays)
	}
	if progress != nil {
		progress(msg)
	}
	if _, err := sm.DeleteSecret(ctx, in); err != nil && !IsNotFound(err) {
		return Describe("delete secret "+name, err)
	}
	return nil
}
