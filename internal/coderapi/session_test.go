package coderapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/config"
	double "github.com/coderctl/coderctl/internal/testenv/coderapi"
)

// memStore is a SecretStore in memory that records what was written.
type memStore struct {
	mu      sync.Mutex
	secrets map[string]string
	creates int
}

func (m *memStore) Get(_ context.Context, name string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.secrets[name]
	return v, ok, nil
}

func (m *memStore) Create(_ context.Context, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.secrets[name]; ok {
		return errors.New("exists")
	}
	m.secrets[name] = value
	m.creates++
	return nil
}

func inputs(t *testing.T, s *double.Server, kv ...string) *config.Inputs {
	t.Helper()
	file := map[string]string{"CODER_DOMAIN": "coder.example.com", "CODER_URL": s.URL(), "CODER_CA_FILE": s.CAFile(), "CLUSTER_NAME": "coder-test", "AWS_REGION": "us-west-2"}
	for i := 0; i+1 < len(kv); i += 2 {
		file[kv[i]] = kv[i+1]
	}
	in, err := config.ResolveInputs("coder-infra.env", file, func(string) (string, bool) { return "", false }, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// TestOwnerSession: the three sources of an owner's session against the
// double, from a fresh Coder and from one whose owner exists.
func TestOwnerSession(t *testing.T) {
	cases := []struct {
		name      string
		noUsers   bool
		email     string
		token     bool // CODER_SESSION_TOKEN = the double's owner token
		stored    bool // a first-user secret exists from an earlier run
		create    bool
		wantErr   string // substring; "" = a session
		noOwner   bool
		created   bool
		wantStore int // secrets created by this call
	}{
		{name: "fresh coder, e-mail, apply creates the first owner", noUsers: true, email: "ops@example.com", create: true, created: true, wantStore: 1},
		{name: "fresh coder, e-mail, plan creates nothing", noUsers: true, email: "ops@example.com", noOwner: true, wantErr: "no first-user secret"},
		{name: "fresh coder, nothing set", noUsers: true, create: true, noOwner: true, wantErr: "CODER_FIRST_USER_EMAIL are not set"},
		{name: "token wins", token: true, email: "ops@example.com", create: true},
		{name: "users exist, e-mail set, no secret", email: "ops@example.com", create: true, noOwner: true, wantErr: "already has its first user"},
		{name: "later run logs in with the stored secret", noUsers: true, stored: true, create: false},
		{name: "secret stored but the user never created (killed run): apply finishes it", noUsers: true, stored: true, create: true, created: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			coderapi.ForgetSessions()
			s := double.Require(t, double.Options{NoUsers: tc.noUsers})
			store := &memStore{secrets: map[string]string{}}
			kv := []string{}
			if tc.email != "" {
				kv = append(kv, config.KeyFirstUserEmail, tc.email)
			}
			lookup := map[string]string{}
			if tc.token {
				lookup[coderapi.EnvSessionToken] = s.Token()
			}
			o := coderapi.Owner{Inputs: inputs(t, s, kv...), LookupEnv: env(lookup), Store: store, Deployment: "coder-test"}
			if tc.stored {
				// An earlier run's secret; with create=false on a fresh
				// Coder the user is made first through the API.
				pw, _ := coderapi.GeneratePassword()
				doc, _ := json.Marshal(map[string]string{"email": "first@example.com", "username": "first", "password": pw.Reveal()})
				store.secrets[o.SecretName()] = string(doc)
				if !tc.create {
					base, _ := coderapi.New(s.URL(), coderapi.Options{CAFile: s.CAFile()})
					if _, err := base.CreateFirstUser(context.Background(), coderapi.FirstUser{Email: "first@example.com", Username: "first", Password: pw}); err != nil {
						t.Fatal(err)
					}
				}
			}
			sess, err := o.Session(context.Background(), tc.create)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || coderapi.IsNoOwner(err) != tc.noOwner {
					t.Fatalf("err = %v, want %q (no owner %v)", err, tc.wantErr, tc.noOwner)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sess.Created != tc.created || store.creates != tc.wantStore {
				t.Errorf("created %v (want %v), secrets written %d (want %d)", sess.Created, tc.created, store.creates, tc.wantStore)
			}
			me, err := sess.Client.Me(context.Background())
			if err != nil || !me.IsOwner() {
				t.Fatalf("the session's user = %+v, %v; want an owner", me, err)
			}
			// The password and the session never print.
			for _, v := range []any{sess, sess.Client, *sess.Client} {
				for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
					out := fmt.Sprintf(format, v)
					for _, secret := range store.secrets {
						var doc struct{ Password string }
						_ = json.Unmarshal([]byte(secret), &doc)
						if doc.Password != "" && strings.Contains(out, doc.Password) {
							t.Errorf("%s of the session prints the password", format)
						}
					}
				}
			}
			if tc.created {
				var doc struct{ Email, Username, Password string }
				_ = json.Unmarshal([]byte(store.secrets[o.SecretName()]), &doc)
				if tc.email != "" && (doc.Email != tc.email || doc.Username != "ops" || len(doc.Password) != coderapi.PasswordLength) {
					t.Errorf("stored first user = %s / %s / %d characters", doc.Email, doc.Username, len(doc.Password))
				}
			}
		})
	}
}

func TestUsernameFromEmail(t *testing.T) {
	cases := map[string]string{
		"ops@example.com":              "ops",
		"first.last@example.com":       "firstlast",
		"platform-admin@example.com":   "platform-admin",
		"-x--y-@example.com":           "x-y",
		"a+b_c@example.com":            "abc",
		"new@example.com":              "admin",
		"..@example.com":               "admin",
		strings.Repeat("a", 40) + "@x": strings.Repeat("a", 32),
	}
	for email, want := range cases {
		if got := coderapi.UsernameFromEmail(email); got != want || coderapi.ValidUsername(got) != "" {
			t.Errorf("UsernameFromEmail(%q) = %q, want %q", email, got, want)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		pw, err := coderapi.GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		v := pw.Reveal()
		if len(v) != coderapi.PasswordLength || seen[v] || !strings.ContainsAny(v, "0123456789") || !strings.ContainsAny(v, "ABCDEFGHJKLMNPQRSTUVWXYZ") {
			t.Fatalf("password %d characters, repeated %v", len(v), seen[v])
		}
		seen[v] = true
		for _, format := range []string{"%v", "%s", "%q", "%#v", "%x"} {
			if strings.Contains(fmt.Sprintf(format, pw), v) {
				t.Errorf("%s prints the password", format)
			}
		}
		if b, _ := json.Marshal(pw); strings.Contains(string(b), v) {
			t.Error("JSON prints the password")
		}
	}
}

// TestTemplateCalls: files, versions, templates against the double without
// a provisioner (the import stays pending and the wait says why).
func TestTemplateCalls(t *testing.T) {
	s := double.Require(t, double.Options{})
	c := newClient(t, s, s.Token())
	ctx := context.Background()
	org, err := c.DefaultOrganization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	archive := []byte(strings.Repeat("x", 1024)) // the double stores any bytes
	id, err := c.Upload(ctx, coderapi.ContentTypeTar, archive)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Upload(ctx, coderapi.ContentTypeTar, archive)
	if err != nil || again != id {
		t.Errorf("the same bytes again = %q, %v; want the same file %q", again, err, id)
	}
	if _, err := c.Upload(ctx, "application/zip", archive); coderapi.StatusCode(err) != 400 {
		t.Errorf("zip upload: %v, want 400", err)
	}
	if h, err := c.FileHash(ctx, id); err != nil || len(h) != 64 {
		t.Errorf("FileHash = %q, %v", h, err)
	}
	if tpl, err := c.TemplateByName(ctx, org.ID, "kubernetes-eks"); err != nil || tpl != nil {
		t.Errorf("TemplateByName before any = %v, %v; want nil, nil", tpl, err)
	}
	v, err := c.CreateTemplateVersion(ctx, org.ID, coderapi.NewVersion{FileID: id})
	if err != nil {
		t.Fatal(err)
	}
	if v.Job.Status != coderapi.JobPending {
		t.Errorf("new version's job = %q, want pending", v.Job.Status)
	}
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = c.WaitForImport(wctx, v.ID, coderapi.Poll{Interval: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "still pending") || !strings.Contains(err.Error(), "no provisioner daemon") {
		t.Errorf("wait without daemons: %v", err)
	}
	member := newClient(t, s, s.MemberToken())
	if _, err := member.CreateTemplateVersion(ctx, org.ID, coderapi.NewVersion{FileID: id}); !coderapi.IsForbidden(err) && coderapi.StatusCode(err) != 404 {
		t.Errorf("a member creating a version: %v, want a refusal", err)
	}
}
