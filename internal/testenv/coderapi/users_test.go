package coderapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestFreshDeploymentFirstUserAndLogin follows a fresh Coder: no user
// (404), validation refusals, the first owner (201), then 409 for any
// other, and a login whose session works like the owner's token.
func TestFreshDeploymentFirstUserAndLogin(t *testing.T) {
	s := Require(t, Options{NoUsers: true, Licensed: true})
	if s.Token() != "" || s.MemberToken() != "" || s.OwnerPassword() != "" {
		t.Fatalf("fresh double has tokens or a password: %q %q %q", s.Token(), s.MemberToken(), s.OwnerPassword())
	}
	var msg response
	expect(t, s, "GET", "/api/v2/users/first", "", nil, http.StatusNotFound, &msg)
	if msg.Message != "The initial user has not been created!" {
		t.Errorf("GET users/first before any user: %q", msg.Message)
	}
	good := createFirstUserRequest{Email: "ops@example.com", Username: "ops-admin", Name: "Ops Admin", Password: "Correct-Horse-42-battery"}

	for _, tc := range []struct {
		name      string
		change    func(*createFirstUserRequest)
		message   string
		field     string
		detailHas string
	}{
		{"no email", func(r *createFirstUserRequest) { r.Email = "" }, "Validation failed.", "email", `tag "required"`},
		{"not an email", func(r *createFirstUserRequest) { r.Email = "ops-at-example" }, "Validation failed.", "email", `tag "email"`},
		{"email with display name", func(r *createFirstUserRequest) { r.Email = "Ops <ops@example.com>" }, "Validation failed.", "email", `tag "email"`},
		{"no username", func(r *createFirstUserRequest) { r.Username = "" }, "Validation failed.", "username", `tag "required"`},
		{"username with underscore", func(r *createFirstUserRequest) { r.Username = "ops_admin" }, "Validation failed.", "username", `tag "username"`},
		{"username too long", func(r *createFirstUserRequest) { r.Username = strings.Repeat("a", 33) }, "Validation failed.", "username", `tag "username"`},
		{"reserved username", func(r *createFirstUserRequest) { r.Username = "new" }, "Validation failed.", "username", `tag "username"`},
		{"name with trailing space", func(r *createFirstUserRequest) { r.Name = "Ops " }, "Validation failed.", "name", `tag "user_real_name"`},
		{"no password", func(r *createFirstUserRequest) { r.Password = "" }, "Validation failed.", "password", `tag "required"`},
		{"short password", func(r *createFirstUserRequest) { r.Password = "Ab1!" }, "Password is invalid", "password", "insecure password"},
		{"one class only", func(r *createFirstUserRequest) { r.Password = "abcdefghij" }, "Password is invalid", "password", "using uppercase letters"},
		{"repeats count little", func(r *createFirstUserRequest) { r.Password = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }, "Password is invalid", "password", "insecure password"},
		{"too long", func(r *createFirstUserRequest) { r.Password = strings.Repeat("Ab1!xY", 11) }, "Password is invalid", "password", "no more than 64 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good
			tc.change(&req)
			var got response
			expect(t, s, "POST", "/api/v2/users/first", "", req, http.StatusBadRequest, &got)
			if got.Message != tc.message || len(got.Validations) == 0 || got.Validations[0].Field != tc.field ||
				!strings.Contains(got.Validations[0].Detail, tc.detailHas) {
				t.Errorf("got %+v, want %q with field %s detail containing %q", got, tc.message, tc.field, tc.detailHas)
			}
		})
	}
	expect(t, s, "GET", "/api/v2/users/first", "", nil, http.StatusNotFound, nil)

	var created createFirstUserResponse
	expect(t, s, "POST", "/api/v2/users/first", "", good, http.StatusCreated, &created)
	if created.OrganizationID != s.OrganizationID() || created.UserID == "" {
		t.Errorf("first user response %+v, want the default organization %s", created, s.OrganizationID())
	}
	expect(t, s, "GET", "/api/v2/users/first", "", nil, http.StatusOK, &msg)
	if msg.Message != "The initial user has already been created!" {
		t.Errorf("GET users/first after: %q", msg.Message)
	}
	expect(t, s, "POST", "/api/v2/users/first", "", createFirstUserRequest{Email: "b@example.com", Username: "b", Password: good.Password}, http.StatusConflict, &msg)
	if msg.Message != "The initial user has already been created." {
		t.Errorf("second first user: %q", msg.Message)
	}

	for _, bad := range []loginRequest{
		{Email: good.Email, Password: good.Password + "x"},
		{Email: "nobody@example.com", Password: good.Password},
	} {
		expect(t, s, "POST", "/api/v2/users/login", "", bad, http.StatusUnauthorized, &msg)
		if msg.Message != "Incorrect email or password." {
			t.Errorf("login %s: %q", bad.Email, msg.Message)
		}
	}
	expect(t, s, "POST", "/api/v2/users/login", "", loginRequest{Email: "not-an-email", Password: "x"}, http.StatusBadRequest, nil)

	var login loginResponse
	expect(t, s, "POST", "/api/v2/users/login", "", loginRequest{Email: "OPS@example.com", Password: good.Password}, http.StatusCreated, &login)
	if login.SessionToken == "" {
		t.Fatal("login returned no session token")
	}
	var me user
	expect(t, s, "GET", "/api/v2/users/me", login.SessionToken, nil, http.StatusOK, &me)
	if me.ID != created.UserID || me.Username != "ops-admin" || me.Email != good.Email || len(me.Roles) != 1 || me.Roles[0].Name != "owner" {
		t.Errorf("users/me with the login session = %+v, want the first user as owner", me)
	}
	// Owner-only and premium routes take the login session as the owner's.
	expect(t, s, "GET", "/api/v2/debug/health", login.SessionToken, nil, http.StatusOK, nil)
	expect(t, s, "POST", "/api/v2/organizations/default/provisionerkeys", login.SessionToken,
		createProvisionerKeyRequest{Name: "eks"}, http.StatusCreated, nil)
	// A second login is a second session; both work.
	var again loginResponse
	expect(t, s, "POST", "/api/v2/users/login", "", loginRequest{Email: good.Email, Password: good.Password}, http.StatusCreated, &again)
	if again.SessionToken == login.SessionToken {
		t.Error("two logins share a session token")
	}
	expect(t, s, "GET", "/api/v2/users/me", login.SessionToken, nil, http.StatusOK, nil)
}

