package coderapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/names"
)

// An owner's session, from one of three sources, in this order:
//
//  1. CODER_SESSION_TOKEN in the process environment (never stored);
//  2. the first-user secret in Secrets Manager (FirstUserSecretName): the
//     owner coderctl created, whose password is kept only there; coderctl
//     logs in with it for a session that lives only in this process;
//  3. CODER_FIRST_USER_EMAIL (and optionally CODER_FIRST_USER_USERNAME)
//     while Coder has no user yet: coderctl generates a password, stores it
//     as the first-user secret, creates the first owner through
//     POST /api/v2/users/first, and logs in — only when the caller may
//     change things (create).
//
// Without any of them there is no session: NoOwnerError, which the stages
// turn into pending-with-instructions and commands into bad input.

// Input keys of the unattended first user.
const (
	KeyFirstUserEmail    = config.KeyFirstUserEmail
	KeyFirstUserUsername = config.KeyFirstUserUsername
)

// FirstUserSecretLeaf names the first-user secret under the deployment's
// prefix (names.SecretName).
const FirstUserSecretLeaf = "first-user"

// FirstUserSecretName is the Secrets Manager secret holding the first
// owner's e-mail, username and password for deployment (CLUSTER_NAME):
// coder/<deployment>/first-user.
func FirstUserSecretName(deployment string) string {
	return names.SecretName(deployment, FirstUserSecretLeaf)
}

// SecretStore keeps the first owner's credentials. FirstUserStore is the
// Secrets Manager one; tests may give another.
type SecretStore interface {
	// Get returns the secret's value; found is false when there is none
	// (or it is scheduled for deletion and was not restored).
	Get(ctx context.Context, name string) (value string, found bool, err error)
	// Create stores a new secret; it fails when one exists.
	Create(ctx context.Context, name, value string) error
}

