package template_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	double "github.com/coderctl/coderctl/internal/testenv/coderapi"
	"github.com/coderctl/coderctl/internal/testenv/enginetest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/template"
)

func TestMain(m *testing.M) { moto.Main(m) }

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// TestWithoutOwnerSession: with no token, no first-user secret and no
// e-mail, plan says what it would do, apply is pending with the
// instructions, verify warns; with a token and no template yet, plan
// creates and verify fails naming the template.
func TestWithoutOwnerSession(t *testing.T) {
	s := double.Require(t, double.Options{})
	cases := []struct {
		name       string
		lookup     map[string]string
		wantPlan   engine.ActionKind
		wantApply  string // "pending" or ""
		wantVerify engine.CheckStatus
		reason     string
	}{
		{name: "no session at all", lookup: map[string]string{}, wantPlan: engine.Create, wantApply: "pending", wantVerify: engine.Warn, reason: "no owner session"},
		{name: "a token, no template yet", lookup: map[string]string{coderapi.EnvSessionToken: s.Token()}, wantPlan: engine.Create, wantVerify: engine.Fail, reason: "has no template kubernetes-eks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			coderapi.ForgetSessions()
			in := stagetest.DefaultInputs()
			in["CODER_URL"], in["CODER_CA_FILE"] = s.URL(), s.CAFile()
			e := stagetest.New(t, in)
			st := template.New(e.Deps.With(deploy.StageOptions{LookupEnv: env(tc.lookup)}))
			if err := st.Validate(context.Background()); err != nil {
				t.Fatalf("validate: %v", err)
			}
			actions, err := st.Steps[0].Plan(context.Background())
			if err != nil || len(actions) != 1 || actions[0].Kind != tc.wantPlan {
				t.Fatalf("plan = %+v, %v", actions, err)
			}
			if tc.wantApply == "pending" {
				err := st.Steps[0].Apply(context.Background(), &enginetest.Recorder{})
				if !engine.IsPending(err) || !strings.Contains(err.Error(), "CODER_FIRST_USER_EMAIL") || !strings.Contains(err.Error(), "CODER_SESSION_TOKEN") {
					t.Errorf("apply = %v, want pending naming both ways to a session", err)
				}
			}
			checks := st.Verify(context.Background())
			if len(checks) != 1 || checks[0].Status != tc.wantVerify || !strings.Contains(checks[0].Reason, tc.reason) {
				t.Errorf("verify = %+v, want %s mentioning %q", checks, tc.wantVerify, tc.reason)
			}
			if e.Calls.Mutations() != nil && len(e.Calls.Mutations()) > 0 {
				t.Errorf("mutating AWS calls: %v", e.Calls.Mutations())
			}
		})
	}
}

// TestFirstUserSecretDestroy: the destroy step deletes the first-user
// secret, restorable unless --force-delete-secrets, and tolerates it gone.
func TestFirstUserSecretDestroy(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "recovery window", true: "force"}[force], func(t *testing.T) {
			e := stagetest.New(t, nil)
			e.Deps.Opts.ForceDeleteSecrets = force
			name := coderapi.FirstUserSecretName(e.Deps.Deployment())
			store := coderapi.FirstUserStore{SM: e.Deps.AWS.SecretsManager, Deployment: e.Deps.Deployment(), Tags: awsx.Tags(e.Deps.Deployment(), template.Name, nil)}
			if err := store.Create(context.Background(), name, `{"email":"a@b.example","username":"a","password":"x"}`); err != nil {
				t.Fatal(err)
			}
			st := template.New(e.Deps.With(deploy.StageOptions{LookupEnv: env(nil)}))
			rec := &enginetest.Recorder{}
			if err := st.Steps[1].Destroy(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			d, err := e.Deps.AWS.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
			switch {
			case force && !awsx.IsNotFound(err):
				t.Errorf("after a forced destroy the secret still exists: %v", err)
			case !force && (err != nil || d.DeletedDate == nil):
				t.Errorf("after destroy the secret is not scheduled for deletion: %v", err)
			}
			for _, l := range rec.Lines {
				if strings.Contains(l, `"password"`) {
					t.Errorf("destroy printed the secret: %q", l)
				}
			}
			if err := st.Steps[1].Destroy(context.Background(), &enginetest.Recorder{}); err != nil {
				t.Errorf("destroy again: %v", err)
			}
		})
	}
}
