package coderapi

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Health severities (coderd/healthcheck/health/model.go).
const (
	SeverityOK      = "ok"
	SeverityWarning = "warning"
	SeverityError   = "error"
)

// Health section names, as codersdk/healthsdk's HealthSection constants
// spell them (and as `coder` dismisses them).
const (
	SectionDERP               = "DERP"
	SectionAccessURL          = "AccessURL"
	SectionWebsocket          = "Websocket"
	SectionDatabase           = "Database"
	SectionWorkspaceProxy     = "WorkspaceProxy"
	SectionProvisionerDaemons = "ProvisionerDaemons"
)

// HealthMessage is health.Message: a code such as EDB01 and its text.
type HealthMessage struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HealthSection is healthsdk.BaseReport, the part every section shares.
type HealthSection struct {
	Error     *string         `json:"error,omitempty"`
	Severity  string          `json:"severity"`
	Warnings  []HealthMessage `json:"warnings"`
	Dismissed bool            `json:"dismissed"`
}

// Level is the section's severity; a report without one (older coderd)
// is judged by its error.
func (s HealthSection) Level() string {
	switch {
	case s.Severity != "":
		return s.Severity
	case s.Error != nil:
		return SeverityError
	}
	return SeverityOK
}

// Summary is the section's error and warnings in one line.
func (s HealthSection) Summary() string {
	var parts []string
	if s.Error != nil && *s.Error != "" {
		parts = append(parts, *s.Error)
	}
	for _, w := range s.Warnings {
		parts = append(parts, w.Code+": "+w.Message)
	}
	return strings.Join(parts, "; ")
}

// HealthReport is healthsdk.HealthcheckReport, each section's common part.
type HealthReport struct {
	Time               time.Time     `json:"time"`
	Severity           string        `json:"severity"`
	DERP               HealthSection `json:"derp"`
	AccessURL          HealthSection `json:"access_url"`
	Websocket          HealthSection `json:"websocket"`
	Database           HealthSection `json:"database"`
	WorkspaceProxy     HealthSection `json:"workspace_proxy"`
	ProvisionerDaemons HealthSection `json:"provisioner_daemons"`
	CoderVersion       string        `json:"coder_version"`
}

// NamedSection is a section with its healthsdk name.
type NamedSection struct {
	Name string
	HealthSection
}

// Sections lists the report's sections in healthsdk.HealthSections order.
func (r HealthReport) Sections() []NamedSection {
	return []NamedSection{
		{SectionDERP, r.DERP},
		{SectionAccessURL, r.AccessURL},
		{SectionWebsocket, r.Websocket},
		{SectionDatabase, r.Database},
		{SectionWorkspaceProxy, r.WorkspaceProxy},
		{SectionProvisionerDaemons, r.ProvisionerDaemons},
	}
}

// DebugHealth calls GET /api/v2/debug/health, coderd's own health report.
// Only users who may read debug_info (owners) get it: others get 403
// (coderd/coderd.go, the /debug route's middleware); a report that does
// not finish in time is a 503 "Healthcheck timed out." (coderd/debug.go).
func (c *Client) DebugHealth(ctx context.Context) (HealthReport, error) {
	var out HealthReport
	err := c.do(ctx, http.MethodGet, "/api/v2/debug/health", nil, http.StatusOK, &out)
	return out, err
}
