package coderapi

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// call makes one request with the given token ("" = none) and returns the
// status and body.
func call(t *testing.T, s *Server, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL()+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(SessionTokenHeader, token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Coder-Test-Double"); got != "coderapi" {
		t.Errorf("%s %s: X-Coder-Test-Double = %q, want coderapi", method, path, got)
	}
	return resp.StatusCode, out
}

// expect asserts the status and decodes the body into out (when non-nil).
func expect(t *testing.T, s *Server, method, path, token string, body any, wantStatus int, out any) []byte {
	t.Helper()
	status, raw := call(t, s, method, path, token, body)
	if status != wantStatus {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, raw, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return raw
}

func TestHealthzAndBuildInfoTrustTheCAFile(t *testing.T) {
	s := Require(t, Options{Version: "v2.99.0+feed123"})

	caPEM, err := os.ReadFile(s.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CAFile %s holds no PEM certificate", s.CAFile())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, base := range []string{s.URL(), strings.Replace(s.URL(), "127.0.0.1", "localhost", 1)} {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("GET %s/healthz with the CA file: %v", base, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "OK" {
			t.Errorf("GET %s/healthz = %d %q, want 200 OK", base, resp.StatusCode, body)
		}
	}

	var info buildInfo
	expect(t, s, "GET", "/api/v2/buildinfo", "", nil, http.StatusOK, &info)
	if info.Version != "v2.99.0+feed123" {
		t.Errorf("buildinfo version = %q, want v2.99.0+feed123", info.Version)
	}
	if info.ExternalURL != "https://github.com/coder/coder/releases/tag/v2.99.0" {
		t.Errorf("buildinfo external_url = %q", info.ExternalURL)
	}
}

func TestUntrustedClientIsRefused(t *testing.T) {
	s := Require(t, Options{})
	// The system roots do not include the double's private CA.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	_, err := client.Get(s.URL() + "/healthz")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GET without trusting the CA: err = %v, want a certificate error", err)
	}
}

func TestDefaultVersionAndGeneratedToken(t *testing.T) {
	s := Require(t, Options{})
	var info buildInfo
	expect(t, s, "GET", "/api/v2/buildinfo", "", nil, http.StatusOK, &info)
	if info.Version != DefaultVersion {
		t.Errorf("version = %q, want %q", info.Version, DefaultVersion)
	}
	id, secret, ok := strings.Cut(s.Token(), "-")
	if !ok || len(id) != 10 || len(secret) != 22 {
		t.Errorf("generated token %q is not in coderd's <10>-<22> form", s.Token())
	}
	var me user
	expect(t, s, "GET", "/api/v2/users/me", s.Token(), nil, http.StatusOK, &me)
	if me.Username != "admin" || len(me.Roles) != 1 || me.Roles[0].Name != "owner" {
		t.Errorf("users/me = %+v, want the owner", me)
	}
}

func TestSessionTokenRequired(t *testing.T) {
	s := Require(t, Options{Token: "abcdefghij-0123456789012345678901", Licensed: true})
	paths := []string{
		"/api/v2/users/me",
		"/api/v2/organizations",
		"/api/v2/organizations/default",
		"/api/v2/organizations/default/provisionerkeys",
		"/api/v2/organizations/default/provisionerkeys/daemons",
		"/api/v2/organizations/default/provisionerdaemons",
		"/api/v2/debug/health",
	}
	for _, path := range paths {
		for _, tc := range []struct {
			name, token, detail string
		}{
			{"no token", "", `Cookie "coder_session_token" or query parameter must be provided.`},
			{"wrong token", "abcdefghij-wrongwrongwrongwrongwron", "API key is invalid."},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				var resp response
				expect(t, s, "GET", path, tc.token, nil, http.StatusUnauthorized, &resp)
				if resp.Message != signedOutMessage || resp.Detail != tc.detail {
					t.Errorf("401 body = %+v, want message %q detail %q", resp, signedOutMessage, tc.detail)
				}
			})
		}
		t.Run(path+"/owner token", func(t *testing.T) {
			expect(t, s, "GET", path, s.Token(), nil, http.StatusOK, nil)
		})
	}
}

