package coderapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Messages coderd sends (coderd/httpapi/httpapi.go and the handlers named
// below), so clients that match on them behave as against the real server.
const (
	signedOutMessage = "You are signed out or your session has expired. Please sign in again to continue."
	notFoundMessage  = "Resource not found or you do not have access to this resource"
	routeNotFound    = "Route not found."
	forbiddenMessage = "Forbidden."
	forbiddenDetail  = "You don't have permission to view this content. If you believe this is a mistake, please contact your administrator or try signing in with different credentials."
	internalMessage  = "An internal server error occurred."
	// rbacRefusal is the detail of dbauthz's NotAuthorizedError outside
	// tests ("unauthorized: " + rbac's errUnauthorized, coderd/rbac/error.go).
	rbacRefusal = "unauthorized: rbac: forbidden"
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

// routes follows coderd/coderd.go and enterprise/coderd/coderd.go: which
// routes need a session token and which are premium.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /api/v2/buildinfo", s.buildInfo)
	// enterprise/coderd/coderd.go serves /entitlements outside the
	// apiKeyMiddleware group: no token needed.
	mux.HandleFunc("GET /api/v2/entitlements", s.entitlements)
	mux.Handle("GET /api/v2/users/me", s.authed(s.currentUser))
	mux.Handle("POST /api/v2/authcheck", s.authed(s.authcheck))
	mux.Handle("GET /api/v2/debug/health", s.authed(ownerOnly(s.debugHealth)))
	mux.Handle("GET /api/v2/organizations", s.authed(s.organizations))
	mux.Handle("GET /api/v2/organizations/{org}", s.authed(s.inOrg(s.organization)))

	keys := "/api/v2/organizations/{org}/provisionerkeys"
	mux.Handle("GET "+keys, s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.listKeys))))
	mux.Handle("POST "+keys, s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.createKey))))
	mux.Handle("GET "+keys+"/daemons", s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.keyDaemons))))
	mux.Handle("DELETE "+keys+"/{name}", s.authed(s.inOrg(s.premium(featureExternalProvisioners, s.deleteKey))))
	mux.Handle("GET /api/v2/organizations/{org}/provisionerdaemons", s.authed(s.inOrg(s.listDaemons)))

	// users/first and users/login need no session (coderd/coderd.go).
	mux.HandleFunc("GET /api/v2/users/first", s.firstUser)
	mux.HandleFunc("POST /api/v2/users/first", s.postFirstUser)
	mux.HandleFunc("POST /api/v2/users/login", s.postLogin)
	mux.Handle("POST /api/v2/files", s.authed(s.postFile))
	mux.Handle("GET /api/v2/files/{fileID}", s.authed(s.fileByID))
	mux.Handle("POST /api/v2/organizations/{org}/templateversions", s.authed(s.inOrg(s.postTemplateVersion)))
	mux.Handle("POST /api/v2/organizations/{org}/templates", s.authed(s.inOrg(s.postTemplate)))
	mux.Handle("GET /api/v2/organizations/{org}/templates/{templatename}", s.authed(s.inOrg(s.getTemplateByName)))
	mux.Handle("GET /api/v2/templates/{template}", s.authed(s.getTemplate))
	mux.Handle("PATCH /api/v2/templates/{template}/versions", s.authed(s.patchActiveVersion))
	mux.Handle("GET /api/v2/templateversions/{templateversion}", s.authed(s.getTemplateVersion))
	mux.Handle("GET /api/v2/templateversions/{templateversion}/logs", s.authed(s.templateVersionLogs))
	mux.Handle("POST /api/v2/users/{user}/workspaces", s.authed(s.postWorkspace))
	mux.Handle("POST /api/v2/organizations/{org}/members/{user}/workspaces", s.authed(s.inOrg(s.postWorkspace)))
	mux.Handle("GET /api/v2/users/{user}/workspace/{workspacename}", s.authed(s.workspaceByOwnerAndName))
	mux.Handle("GET /api/v2/workspaces/{workspace}", s.authed(s.getWorkspace))
	mux.Handle("POST /api/v2/workspaces/{workspace}/builds", s.authed(s.postWorkspaceBuild))
	mux.Handle("GET /api/v2/workspacebuilds/{workspacebuild}", s.authed(s.getWorkspaceBuild))
	mux.Handle("GET /api/v2/workspacebuilds/{workspacebuild}/logs", s.authed(s.workspaceBuildLogs))

	mux.HandleFunc("/api/v2/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, response{Message: routeNotFound})
	})
	return s.common(mux)
}

// common marks every answer, so nobody mistakes a capture of this traffic
// for a real coderd, and dates it by the double's clock (Advance), which
// is what a client judging last_seen_at by the server's Date sees.
func (s *Server) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Coder-Test-Double", "coderapi")
		w.Header().Set("Date", s.now().Format(http.TimeFormat))
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
}

func (s *Server) buildInfo(w http.ResponseWriter, r *http.Request) {
	version := s.currentVersion(r.Context())
	writeJSON(w, http.StatusOK, buildInfo{
		ExternalURL:           "https://github.com/coder/coder/releases/tag/" + strings.SplitN(version, "+", 2)[0],
		Version:               version,
		DashboardURL:          s.url,
		AgentAPIVersion:       agentAPIVersion,
		ProvisionerAPIVersion: provisionerAPIVersion,
		DeploymentID:          s.org.ID,
	})
}

