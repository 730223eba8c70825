package coderapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// account is a user with what the double needs to authenticate them.
type account struct {
	user     user
	password string // a test double keeps it in the clear
	owner    bool
}

// createFirstUserRequest is codersdk.CreateFirstUserRequest (trial fields
// accepted and ignored: the double generates no license).
type createFirstUserRequest struct {
	Email    string `json:"email"`
	Username string `json:"username"`
	Name     string `json:"name"`
	Password string `json:"password"`
	Trial    bool   `json:"trial"`
}

// createFirstUserResponse is codersdk.CreateFirstUserResponse.
type createFirstUserResponse struct {
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
}

// loginRequest is codersdk.LoginWithPasswordRequest.
type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// loginResponse is codersdk.LoginWithPasswordResponse.
type loginResponse struct {
	SessionToken string `json:"session_token"`
}

// usernamePattern is codersdk.UsernameValidRegex.
var usernamePattern = regexp.MustCompile("^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$")

// OwnerPassword is the password of the owner the double starts with (""
// with Options.NoUsers; the first user's is whatever its creator chose).
func (s *Server) OwnerPassword() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.accounts) == 0 {
		return ""
	}
	return s.accounts[0].password
}

// ownerIDLocked is the first owner's ID, "" before one exists. Callers
// hold s.mu.
func (s *Server) ownerIDLocked() string {
	for _, a := range s.accounts {
		if a.owner {
			return a.user.ID
		}
	}
	return ""
}

func (s *Server) userCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accounts)
}

// firstUser is coderd's firstUser: 404 until a user exists, then 200,
// both with a message only. No session needed.
func (s *Server) firstUser(w http.ResponseWriter, _ *http.Request) {
	if s.userCount() == 0 {
		writeJSON(w, http.StatusNotFound, response{Message: "The initial user has not been created!"})
		return
	}
	writeJSON(w, http.StatusOK, response{Message: "The initial user has already been created!"})
}

// postFirstUser is coderd's postFirstUser: the request's validation tags
// (httpapi.Read), 409 once any user exists, the password strength check,
// then an active owner with password login in the default organization.
func (s *Server) postFirstUser(w http.ResponseWriter, r *http.Request) {
	var req createFirstUserRequest
	if !readJSON(w, r, &req) {
		return
	}
	var problems []validationError
	problems = append(problems, requiredEmail("email", req.Email)...)
	switch {
	case req.Username == "":
		problems = append(problems, tagFailure("username", "required", ""))
	case nameInvalid(req.Username) != "":
		problems = append(problems, tagFailure("username", "username", req.Username))
	}
	if len(req.Name) > 128 || strings.TrimSpace(req.Name) != req.Name {
		problems = append(problems, tagFailure("name", "user_real_name", req.Name))
	}
	if req.Password == "" {
		problems = append(problems, tagFailure("password", "required", ""))
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, response{Message: "Validation failed.", Validations: problems})
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.accounts) != 0 {
		writeJSON(w, http.StatusConflict, response{Message: "The initial user has already been created."})
		return
	}
	if err := validatePassword(req.Password); err != "" {
		writeJSON(w, http.StatusBadRequest, response{
			Message:     "Password is invalid",
			Validations: []validationError{{Field: "password", Detail: err}},
		})
		return
	}
	now := time.Now().UTC().Add(s.offset)
	u := newUser(now, s.org.ID, req.Username, req.Name, []role{{Name: "owner", DisplayName: "Owner"}})
	u.Email = req.Email
	s.accounts = append(s.accounts, &account{user: u, password: req.Password, owner: true})
	writeJSON(w, http.StatusCreated, createFirstUserResponse{UserID: u.ID, OrganizationID: s.org.ID})
}

// postLogin is coderd's postLogin with password: the e-mail is matched
// case-insensitively, a wrong password or unknown e-mail gets the same
// 401, and success a new session token (201), also set as the cookie.
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !readJSON(w, r, &req) {
		return
	}
	problems := requiredEmail("email", req.Email)
	if req.Password == "" {
		problems = append(problems, tagFailure("password", "required", ""))
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, response{Message: "Validation failed.", Validations: problems})
		return
	}
	s.mu.Lock()
	var found *account
	for _, a := range s.accounts {
		if strings.EqualFold(a.user.Email, req.Email) {
			found = a
		}
	}
	if found == nil || found.password != req.Password {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, response{Message: "Incorrect email or password."})
		return
	}
	token := newSessionToken()
	s.sessions[token] = found
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionTokenCookie, Value: token, Path: "/", HttpOnly: true, Secure: true})
	writeJSON(w, http.StatusCreated, loginResponse{SessionToken: token})
}

