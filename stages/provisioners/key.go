package provisioners

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// tokenHint says how to get an owner's session token.
const tokenHint = "set CODER_FIRST_USER_EMAIL before the first `up` (coderctl creates the first owner, its password only in Secrets Manager), " +
	"or create the first (owner) user at CODER_URL, run `coder login $CODER_URL` and " +
	"`export CODER_SESSION_TOKEN=$(coder tokens create --name coderctl)`; coderctl reads it from the environment and never stores it"

// owner is where the stage's owner session comes from: the environment's
// token, else the first-user secret, else (apply only) the first owner
// created from CODER_FIRST_USER_EMAIL.
func (s *stage) owner() coderapi.Owner {
	return coderapi.OwnerForDeployment(s.d.Inputs, s.d.Getenv, s.d.AWS)
}

// hasOwnerSource reports whether a session can be had without
// CODER_SESSION_TOKEN: CODER_FIRST_USER_EMAIL says the first owner is (or
// will be) coderctl's, its password in the first-user secret. Validation
// calls no AWS, so the input, not the secret, is what counts here.
func (s *stage) hasOwnerSource() bool { return s.owner().Email() != "" }

// keySecret is what the Kubernetes secret says about the key it holds.
type keySecret struct {
	exists bool
	filled bool   // holds a non-empty key
	keyID  string // the annotation; "" when the secret was made by hand
}

func readKeySecret(ctx context.Context, kc kubernetes.Interface) (keySecret, error) {
	sec, err := kc.CoreV1().Secrets(names.CoderNamespace).Get(ctx, KeySecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return keySecret{}, nil
	}
	if err != nil {
		return keySecret{}, fmt.Errorf("read secret %s/%s: %w", names.CoderNamespace, KeySecretName, err)
	}
	return keySecret{exists: true, filled: len(sec.Data[KeySecretKey]) > 0, keyID: sec.Annotations[annKeyID]}, nil
}

// clusterKeySecret is the cluster's client and the key secret in it, for
// the apply steps, which need both.
func (s *stage) clusterKeySecret(ctx context.Context) (kubernetes.Interface, keySecret, error) {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return nil, keySecret{}, err
	}
	sec, err := readKeySecret(ctx, kc)
	return kc, sec, err
}

// keyAction is what ensureKey must do, from the secret and Coder's key.
type keyAction int

const (
	keyKeep   keyAction = iota // the secret holds the key Coder has
	keyCreate                  // no key in Coder: create one, (re)write the secret
	keyRotate                  // Coder has a key whose secret is lost: delete, create, write
)

// decideKey compares the Kubernetes secret with Coder's key. Coder shows a
// key's secret only once, at creation: a key whose secret is gone (or that
// was replaced behind coderctl's back) can only be rotated.
func decideKey(sec keySecret, key *coderapi.ProvisionerKey) (keyAction, string) {
	switch {
	case key == nil && sec.filled:
		return keyCreate, fmt.Sprintf("secret %s holds a key Coder no longer has: create %s and replace it", KeySecretName, KeyName)
	case key == nil:
		return keyCreate, fmt.Sprintf("create provisioner key %s (scope=organization) and keep it in secret %s", KeyName, KeySecretName)
	case !sec.filled:
		return keyRotate, fmt.Sprintf("key %s exists in Coder but secret %s does not hold it: rotate (delete, create)", KeyName, KeySecretName)
	case sec.keyID != "" && sec.keyID != key.ID:
		return keyRotate, fmt.Sprintf("secret %s holds an older key than Coder's %s: rotate", KeySecretName, KeyName)
	}
	return keyKeep, fmt.Sprintf("secret %s holds key %s", KeySecretName, KeyName)
}

// api is an authenticated client and the default organization's ID.
type api struct {
	client *coderapi.Client
	org    string
}

func (s *stage) connect(ctx context.Context) (api, error) { return s.connectAs(ctx, false) }

