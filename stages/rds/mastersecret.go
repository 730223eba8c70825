package rds

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// MasterSecret is the JSON document in the MasterSecretName secret, in the
// shape RDS and the AWS console use for database credentials.
type MasterSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Host     string `json:"host"`
	Port     int32  `json:"port"`
	DBName   string `json:"dbname"`
}

// passwordLength is well inside PostgreSQL's 8-128 on RDS.
const passwordLength = 32

// passwordAlphabet is printable ASCII without the characters RDS refuses in
// a master password: '/', '"', '@' and space.
func passwordAlphabet() string {
	var b strings.Builder
	for c := byte('!'); c <= '~'; c++ {
		if c != '/' && c != '"' && c != '@' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// generatePassword draws each character uniformly from passwordAlphabet
// with crypto/rand.
func generatePassword() (string, error) {
	alphabet := passwordAlphabet()
	n := big.NewInt(int64(len(alphabet)))
	out := make([]byte, passwordLength)
	for i := range out {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", fmt.Errorf("generate the database password: %w", err)
		}
		out[i] = alphabet[k.Int64()]
	}
	return string(out), nil
}

// tagPasswordReset marks a secret whose password has not yet been set on
// an existing instance, so a run killed between storing the password and
// ModifyDBInstance finishes the reset instead of leaving a database nobody
// can log into.
const tagPasswordReset = "coderctl/password-reset"

// requestToken derives a Secrets Manager ClientRequestToken (a UUID-shaped
// 36 characters) from parts, so a retried call is recognised as the same.
func requestToken(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// findSecret looks the master secret up by the ARN in state, then by name;
// nil when neither exists. A secret of another deployment is an error.
func (s *stage) findSecret(ctx context.Context) (*secretsmanager.DescribeSecretOutput, error) {
	ids := []string{MasterSecretName}
	if arn := s.d.State.Get(KeyMasterSecretARN); arn != "" {
		ids = []string{arn, MasterSecretName}
	}
	for _, id := range ids {
		out, err := s.d.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		if awsx.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, awsx.Describe("describe secret "+id, err)
		}
		if other := awsx.SecretsManagerTagMap(out.Tags)[awsx.TagDeployment]; other != "" && other != s.d.Deployment() {
			return nil, fmt.Errorf("secret %s belongs to deployment %q, not %q: one account and region holds one Coder deployment's %s",
				MasterSecretName, other, s.d.Deployment(), MasterSecretName)
		}
		return out, nil
	}
	return nil, nil
}

func (s *stage) planMasterSecret(ctx context.Context) ([]engine.Action, error) {
	sec, err := s.findSecret(ctx)
	if err != nil {
		return nil, err
	}
	res := "secret " + MasterSecretName
	switch {
	case sec == nil:
		inst, err := s.findInstance(ctx)
		if err != nil {
			return nil, err
		}
		if inst != nil {
			return []engine.Action{{Kind: engine.Create, Resource: res,
				Reason: "the database exists but its secret is gone: generate a new master password, reset it on the instance and store it"}}, nil
		}
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "generate the master password, stored only in Secrets Manager"}}, nil
	case sec.DeletedDate != nil:
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: "scheduled for deletion: restore it"}}, nil
	case awsx.SecretsManagerTagMap(sec.Tags)[tagPasswordReset] != "":
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: "finish resetting the instance's master password"}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: "exists"}}, nil
}

func (s *stage) applyMasterSecret(ctx context.Context, r engine.Reporter) error {
	sec, err := s.findSecret(ctx)
	if err != nil {
		return err
	}
	if sec == nil {
		return s.createMasterSecret(ctx, r)
	}
	arn := aws.ToString(sec.ARN)
	if sec.DeletedDate != nil {
		r.Progress("restoring secret " + MasterSecretName + ", which was scheduled for deletion")
		if _, err := s.d.AWS.SecretsManager.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(arn)}); err != nil {
			return awsx.Describe("restore secret "+MasterSecretName, err)
		}
	}
	if err := s.adoptSecretTags(ctx, arn, awsx.SecretsManagerTagMap(sec.Tags)); err != nil {
		return err
	}
	if s.d.State.Get(KeyMasterSecretARN) != arn {
		if err := s.d.Record(map[string]string{KeyMasterSecretARN: arn}); err != nil {
			return err
		}
	}
	if awsx.SecretsManagerTagMap(sec.Tags)[tagPasswordReset] != "" {
		return s.finishPasswordReset(ctx, r, arn)
	}
	return nil
}

// adoptSecretTags tags a secret found by name that lacks the stage's tags.
func (s *stage) adoptSecretTags(ctx context.Context, arn string, have map[string]string) error {
	want := s.tags(MasterSecretName)
	if awsx.HasTags(have, want) {
		return nil
	}
	_, err := s.d.AWS.SecretsManager.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: secretTagList(want)})
	return awsx.Describe("tag secret "+MasterSecretName, err)
}