// readJSON decodes the body as httpapi.Read does, answering 400 with
// coderd's message when it is not JSON.
func readJSON(w http.ResponseWriter, r *http.Request, out any) bool {
	if err := json.NewDecoder(r.Body).Decode(out); err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "Request body must be valid JSON.", Detail: err.Error()})
		return false
	}
	return true
}

// tagFailure is one entry of httpapi.Read's "Validation failed." answer.
func tagFailure(field, tag, value string) validationError {
	return validationError{Field: field, Detail: fmt.Sprintf("Validation failed for tag %q with value: \"%v\"", tag, value)}
}

// requiredEmail checks a `validate:"required,email"` field. The double's
// e-mail rule is net/mail's address syntax without a display name and
// with a dotless-or-dotted domain, close to the validator's.
func requiredEmail(field, value string) []validationError {
	if value == "" {
		return []validationError{tagFailure(field, "required", "")}
	}
	addr, err := mail.ParseAddress(value)
	if err != nil || addr.Address != value || addr.Name != "" || strings.HasPrefix(value, "<") {
		return []validationError{tagFailure(field, "email", value)}
	}
	return nil
}

// nameInvalid is codersdk.NameValid: what is wrong with a username (or
// template or workspace name), "" when nothing.
func nameInvalid(name string) string {
	switch {
	case len(name) > 32:
		return "must be <= 32 characters"
	case len(name) < 1:
		return "must be >= 1 character"
	case name == "new" || name == "create":
		return fmt.Sprintf("cannot use %q as a name", name)
	case !usernamePattern.MatchString(name):
		return "must be alphanumeric with hyphens"
	}
	return ""
}

// minPasswordEntropy is the bits coderd's userpassword.Validate asks of
// github.com/wagslane/go-password-validator.
const minPasswordEntropy = 52

// Character classes the entropy estimate counts, as that validator does.
const (
	replaceChars      = "!@$&*"
	separatorChars    = "_-., "
	otherSpecialChars = "\"#%'()+/:;<=>?[\\]^{|}~"
)

// validatePassword approximates userpassword.Validate: an entropy
// estimate of log2(pool size) bits per character, where the pool is the
// union of the classes present and runs of more than two equal characters
// count twice only; under 52 bits it answers the validator's advice. Over
// 64 characters is refused outright. "" means acceptable.
func validatePassword(pw string) string {
	var lower, upper, digit, replace, sep, other bool
	extra := map[rune]bool{}
	for _, r := range pw {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune(replaceChars, r):
			replace = true
		case strings.ContainsRune(separatorChars, r):
			sep = true
		case strings.ContainsRune(otherSpecialChars, r):
			other = true
		case !unicode.IsControl(r):
			extra[r] = true
		}
	}
	pool := len(extra)
	for _, c := range []struct {
		has  bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {replace, len(replaceChars)}, {sep, len(separatorChars)}, {other, len(otherSpecialChars)}} {
		if c.has {
			pool += c.size
		}
	}
	length, run := 0, 0
	var prev rune = -1
	for _, r := range pw {
		if r == prev {
			run++
		} else {
			run, prev = 1, r
		}
		if run <= 2 {
			length++
		}
	}
	if pool > 0 && math.Log2(float64(pool))*float64(length) >= minPasswordEntropy {
		if len(pw) > 64 {
			return "password must be no more than 64 characters"
		}
		return ""
	}
	var advice []string
	if !replace && !sep && !other {
		advice = append(advice, "including more special characters")
	}
	if !lower {
		advice = append(advice, "using lowercase letters")
	}
	if !upper {
		advice = append(advice, "using uppercase letters")
	}
	if !digit {
		advice = append(advice, "using numbers")
	}
	if len(advice) == 0 {
		return "insecure password, try using a longer password"
	}
	return fmt.Sprintf("insecure password, try %s or using a longer password", strings.Join(advice, ", "))
}

// newPassword is a generated password that passes validatePassword.
func newPassword() string {
	return randomString(20) + "-Aa1!"
}
