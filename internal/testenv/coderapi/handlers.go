package coderapi

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Messages coderd sends, so clients that match on them behave as against
// the real server.
const (
	signedOutMessage = "You are signed out or your session has expired. Please sign in again to continue."
	notFoundMessage  = "Resource not found or you do not have access to this resource"
	routeNotFound    = "Route not found."
)

// The provisioner and agent API versions the double claims to speak.
const (
	provisionerAPIVersion = "1.7"
	agentAPIVersion       = "2.6"
)

// Premium features the double models: more than one coderd replica needs
// high_availability, provisioners outside coderd need
// external_provisioner_daemons.
const (
	featureExternalProvisioners = "external_provisioner_daemons"
	featureHighAvailability     = "high_availability"
	featureMultipleOrgs         = "multiple_organizations"
)

// humanFeature is codersdk.FeatureName.Humanize: words split at "_",
// each capitalised.
func humanFeature(name string) string {
	words := strings.Split(name, "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /api/v2/buildinfo", s.buildInfo)
	mux.Handle("GET /api/v2/users/me", s.authed(s.currentUser))
	mux.Handle("GET /api/v2/entitlements", s.authed(s.entitlements))
	mux.Handle("GET /api/v2/organizations", s.authed(s.organizations))
	mux.Handle("GET /api/v2/organizations/{org}", s.authed(s.inOrg(s.organization)))

	keys := "/api/v2/organizations/{org}/provisionerkeys"
	mux.Handle("GET "+keys, s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.listKeys))))
	mux.Handle("POST "+keys, s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.createKey))))
	mux.Handle("GET "+keys+"/daemons", s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.keyDaemons))))
	mux.Handle("DELETE "+keys+"/{name}", s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.deleteKey))))
	mux.Handle("GET /api/v2/organizations/{org}/provisionerdaemons", s.authed(s.inOrg(s.daemons)))

	mux.HandleFunc("/api/v2/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, response{Message: routeNotFound})
	})
	return testDoubleHeader(mux)
}

// testDoubleHeader marks every answer, so nobody mistakes a capture of this
// traffic for a real coderd.
func testDoubleHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Coder-Test-Double", "coderapi")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
}

func (s *Server) buildInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, buildInfo{
		ExternalURL:           "https://github.com/coder/coder/releases/tag/" + strings.SplitN(s.version, "+", 2)[0],
		Version:               s.version,
		DashboardURL:          s.url,
		AgentAPIVersion:       agentAPIVersion,
		ProvisionerAPIVersion: provisionerAPIVersion,
		DeploymentID:          s.org.ID,
	})
}

// authed admits requests carrying the owner's session token in the
// Coder-Session-Token header, the coder_session_token cookie or query
// parameter — the places coderd looks — and answers 401 otherwise.
func (s *Server) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := sessionToken(r)
		if token == "" {
			writeJSON(w, http.StatusUnauthorized, response{
				Message: signedOutMessage,
				Detail:  fmt.Sprintf("Cookie %q or query parameter must be provided.", sessionTokenCookie),
			})
			return
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, response{Message: signedOutMessage, Detail: "API key is invalid."})
			return
		}
		next(w, r)
	})
}

func sessionToken(r *http.Request) string {
	if v := r.Header.Get(SessionTokenHeader); v != "" {
		return v
	}
	if c, err := r.Cookie(sessionTokenCookie); err == nil && c.Value != "" {
		return c.Value
	}
	return r.URL.Query().Get(sessionTokenCookie)
}

// inOrg resolves {org} as coderd does: the organization's ID, its name, or
// "default".
func (s *Server) inOrg(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("org") {
		case s.org.ID, s.org.Name, "default":
			next(w, r)
		default:
			writeJSON(w, http.StatusNotFound, response{Message: notFoundMessage})
		}
	}
}

// premium answers 403 as coderd's RequireFeatureMW does when the license
// does not cover the feature.
func (s *Server) premium(feature string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.isLicensed() {
			writeJSON(w, http.StatusForbidden, response{
				Message: fmt.Sprintf("%s is a Premium feature. Contact sales!", humanFeature(feature)),
			})
			return
		}
		next(w, r)
	}
}

func (s *Server) currentUser(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.owner)
}

func (s *Server) organizations(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []organization{s.org})
}

func (s *Server) organization(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.org)
}

func (s *Server) entitlements(w http.ResponseWriter, _ *http.Request) {
	licensed := s.isLicensed()
	features := map[string]feature{}
	for _, name := range []string{featureExternalProvisioners, featureHighAvailability, featureMultipleOrgs} {
		f := feature{Entitlement: "not_entitled"}
		if licensed {
			f = feature{Entitlement: "entitled", Enabled: true}
		}
		features[name] = f
	}
	writeJSON(w, http.StatusOK, entitlements{
		Features:    features,
		Warnings:    []string{},
		Errors:      []string{},
		HasLicense:  licensed,
		RefreshedAt: time.Now().UTC(),
	})
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req createProvisionerKeyRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "Request body must be valid JSON.", Detail: err.Error()})
		return
	}
	if msg := validateKeyName(req.Name); msg != "" {
		writeJSON(w, http.StatusBadRequest, response{
			Message:     msg,
			Validations: []validationError{{Field: "name", Detail: msg}},
		})
		return
	}
	secret, ok := s.addKey(req.Name, req.Tags)
	if !ok {
		writeJSON(w, http.StatusConflict, response{
			Message: fmt.Sprintf("Provisioner key with name '%s' already exists in organization", req.Name),
		})
		return
	}
	writeJSON(w, http.StatusCreated, createProvisionerKeyResponse{Key: secret})
}

func (s *Server) listKeys(w http.ResponseWriter, _ *http.Request) {
	out := []provisionerKeyJSON{}
	for _, k := range s.keySnapshot() {
		out = append(out, k.public())
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	if !s.removeKey(r.PathValue("name")) {
		writeJSON(w, http.StatusNotFound, response{Message: notFoundMessage})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) daemons(w http.ResponseWriter, r *http.Request) {
	want, err := tagsFilter(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "Invalid query parameters.", Detail: err.Error()})
		return
	}
	all, err := s.connectedDaemons(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: "Internal error fetching provisioner daemons.", Detail: err.Error()})
		return
	}
	out := []provisionerDaemon{}
	for _, d := range all {
		if hasTags(d.Tags, want) {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) keyDaemons(w http.ResponseWriter, r *http.Request) {
	all, err := s.connectedDaemons(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: "Internal error fetching provisioner daemons.", Detail: err.Error()})
		return
	}
	out := []provisionerKeyDaemons{}
	for _, k := range s.keySnapshot() {
		entry := provisionerKeyDaemons{Key: k.public(), Daemons: []provisionerDaemon{}}
		for _, d := range all {
			if d.KeyID == k.id {
				entry.Daemons = append(entry.Daemons, d)
			}
		}
		out = append(out, entry)
	}
	writeJSON(w, http.StatusOK, out)
}

// tagsFilter reads ?tags={"k":"v"}, the provisionerdaemons filter.
func tagsFilter(r *http.Request) (map[string]string, error) {
	raw := r.URL.Query().Get("tags")
	if raw == "" {
		return nil, nil
	}
	var tags map[string]string
	if err := json.Unmarshal([]byte(raw), &tags); err != nil {
		return nil, fmt.Errorf("tags must be a JSON object of strings: %w", err)
	}
	return tags, nil
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "\t")
	_ = enc.Encode(body)
}
