package secrets_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/secrets"
)

// sideBySide is one of several deployments in one moto: its own cluster
// name, state file, master secret (password and host) and OIDC provider.
type sideBySide struct {
	env      *stagetest.ConfigEnv
	password string
	host     string
	environ  map[string]string
}

func (d *sideBySide) name() string { return d.env.Deps.Deployment() }

// wantURL is the database URL built from the deployment's own master
// secret.
func (d *sideBySide) wantURL() string {
	return "postgres://coder:" + d.password + "@" + d.host + ":5432/coder?sslmode=require"
}

func (d *sideBySide) stage() engine.Stage {
	return secrets.New(d.env.Deps.With(deploy.StageOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := d.environ[k]
		return v, ok
	}}))
}

// steps runs the stage's Secrets Manager and IAM steps (the Kubernetes
// ones need a cluster of each deployment's own) in mode.
func (d *sideBySide) steps(t *testing.T, mode engine.Mode) {
	t.Helper()
	for _, st := range d.stage().Steps {
		var err error
		switch {
		case st.Name != secrets.StepDatabaseURL && st.Name != secrets.StepOAuth && st.Name != secrets.StepRole:
			continue
		case mode == engine.ModeApply:
			err = st.Apply(context.Background(), engine.Discard)
		case mode == engine.ModeDestroy:
			err = st.Destroy(context.Background(), engine.Discard)
		}
		if err != nil {
			t.Fatalf("%s %s/%s: %v", d.name(), mode, st.Name, err)
		}
	}
}

// newSideBySide builds the deployments in one moto, seeding each with
// what its rds and eks stages would have recorded.
func newSideBySide(t *testing.T, clusters ...string) []*sideBySide {
	t.Helper()
	var out []*sideBySide
	// Each Env resets moto when it starts: build them all before seeding.
	for _, c := range clusters {
		cfg := stagetest.WriteClusterConfig(t, t.TempDir(), "name: "+cluster, "name: "+c)
		out = append(out, &sideBySide{env: stagetest.NewWithClusterConfig(t, nil, cfg),
			password: "pw-of-" + c, host: c + ".abc123xyz.us-west-2.rds.amazonaws.com",
			environ: map[string]string{secrets.EnvGitHubClientID: "Iv1." + c}})
	}
	ctx := context.Background()
	for _, d := range out {
		doc, _ := json.Marshal(map[string]any{"username": "coder", "password": d.password, "host": d.host, "port": 5432, "dbname": "coder"})
		sm := d.env.Deps.AWS.SecretsManager
		m, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(names.MasterSecretName(d.name())),
			SecretString: aws.String(string(doc)), Tags: smTags(map[string]string{awsx.TagDeployment: d.name()})})
		if err != nil {
			t.Fatal(err)
		}
		p, err := d.env.Deps.AWS.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url:          aws.String("https://oidc.eks.us-west-2.amazonaws.com/id/" + strings.ToUpper(strings.ReplaceAll(d.name(), "-", ""))),
			ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.env.Deps.State.SetMany(map[string]string{names.KeyMasterSecretARN: aws.ToString(m.ARN),
			names.KeyRDSEndpoint: d.host, names.KeyRDSPort: "5432", names.KeyOIDCProviderARN: aws.ToString(p.OpenIDConnectProviderArn)}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func getValue(t *testing.T, d *sideBySide, id string) string {
	t.Helper()
	out, err := d.env.Deps.AWS.SecretsManager.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("read secret %s: %v", id, err)
	}
	return aws.ToString(out.SecretString)
}

