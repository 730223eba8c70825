package coderapi

import (
	"net/http"
	"testing"
)

// TestEntitlementsNeedNoToken: enterprise/coderd/coderd.go serves
// /entitlements outside the API key middleware.
func TestEntitlementsNeedNoToken(t *testing.T) {
	s := Require(t, Options{Licensed: true})
	var ents entitlements
	expect(t, s, "GET", "/api/v2/entitlements", "", nil, http.StatusOK, &ents)
	if !ents.HasLicense || ents.Features[featureExternalProvisioners].Entitlement != "entitled" {
		t.Errorf("entitlements without a token = %+v, want the licensed features", ents)
	}
}

// TestMemberGetsCodersAnswers: a plain member's token is accepted, and
// each call answers as coderd v2.36.1 answers a member — not a blanket
// 403, because coderd checks in different places (route middleware,
// handler, database layer).
func TestMemberGetsCodersAnswers(t *testing.T) {
	s := Require(t, Options{Licensed: true})
	keys := "/api/v2/organizations/default/provisionerkeys"
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "eks"}, http.StatusCreated, nil)
	cases := []struct {
		name, method, path string
		body               any
		status             int
		message, detail    string
	}{
		{"who am I", "GET", "/api/v2/users/me", nil, http.StatusOK, "", ""},
		{"organizations", "GET", "/api/v2/organizations", nil, http.StatusOK, "", ""},
		{"members read keys", "GET", keys, nil, http.StatusOK, "", ""},
		{"members read key daemons", "GET", keys + "/daemons", nil, http.StatusOK, "", ""},
		// dbauthz refuses the insert; the handler reports it as internal.
		{"create a key", "POST", keys, createProvisionerKeyRequest{Name: "mine"}, http.StatusInternalServerError, internalMessage, rbacRefusal},
		{"delete a key", "DELETE", keys + "/eks", nil, http.StatusInternalServerError, internalMessage, rbacRefusal},
		// The handler checks provisioner_jobs read and answers 404.
		{"list daemons", "GET", "/api/v2/organizations/default/provisionerdaemons", nil, http.StatusNotFound, notFoundMessage, ""},
		// The /debug middleware needs debug_info read: owners only.
		{"debug health", "GET", "/api/v2/debug/health", nil, http.StatusForbidden, forbiddenMessage, forbiddenDetail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status < 400 {
				expect(t, s, tc.method, tc.path, s.MemberToken(), tc.body, tc.status, nil)
				return
			}
			var resp response
			expect(t, s, tc.method, tc.path, s.MemberToken(), tc.body, tc.status, &resp)
			if resp.Message != tc.message || resp.Detail != tc.detail {
				t.Errorf("body %+v, want message %q detail %q", resp, tc.message, tc.detail)
			}
		})
	}
	var me user
	expect(t, s, "GET", "/api/v2/users/me", s.MemberToken(), nil, http.StatusOK, &me)
	if me.Username != "member" || len(me.Roles) != 0 {
		t.Errorf("member's users/me = %+v, want no site role", me)
	}
	var listed []provisionerKeyJSON
	expect(t, s, "GET", keys, s.Token(), nil, http.StatusOK, &listed)
	if len(listed) != 1 || listed[0].Name != "eks" {
		t.Errorf("keys after the member's attempts = %+v, want only eks", listed)
	}
}

