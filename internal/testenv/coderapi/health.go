package coderapi

import (
	"context"
	"net/http"
	"time"
)

// Health section names as the report's JSON spells them
// (codersdk/healthsdk.HealthcheckReport).
const (
	HealthDERP               = "derp"
	HealthAccessURL          = "access_url"
	HealthWebsocket          = "websocket"
	HealthDatabase           = "database"
	HealthWorkspaceProxy     = "workspace_proxy"
	HealthProvisionerDaemons = "provisioner_daemons"
)

// Severities (coderd/healthcheck/health/model.go).
const (
	severityOK      = "ok"
	severityWarning = "warning"
	severityError   = "error"
)

var severityRank = map[string]int{severityOK: 0, severityWarning: 1, severityError: 2}

// healthProblem is what SetHealth made a section report.
type healthProblem struct {
	severity, code, message string
	dismissed               bool
}

// SetHealth makes a section of /api/v2/debug/health report a problem, the
// way coderd's checks do: severity "error" puts "CODE: message" in the
// section's error (health.Errorf), "warning" adds {code, message} to its
// warnings; "ok" clears what was set. The provisioner_daemons section is
// otherwise computed from the registered daemons.
func (s *Server) SetHealth(section, severity, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.health[section]
	p.severity, p.code, p.message = severity, code, message
	s.health[section] = p
}

// DismissHealth marks a section dismissed, as `coder` health settings do:
// it keeps its severity, with "dismissed": true.
func (s *Server) DismissHealth(section string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.health[section]
	p.dismissed = true
	s.health[section] = p
}

func (s *Server) healthProblem(section string) healthProblem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health[section]
}

// section is a BaseReport with what SetHealth put in it.
func (s *Server) section(name string) baseReport {
	p := s.healthProblem(name)
	b := baseReport{Severity: severityOK, Warnings: []healthMessage{}, Dismissed: p.dismissed}
	switch p.severity {
	case severityError:
		msg := p.code + ": " + p.message
		b.Severity, b.Error = severityError, &msg
	case severityWarning:
		b.Severity = severityWarning
		b.Warnings = append(b.Warnings, healthMessage{Code: p.code, Message: p.message})
	}
	return b
}

// debugHealth is debugDeploymentHealth (coderd/debug.go) answering JSON.
func (s *Server) debugHealth(w http.ResponseWriter, r *http.Request) {
	report, err := s.healthReport(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, report)
}

func (s *Server) healthReport(ctx context.Context) (healthReport, error) {
	pd, err := s.provisionerHealth(ctx)
	if err != nil {
		return healthReport{}, err
	}
	rep := healthReport{
		Time:               s.now(),
		DERP:               derpReport{baseReport: s.section(HealthDERP), Regions: map[string]any{}, NetcheckLogs: []string{}},
		AccessURL:          accessURLReport{baseReport: s.section(HealthAccessURL), AccessURL: s.url, Reachable: true, StatusCode: http.StatusOK, HealthzResponse: "OK"},
		Websocket:          websocketReport{baseReport: s.section(HealthWebsocket), Body: "", Code: http.StatusSwitchingProtocols},
		Database:           databaseReport{baseReport: s.section(HealthDatabase), Reachable: true, Latency: "1ms", LatencyMS: 1, ThresholdMS: 15},
		WorkspaceProxy:     workspaceProxyReport{baseReport: s.section(HealthWorkspaceProxy), WorkspaceProxies: map[string]any{"regions": []any{}}},
		ProvisionerDaemons: pd,
		CoderVersion:       s.currentVersion(ctx),
	}
	rep.summarize()
	return rep, nil
}

// provisionerHealth is ProvisionerDaemonsReport.Run
// (coderd/healthcheck/provisioner.go): the daemons seen within
// StaleInterval; none at all is an error (EPD01).
func (s *Server) provisionerHealth(ctx context.Context) (provisionerDaemonsReport, error) {
	all, now, err := s.registered(ctx)
	if err != nil {
		return provisionerDaemonsReport{}, err
	}
	r := provisionerDaemonsReport{baseReport: s.section(HealthProvisionerDaemons), Items: []provisionerDaemonsReportItem{}}
	for _, d := range recent(all, now, staleInterval) {
		r.Items = append(r.Items, provisionerDaemonsReportItem{ProvisionerDaemon: d.json(s), Warnings: []healthMessage{}})
	}
	if len(r.Items) == 0 {
		r.Severity = severityError
		r.Warnings = append(r.Warnings, healthMessage{Code: "EPD01", Message: "No active provisioner daemons found!"})
	}
	return r, nil
}

