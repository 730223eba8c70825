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

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
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

// describeSecret looks a secret up by name or ARN; nil when there is none.
func (s *stage) describeSecret(ctx context.Context, id string) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := s.d.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("describe secret "+id, err)
	}
	return out, nil
}

// findSecret looks the master secret up by the ARN in state, when that
// still names the deployment's own secret (before a move it names the
// legacy one), then by name; nil when neither exists. A secret of another
// deployment is an error.
func (s *stage) findSecret(ctx context.Context) (*secretsmanager.DescribeSecretOutput, error) {
	name := s.secretName()
	var out *secretsmanager.DescribeSecretOutput
	var err error
	if arn := s.d.State.Get(names.KeyMasterSecretARN); arn != "" {
		if out, err = s.describeSecret(ctx, arn); err != nil {
			return nil, err
		}
	}
	if out == nil || aws.ToString(out.Name) != name {
		if out, err = s.describeSecret(ctx, name); err != nil || out == nil {
			return nil, err
		}
	}
	if other := awsx.SecretsManagerTagMap(out.Tags)[awsx.TagDeployment]; other != "" && other != s.d.Deployment() {
		return nil, fmt.Errorf("secret %s belongs to deployment %q, not %q: delete it or choose another CLUSTER_NAME",
			name, other, s.d.Deployment())
	}
	return out, nil
}

// legacySecret is the master secret under its name from before
// deployments had their own prefix, when it is tagged for this deployment
// (an older coderctl tagged every secret it made or adopted); nil
// otherwise. An untagged one may be anyone's, another deployment's is
// theirs: neither is ever adopted, and ignored says so for plan.
func (s *stage) legacySecret(ctx context.Context) (sec *secretsmanager.DescribeSecretOutput, ignored string, err error) {
	out, err := s.describeSecret(ctx, legacySecretName)
	if err != nil || out == nil {
		return nil, "", err
	}
	switch owner := awsx.SecretsManagerTagMap(out.Tags)[awsx.TagDeployment]; owner {
	case s.d.Deployment():
		return out, "", nil
	case "":
		return nil, fmt.Sprintf("%s exists untagged and is not adopted: only a secret tagged %s=%s is moved",
			legacySecretName, awsx.TagDeployment, s.d.Deployment()), nil
	default:
		return nil, "", nil
	}
}

// bothSecrets is the deployment's master secret and its legacy-named one
// (each nil when absent), and why a legacy one was ignored: plan, apply and
// destroy all start from the pair.
func (s *stage) bothSecrets(ctx context.Context) (sec, legacy *secretsmanager.DescribeSecretOutput, ignored string, err error) {
	if sec, err = s.findSecret(ctx); err != nil {
		return nil, nil, "", err
	}
	legacy, ignored, err = s.legacySecret(ctx)
	return sec, legacy, ignored, err
}

func (s *stage) planMasterSecret(ctx context.Context) ([]engine.Action, error) {
	sec, legacy, ignored, err := s.bothSecrets(ctx)
	if err != nil {
		return nil, err
	}
	name := s.secretName()
	res := "secret " + name
	if sec == nil && legacy != nil {
		restore := ""
		if legacy.DeletedDate != nil {
			restore = "restore it (it is scheduled for deletion), "
		}
		return []engine.Action{
			{Kind: engine.Create, Resource: res, Reason: fmt.Sprintf(
				"move from %s, tagged for this deployment: %scopy the same credentials under the deployment's own name (the database password does not change)", legacySecretName, restore)},
			{Kind: engine.Delete, Resource: "secret " + legacySecretName, Reason: fmt.Sprintf(
				"moved to %s: scheduled for deletion, restorable for %d days", name, awsx.SecretRecoveryWindowDays)},
		}, nil
	}
	var act engine.Action
	switch {
	case sec == nil:
		inst, err := s.findInstance(ctx)
		if err != nil {
			return nil, err
		}
		act = engine.Action{Kind: engine.Create, Resource: res, Reason: "generate the master password, stored only in Secrets Manager"}
		if inst != nil {
			act.Reason = "the database exists but its secret is gone: generate a new master password, reset it on the instance and store it"
		}
		if ignored != "" {
			act.Reason += "; " + ignored
		}
		return []engine.Action{act}, nil
	case sec.DeletedDate != nil:
		act = engine.Action{Kind: engine.Update, Resource: res, Reason: "scheduled for deletion: restore it"}
	case awsx.SecretsManagerTagMap(sec.Tags)[tagPasswordReset] != "":
		act = engine.Action{Kind: engine.Update, Resource: res, Reason: "finish resetting the instance's master password"}
	default:
		act = engine.Action{Kind: engine.Nothing, Resource: res, Reason: "exists"}
	}
	acts := []engine.Action{act}
	if legacy != nil && legacy.DeletedDate == nil {
		acts = append(acts, engine.Action{Kind: engine.Delete, Resource: "secret " + legacySecretName, Reason: fmt.Sprintf(
			"left over from the move to %s: scheduled for deletion (restorable for %d days) if it holds the same password", name, awsx.SecretRecoveryWindowDays)})
	}
	return acts, nil
}