// createMasterSecret generates the password and stores it. When the
// instance already exists (its secret was deleted), the secret is created
// marked for a reset and the reset is done right away.
func (s *stage) createMasterSecret(ctx context.Context, r engine.Reporter) error {
	inst, err := s.findInstance(ctx)
	if err != nil {
		return err
	}
	password, err := generatePassword()
	if err != nil {
		return err
	}
	doc := MasterSecret{Username: MasterUsername, Password: password, Port: Port, DBName: DatabaseName}
	tags := s.tags(MasterSecretName)
	if inst != nil {
		tags[tagPasswordReset] = "pending"
		if inst.Endpoint != nil {
			doc.Host, doc.Port = aws.ToString(inst.Endpoint.Address), aws.ToInt32(inst.Endpoint.Port)
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", MasterSecretName, err)
	}
	r.Progress("storing a generated master password in secret " + MasterSecretName)
	out, err := s.d.AWS.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(MasterSecretName),
		Description:        aws.String("Master credentials of the Coder database of " + s.d.Deployment() + " (written by coderctl)"),
		SecretString:       aws.String(string(body)),
		ClientRequestToken: aws.String(requestToken(s.d.Deployment(), MasterSecretName)),
		Tags:               secretTagList(tags),
	})
	if err != nil {
		return awsx.Describe("create secret "+MasterSecretName, err)
	}
	arn := aws.ToString(out.ARN)
	if err := s.d.Record(map[string]string{KeyMasterSecretARN: arn}); err != nil {
		return err
	}
	if inst != nil {
		return s.finishPasswordReset(ctx, r, arn)
	}
	return nil
}

// finishPasswordReset sets the secret's password on the instance, then
// clears the secret's reset mark.
func (s *stage) finishPasswordReset(ctx context.Context, r engine.Reporter, arn string) error {
	inst, err := s.findInstance(ctx)
	if err != nil {
		return err
	}
	if inst == nil {
		// The instance is gone too: it will be created with this password.
		return s.clearResetMark(ctx, arn)
	}
	doc, err := s.readMasterSecret(ctx, arn)
	if err != nil {
		return err
	}
	id := aws.ToString(inst.DBInstanceIdentifier)
	r.Notice(fmt.Sprintf("database %s existed without its secret %s: its master password is being reset to a new generated one, stored only in the secret",
		id, MasterSecretName), map[string]any{"instance": id, "secret_arn": arn})
	_, err = s.d.AWS.RDS.ModifyDBInstance(ctx, &rds.ModifyDBInstanceInput{
		DBInstanceIdentifier: aws.String(id), MasterUserPassword: aws.String(doc.Password), ApplyImmediately: aws.Bool(true),
	})
	if err != nil {
		return awsx.Describe("reset the master password of "+id, err)
	}
	return s.clearResetMark(ctx, arn)
}

func (s *stage) clearResetMark(ctx context.Context, arn string) error {
	_, err := s.d.AWS.SecretsManager.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(arn), TagKeys: []string{tagPasswordReset}})
	return awsx.Describe("untag secret "+MasterSecretName, err)
}

// readMasterSecret reads and decodes the secret. Errors never quote it.
func (s *stage) readMasterSecret(ctx context.Context, arn string) (*MasterSecret, error) {
	out, err := s.d.AWS.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, awsx.Describe("read secret "+MasterSecretName, err)
	}
	var doc MasterSecret
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil || doc.Password == "" {
		return nil, fmt.Errorf("secret %s is not a JSON document with a password: delete it (the next apply resets the database's password) or fix it", MasterSecretName)
	}
	return &doc, nil
}

// syncSecretEndpoint writes the instance's host and port into the secret
// when they differ, so it is a complete connection description.
func (s *stage) syncSecretEndpoint(ctx context.Context, r engine.Reporter, host string, port int32) error {
	arn, err := s.d.Output(KeyMasterSecretARN, Name)
	if err != nil {
		return err
	}
	doc, err := s.readMasterSecret(ctx, arn)
	if err != nil {
		return err
	}
	if doc.Host == host && doc.Port == port {
		return nil
	}
	doc.Host, doc.Port = host, port
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", MasterSecretName, err)
	}
	r.Progress(fmt.Sprintf("recording %s:%d in secret %s", host, port, MasterSecretName))
	_, err = s.d.AWS.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn), SecretString: aws.String(string(body)),
		ClientRequestToken: aws.String(requestToken(arn, host, fmt.Sprint(port), doc.DBName)),
	})
	return awsx.Describe("update secret "+MasterSecretName, err)
}

// destroyMasterSecret deletes the secret with a 7-day recovery window, or
// at once with ForceDeleteSecrets. It runs only after the instance is gone.
func (s *stage) destroyMasterSecret(ctx context.Context, r engine.Reporter) error {
	sec, err := s.findSecret(ctx)
	if err != nil {
		return err
	}
	if sec == nil || (sec.DeletedDate != nil && !s.d.Opts.ForceDeleteSecrets) {
		return s.d.State.Unset(KeyMasterSecretARN)
	}
	in := &secretsmanager.DeleteSecretInput{SecretId: sec.ARN}
	if s.d.Opts.ForceDeleteSecrets {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
		r.Progress("deleting secret " + MasterSecretName + " without recovery")
	} else {
		in.RecoveryWindowInDays = aws.Int64(7)
		r.Progress("scheduling secret " + MasterSecretName + " for deletion in 7 days")
	}
	if _, err := s.d.AWS.SecretsManager.DeleteSecret(ctx, in); err != nil && !awsx.IsNotFound(err) {
		return awsx.Describe("delete secret "+MasterSecretName, err)
	}
	return s.d.State.Unset(KeyMasterSecretARN)
}

func secretTagList(m map[string]string) []smtypes.Tag {
	return awsx.TagList(m, func(k, v string) smtypes.Tag { return smtypes.Tag{Key: aws.String(k), Value: aws.String(v)} })
}