// summarize sets each section's deprecated healthy flag and the report's
// overall healthy and severity (coderd/healthcheck/healthcheck.go): the
// access URL fails on any warning, the others only on an error.
func (r *healthReport) summarize() {
	sections := []struct {
		b       *baseReport
		healthy *bool
		limit   string
	}{
		{&r.DERP.baseReport, &r.DERP.Healthy, severityWarning},
		{&r.AccessURL.baseReport, &r.AccessURL.Healthy, severityOK},
		{&r.Websocket.baseReport, &r.Websocket.Healthy, severityWarning},
		{&r.Database.baseReport, &r.Database.Healthy, severityWarning},
		{&r.WorkspaceProxy.baseReport, &r.WorkspaceProxy.Healthy, severityWarning},
		{&r.ProvisionerDaemons.baseReport, nil, severityWarning},
	}
	r.Healthy, r.Severity = true, severityOK
	for _, sec := range sections {
		ok := severityRank[sec.b.Severity] <= severityRank[sec.limit]
		if sec.healthy != nil {
			*sec.healthy = ok
		}
		r.Healthy = r.Healthy && ok
		if severityRank[sec.b.Severity] > severityRank[r.Severity] {
			r.Severity = sec.b.Severity
		}
	}
}

// The report's types (codersdk/healthsdk), limited to what the double
// fills in.
type (
	healthMessage struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	baseReport struct {
		Error     *string         `json:"error,omitempty"`
		Severity  string          `json:"severity"`
		Warnings  []healthMessage `json:"warnings"`
		Dismissed bool            `json:"dismissed"`
	}
	healthReport struct {
		Time               time.Time                `json:"time"`
		Healthy            bool                     `json:"healthy"`
		Severity           string                   `json:"severity"`
		DERP               derpReport               `json:"derp"`
		AccessURL          accessURLReport          `json:"access_url"`
		Websocket          websocketReport          `json:"websocket"`
		Database           databaseReport           `json:"database"`
		WorkspaceProxy     workspaceProxyReport     `json:"workspace_proxy"`
		ProvisionerDaemons provisionerDaemonsReport `json:"provisioner_daemons"`
		CoderVersion       string                   `json:"coder_version"`
	}
	derpReport struct {
		baseReport
		Healthy      bool           `json:"healthy"`
		Regions      map[string]any `json:"regions"`
		NetcheckLogs []string       `json:"netcheck_logs"`
	}
	accessURLReport struct {
		baseReport
		Healthy         bool   `json:"healthy"`
		AccessURL       string `json:"access_url"`
		Reachable       bool   `json:"reachable"`
		StatusCode      int    `json:"status_code"`
		HealthzResponse string `json:"healthz_response"`
	}
	websocketReport struct {
		Healthy bool `json:"healthy"`
		baseReport
		Body string `json:"body"`
		Code int    `json:"code"`
	}
	databaseReport struct {
		baseReport
		Healthy     bool   `json:"healthy"`
		Reachable   bool   `json:"reachable"`
		Latency     string `json:"latency"`
		LatencyMS   int64  `json:"latency_ms"`
		ThresholdMS int64  `json:"threshold_ms"`
	}
	workspaceProxyReport struct {
		Healthy bool `json:"healthy"`
		baseReport
		WorkspaceProxies map[string]any `json:"workspace_proxies"`
	}
	provisionerDaemonsReport struct {
		baseReport
		Items []provisionerDaemonsReportItem `json:"items"`
	}
	provisionerDaemonsReportItem struct {
		ProvisionerDaemon provisionerDaemon `json:"provisioner_daemon"`
		Warnings          []healthMessage   `json:"warnings"`
	}
)