// TestTwoDeploymentsSideBySide: two deployments in one account and region
// each keep their own database URL and OAuth secrets, and coderd of each
// may read only its own; destroying one leaves the other's untouched.
func TestTwoDeploymentsSideBySide(t *testing.T) {
	ctx := context.Background()
	ds := newSideBySide(t, "coder-prod", "coder-staging")
	for _, d := range ds {
		d.steps(t, engine.ModeApply)
	}
	for _, d := range ds {
		arn := d.env.Deps.State.Get(names.KeyDatabaseURLSecretARN)
		if want := ":secret:coder/" + d.name() + "/database-url-"; !strings.Contains(arn, want) {
			t.Errorf("%s: %s = %q, want an ARN with %q", d.name(), names.KeyDatabaseURLSecretARN, arn, want)
		}
		if got := getValue(t, d, arn); got != d.wantURL() {
			t.Errorf("%s: database URL is not built from its own master secret (%d characters)", d.name(), len(got))
		}
		if got := getValue(t, d, names.SecretName(d.name(), secrets.GitHubClientIDLeaf)); got != "Iv1."+d.name() {
			t.Errorf("%s: GitHub client ID %q", d.name(), got)
		}
		role := secrets.Role.NameFor(d.name())
		pol, err := d.env.Deps.AWS.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(secrets.RolePolicyName)})
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Replace(wantAccessPolicy, "coder/coder-prod/*", "coder/"+d.name()+"/*", 1)
		if got := policyDoc(t, aws.ToString(pol.PolicyDocument)); !jsonEqual(got, mustJSON(t, want)) {
			t.Errorf("%s: role %s's policy %v, want only its own secrets", d.name(), role, got)
		}
	}
	for _, d := range ds {
		d.env.Reload(t)
		d.env.Calls.Reset()
		d.steps(t, engine.ModeApply)
		if m := d.env.Calls.Mutations(); len(m) != 0 {
			t.Errorf("%s: second apply changed things: %v", d.name(), m)
		}
	}

	prod, staging := ds[0], ds[1]
	staging.steps(t, engine.ModeDestroy)
	for _, leaf := range []string{names.DatabaseURLSecretLeaf, secrets.GitHubClientIDLeaf} {
		for _, d := range ds {
			out, err := d.env.Deps.AWS.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(names.SecretName(d.name(), leaf))})
			if err != nil {
				t.Fatal(err)
			}
			if gone := out.DeletedDate != nil; gone != (d == staging) {
				t.Errorf("%s of %s scheduled for deletion: %v", leaf, d.name(), gone)
			}
		}
	}
	if _, err := prod.env.Deps.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(secrets.Role.NameFor(prod.name()))}); err != nil {
		t.Errorf("%s's role after the other's destroy: %v", prod.name(), err)
	}
	if got := getValue(t, prod, prod.env.Deps.State.Get(names.KeyDatabaseURLSecretARN)); got != prod.wantURL() {
		t.Errorf("%s's database URL changed with the other's destroy", prod.name())
	}
}

// legacy names: the account-wide names from before per-deployment ones.
const (
	legacyDatabaseURL = "coder/database-url"
	legacyClientID    = "coder/github-client-id"
)