// connectAs finds an owner's session; create lets it create Coder's first
// owner (apply only).
func (s *stage) connectAs(ctx context.Context, create bool) (api, error) {
	sess, err := s.owner().Session(ctx, create)
	if coderapi.IsNoOwner(err) {
		return api{}, fault.Input(config.SourceEnvironment, coderapi.EnvSessionToken, tokenHint, "%v: the provisioner key is created through the Coder API as an owner", err)
	}
	if err != nil {
		return api{}, explainAPIError(s, err)
	}
	client := sess.Client
	org, err := client.DefaultOrganization(ctx)
	if err != nil {
		return api{}, explainAPIError(s, err)
	}
	return api{client: client, org: org.ID}, nil
}

// rightsHint says who may manage provisioner keys (coderd/rbac/roles.go:
// owners site-wide; organization admins and template admins hold
// provisioner_daemon create and delete too).
const rightsHint = "use a token of an owner (or an organization or template admin of the default organization): " +
	"`coder login $CODER_URL` as that user, then `export CODER_SESSION_TOKEN=$(coder tokens create --name coderctl)`"

// explainAPIError turns coderd's refusals into what the user must do.
func explainAPIError(s *stage, err error) error {
	switch {
	case coderapi.IsUnauthorized(err):
		return fault.Input(config.SourceEnvironment, coderapi.EnvSessionToken, tokenHint, "coderd at %s refused the token (expired, revoked or from another deployment): %v",
			s.d.Inputs.CoderURL(), err)
	case coderapi.IsRBACRefusal(err):
		return fault.Input(config.SourceEnvironment, coderapi.EnvSessionToken, rightsHint,
			"coderd at %s refused to let the token's user manage provisioner keys", s.d.Inputs.CoderURL())
	case coderapi.IsForbidden(err):
		return fmt.Errorf("external provisioners are a Coder Premium feature and this deployment has no license for them "+
			"(add one with `coder licenses add`, then re-run): %w", err)
	case coderapi.IsUnreachable(err):
		return fmt.Errorf("%w (%s)", err, coderapi.UnreachableHint(s.d.Inputs, s.d.State.Get(names.KeyNLBHostname), err))
	}
	return err
}

func (s *stage) planKey(ctx context.Context) ([]engine.Action, error) {
	resource := fmt.Sprintf("provisioner key %s (secret %s/%s)", KeyName, names.CoderNamespace, KeySecretName)
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return []engine.Action{{Kind: engine.Create, Resource: resource, Reason: fmt.Sprintf("create (cluster not reachable yet: %v)", err)}}, nil
	}
	sec, err := readKeySecret(ctx, kc)
	if err != nil {
		return nil, err
	}
	a, err := s.connect(ctx)
	if err != nil {
		// Without the API, the secret alone says what is likely.
		kind, reason := engine.Nothing, "secret exists (Coder not asked: "+fault.FirstLine(err.Error())+")"
		if !sec.filled {
			kind, reason = engine.Create, "create the key through the Coder API ("+fault.FirstLine(err.Error())+")"
		}
		return []engine.Action{{Kind: kind, Resource: resource, Reason: reason}}, nil
	}
	if err := liveVersion(ctx, a.client); err != nil {
		return nil, err
	}
	key, err := a.client.FindProvisionerKey(ctx, a.org, KeyName)
	if err != nil {
		return nil, explainAPIError(s, err)
	}
	action, reason := decideKey(sec, key)
	kind := map[keyAction]engine.ActionKind{keyKeep: engine.Nothing, keyCreate: engine.Create, keyRotate: engine.Update}[action]
	return []engine.Action{{Kind: kind, Resource: resource, Reason: reason}}, nil
}