// identity is who a request's token belongs to.
type identity struct {
	user  user
	owner bool
}

type identityKey struct{}

func identityOf(r *http.Request) identity {
	id, _ := r.Context().Value(identityKey{}).(identity)
	return id
}

// authed admits requests carrying a known session token in the
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
		id, ok := s.identify(token)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, response{Message: signedOutMessage, Detail: "API key is invalid."})
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// identify finds the user a session token belongs to: the initial owner
// and member tokens and every session handed out by a login.
func (s *Server) identify(token string) (identity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.sessions[token]
	if a == nil {
		return identity{}, false
	}
	return identity{user: a.user, owner: a.owner}, true
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

// ownerOnly answers 403 Forbidden to everyone but the owner, as the /debug
// routes do for users who may not read debug_info (coderd/coderd.go).
func ownerOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !identityOf(r).owner {
			writeJSON(w, http.StatusForbidden, response{Message: forbiddenMessage, Detail: forbiddenDetail})
			return
		}
		next(w, r)
	}
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

func (s *Server) currentUser(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, identityOf(r).user)
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
		RefreshedAt: s.now(),
	})
}

// createKey is postProvisionerKey (enterprise/coderd/provisionerkeys.go).
// RBAC sits in the database layer there, so a member's insert fails as an
// internal error after the name checks.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req createProvisionerKeyRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "Request body must be valid JSON.", Detail: err.Error()})
		return
	}
	if f := s.takeOnCreate(); f != nil {
		f(req.Name)
	}
	if msg := validateKeyName(req.Name); msg != "" {
		writeJSON(w, http.StatusBadRequest, response{
			Message:     msg,
			Validations: []validationError{{Field: "name", Detail: msg}},
		})
		return
	}
	if !identityOf(r).owner {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: rbacRefusal})
		return
	}
	secret, ok := s.addKey(req.Name, req.Tags, s.now())
	if !ok {
		writeJSON(w, http.StatusConflict, response{
			Message: fmt.Sprintf("Provisioner key with name '%s' already exists in organization", req.Name),
		})
		return
	}
	writeJSON(w, http.StatusCreated, createProvisionerKeyResponse{Key: secret})
}

// listKeys leaves the reserved keys out
// (ListProvisionerKeysByOrganizationExcludeReserved), sorted by creation.
func (s *Server) listKeys(w http.ResponseWriter, _ *http.Request) {
	out := []provisionerKeyJSON{}
	for _, k := range s.keySnapshot() {
		if !k.reserved {
			out = append(out, k.public())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteKey is deleteProvisionerKey after ExtractProvisionerKeyParam: an
// unknown name is 404, a reserved one 400, a member's delete an internal
// error (dbauthz), otherwise 204.
func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	k := s.findKey(r.PathValue("name"))
	switch {
	case k == nil:
		writeJSON(w, http.StatusNotFound, response{Message: notFoundMessage})
	case k.reserved:
		writeJSON(w, http.StatusBadRequest, response{Message: fmt.Sprintf("Cannot delete reserved '%s' provisioner key", k.name)})
	case !identityOf(r).owner:
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: rbacRefusal})
	default:
		s.removeKey(k.id)
		w.WriteHeader(http.StatusNoContent)
	}
}

// keyDaemons is provisionerKeyDaemons: every key, reserved ones included,
// each with the daemons seen within keyDaemonsWindow, key_name and status
// null.
func (s *Server) keyDaemons(w http.ResponseWriter, r *http.Request) {
	all, now, err := s.registered(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return
	}
	listed := recent(all, now, keyDaemonsWindow)
	sort.Slice(listed, func(i, j int) bool { return listed[i].name < listed[j].name })
	out := []provisionerKeyDaemons{}
	for _, k := range s.keySnapshot() {
		entry := provisionerKeyDaemons{Key: k.public(), Daemons: []provisionerDaemon{}}
		for _, d := range listed {
			if d.keyID == k.id {
				entry.Daemons = append(entry.Daemons, d.json(s))
			}
		}
		out = append(out, entry)
	}
	writeJSON(w, http.StatusOK, out)
}

// listDaemons is provisionerDaemons (coderd/provisionerdaemons.go): only those
// who may read provisioner jobs in the organization (owners, admins) see
// it, others get 404; then the query of
// GetProvisionerDaemonsWithStatusByOrganization.
func (s *Server) listDaemons(w http.ResponseWriter, r *http.Request) {
	if !identityOf(r).owner {
		writeJSON(w, http.StatusNotFound, response{Message: notFoundMessage})
		return
	}
	q, problems := parseDaemonQuery(r.URL.Query())
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, response{Message: "Invalid query parameters.", Validations: problems})
		return
	}
	all, now, err := s.registered(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: "Internal error fetching provisioner daemons.", Detail: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, q.apply(s, all, now))
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "\t")
	_ = enc.Encode(body)
}
