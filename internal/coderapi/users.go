package coderapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
)

// The first user and password login (coderd/users.go of v2.36.1): a fresh
// deployment has no user; POST /api/v2/users/first makes the first one an
// owner, once; POST /api/v2/users/login trades an e-mail and password for
// a session token.

// Password is a user's password. Like KeySecret it prints as
// "[redacted]" in every format and JSON; Reveal is the one way out.
type Password struct{ value string }

// NewPassword wraps a password read from where it is kept.
func NewPassword(v string) Password { return Password{value: v} }

// Reveal returns the password, for the one request and the one secret
// that carry it.
func (p Password) Reveal() string { return p.value }

// Empty reports whether there is no password.
func (p Password) Empty() bool { return p.value == "" }

func (Password) String() string { return "[redacted]" }

// GoString keeps %#v from printing the value.
func (Password) GoString() string { return "coderapi.Password{[redacted]}" }

// MarshalJSON keeps JSON encoding from printing the value.
func (Password) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Format keeps every fmt verb from printing it.
func (Password) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

var (
	_ fmt.Formatter  = Password{}
	_ json.Marshaler = Password{}
)

// Character classes of a generated password: coderd's password check
// (userpassword.Validate, github.com/wagslane/go-password-validator at 52
// bits) counts the pool of the classes present, so a password using all
// four clears it by far; 64 characters is coderd's maximum.
const (
	pwLower   = "abcdefghijkmnopqrstuvwxyz"
	pwUpper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	pwDigits  = "23456789"
	pwSpecial = "!@#%^*-_=+.,:"
	// PasswordLength is the length of a generated password (well over
	// 52 bits: about 190).
	PasswordLength = 32
)

// GeneratePassword returns a random password of PasswordLength characters
// with at least one of each class, from crypto/rand.
func GeneratePassword() (Password, error) {
	classes := []string{pwLower, pwUpper, pwDigits, pwSpecial}
	all := strings.Join(classes, "")
	out := make([]byte, PasswordLength)
	pick := func(set string) (byte, error) {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			return 0, fmt.Errorf("generate password: %w", err)
		}
		return set[n.Int64()], nil
	}
	for i := range out {
		set := all
		if i < len(classes) {
			set = classes[i]
		}
		c, err := pick(set)
		if err != nil {
			return Password{}, err
		}
		out[i] = c
	}
	// Shuffle so the classes' guaranteed characters are not always first.
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return Password{}, fmt.Errorf("generate password: %w", err)
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return Password{value: string(out)}, nil
}

// usernamePattern is codersdk.UsernameValidRegex.
var usernamePattern = regexp.MustCompile("^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$")

// ValidUsername reports what is wrong with a username as codersdk.NameValid
// does; "" when nothing.
func ValidUsername(name string) string {
	switch {
	case len(name) > 32:
		return "must be at most 32 characters"
	case name == "":
		return "must not be empty"
	case name == "new" || name == "create":
		return fmt.Sprintf("cannot be %q", name)
	case !usernamePattern.MatchString(name):
		return "must be letters and digits, words joined by single hyphens"
	}
	return ""
}

// UsernameFromEmail derives a username from an e-mail address as
// codersdk.UsernameFrom does for the local part (characters other than
// letters, digits and hyphens dropped), then trims what NameValid would
// still refuse (leading, trailing and doubled hyphens; over 32
// characters). When nothing usable is left it answers "admin".
func UsernameFromEmail(email string) string {
	local := email
	if at := strings.LastIndex(email, "@"); at >= 0 {
		local = email[:at]
	}
	var b strings.Builder
	for _, r := range local {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		}
	}
	name := b.String()
	for strings.Contains(name, "--") {
		name = strings.ReplaceAll(name, "--", "-")
	}
	name = strings.Trim(name, "-")
	if len(name) > 32 {
		name = strings.TrimRight(name[:32], "-")
	}
	if ValidUsername(name) != "" {
		return "admin"
	}
	return name
}

// ValidEmail reports what is wrong with an e-mail address for coderd's
// `validate:"email"` (an addr-spec with a domain), "" when nothing.
func ValidEmail(email string) string {
	if email == "" {
		return "is empty"
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "is not an e-mail address (name@example.com)"
	}
	at := strings.LastIndex(email, "@")
	domain := email[at+1:]
	if domain == "" || strings.HasPrefix(domain, "[") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "is not an e-mail address (name@example.com)"
	}
	return ""
}

// HasFirstUser calls GET /api/v2/users/first: 200 once a user exists,
// 404 before (no session needed).
func (c *Client) HasFirstUser(ctx context.Context) (bool, error) {
	a, err := c.send(ctx, http.MethodGet, "/api/v2/users/first", nil)
	if err != nil {
		return false, err
	}
	switch a.status {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, answerError(http.MethodGet, "/api/v2/users/first", a)
}

// FirstUser is what CreateFirstUser needs.
type FirstUser struct {
	Email, Username, Name string
	Password              Password
}

// CreateFirstUser calls POST /api/v2/users/first (codersdk.
// CreateFirstUserRequest). coderd answers 409 once any user exists
// (IsConflict) and 400 with the validator's reasons otherwise.
func (c *Client) CreateFirstUser(ctx context.Context, u FirstUser) (userID string, err error) {
	req := struct {
		Email    string `json:"email"`
		Username string `json:"username"`
		Name     string `json:"name"`
		Password string `json:"password"`
		Trial    bool   `json:"trial"`
	}{u.Email, u.Username, u.Name, u.Password.Reveal(), false}
	var out struct {
		UserID         string `json:"user_id"`
		OrganizationID string `json:"organization_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v2/users/first", req, http.StatusCreated, &out); err != nil {
		return "", err
	}
	return out.UserID, nil
}

// ErrNoSessionToken says coderd's login answer held no token.
var ErrNoSessionToken = errors.New("POST /api/v2/users/login: coderd returned no session token")

// Login calls POST /api/v2/users/login with an e-mail and password and
// returns a client that carries the new session token. The token lives
// only in that client: it is never returned, printed or stored.
func (c *Client) Login(ctx context.Context, email string, password Password) (*Client, error) {
	req := struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{email, password.Reveal()}
	var out struct {
		SessionToken string `json:"session_token"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v2/users/login", req, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	if out.SessionToken == "" {
		return nil, ErrNoSessionToken
	}
	return c.WithToken(out.SessionToken), nil
}

// WithToken is a copy of the client that authenticates with token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}
