package coderapi

import "time"

// The wire types below carry the JSON field names of codersdk (Coder's Go
// SDK) and docs/reference/api, limited to what the double fills in.

// response is codersdk.Response, the body of every coderd error.
type response struct {
	Message     string            `json:"message"`
	Detail      string            `json:"detail,omitempty"`
	Validations []validationError `json:"validations,omitempty"`
}

type validationError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// buildInfo is codersdk.BuildInfoResponse.
type buildInfo struct {
	ExternalURL           string `json:"external_url"`
	Version               string `json:"version"`
	DashboardURL          string `json:"dashboard_url"`
	Telemetry             bool   `json:"telemetry"`
	WorkspaceProxy        bool   `json:"workspace_proxy"`
	AgentAPIVersion       string `json:"agent_api_version"`
	ProvisionerAPIVersion string `json:"provisioner_api_version"`
	UpgradeMessage        string `json:"upgrade_message"`
	DeploymentID          string `json:"deployment_id"`
}

// organization is codersdk.Organization.
type organization struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Description string    `json:"description"`
	Icon        string    `json:"icon"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	IsDefault   bool      `json:"is_default"`
}

// user is codersdk.User (the owner).
type user struct {
	ID              string    `json:"id"`
	Username        string    `json:"username"`
	Name            string    `json:"name"`
	Email           string    `json:"email"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	LastSeenAt      time.Time `json:"last_seen_at"`
	Status          string    `json:"status"`
	LoginType       string    `json:"login_type"`
	ThemePreference string    `json:"theme_preference"`
	OrganizationIDs []string  `json:"organization_ids"`
	Roles           []role    `json:"roles"`
}

type role struct {
	Name           string `json:"name"`
	DisplayName    string `json:"display_name"`
	OrganizationID string `json:"organization_id,omitempty"`
}

// entitlements is codersdk.Entitlements.
type entitlements struct {
	Features         map[string]feature `json:"features"`
	Warnings         []string           `json:"warnings"`
	Errors           []string           `json:"errors"`
	HasLicense       bool               `json:"has_license"`
	Trial            bool               `json:"trial"`
	RequireTelemetry bool               `json:"require_telemetry"`
	RefreshedAt      time.Time          `json:"refreshed_at"`
}

// feature is codersdk.Feature.
type feature struct {
	Entitlement string `json:"entitlement"` // entitled | grace_period | not_entitled
	Enabled     bool   `json:"enabled"`
	Limit       *int64 `json:"limit,omitempty"`
	Actual      *int64 `json:"actual,omitempty"`
}

// createProvisionerKeyRequest is codersdk.CreateProvisionerKeyRequest.
type createProvisionerKeyRequest struct {
	Name string            `json:"name"`
	Tags map[string]string `json:"tags"`
}

// createProvisionerKeyResponse is codersdk.CreateProvisionerKeyResponse: the
// only place the key's secret ever appears.
type createProvisionerKeyResponse struct {
	Key string `json:"key"`
}

// provisionerKeyJSON is codersdk.ProvisionerKey: never the secret.
type provisionerKeyJSON struct {
	ID             string            `json:"id"`
	CreatedAt      time.Time         `json:"created_at"`
	OrganizationID string            `json:"organization"`
	Name           string            `json:"name"`
	Tags           map[string]string `json:"tags"`
}

// provisionerDaemon is codersdk.ProvisionerDaemon. KeyName and Status are
// filled only by the provisionerdaemons route.
type provisionerDaemon struct {
	ID             string            `json:"id"`
	OrganizationID string            `json:"organization_id"`
	KeyID          string            `json:"key_id"`
	CreatedAt      time.Time         `json:"created_at"`
	LastSeenAt     *time.Time        `json:"last_seen_at"` // codersdk.NullTime
	Name           string            `json:"name"`
	Version        string            `json:"version"`
	APIVersion     string            `json:"api_version"`
	Provisioners   []string          `json:"provisioners"`
	Tags           map[string]string `json:"tags"`
	KeyName        *string           `json:"key_name"`
	Status         *string           `json:"status"`
	CurrentJob     *struct{}         `json:"current_job"`
	PreviousJob    *struct{}         `json:"previous_job"`
}

// provisionerKeyDaemons is codersdk.ProvisionerKeyDaemons.
type provisionerKeyDaemons struct {
	Key     provisionerKeyJSON  `json:"key"`
	Daemons []provisionerDaemon `json:"daemons"`
}

func newDefaultOrganization(now time.Time) organization {
	return organization{
		ID:          newID(),
		Name:        "coder",
		DisplayName: "Coder",
		Description: "Default organization (coderapi test double)",
		CreatedAt:   now,
		UpdatedAt:   now,
		IsDefault:   true,
	}
}

func newOwner(now time.Time, orgID string) user {
	return newUser(now, orgID, "admin", "Test Double Owner", []role{{Name: "owner", DisplayName: "Owner"}})
}

// newMember is a plain member of the default organization: codersdk.User
// lists site-wide roles only (db2sdk.User), and a member has none.
func newMember(now time.Time, orgID string) user {
	return newUser(now, orgID, "member", "Test Double Member", []role{})
}

func newUser(now time.Time, orgID, username, name string, roles []role) user {
	return user{
		ID:              newID(),
		Username:        username,
		Name:            name,
		Email:           username + "@coderapi.test",
		CreatedAt:       now,
		UpdatedAt:       now,
		LastSeenAt:      now,
		Status:          "active",
		LoginType:       "password",
		OrganizationIDs: []string{orgID},
		Roles:           roles,
	}
}