// TestLegacySecrets: a deployment made before secrets had the deployment's
// prefix keeps working. Its coder/database-url and coder/github-client-id,
// tagged for it, move to coder/coder-prod/... (the client ID, whose
// variable is unset, with its value), the class syncs the new ones, and
// the old names are scheduled for deletion. Untagged ones or another
// deployment's are never adopted nor touched.
func TestLegacySecrets(t *testing.T) {
	ours := map[string]string{awsx.TagDeployment: cluster, awsx.TagStage: secrets.Name}
	cases := []struct {
		name  string
		tags  map[string]string
		moved bool
	}{
		{"tagged for this deployment", ours, true},
		{"untagged", nil, false},
		{"another deployment's", map[string]string{awsx.TagDeployment: "coder-staging", awsx.TagStage: secrets.Name}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, nil)
			sm := w.env.Deps.AWS.SecretsManager
			legacyARN := map[string]string{}
			for name, value := range map[string]string{legacyDatabaseURL: wantDatabaseURL, legacyClientID: "Iv1.legacy"} {
				out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value), Tags: smTags(tc.tags)})
				if err != nil {
					t.Fatal(err)
				}
				legacyARN[name] = aws.ToString(out.ARN)
			}
			if tc.moved { // the state file of a deployment an older coderctl made
				w.record(t, map[string]string{names.KeyDatabaseURLSecretARN: legacyARN[legacyDatabaseURL]})
			}
			newURL := names.DatabaseURLSecretName(cluster)
			newID := names.SecretName(cluster, secrets.GitHubClientIDLeaf)

			w.env.Calls.Reset()
			kinds := planKinds(t, w)
			if m := w.env.Calls.Mutations(); len(m) != 0 {
				t.Errorf("plan changed things: %v", m)
			}
			wantKinds := map[string]engine.ActionKind{"secret " + newURL: engine.Create, "secret " + newID: engine.Nothing}
			if tc.moved {
				wantKinds = map[string]engine.ActionKind{"secret " + newURL: engine.Create, "secret " + legacyDatabaseURL: engine.Delete,
					"secret " + newID: engine.Create, "secret " + legacyClientID: engine.Delete}
			}
			for res, want := range wantKinds {
				if kinds[res] != want {
					t.Errorf("plan of %s: %q, want %q", res, kinds[res], want)
				}
			}
			for _, res := range []string{"secret " + legacyDatabaseURL, "secret " + legacyClientID} {
				if _, planned := wantKinds[res]; !planned && kinds[res] != "" {
					t.Errorf("plan touches %s: %q", res, kinds[res])
				}
			}

			_, events := w.run(t, engine.ModeApply)
			for _, ev := range events {
				if strings.Contains(ev.Message+ev.Error, dbPassword) || strings.Contains(ev.Message+ev.Error, "Iv1.legacy") {
					t.Errorf("event shows a secret value: %+v", ev)
				}
			}
			urlARN := w.env.Deps.State.Get(names.KeyDatabaseURLSecretARN)
			if !strings.Contains(urlARN, ":secret:"+newURL+"-") || w.secretValue(t, urlARN) != wantDatabaseURL {
				t.Errorf("%s = %q, want %s's ARN holding the database URL", names.KeyDatabaseURLSecretARN, urlARN, newURL)
			}
			objects := map[string]string{"database-url": urlARN}
			if tc.moved {
				if got := w.secretValue(t, newID); got != "Iv1.legacy" {
					t.Errorf("%s = %q, want the legacy value", newID, got)
				}
				d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(newID)})
				if err != nil {
					t.Fatal(err)
				}
				objects["github-client-id"] = aws.ToString(d.ARN)
			} else if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(newID)}); !awsx.IsNotFound(err) {
				t.Errorf("%s made from a secret not this deployment's: %v", newID, err)
			}
			checkSPC(t, w, objects)
			for name, arn := range legacyARN {
				d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
				if err != nil {
					t.Fatal(err)
				}
				if scheduled := d.DeletedDate != nil; scheduled != tc.moved {
					t.Errorf("%s scheduled for deletion: %v, want %v", name, scheduled, tc.moved)
				}
				if !tc.moved && len(d.Tags) != len(tc.tags) {
					t.Errorf("%s's tags changed: %v", name, awsx.SecretsManagerTagMap(d.Tags))
				}
			}
			checks := w.verify(t)
			for _, name := range []string{secrets.CheckDatabaseURL, secrets.CheckOAuth, secrets.CheckSPC, secrets.CheckRolePolicy} {
				if c := checks[name]; c.Status != engine.Pass {
					t.Errorf("check %s: %s: %s", name, c.Status, c.Reason)
				}
			}

			w.env.Calls.Reset()
			w.run(t, engine.ModeApply)
			if m := w.env.Calls.Mutations(); len(m) != 0 {
				t.Errorf("apply after the move changed things: %v", m)
			}
		})
	}
}

// TestDestroyRemovesLegacyLeftOvers: destroy also deletes this
// deployment's legacy-named secrets a move left (a teardown leaves nothing
// tagged for the deployment), and only those.
func TestDestroyRemovesLegacyLeftOvers(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, nil)
	w.run(t, engine.ModeApply)
	sm := w.env.Deps.AWS.SecretsManager
	arns := map[string]bool{}
	for name, owner := range map[string]string{legacyDatabaseURL: cluster, legacyClientID: "coder-staging"} {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("x"),
			Tags: smTags(map[string]string{awsx.TagDeployment: owner})})
		if err != nil {
			t.Fatal(err)
		}
		arns[aws.ToString(out.ARN)] = owner == cluster
	}
	w.run(t, engine.ModeDestroy)
	for arn, ours := range arns {
		d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if deleted := d.DeletedDate != nil; deleted != ours {
			t.Errorf("%s (tagged %s) deleted: %v, want %v", aws.ToString(d.Name), awsx.SecretsManagerTagMap(d.Tags)[awsx.TagDeployment], deleted, ours)
		}
	}
}
