package coderapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/coderapi"
	double "github.com/coderctl/coderctl/internal/testenv/coderapi"
)

func newClient(t *testing.T, s *double.Server, token string) *coderapi.Client {
	t.Helper()
	c, err := coderapi.New(s.URL(), coderapi.Options{Token: token, CAFile: s.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHealthAndBuildInfoNeedNoToken(t *testing.T) {
	s := double.Require(t, double.Options{Version: "v2.36.1+abcdef0"})
	c := newClient(t, s, "")
	ctx := context.Background()

	h, err := c.Healthz(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !h.OK() || h.StatusCode != http.StatusOK || h.Body != "OK" {
		t.Errorf("Healthz = %+v, want 200 OK", h)
	}
	bi, err := c.BuildInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bi.Version != "v2.36.1+abcdef0" || bi.SemVer() != "2.36.1" {
		t.Errorf("BuildInfo version %q semver %q, want v2.36.1+abcdef0 and 2.36.1", bi.Version, bi.SemVer())
	}
}

func TestCAFileIsWhatMakesTheServerTrusted(t *testing.T) {
	s := double.Require(t, double.Options{})
	ctx := context.Background()

	untrusting, err := coderapi.New(s.URL(), coderapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = untrusting.Healthz(ctx)
	if !coderapi.IsUnreachable(err) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: err = %v, want an unreachable error about the certificate", err)
	}

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := coderapi.New(s.URL(), coderapi.Options{CAFile: notPEM}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without PEM: err = %v, want 'no PEM certificate'", err)
	}
	if _, err := coderapi.New("coder.example.com", coderapi.Options{}); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}

func TestTokenIsRequiredAndNeverInErrors(t *testing.T) {
	s := double.Require(t, double.Options{})
	ctx := context.Background()
	cases := []struct {
		name, token string
	}{
		{"no token", ""},
		{"wrong token", "AAAAAAAAAA-wrongwrongwrongwrongwr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newClient(t, s, tc.token).Me(ctx)
			if !coderapi.IsUnauthorized(err) {
				t.Fatalf("Me() err = %v, want 401", err)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the token", err)
			}
			if !strings.Contains(err.Error(), "signed out") {
				t.Errorf("error %q lacks coderd's message", err)
			}
		})
	}
	me, err := newClient(t, s, s.Token()).Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !me.IsOwner() {
		t.Errorf("Me() = %+v, want the owner", me)
	}
}

func TestEntitlements(t *testing.T) {
	for _, licensed := range []bool{false, true} {
		t.Run(fmt.Sprintf("licensed=%v", licensed), func(t *testing.T) {
			s := double.Require(t, double.Options{Licensed: licensed})
			e, err := newClient(t, s, s.Token()).Entitlements(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if e.HasLicense != licensed {
				t.Errorf("HasLicense = %v, want %v", e.HasLicense, licensed)
			}
			for _, f := range []string{coderapi.FeatureHighAvailability, coderapi.FeatureExternalProvisioners} {
				if e.Entitled(f) != licensed {
					t.Errorf("Entitled(%s) = %v, want %v", f, e.Entitled(f), licensed)
				}
			}
		})
	}
}

func TestProvisionerKeyLifecycle(t *testing.T) {
	s := double.Require(t, double.Options{Licensed: true})
	c := newClient(t, s, s.Token())
	ctx := context.Background()

	org, err := c.DefaultOrganization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if org.ID != s.OrganizationID() {
		t.Fatalf("default organization %s, want %s", org.ID, s.OrganizationID())
	}
	if k, err := c.FindProvisionerKey(ctx, org.ID, "eks-provisioner"); err != nil || k != nil {
		t.Fatalf("FindProvisionerKey before create = %v, %v; want nil, nil", k, err)
	}
	secret, err := c.CreateProvisionerKey(ctx, org.ID, "eks-provisioner", map[string]string{"scope": "organization"})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Empty() || len(secret.Reveal()) != 43 {
		t.Fatalf("secret of length %d, want coderd's 43 characters", len(secret.Reveal()))
	}
	k, err := c.FindProvisionerKey(ctx, org.ID, "eks-provisioner")
	if err != nil || k == nil {
		t.Fatalf("FindProvisionerKey after create = %v, %v", k, err)
	}
	if k.Tags["scope"] != "organization" {
		t.Errorf("key tags %v, want scope=organization", k.Tags)
	}

	_, err = c.CreateProvisionerKey(ctx, org.ID, "eks-provisioner", nil)
	if !coderapi.IsConflict(err) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second create: err = %v, want 409 already exists", err)
	}
	list, err := c.DaemonsForKey(ctx, org.ID, "eks-provisioner")
	if err != nil || list.Key == nil || list.Key.ID != k.ID || len(list.Daemons) != 0 {
		t.Errorf("DaemonsForKey without a cluster = %+v, %v; want the key with no daemons", list, err)
	}

	if err := c.DeleteProvisionerKey(ctx, org.ID, "eks-provisioner"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProvisionerKey(ctx, org.ID, "eks-provisioner"); err != nil {
		t.Errorf("deleting a key that is gone: %v, want nil", err)
	}
	if k, _ := c.FindProvisionerKey(ctx, org.ID, "eks-provisioner"); k != nil {
		t.Errorf("key still listed after delete: %+v", k)
	}
}

func TestUnlicensedKeysAreForbidden(t *testing.T) {
	s := double.Require(t, double.Options{Licensed: false})
	c := newClient(t, s, s.Token())
	_, err := c.CreateProvisionerKey(context.Background(), "default", "eks-provisioner", nil)
	if !coderapi.IsForbidden(err) || !strings.Contains(err.Error(), "Premium") {
		t.Errorf("err = %v, want 403 naming the Premium feature", err)
	}
}

func TestKeySecretNeverPrints(t *testing.T) {
	s := double.Require(t, double.Options{Licensed: true})
	secret, err := newClient(t, s, s.Token()).CreateProvisionerKey(context.Background(), "default", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	value := secret.Reveal()
	js, _ := json.Marshal(map[string]any{"key": secret})
	printed := []string{
		fmt.Sprint(secret), fmt.Sprintf("%s %v %+v %#v %q %x", secret, secret, secret, secret, secret, secret),
		fmt.Sprintf("%v", struct{ K coderapi.KeySecret }{secret}), string(js),
	}
	for _, p := range printed {
		if strings.Contains(p, value) {
			t.Errorf("printed form %q contains the secret", p)
		}
		if !strings.Contains(p, "redacted") {
			t.Errorf("printed form %q does not say redacted", p)
		}
	}
}
