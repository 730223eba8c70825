package coderapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Health is GET /healthz: coderd answers 200 "OK" when it can serve.
type Health struct {
	StatusCode int
	Body       string
}

// OK reports the answer coderd gives when healthy.
func (h Health) OK() bool { return h.StatusCode == http.StatusOK && strings.TrimSpace(h.Body) == "OK" }

// Healthz calls GET /healthz. Only a transport failure is an error; any
// HTTP answer is returned for the caller to judge.
func (c *Client) Healthz(ctx context.Context) (Health, error) {
	a, err := c.send(ctx, http.MethodGet, "/healthz", nil)
	if err != nil {
		return Health{}, err
	}
	body := string(a.body)
	if len(body) > 200 {
		body = body[:200]
	}
	return Health{StatusCode: a.status, Body: body}, nil
}

// BuildInfo is codersdk.BuildInfoResponse, the fields coderctl reads.
type BuildInfo struct {
	Version      string `json:"version"`
	ExternalURL  string `json:"external_url"`
	DashboardURL string `json:"dashboard_url"`
	DeploymentID string `json:"deployment_id"`
}

// SemVer is the version without a leading "v" and without the "+commit"
// build suffix coderd adds: v2.36.1+abcdef0 → 2.36.1.
func (b BuildInfo) SemVer() string {
	v, _, _ := strings.Cut(strings.TrimPrefix(b.Version, "v"), "+")
	return v
}

// BuildInfo calls GET /api/v2/buildinfo (no token needed).
func (c *Client) BuildInfo(ctx context.Context) (BuildInfo, error) {
	var out BuildInfo
	err := c.do(ctx, http.MethodGet, "/api/v2/buildinfo", nil, http.StatusOK, &out)
	return out, err
}

// User is codersdk.User, the fields coderctl reads.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Roles    []struct {
		Name string `json:"name"`
	} `json:"roles"`
}

// IsOwner reports whether the user has the site-wide owner role.
func (u User) IsOwner() bool {
	for _, r := range u.Roles {
		if r.Name == "owner" {
			return true
		}
	}
	return false
}

// Me calls GET /api/v2/users/me: who the token belongs to.
func (c *Client) Me(ctx context.Context) (User, error) {
	var out User
	err := c.do(ctx, http.MethodGet, "/api/v2/users/me", nil, http.StatusOK, &out)
	return out, err
}

// Organization is codersdk.Organization, the fields coderctl reads.
type Organization struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	IsDefault bool   `json:"is_default"`
}

// DefaultOrganization finds the deployment's default organization, where
// the guide's provisioner key lives.
func (c *Client) DefaultOrganization(ctx context.Context) (Organization, error) {
	var orgs []Organization
	if err := c.do(ctx, http.MethodGet, "/api/v2/organizations", nil, http.StatusOK, &orgs); err != nil {
		return Organization{}, err
	}
	for _, o := range orgs {
		if o.IsDefault {
			return o, nil
		}
	}
	return Organization{}, fmt.Errorf("GET /api/v2/organizations: no default organization among %d", len(orgs))
}

// Feature names in codersdk.Entitlements.Features that coderctl explains.
const (
	FeatureHighAvailability     = "high_availability"
	FeatureExternalProvisioners = "external_provisioner_daemons"
)

// Entitlements is codersdk.Entitlements, the fields coderctl reads.
type Entitlements struct {
	HasLicense bool               `json:"has_license"`
	Trial      bool               `json:"trial"`
	Features   map[string]Feature `json:"features"`
	Warnings   []string           `json:"warnings"`
	Errors     []string           `json:"errors"`
}

// Feature is codersdk.Feature.
type Feature struct {
	Entitlement string `json:"entitlement"` // entitled | grace_period | not_entitled
	Enabled     bool   `json:"enabled"`
}

// Entitled reports whether the license covers the feature (a grace period
// still counts: the feature works while the license is renewed).
func (e Entitlements) Entitled(feature string) bool {
	f, ok := e.Features[feature]
	return ok && (f.Entitlement == "entitled" || f.Entitlement == "grace_period")
}

// Entitlements calls GET /api/v2/entitlements.
func (c *Client) Entitlements(ctx context.Context) (Entitlements, error) {
	var out Entitlements
	err := c.do(ctx, http.MethodGet, "/api/v2/entitlements", nil, http.StatusOK, &out)
	return out, err
}

// ProvisionerKey is codersdk.ProvisionerKey: a key's public part.
type ProvisionerKey struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Organization string            `json:"organization"`
	Tags         map[string]string `json:"tags"`
	CreatedAt    time.Time         `json:"created_at"`
}

// KeySecret is a provisioner key's secret, shown once by coderd at
// creation. It prints as "[redacted]" in every format, so it cannot leak
// into logs, events or errors by accident; Reveal is the one way out.
type KeySecret struct{ value string }

// Reveal returns the secret, for writing it into a Kubernetes secret.
func (k KeySecret) Reveal() string { return k.value }

// Empty reports whether there is no secret.
func (k KeySecret) Empty() bool { return k.value == "" }

func (KeySecret) String() string { return "[redacted]" }

// GoString keeps %#v from printing the value.
func (KeySecret) GoString() string { return "coderapi.KeySecret{[redacted]}" }

// MarshalJSON keeps JSON encoding from printing the value.
func (KeySecret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Format keeps every fmt verb (%s, %v, %q, %x, ...) from printing it.
func (KeySecret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

func keysPath(org string) string {
	return "/api/v2/organizations/" + url.PathEscape(org) + "/provisionerkeys"
}

// ProvisionerKeys calls GET /api/v2/organizations/{org}/provisionerkeys.
func (c *Client) ProvisionerKeys(ctx context.Context, org string) ([]ProvisionerKey, error) {
	var out []ProvisionerKey
	err := c.do(ctx, http.MethodGet, keysPath(org), nil, http.StatusOK, &out)
	return out, err
}

// FindProvisionerKey returns the named key, or nil when there is none.
func (c *Client) FindProvisionerKey(ctx context.Context, org, name string) (*ProvisionerKey, error) {
	keys, err := c.ProvisionerKeys(ctx, org)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if keys[i].Name == name {
			return &keys[i], nil
		}
	}
	return nil, nil
}

// CreateProvisionerKey calls POST /api/v2/organizations/{org}/provisionerkeys
// and returns the new key's secret.
func (c *Client) CreateProvisionerKey(ctx context.Context, org, name string, tags map[string]string) (KeySecret, error) {
	req := struct {
		Name string            `json:"name"`
		Tags map[string]string `json:"tags"`
	}{name, tags}
	var out struct {
		Key string `json:"key"`
	}
	if err := c.do(ctx, http.MethodPost, keysPath(org), req, http.StatusCreated, &out); err != nil {
		return KeySecret{}, err
	}
	if out.Key == "" {
		return KeySecret{}, fmt.Errorf("POST %s: coderd returned no key", keysPath(org))
	}
	return KeySecret{value: out.Key}, nil
}

// DeleteProvisionerKey calls DELETE
// /api/v2/organizations/{org}/provisionerkeys/{name}. A key that does not
// exist is not an error.
func (c *Client) DeleteProvisionerKey(ctx context.Context, org, name string) error {
	err := c.do(ctx, http.MethodDelete, keysPath(org)+"/"+url.PathEscape(name), nil, http.StatusNoContent, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// compile-time checks that KeySecret never prints its value.
var (
	_ fmt.Formatter  = KeySecret{}
	_ json.Marshaler = KeySecret{}
)