// firstUserDoc is the secret's JSON document.
type firstUserDoc struct {
	Email    string `json:"email"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Owner finds an owner's session for a deployment.
type Owner struct {
	Inputs     *config.Inputs
	LookupEnv  func(string) (string, bool)
	Store      SecretStore // nil when AWS is not reachable: sources 2 and 3 are off
	Deployment string
}

// Session is an authenticated client and where its session came from.
type Session struct {
	Client *Client
	// Source says where the session came from, for messages:
	// "CODER_SESSION_TOKEN", "first-user secret coder/x/first-user".
	Source string
	// Created is true when this call created the first owner.
	Created bool
}

// NoOwnerError says no source gave a session; Reason says why.
type NoOwnerError struct{ Reason string }

func (e *NoOwnerError) Error() string { return e.Reason }

// IsNoOwner reports a *NoOwnerError in err's chain.
func IsNoOwner(err error) bool {
	var n *NoOwnerError
	return errors.As(err, &n)
}

// OwnerHint says how to give coderctl an owner's session.
const OwnerHint = "set CODER_FIRST_USER_EMAIL before the first `up` (coderctl then creates the first owner, its password kept only in Secrets Manager), " +
	"or create the first user at CODER_URL yourself and `export CODER_SESSION_TOKEN=$(coder tokens create --name coderctl)`; " +
	"coderctl never stores a session token"

// sessions caches the logins made with the first-user secret, per
// deployment URL and secret, for the life of the process: one `up` logs in
// once for the provisioners and template stages. Only in memory.
var sessions = struct {
	sync.Mutex
	m map[string]*Client
}{m: map[string]*Client{}}

// Token reports whether CODER_SESSION_TOKEN is set.
func (o Owner) Token() string {
	lookup := o.LookupEnv
	if lookup == nil {
		return ""
	}
	return SessionToken(lookup)
}

// Email is CODER_FIRST_USER_EMAIL ("" when unset).
func (o Owner) Email() string {
	if o.Inputs == nil {
		return ""
	}
	return o.Inputs.Get(KeyFirstUserEmail)
}

// Username is CODER_FIRST_USER_USERNAME, else derived from the e-mail.
func (o Owner) Username() string {
	if o.Inputs != nil {
		if u := o.Inputs.Get(KeyFirstUserUsername); u != "" {
			return u
		}
	}
	return UsernameFromEmail(o.Email())
}

// SecretName is this deployment's first-user secret.
func (o Owner) SecretName() string { return FirstUserSecretName(o.Deployment) }

// HasStoredSecret reports whether the first-user secret exists.
func (o Owner) HasStoredSecret(ctx context.Context) (bool, error) {
	if o.Store == nil {
		return false, nil
	}
	_, found, err := o.Store.Get(ctx, o.SecretName())
	return found, err
}

// Session returns an owner's session. create allows source 3 (creating
// the first owner and its secret); plan and verify pass false.
func (o Owner) Session(ctx context.Context, create bool) (*Session, error) {
	base, err := ForInputs(o.Inputs, "")
	if err != nil {
		return nil, err
	}
	if tok := o.Token(); tok != "" {
		return &Session{Client: base.WithToken(tok), Source: EnvSessionToken}, nil
	}
	if o.Store == nil {
		return nil, &NoOwnerError{Reason: EnvSessionToken + " is not set"}
	}
	key := base.URL() + "|" + o.SecretName()
	sessions.Lock()
	defer sessions.Unlock() // one login at a time: concurrent steps share it
	if c := sessions.m[key]; c != nil {
		return &Session{Client: c, Source: "first-user secret " + o.SecretName()}, nil
	}
	raw, found, err := o.Store.Get(ctx, o.SecretName())
	if err != nil {
		return nil, err
	}
	var s *Session
	switch {
	case found:
		s, err = o.loginStored(ctx, base, raw, create)
	case !create:
		reason := EnvSessionToken + " is not set and there is no first-user secret " + o.SecretName()
		if o.Email() != "" {
			reason += " yet (`up` creates the first owner from " + KeyFirstUserEmail + ")"
		}
		return nil, &NoOwnerError{Reason: reason}
	case o.Email() == "":
		return nil, &NoOwnerError{Reason: EnvSessionToken + " and " + KeyFirstUserEmail + " are not set"}
	default:
		s, err = o.createFirst(ctx, base)
	}
	if err != nil {
		return nil, err
	}
	sessions.m[key] = s.Client
	return s, nil
}

// loginStored logs in with the stored credentials. A password coderd
// refuses while Coder still has no user is the trace of a run killed
// between storing the secret and creating the user: the user is created
// now with the stored credentials (when create allows it).
func (o Owner) loginStored(ctx context.Context, base *Client, raw string, create bool) (*Session, error) {
	var doc firstUserDoc
	if err := json.Unmarshal([]byte(raw), &doc); err != nil || doc.Email == "" || doc.Password == "" {
		return nil, fmt.Errorf("secret %s does not hold the first user's e-mail and password as coderctl writes them: delete it, or set %s", o.SecretName(), EnvSessionToken)
	}
	source := "first-user secret " + o.SecretName()
	c, err := base.Login(ctx, doc.Email, NewPassword(doc.Password))
	if err == nil {
		return &Session{Client: c, Source: source}, nil
	}
	if !IsUnauthorized(err) {
		return nil, fmt.Errorf("log in as %s (%s): %w", doc.Email, source, err)
	}
	exists, herr := base.HasFirstUser(ctx)
	if herr != nil || exists {
		return nil, &NoOwnerError{Reason: fmt.Sprintf("coderd at %s refused the password in %s for %s (changed since coderctl created the user?)",
			base.URL(), o.SecretName(), doc.Email)}
	}
	if !create {
		return nil, &NoOwnerError{Reason: fmt.Sprintf("coderd at %s has no user yet; `up` creates the first owner from %s", base.URL(), o.SecretName())}
	}
	return o.registerFirst(ctx, base, doc, source)
}

// createFirst makes the first owner: password generated, stored first (a
// kill after this leaves a secret the next run finishes with), then the
// user, then a login.
func (o Owner) createFirst(ctx context.Context, base *Client) (*Session, error) {
	exists, err := base.HasFirstUser(ctx)
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, &NoOwnerError{Reason: fmt.Sprintf("Coder at %s already has its first user, which coderctl did not create (no secret %s): "+
			"%s applies only to a Coder without users", base.URL(), o.SecretName(), KeyFirstUserEmail)}
	}
	pw, err := GeneratePassword()
	if err != nil {
		return nil, err
	}
	doc := firstUserDoc{Email: o.Email(), Username: o.Username(), Password: pw.Reveal()}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if err := o.Store.Create(ctx, o.SecretName(), string(b)); err != nil {
		return nil, fmt.Errorf("store the first user's password in secret %s: %w", o.SecretName(), err)
	}
	return o.registerFirst(ctx, base, doc, "first-user secret "+o.SecretName())
}

func (o Owner) registerFirst(ctx context.Context, base *Client, doc firstUserDoc, source string) (*Session, error) {
	_, err := base.CreateFirstUser(ctx, FirstUser{Email: doc.Email, Username: doc.Username, Password: NewPassword(doc.Password)})
	if IsConflict(err) {
		return nil, &NoOwnerError{Reason: fmt.Sprintf("Coder at %s got its first user from someone else meanwhile", base.URL())}
	}
	if err != nil {
		return nil, fmt.Errorf("create the first user %s: %w", doc.Username, err)
	}
	c, err := base.Login(ctx, doc.Email, NewPassword(doc.Password))
	if err != nil {
		return nil, fmt.Errorf("log in as the new first user %s: %w", doc.Username, err)
	}
	return &Session{Client: c, Source: source, Created: true}, nil
}

// ForgetSessions drops the cached logins (tests; and after the secret is
// deleted).
func ForgetSessions() {
	sessions.Lock()
	defer sessions.Unlock()
	sessions.m = map[string]*Client{}
}