func TestSessionTokenInCookieOrQuery(t *testing.T) {
	s := Require(t, Options{})
	byCookie, _ := http.NewRequest("GET", s.URL()+"/api/v2/users/me", nil)
	byCookie.AddCookie(&http.Cookie{Name: "coder_session_token", Value: s.Token()})
	byQuery, _ := http.NewRequest("GET", s.URL()+"/api/v2/users/me?coder_session_token="+s.Token(), nil)
	for name, req := range map[string]*http.Request{"cookie": byCookie, "query": byQuery} {
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("token by %s: status %d, want 200", name, resp.StatusCode)
		}
	}
}

func TestOrganizations(t *testing.T) {
	s := Require(t, Options{})
	var orgs []organization
	expect(t, s, "GET", "/api/v2/organizations", s.Token(), nil, http.StatusOK, &orgs)
	if len(orgs) != 1 || orgs[0].Name != "coder" || !orgs[0].IsDefault || orgs[0].ID != s.OrganizationID() {
		t.Fatalf("organizations = %+v, want the one default org %s", orgs, s.OrganizationID())
	}
	for _, ref := range []string{s.OrganizationID(), "default", "coder"} {
		var org organization
		expect(t, s, "GET", "/api/v2/organizations/"+ref, s.Token(), nil, http.StatusOK, &org)
		if org.ID != s.OrganizationID() {
			t.Errorf("organization %q resolved to %s, want %s", ref, org.ID, s.OrganizationID())
		}
	}
	var notFound response
	expect(t, s, "GET", "/api/v2/organizations/00000000-0000-0000-0000-00000000dead", s.Token(), nil, http.StatusNotFound, &notFound)
	if notFound.Message != notFoundMessage {
		t.Errorf("unknown org message = %q", notFound.Message)
	}
	var unknownRoute response
	expect(t, s, "GET", "/api/v2/nothing-here", s.Token(), nil, http.StatusNotFound, &unknownRoute)
	if unknownRoute.Message != routeNotFound {
		t.Errorf("unknown route message = %q", unknownRoute.Message)
	}
}

func TestProvisionerKeyShownOnceThenListedDeleted(t *testing.T) {
	s := Require(t, Options{Licensed: true})
	keys := "/api/v2/organizations/default/provisionerkeys"
	tags := map[string]string{"cluster": "eks"}

	var created createProvisionerKeyResponse
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "coder-eks", Tags: tags}, http.StatusCreated, &created)
	if len(created.Key) != 43 || strings.Trim(created.Key, tokenAlphabet) != "" {
		t.Fatalf("created key is %d characters (%q outside [0-9A-Za-z]), want coderd's 43 alphanumerics",
			len(created.Key), strings.Trim(created.Key, tokenAlphabet))
	}

	var listed []provisionerKeyJSON
	raw := expect(t, s, "GET", keys, s.Token(), nil, http.StatusOK, &listed)
	if len(listed) != 1 || listed[0].Name != "coder-eks" || listed[0].Tags["cluster"] != "eks" ||
		listed[0].OrganizationID != s.OrganizationID() || listed[0].ID == "" || listed[0].CreatedAt.IsZero() {
		t.Fatalf("listed keys = %+v, want coder-eks with its tags", listed)
	}
	if bytes.Contains(raw, []byte(created.Key)) {
		t.Fatalf("the key secret appears in the listing: %s", raw)
	}
	var fields []map[string]any
	_ = json.Unmarshal(raw, &fields)
	if _, has := fields[0]["key"]; has {
		t.Errorf("listed key has a \"key\" field: %s", raw)
	}

	var conflict response
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "coder-eks"}, http.StatusConflict, &conflict)
	if conflict.Message != "Provisioner key with name 'coder-eks' already exists in organization" {
		t.Errorf("duplicate message = %q", conflict.Message)
	}

	expect(t, s, "DELETE", keys+"/coder-eks", s.Token(), nil, http.StatusNoContent, nil)
	expect(t, s, "GET", keys, s.Token(), nil, http.StatusOK, &listed)
	if len(listed) != 0 {
		t.Errorf("after delete, keys = %+v, want none", listed)
	}
	var gone response
	expect(t, s, "DELETE", keys+"/coder-eks", s.Token(), nil, http.StatusNotFound, &gone)
	if gone.Message != notFoundMessage {
		t.Errorf("second delete message = %q", gone.Message)
	}

	// The name is free again, and a new secret is issued.
	var again createProvisionerKeyResponse
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "coder-eks"}, http.StatusCreated, &again)
	if again.Key == created.Key {
		t.Error("re-created key has the old secret")
	}
}

