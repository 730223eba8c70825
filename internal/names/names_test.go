package names_test

import (
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/names"
)

// TestSecretNames: every secret of a deployment is under its own prefix,
// and no deployment's prefix (which coderd's IRSA policy grants) covers
// another deployment's secret, even one whose name starts with its own.
func TestSecretNames(t *testing.T) {
	secretsOf := func(d string) map[string]string {
		return map[string]string{
			"master":     names.MasterSecretName(d),
			"url":        names.DatabaseURLSecretName(d),
			"first-user": coderapi.FirstUserSecretName(d),
			"oauth":      names.SecretName(d, "github-client-id"),
		}
	}
	cases := []struct {
		deployment string
		want       map[string]string
	}{
		{"coder-prod", map[string]string{
			"master": "coder/coder-prod/db-master", "url": "coder/coder-prod/database-url",
			"first-user": "coder/coder-prod/first-user", "oauth": "coder/coder-prod/github-client-id"}},
		{"coder-prod-2", map[string]string{
			"master": "coder/coder-prod-2/db-master", "url": "coder/coder-prod-2/database-url",
			"first-user": "coder/coder-prod-2/first-user", "oauth": "coder/coder-prod-2/github-client-id"}},
		{"Coder_Staging", map[string]string{
			"master": "coder/Coder_Staging/db-master", "url": "coder/Coder_Staging/database-url",
			"first-user": "coder/Coder_Staging/first-user", "oauth": "coder/Coder_Staging/github-client-id"}},
	}
	for _, tc := range cases {
		t.Run(tc.deployment, func(t *testing.T) {
			got := secretsOf(tc.deployment)
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s secret = %q, want %q", k, got[k], want)
				}
				if !strings.HasPrefix(got[k], names.SecretPrefix(tc.deployment)) {
					t.Errorf("%s secret %q is not under %q", k, got[k], names.SecretPrefix(tc.deployment))
				}
			}
			for _, other := range cases {
				if other.deployment == tc.deployment {
					continue
				}
				for k, name := range secretsOf(other.deployment) {
					if strings.HasPrefix(name, names.SecretPrefix(tc.deployment)) {
						t.Errorf("%s's prefix %q covers %s's %s secret %q", tc.deployment, names.SecretPrefix(tc.deployment), other.deployment, k, name)
					}
				}
			}
		})
	}
}

// TestLegacySecretNames are the account-wide names older versions used,
// which the rds and secrets stages move from.
func TestLegacySecretNames(t *testing.T) {
	for leaf, want := range map[string]string{
		names.MasterSecretLeaf:      "coder/db-master",
		names.DatabaseURLSecretLeaf: "coder/database-url",
	} {
		if got := names.LegacySecretName(leaf); got != want {
			t.Errorf("LegacySecretName(%q) = %q, want %q", leaf, got, want)
		}
		if strings.HasPrefix(names.LegacySecretName(leaf), names.SecretPrefix("coder-prod")) {
			t.Errorf("legacy %q is under a deployment's prefix", names.LegacySecretName(leaf))
		}
	}
}