func TestAuthcheck(t *testing.T) {
	s := Require(t, Options{})
	inOrg := func(resource, action, org string) authCheck {
		var c authCheck
		c.Object.ResourceType, c.Object.OrganizationID, c.Action = resource, org, action
		return c
	}
	checks := map[string]authCheck{
		"read daemons":   inOrg("provisioner_daemon", "read", s.OrganizationID()),
		"create keys":    inOrg("provisioner_daemon", "create", s.OrganizationID()),
		"delete keys":    inOrg("provisioner_daemon", "delete", s.OrganizationID()),
		"other org":      inOrg("provisioner_daemon", "read", "00000000-0000-0000-0000-00000000dead"),
		"read debug":     inOrg("debug_info", "read", ""),
		"read the org":   inOrg("organization", "read", s.OrganizationID()),
		"create an org":  inOrg("organization", "create", ""),
		"update license": inOrg("license", "update", ""),
	}
	memberMay := map[string]bool{"read daemons": true, "read the org": true}
	for _, who := range []struct {
		name, token string
		owner       bool
	}{{"owner", s.Token(), true}, {"member", s.MemberToken(), false}} {
		var got map[string]bool
		expect(t, s, "POST", "/api/v2/authcheck", who.token, authCheckRequest{Checks: checks}, http.StatusOK, &got)
		for name := range checks {
			if want := who.owner || memberMay[name]; got[name] != want {
				t.Errorf("%s may %s = %v, want %v", who.name, name, got[name], want)
			}
		}
	}
	var bad response
	expect(t, s, "POST", "/api/v2/authcheck", s.Token(), authCheckRequest{Checks: map[string]authCheck{"x": {Action: "read"}}}, http.StatusBadRequest, &bad)
	if bad.Message != `Object's "resource_type" field must be defined for key "x".` {
		t.Errorf("authcheck without a resource type: %+v", bad)
	}
}

// TestReservedKeys: the key-daemons route lists coderd's reserved keys
// with their fixed IDs, the plain list does not, and they cannot be
// created or deleted.
func TestReservedKeys(t *testing.T) {
	s := Require(t, Options{Licensed: true})
	keys := "/api/v2/organizations/default/provisionerkeys"
	var grouped []provisionerKeyDaemons
	expect(t, s, "GET", keys+"/daemons", s.Token(), nil, http.StatusOK, &grouped)
	want := map[string]string{
		"built-in":  "00000000-0000-0000-0000-000000000001",
		"user-auth": "00000000-0000-0000-0000-000000000002",
		"psk":       "00000000-0000-0000-0000-000000000003",
	}
	if len(grouped) != len(want) {
		t.Fatalf("key daemons of a fresh deployment = %+v, want the three reserved keys", grouped)
	}
	for _, g := range grouped {
		if want[g.Key.Name] != g.Key.ID || g.Key.OrganizationID != s.OrganizationID() || g.Daemons == nil {
			t.Errorf("reserved key %+v, want id %s in the default organization with an empty daemon list", g, want[g.Key.Name])
		}
	}
	var listed []provisionerKeyJSON
	expect(t, s, "GET", keys, s.Token(), nil, http.StatusOK, &listed)
	if len(listed) != 0 {
		t.Errorf("plain key list = %+v, want the reserved keys left out", listed)
	}
	for name := range want {
		var resp response
		expect(t, s, "DELETE", keys+"/"+name, s.Token(), nil, http.StatusBadRequest, &resp)
		if resp.Message != "Cannot delete reserved '"+name+"' provisioner key" {
			t.Errorf("delete %s: %+v", name, resp)
		}
	}
}

func TestProvisionerDaemonsQuery(t *testing.T) {
	s := Require(t, Options{Licensed: true})
	path := "/api/v2/organizations/default/provisionerdaemons"
	cases := []struct {
		query, field string
	}{
		{"?tags=notjson", "tags"},
		{"?limit=-1", "limit"},
		{"?offline=maybe", "offline"},
		{"?max_age=forever", "max_age"},
		{"?colour=blue", "colour"},
	}
	for _, tc := range cases {
		var resp response
		expect(t, s, "GET", path+tc.query, s.Token(), nil, http.StatusBadRequest, &resp)
		if resp.Message != "Invalid query parameters." || len(resp.Validations) != 1 || resp.Validations[0].Field != tc.field {
			t.Errorf("%s: %+v, want one validation error on %s", tc.query, resp, tc.field)
		}
	}
	expect(t, s, "GET", path+`?tags={"scope":"organization"}&status=idle,busy&limit=10&max_age=1h&offline=false`, s.Token(), nil, http.StatusOK, nil)
}