// TestSeededDoubleHasItsFirstUser: the default double already has users,
// so the first-user route refuses, and its owner can log in.
func TestSeededDoubleHasItsFirstUser(t *testing.T) {
	s := Require(t, Options{})
	expect(t, s, "GET", "/api/v2/users/first", "", nil, http.StatusOK, nil)
	expect(t, s, "POST", "/api/v2/users/first", "", createFirstUserRequest{Email: "x@example.com", Username: "x", Password: "Correct-Horse-42-battery"}, http.StatusConflict, nil)
	var owner user
	expect(t, s, "GET", "/api/v2/users/me", s.Token(), nil, http.StatusOK, &owner)
	var login loginResponse
	expect(t, s, "POST", "/api/v2/users/login", "", loginRequest{Email: owner.Email, Password: s.OwnerPassword()}, http.StatusCreated, &login)
	var me user
	expect(t, s, "GET", "/api/v2/users/me", login.SessionToken, nil, http.StatusOK, &me)
	if me.ID != owner.ID {
		t.Errorf("login session is %s, want the owner %s", me.ID, owner.ID)
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		pw, want string
	}{
		{"Correct-Horse-42-battery", ""},
		{"correcthorsebatterystaple", ""}, // long enough in one class
		{"password", "insecure password, try including more special characters, using uppercase letters, using numbers or using a longer password"},
		{"Pas0!", "insecure password, try using a longer password"},
		{"Passw0rd!", ""},
		{"ABCDEFGH", "insecure password, try including more special characters, using lowercase letters, using numbers or using a longer password"},
		{"", "insecure password"},
	} {
		got := validatePassword(tc.pw)
		if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("validatePassword(%q) = %q, want %q", tc.pw, got, tc.want)
		}
	}
	if got := validatePassword(newPassword()); got != "" {
		t.Errorf("generated password refused: %s", got)
	}
}
