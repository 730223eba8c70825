package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// remoteSecret is what Secrets Manager says about one of our secrets.
type remoteSecret struct {
	name, arn string
	tags      map[string]string
	// deleted: scheduled for deletion, restorable within the window.
	deleted bool
}

// foreignError is a secret or role with one of our names that carries
// another deployment's tag: never adopted, changed or deleted.
type foreignError struct{ kind, name, owner, deployment string }

func (e *foreignError) Error() string {
	return fmt.Sprintf("%s %s belongs to deployment %q, not %q: delete it or choose another CLUSTER_NAME",
		e.kind, e.name, e.owner, e.deployment)
}

func isForeign(err error) bool {
	var fe *foreignError
	return errors.As(err, &fe)
}

// describeSecret looks a secret up by name or ARN; nil when there is none.
func (s *stage) describeSecret(ctx context.Context, id string) (*remoteSecret, error) {
	out, err := s.d.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("describe secret "+id, err)
	}
	return &remoteSecret{
		name:    aws.ToString(out.Name),
		arn:     aws.ToString(out.ARN),
		tags:    awsx.SecretsManagerTagMap(out.Tags),
		deleted: out.DeletedDate != nil,
	}, nil
}

// findSecret finds the secret by the ARN recorded in state (when it still
// names that secret), else by name. A secret tagged for another deployment
// is an error; an untagged one (made by hand, following the guide) is ours
// to adopt.
func (s *stage) findSecret(ctx context.Context, name, stateARN string) (*remoteSecret, error) {
	var sec *remoteSecret
	var err error
	if stateARN != "" {
		if sec, err = s.describeSecret(ctx, stateARN); err != nil {
			return nil, err
		}
	}
	if sec == nil || sec.name != name {
		if sec, err = s.describeSecret(ctx, name); err != nil || sec == nil {
			return nil, err
		}
	}
	if owner := sec.tags[awsx.TagDeployment]; owner != "" && owner != s.d.Deployment() {
		return nil, &foreignError{kind: "secret", name: name, owner: owner, deployment: s.d.Deployment()}
	}
	return sec, nil
}

// currentValue reads the secret's AWSCURRENT value and version. A secret
// with no value yet (created without one) reads as "", "".
func (s *stage) currentValue(ctx context.Context, arn string) (value, version string, err error) {
	out, err := s.d.AWS.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if awsx.IsNotFound(err) {
		return "", "", nil
	}
	if err != nil {
		return "", "", awsx.Describe("read secret "+arn, err)
	}
	return aws.ToString(out.SecretString), aws.ToString(out.VersionId), nil
}

// managed is one secret the stage keeps: its name for this deployment,
// coder/<deployment>/<leaf>, and its account-wide name from before
// deployments had their own prefix, coder/<leaf>.
type managed struct{ name, legacy string }

// managedSecret is the deployment's secret called leaf.
func (s *stage) managedSecret(leaf string) managed {
	return managed{name: names.SecretName(s.d.Deployment(), leaf), legacy: names.LegacySecretName(leaf)}
}

// findLegacy is m's secret under its legacy name when it is this
// deployment's: tagged so (an older coderctl tagged every secret it made
// or adopted). An untagged one may be anyone's and another deployment's
// is theirs: neither is adopted, changed or deleted, so both are nil here.
func (s *stage) findLegacy(ctx context.Context, m managed) (*remoteSecret, error) {
	sec, err := s.describeSecret(ctx, m.legacy)
	if err != nil || sec == nil || sec.tags[awsx.TagDeployment] != s.d.Deployment() {
		return nil, err
	}
	return sec, nil
}

// movable reports whether the legacy secret is there to be moved or
// retired (one in its recovery window was already retired, or destroyed).
func movable(legacy *remoteSecret) bool { return legacy != nil && !legacy.deleted }