func (s *stage) applyMasterSecret(ctx context.Context, r engine.Reporter) error {
	sec, legacy, _, err := s.bothSecrets(ctx)
	if err != nil {
		return err
	}
	if sec == nil && legacy != nil {
		if sec, err = s.moveLegacySecret(ctx, r, legacy); err != nil {
			return err
		}
		legacy.DeletedDate = nil // restored to be moved
	}
	if sec == nil {
		return s.createMasterSecret(ctx, r)
	}
	name := s.secretName()
	arn := aws.ToString(sec.ARN)
	if sec.DeletedDate != nil {
		r.Progress("restoring secret " + name + ", which was scheduled for deletion")
		if _, err := s.d.AWS.SecretsManager.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(arn)}); err != nil {
			return awsx.Describe("restore secret "+name, err)
		}
	}
	if err := s.adoptSecretTags(ctx, arn, awsx.SecretsManagerTagMap(sec.Tags)); err != nil {
		return err
	}
	if s.d.State.Get(names.KeyMasterSecretARN) != arn {
		if err := s.d.Record(map[string]string{names.KeyMasterSecretARN: arn}); err != nil {
			return err
		}
	}
	if legacy != nil && legacy.DeletedDate == nil {
		if err := s.retireLegacySecret(ctx, r, legacy, arn); err != nil {
			return err
		}
	}
	if awsx.SecretsManagerTagMap(sec.Tags)[tagPasswordReset] != "" {
		return s.finishPasswordReset(ctx, r, arn)
	}
	return nil
}

// moveLegacySecret gives this deployment's master secret its own name: a
// new secret holding exactly the legacy one's value (so the instance's
// password does not change), recorded in state. The caller then retires
// the legacy one, as a later run does when this one is killed in between.
// A pending password reset moves with it.
func (s *stage) moveLegacySecret(ctx context.Context, r engine.Reporter, legacy *secretsmanager.DescribeSecretOutput) (*secretsmanager.DescribeSecretOutput, error) {
	from, name := aws.ToString(legacy.ARN), s.secretName()
	if legacy.DeletedDate != nil {
		r.Progress("restoring secret " + legacySecretName + ", which was scheduled for deletion, to move it")
		if _, err := s.d.AWS.SecretsManager.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(from)}); err != nil {
			return nil, awsx.Describe("restore secret "+legacySecretName, err)
		}
	}
	value, err := s.d.AWS.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(from)})
	if err != nil {
		return nil, awsx.Describe("read secret "+legacySecretName, err)
	}
	tags := s.tags(name)
	if mark := awsx.SecretsManagerTagMap(legacy.Tags)[tagPasswordReset]; mark != "" {
		tags[tagPasswordReset] = mark
	}
	r.Progress(fmt.Sprintf("moving secret %s to %s (the same credentials: the database password does not change)", legacySecretName, name))
	_, err = s.d.AWS.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(name),
		Description:        aws.String(masterSecretDescription(s.d.Deployment())),
		SecretString:       value.SecretString,
		ClientRequestToken: aws.String(requestToken(s.d.Deployment(), name, "moved from", from)),
		Tags:               awsx.SecretsManagerTags(tags),
	})
	// Exists: a concurrent or killed run made it; retiring the legacy
	// secret compares the passwords before deleting anything.
	if err != nil && awsx.ErrorCode(err) != "ResourceExistsException" {
		return nil, awsx.Describe("create secret "+name, err)
	}
	sec, err := s.findSecret(ctx)
	if err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, fmt.Errorf("secret %s was created but Secrets Manager does not find it yet: run apply again", name)
	}
	if arn := aws.ToString(sec.ARN); s.d.State.Get(names.KeyMasterSecretARN) != arn {
		if err := s.d.Record(map[string]string{names.KeyMasterSecretARN: arn}); err != nil {
			return nil, err
		}
	}
	return sec, nil
}

// retireLegacySecret schedules this deployment's legacy master secret for
// deletion, with the recovery window, once the secret under the
// deployment's own name holds the same password. One holding another
// password is left with a notice: it may be the only copy of a password
// something still uses.
func (s *stage) retireLegacySecret(ctx context.Context, r engine.Reporter, legacy *secretsmanager.DescribeSecretOutput, arn string) error {
	current, err := s.readMasterSecret(ctx, arn)
	if err != nil {
		return err
	}
	old, err := s.readSecretDoc(ctx, aws.ToString(legacy.ARN), legacySecretName)
	if err != nil || old.Password != current.Password {
		r.Notice(fmt.Sprintf("secret %s is tagged for deployment %s but does not hold the password in %s: left in place; delete it once nothing uses it",
			legacySecretName, s.d.Deployment(), s.secretName()), map[string]any{"secret": legacySecretName})
		return nil
	}
	return awsx.DeleteSecret(ctx, s.d.AWS.SecretsManager, r.Progress, aws.ToString(legacy.ARN), legacySecretName, false)
}

