package coderapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
)

// SecretsManagerAPI is the part of the Secrets Manager client the first
// user's secret needs.
type SecretsManagerAPI interface {
	DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	CreateSecret(context.Context, *secretsmanager.CreateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	RestoreSecret(context.Context, *secretsmanager.RestoreSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.RestoreSecretOutput, error)
	DeleteSecret(context.Context, *secretsmanager.DeleteSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
}

// FirstUserStore keeps the first owner's credentials in Secrets Manager,
// tagged for the deployment. Its errors name the secret, never its value.
type FirstUserStore struct {
	SM   SecretsManagerAPI
	Tags map[string]string
	// Deployment refuses a secret of that name tagged for another one.
	Deployment string
}

// Get returns the secret's value. A secret scheduled for deletion is
// restored first: the owner it names still exists while Coder's database
// does, and its password is nowhere else.
func (s FirstUserStore) Get(ctx context.Context, name string) (string, bool, error) {
	d, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if awsx.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, awsx.Describe("describe secret "+name, err)
	}
	if owner := awsx.SecretsManagerTagMap(d.Tags)[awsx.TagDeployment]; owner != "" && s.Deployment != "" && owner != s.Deployment {
		return "", false, fmt.Errorf("secret %s belongs to deployment %q, not %q", name, owner, s.Deployment)
	}
	if d.DeletedDate != nil {
		if _, err := s.SM.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(name)}); err != nil {
			return "", false, awsx.Describe("restore secret "+name, err)
		}
	}
	out, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if awsx.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, awsx.Describe("read secret "+name, err)
	}
	return aws.ToString(out.SecretString), true, nil
}

// Create stores a new secret with the deployment's tags.
func (s FirstUserStore) Create(ctx context.Context, name, value string) error {
	_, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		Description:  aws.String("Coder's first owner (e-mail, username, password), created by coderctl; the password is kept nowhere else"),
		SecretString: aws.String(value),
		Tags:         awsx.SecretsManagerTags(s.Tags),
		// One request per secret name and content: a retried call is
		// not a second secret.
		ClientRequestToken: aws.String(clientToken(name)),
	})
	if err != nil {
		return awsx.Describe("create secret "+name, err)
	}
	return nil
}

// clientToken is a fixed idempotency token for the create: 32+
// characters, from the name only (never the value).
func clientToken(name string) string {
	t := "coderctl-first-user-" + strings.NewReplacer("/", "-", "_", "-").Replace(name)
	for len(t) < 32 {
		t += "-"
	}
	if len(t) > 64 {
		t = t[:64]
	}
	return t
}

// Delete deletes the secret: restorable for awsx.SecretRecoveryWindowDays, or at
// once with force. A secret already gone is not an error; deleted says
// whether there was one.
func (s FirstUserStore) Delete(ctx context.Context, name string, force bool) (deleted bool, err error) {
	d, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if awsx.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, awsx.Describe("describe secret "+name, err)
	}
	if owner := awsx.SecretsManagerTagMap(d.Tags)[awsx.TagDeployment]; owner != "" && s.Deployment != "" && owner != s.Deployment {
		return false, fmt.Errorf("secret %s belongs to deployment %q, not %q: left alone", name, owner, s.Deployment)
	}
	if d.DeletedDate != nil && !force {
		return false, nil
	}
	if err := awsx.DeleteSecret(ctx, s.SM, nil, name, name, force); err != nil {
		return false, err
	}
	return true, nil
}

// FirstUserSecretStage is the stage whose tag the first-user secret
// carries and whose destroy deletes it: the template stage, the last
// one that needs an owner.
const FirstUserSecretStage = "template"

// OwnerForDeployment is the session source for a deployment: the process
// environment, and, when AWS is connected, the first-user secret in
// Secrets Manager.
func OwnerForDeployment(in *config.Inputs, lookup func(string) (string, bool), clients *awsx.Clients) Owner {
	o := Owner{Inputs: in, LookupEnv: lookup}
	if in != nil {
		o.Deployment = in.ClusterName()
	}
	if clients != nil && clients.SecretsManager != nil {
		o.Store = FirstUserStore{SM: clients.SecretsManager, Deployment: o.Deployment,
			Tags: awsx.Tags(o.Deployment, FirstUserSecretStage, nil)}
	}
	return o
}