// applyKey makes the secret hold a key Coder knows. The key's secret goes
// from coderd's answer straight into the Kubernetes secret; it is never
// printed, logged or written to the state file.
func (s *stage) applyKey(ctx context.Context, r engine.Reporter) error {
	kc, sec, err := s.clusterKeySecret(ctx)
	if err != nil {
		return err
	}
	sess, err := s.owner().Session(ctx, true)
	if coderapi.IsNoOwner(err) && !s.coderDeployed() {
		return engine.Pending("%v: set %s for coderctl to create the first owner, or create the first (owner) user at %s, run `coder login %s` and "+
			"`export %s=$(coder tokens create --name coderctl)`, then re-run 'coderctl up'",
			err, coderapi.KeyFirstUserEmail, s.d.Inputs.CoderURL(), s.d.Inputs.CoderURL(), coderapi.EnvSessionToken)
	}
	if err == nil && sess.Created {
		r.Progress(fmt.Sprintf("created Coder's first owner %s; its password is only in Secrets Manager as %s", s.owner().Username(), s.owner().SecretName()))
	}
	a, err := s.connectAs(ctx, true)
	if err != nil {
		return err
	}
	if err := liveVersion(ctx, a.client); err != nil {
		return err
	}
	key, err := a.client.FindProvisionerKey(ctx, a.org, KeyName)
	if err != nil {
		return explainAPIError(s, err)
	}
	action, reason := decideKey(sec, key)
	if action == keyKeep {
		return nil
	}
	r.Progress(reason)
	if action == keyRotate {
		if err := a.client.DeleteProvisionerKey(ctx, a.org, KeyName); err != nil {
			return explainAPIError(s, err)
		}
	}
	return s.createKey(ctx, kc, a, r)
}

// createKey creates the key and stores its secret, which coderd shows
// only in this answer.
func (s *stage) createKey(ctx context.Context, kc kubernetes.Interface, a api, r engine.Reporter) error {
	secret, err := a.client.CreateProvisionerKey(ctx, a.org, KeyName, KeyTags())
	if coderapi.IsConflict(err) {
		return adoptConcurrentKey(ctx, s, kc, a, r)
	}
	if err != nil {
		return explainAPIError(s, err)
	}
	// A kill here leaves a key without its secret: the next run rotates it.
	created, err := a.client.FindProvisionerKey(ctx, a.org, KeyName)
	if err != nil {
		return explainAPIError(s, err)
	}
	id := ""
	if created != nil {
		id = created.ID
	}
	if err := writeKeySecret(ctx, kc, secret, id); err != nil {
		return err
	}
	r.Progress(fmt.Sprintf("provisioner key %s (id %s) stored in secret %s/%s", KeyName, id, names.CoderNamespace, KeySecretName))
	return nil
}

// adoptConcurrentKey follows coderd's 409 on create: a run elsewhere made
// the key between this run's read and its create. Coder shows a key's
// secret only in the create answer, so, as with any existing key
// (decideKey), this run cannot store it: the key is adopted only when the
// other run has already written the secret (its annotation names that
// key); otherwise this run stops, and a later run rotates the key if its
// secret never arrives.
func adoptConcurrentKey(ctx context.Context, s *stage, kc kubernetes.Interface, a api, r engine.Reporter) error {
	key, err := a.client.FindProvisionerKey(ctx, a.org, KeyName)
	if err != nil {
		return explainAPIError(s, err)
	}
	sec, err := readKeySecret(ctx, kc)
	if err != nil {
		return err
	}
	if key != nil && sec.filled && sec.keyID == key.ID {
		r.Progress(fmt.Sprintf("provisioner key %s (id %s) was created by another run at the same time and secret %s/%s holds it: adopted",
			KeyName, key.ID, names.CoderNamespace, KeySecretName))
		return nil
	}
	return fmt.Errorf("provisioner key %s was created by another coderctl run at the same time (coderd: 409 Conflict); "+
		"Coder shows a key's secret only to the run that creates it, so this run cannot store it in secret %s/%s: "+
		"let the other run finish, then re-run (a key whose secret was lost is rotated)", KeyName, names.CoderNamespace, KeySecretName)
}

// liveVersion refuses a coderd older than the provisioner key routes
// before the key step calls them. Validate already refused such a
// CODER_VERSION; this catches a coderd the coder stage did not bring to
// CODER_VERSION (an image tag pinned in CODER_VALUES_FILE, or the coder
// stage left out of the run). An unreachable coderd or a version that is
// not semver (a development build) is left to the calls that follow.
func liveVersion(ctx context.Context, c *coderapi.Client) error {
	bi, err := c.BuildInfo(ctx)
	if err != nil {
		return nil
	}
	if ok, err := coderapi.SupportsProvisionerKeys(bi.SemVer()); err == nil && !ok {
		return fmt.Errorf("coderd at %s runs %s, older than %s, the first Coder release with the provisioner key routes "+
			"coderctl uses: apply the coder stage with %s %s or later first", c.URL(), bi.Version, coderapi.MinProvisionerKeyVersion,
			config.KeyCoderVersion, coderapi.MinProvisionerKeyVersion)
	}
	return nil
}