// deleteSecret deletes a secret at once (force) or with the recovery
// window.

func masterSecretDescription(deployment string) string {
	return "Master credentials of the Coder database of " + deployment + " (written by coderctl)"
}

// adoptSecretTags tags a secret found by name that lacks the stage's tags.
func (s *stage) adoptSecretTags(ctx context.Context, arn string, have map[string]string) error {
	want := s.tags(s.secretName())
	if awsx.HasTags(have, want) {
		return nil
	}
	_, err := s.d.AWS.SecretsManager.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: awsx.SecretsManagerTags(want)})
	return awsx.Describe("tag secret "+s.secretName(), err)
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
	name := s.secretName()
	doc := MasterSecret{Username: names.MasterUsername, Password: password, Port: Port, DBName: names.DatabaseName}
	tags := s.tags(name)
	if inst != nil {
		tags[tagPasswordReset] = "pending"
		if inst.Endpoint != nil {
			doc.Host, doc.Port = aws.ToString(inst.Endpoint.Address), aws.ToInt32(inst.Endpoint.Port)
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", name, err)
	}
	r.Progress("storing a generated master password in secret " + name)
	out, err := s.d.AWS.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(name),
		Description:        aws.String(masterSecretDescription(s.d.Deployment())),
		SecretString:       aws.String(string(body)),
		ClientRequestToken: aws.String(requestToken(s.d.Deployment(), name)),
		Tags:               awsx.SecretsManagerTags(tags),
	})
	if err != nil {
		return awsx.Describe("create secret "+name, err)
	}
	arn := aws.ToString(out.ARN)
	if err := s.d.Record(map[string]string{names.KeyMasterSecretARN: arn}); err != nil {
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
		id, s.secretName()), map[string]any{"instance": id, "secret_arn": arn})
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
	return awsx.Describe("untag secret "+s.secretName(), err)
}

// readMasterSecret reads and decodes the secret. Errors never quote it.
func (s *stage) readMasterSecret(ctx context.Context, arn string) (*MasterSecret, error) {
	return s.readSecretDoc(ctx, arn, s.secretName())
}

// recordedMasterSecret reads the secret this stage's master-secret step
// recorded (creating or changing the instance needs it done first).
func (s *stage) recordedMasterSecret(ctx context.Context) (arn string, doc *MasterSecret, err error) {
	if arn, err = s.d.Output(names.KeyMasterSecretARN, Name); err != nil {
		return "", nil, err
	}
	doc, err = s.readMasterSecret(ctx, arn)
	return arn, doc, err
}

// readSecretDoc reads and decodes the secret arn, called name in errors,
// which never quote it.
func (s *stage) readSecretDoc(ctx context.Context, arn, name string) (*MasterSecret, error) {
	out, err := s.d.AWS.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, awsx.Describe("read secret "+name, err)
	}
	var doc MasterSecret
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil || doc.Password == "" {
		return nil, fmt.Errorf("secret %s is not a JSON document with a password: delete it (the next apply resets the database's password) or fix it", name)
	}
	return &doc, nil
}

// syncSecretEndpoint writes the instance's host and port into the secret
// when they differ, so it is a complete connection description.
func (s *stage) syncSecretEndpoint(ctx context.Context, r engine.Reporter, host string, port int32) error {
	arn, doc, err := s.recordedMasterSecret(ctx)
	if err != nil {
		return err
	}
	if doc.Host == host && doc.Port == port {
		return nil
	}
	doc.Host, doc.Port = host, port
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", s.secretName(), err)
	}
	r.Progress(fmt.Sprintf("recording %s:%d in secret %s", host, port, s.secretName()))
	_, err = s.d.AWS.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn), SecretString: aws.String(string(body)),
		ClientRequestToken: aws.String(requestToken(arn, host, fmt.Sprint(port), doc.DBName)),
	})
	return awsx.Describe("update secret "+s.secretName(), err)
}

// destroyMasterSecret deletes the secret with the recovery window, or at
// once with ForceDeleteSecrets, and this deployment's legacy-named one if
// a move left it. It runs only after the instance is gone.
func (s *stage) destroyMasterSecret(ctx context.Context, r engine.Reporter) error {
	sec, legacy, _, err := s.bothSecrets(ctx)
	if err != nil {
		return err
	}
	force := s.d.Opts.ForceDeleteSecrets
	for _, found := range []struct {
		name string
		sec  *secretsmanager.DescribeSecretOutput
	}{{s.secretName(), sec}, {legacySecretName, legacy}} {
		if found.sec == nil || (found.sec.DeletedDate != nil && !force) {
			continue
		}
		if err := awsx.DeleteSecret(ctx, s.d.AWS.SecretsManager, r.Progress, aws.ToString(found.sec.ARN), found.name, force); err != nil {
			return err
		}
	}
	return s.d.State.Unset(names.KeyMasterSecretARN)
}