// TestDebugHealth: the report's shape and what a section says about a
// problem set on it; with no daemon at all the provisioner section is an
// error (EPD01), so the report is unhealthy.
func TestDebugHealth(t *testing.T) {
	cases := []struct {
		name, section, severity, code string
		wantError                     string // the section's error, "" = none
		wantWarning                   string // its first warning's code
	}{
		{"no daemons yet", HealthProvisionerDaemons, "", "", "", "EPD01"},
		{"database down", HealthDatabase, severityError, "EDB01", "EDB01: broken", ""},
		{"slow database", HealthDatabase, severityWarning, "EDB02", "", "EDB02"},
		{"websocket", HealthWebsocket, severityError, "EWS01", "EWS01: broken", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := Require(t, Options{Licensed: true})
			if tc.severity != "" {
				s.SetHealth(tc.section, tc.severity, tc.code, "broken")
			}
			var raw map[string]any
			expect(t, s, "GET", "/api/v2/debug/health", s.Token(), nil, http.StatusOK, &raw)
			for _, key := range []string{"time", "healthy", "severity", "derp", "access_url", "websocket", "database", "workspace_proxy", "provisioner_daemons", "coder_version"} {
				if _, ok := raw[key]; !ok {
					t.Errorf("report has no %q", key)
				}
			}
			var rep healthReport
			expect(t, s, "GET", "/api/v2/debug/health", s.Token(), nil, http.StatusOK, &rep)
			sec := map[string]baseReport{HealthDatabase: rep.Database.baseReport, HealthWebsocket: rep.Websocket.baseReport,
				HealthProvisionerDaemons: rep.ProvisionerDaemons.baseReport}[tc.section]
			if got := deref(sec.Error); got != tc.wantError {
				t.Errorf("%s error %q, want %q", tc.section, got, tc.wantError)
			}
			if tc.wantWarning != "" && (len(sec.Warnings) == 0 || sec.Warnings[0].Code != tc.wantWarning) {
				t.Errorf("%s warnings %+v, want %s", tc.section, sec.Warnings, tc.wantWarning)
			}
			if rep.Healthy || rep.Severity != severityError {
				t.Errorf("report healthy %v severity %s, want unhealthy error (no daemons)", rep.Healthy, rep.Severity)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestHealthRollup is healthcheck.Run's summary: the access URL fails the
// report on a warning, every other section only on an error; the report's
// severity is the worst section's.
func TestHealthRollup(t *testing.T) {
	cases := []struct {
		name         string
		set          func(*healthReport)
		wantHealthy  bool
		wantSeverity string
	}{
		{"all ok", func(*healthReport) {}, true, severityOK},
		{"database warning", func(r *healthReport) { r.Database.Severity = severityWarning }, true, severityWarning},
		{"access URL warning", func(r *healthReport) { r.AccessURL.Severity = severityWarning }, false, severityWarning},
		{"DERP error", func(r *healthReport) { r.DERP.Severity = severityError }, false, severityError},
		{"provisioners error", func(r *healthReport) { r.ProvisionerDaemons.Severity = severityError }, false, severityError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r healthReport
			for _, b := range []*baseReport{&r.DERP.baseReport, &r.AccessURL.baseReport, &r.Websocket.baseReport,
				&r.Database.baseReport, &r.WorkspaceProxy.baseReport, &r.ProvisionerDaemons.baseReport} {
				b.Severity = severityOK
			}
			tc.set(&r)
			r.summarize()
			if r.Healthy != tc.wantHealthy || r.Severity != tc.wantSeverity {
				t.Errorf("healthy %v severity %s, want %v %s", r.Healthy, r.Severity, tc.wantHealthy, tc.wantSeverity)
			}
		})
	}
}

// TestBeforeNextKeyCreate: the hook runs once, before the create is
// handled, so a key it makes turns the create into coderd's 409.
func TestBeforeNextKeyCreate(t *testing.T) {
	s := Require(t, Options{Licensed: true})
	keys := "/api/v2/organizations/default/provisionerkeys"
	calls := 0
	s.BeforeNextKeyCreate(func(name string) {
		calls++
		s.addKey(name, nil, s.now()) // the concurrent run's create
	})
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "eks"}, http.StatusConflict, nil)
	expect(t, s, "POST", keys, s.Token(), createProvisionerKeyRequest{Name: "eks-2"}, http.StatusCreated, nil)
	if calls != 1 {
		t.Errorf("hook ran %d times, want once", calls)
	}
}