func TestProvisionerKeyNameValidation(t *testing.T) {
	s := Require(t, Options{Licensed: true})
	for _, tc := range []struct{ name, message string }{
		{"", "Name is required"},
		{strings.Repeat("k", 65), "Name must be at most 64 characters"},
		{"PSK", "Name cannot be reserved name 'PSK'"},
		{"built-in", "Name cannot be reserved name 'built-in'"},
	} {
		var resp response
		expect(t, s, "POST", "/api/v2/organizations/default/provisionerkeys", s.Token(),
			createProvisionerKeyRequest{Name: tc.name}, http.StatusBadRequest, &resp)
		if resp.Message != tc.message || len(resp.Validations) != 1 || resp.Validations[0].Field != "name" {
			t.Errorf("name %q: response %+v, want message %q with a name validation", tc.name, resp, tc.message)
		}
	}
}

func TestLicenseToggle(t *testing.T) {
	s := Require(t, Options{})
	keys := "/api/v2/organizations/default/provisionerkeys"

	var ents entitlements
	expect(t, s, "GET", "/api/v2/entitlements", s.Token(), nil, http.StatusOK, &ents)
	if ents.HasLicense {
		t.Error("unlicensed double reports has_license")
	}
	for _, f := range []string{featureExternalProvisioners, featureHighAvailability} {
		if got := ents.Features[f]; got.Entitlement != "not_entitled" || got.Enabled {
			t.Errorf("unlicensed %s = %+v, want not_entitled", f, got)
		}
	}
	var forbidden response
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "k"}, http.StatusForbidden, &forbidden)
	if forbidden.Message != "External Provisioner Daemons is a Premium feature. Contact sales!" {
		t.Errorf("403 message = %q", forbidden.Message)
	}

	s.SetLicensed(true)
	expect(t, s, "GET", "/api/v2/entitlements", s.Token(), nil, http.StatusOK, &ents)
	if !ents.HasLicense {
		t.Error("licensed double reports no license")
	}
	for _, f := range []string{featureExternalProvisioners, featureHighAvailability} {
		if got := ents.Features[f]; got.Entitlement != "entitled" || !got.Enabled {
			t.Errorf("licensed %s = %+v, want entitled and enabled", f, got)
		}
	}
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "k"}, http.StatusCreated, nil)
}

func TestDaemonTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]string
		want map[string]string
	}{
		{"none", nil, map[string]string{"scope": "organization", "owner": ""}},
		{"custom", map[string]string{"pool": "eks"}, map[string]string{"pool": "eks", "scope": "organization", "owner": ""}},
		{"user scope", map[string]string{"scope": "user"}, map[string]string{"scope": "user", "owner": "u1"}},
		{"bogus scope", map[string]string{"scope": "x", "owner": "y"}, map[string]string{"scope": "organization", "owner": ""}},
	} {
		got := daemonTags(tc.in, "u1")
		if len(got) != len(tc.want) {
			t.Errorf("%s: tags = %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: tags = %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}

// TestSSLCertFileIsHonoured checks the claim in the package doc: a Go
// process started with SSL_CERT_FILE=CAFile() trusts the double through the
// default client, with no code changes.
func TestSSLCertFileIsHonoured(t *testing.T) {
	if url := os.Getenv("CODERAPI_CHILD_GET"); url != "" {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("child GET: %v", err)
		}
		resp.Body.Close()
		return
	}
	s := Require(t, Options{})
	for _, tc := range []struct {
		name   string
		caFile string
		wantOK bool
	}{
		{"with SSL_CERT_FILE", s.CAFile(), true},
		{"without", "/dev/null", false},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSSLCertFileIsHonoured$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CODERAPI_CHILD_GET="+s.URL()+"/healthz", "SSL_CERT_FILE="+tc.caFile, "SSL_CERT_DIR=/nonexistent")
		out, err := cmd.CombinedOutput()
		if (err == nil) != tc.wantOK {
			t.Errorf("%s: child err = %v, want ok=%v; output:\n%s", tc.name, err, tc.wantOK, out)
		}
	}
}

func TestStopIsIdempotentAndRemovesCAFile(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop()
	if _, err := os.Stat(s.CAFile()); !os.IsNotExist(err) {
		t.Errorf("CA file still exists after Stop: %v", err)
	}
	client := s.Client()
	client.Timeout = 2 * time.Second
	if _, err := client.Get(s.URL() + "/healthz"); err == nil {
		t.Error("server still answers after Stop")
	}
}