// secretPlan says what convergeSecret would do; it never mentions values.
func (s *stage) secretPlan(ctx context.Context, m managed, stateARN, value string) ([]engine.Action, error) {
	res := "secret " + m.name
	sec, err := s.findSecret(ctx, m.name, stateARN)
	if err != nil {
		return nil, err
	}
	legacy, err := s.findLegacy(ctx, m)
	if err != nil {
		return nil, err
	}
	var act engine.Action
	switch {
	case sec == nil && movable(legacy):
		act = engine.Action{Kind: engine.Create, Resource: res, Reason: "move from " + m.legacy + ", tagged for this deployment, to the deployment's own name"}
	case sec == nil:
		act = engine.Action{Kind: engine.Create, Resource: res, Reason: "missing"}
	case sec.deleted:
		act = engine.Action{Kind: engine.Update, Resource: res, Reason: "scheduled for deletion: restore it"}
	default:
		if act, err = s.valuePlan(ctx, sec, m.name, value); err != nil {
			return nil, err
		}
	}
	return append([]engine.Action{act}, retirePlan(m, sec != nil, legacy)...), nil
}

// valuePlan compares an existing secret's value and tags with the wanted.
func (s *stage) valuePlan(ctx context.Context, sec *remoteSecret, name, value string) (engine.Action, error) {
	res := "secret " + name
	current, _, err := s.currentValue(ctx, sec.arn)
	if err != nil {
		return engine.Action{}, err
	}
	var why []string
	if current != value {
		why = append(why, "value differs")
	}
	if !awsx.HasTags(sec.tags, s.secretTags(name)) {
		why = append(why, "not tagged for this deployment")
	}
	if len(why) > 0 {
		return engine.Action{Kind: engine.Update, Resource: res, Reason: strings.Join(why, "; ")}, nil
	}
	return engine.Action{Kind: engine.Nothing, Resource: res, Reason: "up to date"}, nil
}

// retirePlan is the legacy secret's deletion, when there is one to retire.
func retirePlan(m managed, exists bool, legacy *remoteSecret) []engine.Action {
	if !movable(legacy) {
		return nil
	}
	why := "moved to " + m.name
	if exists {
		why = "left over from the move to " + m.name
	}
	return []engine.Action{{Kind: engine.Delete, Resource: "secret " + m.legacy,
		Reason: fmt.Sprintf("%s: scheduled for deletion, restorable for %d days", why, awsx.SecretRecoveryWindowDays)}}
}

// convergeSecret makes the secret hold value, creating, restoring or
// tagging it as needed, then retires this deployment's legacy-named copy;
// record is called with its ARN as soon as it exists. Nothing is written
// when it already holds value.
func (s *stage) convergeSecret(ctx context.Context, r engine.Reporter, m managed, stateARN, value string, record func(arn string) error) error {
	sec, err := s.findSecret(ctx, m.name, stateARN)
	if err != nil {
		return err
	}
	legacy, err := s.findLegacy(ctx, m)
	if err != nil {
		return err
	}
	if sec == nil {
		if movable(legacy) {
			r.Progress(fmt.Sprintf("moving secret %s to %s, the deployment's own name", m.legacy, m.name))
		}
		err = s.createSecret(ctx, r, m.name, value, record)
	} else {
		err = s.updateSecret(ctx, r, sec, m.name, value, record)
	}
	if err != nil {
		return err
	}
	return s.retireLegacy(ctx, r, m, legacy)
}

// updateSecret converges an existing secret.
func (s *stage) updateSecret(ctx context.Context, r engine.Reporter, sec *remoteSecret, name, value string, record func(arn string) error) error {
	if err := record(sec.arn); err != nil {
		return err
	}
	if sec.deleted {
		r.Progress("restoring secret " + name + ", which was scheduled for deletion")
		if _, err := s.d.AWS.SecretsManager.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(sec.arn)}); err != nil {
			return awsx.Describe("restore secret "+name, err)
		}
	}
	if want := s.secretTags(name); !awsx.HasTags(sec.tags, want) {
		r.Progress("tagging secret " + name)
		if _, err := s.d.AWS.SecretsManager.TagResource(ctx, &secretsmanager.TagResourceInput{
			SecretId: aws.String(sec.arn), Tags: awsx.SecretsManagerTags(want)}); err != nil {
			return awsx.Describe("tag secret "+name, err)
		}
	}
	current, version, err := s.currentValue(ctx, sec.arn)
	if err != nil || current == value {
		return err
	}
	r.Progress("storing a new value in secret " + name)
	_, err = s.d.AWS.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String(sec.arn),
		SecretString: aws.String(value),
		// Derived from the version being replaced: a retried call is
		// recognised as the same, a later change gets a new token.
		ClientRequestToken: aws.String(requestToken(s.d.Deployment(), name, "put", version)),
	})
	return awsx.Describe("update secret "+name, err)
}