// checkVersionInput refuses, as bad input, a CODER_VERSION older than the
// provisioner key routes. A value that is not semver is the config
// loader's to report.
func (s *stage) checkVersionInput() error {
	v := s.d.Inputs.CoderVersion()
	if ok, err := coderapi.SupportsProvisionerKeys(v); err != nil || ok {
		return nil
	}
	return fault.Input(s.d.Inputs.Source(config.KeyCoderVersion), config.KeyCoderVersion,
		"set "+config.KeyCoderVersion+" to "+coderapi.MinProvisionerKeyVersion+" or later",
		"%s is older than %s, the first Coder release with the provisioner key routes the provisioners stage uses "+
			"(organization provisioner keys and their daemons)", v, coderapi.MinProvisionerKeyVersion)
}

// checkKeyRights refuses, as bad input, a token whose user may not create
// and delete provisioner keys in the default organization, asking coderd
// itself (POST /api/v2/authcheck). Without this check a plain member's
// token gets through the look-ups (members may read keys) and fails at
// the create with coderd's internal-error answer. An answer other than
// coderd's verdict is left to the calls that follow.
func checkKeyRights(ctx context.Context, client *coderapi.Client, me coderapi.User) error {
	org, err := client.DefaultOrganization(ctx)
	if err != nil {
		return nil
	}
	missing, err := client.MissingKeyRights(ctx, org.ID)
	if err != nil || len(missing) == 0 {
		return nil
	}
	return fault.Input(config.SourceEnvironment, coderapi.EnvSessionToken, rightsHint,
		"user %q (site roles: %s) may not %s provisioner keys in organization %q: the provisioners stage needs an owner's token",
		me.Username, roleNames(me), strings.Join(missing, " or "), org.Name)
}

func roleNames(u coderapi.User) string {
	var names []string
	for _, r := range u.Roles {
		names = append(names, r.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// writeKeySecret creates or replaces the key secret.
func writeKeySecret(ctx context.Context, kc kubernetes.Interface, key coderapi.KeySecret, keyID string) error {
	if err := ensureNamespace(ctx, kc); err != nil {
		return err
	}
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: KeySecretName, Namespace: names.CoderNamespace,
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "coderctl", "app.kubernetes.io/part-of": ChartName},
			Annotations: map[string]string{annKeyID: keyID, "coderctl.dev/provisioner-key-name": KeyName},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{KeySecretKey: []byte(key.Reveal())},
	}
	secrets := kc.CoreV1().Secrets(names.CoderNamespace)
	_, err := secrets.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, want, metav1.UpdateOptions{})
	}
	if err != nil {
		// The API error names the object, never its data.
		return fmt.Errorf("write secret %s/%s: %w", names.CoderNamespace, KeySecretName, err)
	}
	return nil
}

func ensureNamespace(ctx context.Context, kc kubernetes.Interface) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names.CoderNamespace}}
	_, err := kc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", names.CoderNamespace, err)
	}
	return nil
}

// destroyKey deletes the secret and, with a session token, the key in
// Coder; without one it says how to delete the key by hand.
func (s *stage) destroyKey(ctx context.Context, r engine.Reporter) error {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		if s.d.ClusterGone(ctx) {
			r.Progress("the EKS cluster is gone, and secret " + KeySecretName + " with it")
			return nil
		}
		return err
	}
	err = kc.CoreV1().Secrets(names.CoderNamespace).Delete(ctx, KeySecretName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete secret %s/%s: %w", names.CoderNamespace, KeySecretName, err)
	}
	a, err := s.connect(ctx)
	if err != nil {
		r.Notice(fmt.Sprintf("provisioner key %s left in Coder (%s): delete it with `coder provisioner keys delete %s`", KeyName, fault.FirstLine(err.Error()), KeyName),
			map[string]any{"key": KeyName})
		return nil
	}
	if err := a.client.DeleteProvisionerKey(ctx, a.org, KeyName); err != nil {
		return explainAPIError(s, err)
	}
	return nil
}