func (s *stage) createSecret(ctx context.Context, r engine.Reporter, name, value string, record func(string) error) error {
	r.Progress("creating secret " + name)
	out, err := s.d.AWS.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(name),
		Description:        aws.String("Coder deployment " + s.d.Deployment() + " (coderctl)"),
		SecretString:       aws.String(value),
		Tags:               awsx.SecretsManagerTags(s.secretTags(name)),
		ClientRequestToken: aws.String(requestToken(s.d.Deployment(), name, "create")),
	})
	if awsx.ErrorCode(err) == "ResourceExistsException" {
		// Created by a concurrent or killed run since we looked: converge it.
		sec, ferr := s.findSecret(ctx, name, "")
		if ferr != nil || sec == nil {
			return awsx.Describe("create secret "+name, err)
		}
		return s.updateSecret(ctx, r, sec, name, value, record)
	}
	if err != nil {
		return awsx.Describe("create secret "+name, err)
	}
	return record(aws.ToString(out.ARN))
}

// retireLegacy schedules this deployment's legacy-named secret for
// deletion, with the recovery window, once the secret under the
// deployment's own name exists. The stage's secrets are rebuilt from the
// master secret or the environment on every apply, so nothing is lost
// with it; the window covers a mistake.
func (s *stage) retireLegacy(ctx context.Context, r engine.Reporter, m managed, legacy *remoteSecret) error {
	if !movable(legacy) {
		return nil
	}
	progress := func(msg string) { r.Progress(msg + ": moved to " + m.name) }
	return awsx.DeleteSecret(ctx, s.d.AWS.SecretsManager, progress, legacy.arn, m.legacy, false)
}

// destroySecret deletes the deployment's secret and its legacy-named copy
// if one is left, so a teardown leaves nothing tagged for the deployment.
func (s *stage) destroySecret(ctx context.Context, r engine.Reporter, m managed, stateARN string) error {
	if err := s.deleteSecret(ctx, r, m.name, stateARN); err != nil {
		return err
	}
	legacy, err := s.findLegacy(ctx, m)
	if err != nil || legacy == nil {
		return err
	}
	return s.deleteFound(ctx, r, legacy, m.legacy)
}

// deleteSecret schedules the secret for deletion after the recovery window,
// or deletes it at once with ForceDeleteSecrets. Secrets of another
// deployment are left alone with a notice.
func (s *stage) deleteSecret(ctx context.Context, r engine.Reporter, name, stateARN string) error {
	sec, err := s.findSecret(ctx, name, stateARN)
	if isForeign(err) {
		r.Notice(err.Error()+"; left in place", map[string]any{"secret": name})
		return nil
	}
	if err != nil || sec == nil {
		return err
	}
	return s.deleteFound(ctx, r, sec, name)
}

func (s *stage) deleteFound(ctx context.Context, r engine.Reporter, sec *remoteSecret, name string) error {
	force := s.d.Opts.ForceDeleteSecrets
	if sec.deleted && !force {
		return nil
	}
	return awsx.DeleteSecret(ctx, s.d.AWS.SecretsManager, r.Progress, sec.arn, name, force)
}

func (s *stage) secretTags(name string) map[string]string {
	return s.d.Tags(Name, map[string]string{"Name": name})
}

// requestToken derives a ClientRequestToken (UUID-shaped, as the API
// expects 32-64 characters) from parts that never include a secret value.
func requestToken(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
