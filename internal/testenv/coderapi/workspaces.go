package coderapi

import (
	"context"
	"fmt"
	"maps"
	"net/http"

	"github.com/google/uuid"
)

// userParam resolves {user} as ExtractUserParam does: "me", an ID or a
// username.
func (s *Server) userParam(w http.ResponseWriter, r *http.Request) (user, bool) {
	raw := r.PathValue("user")
	me := identityOf(r).user
	if raw == "" {
		writeJSON(w, http.StatusBadRequest, response{Message: "\"user\" must be provided."})
		return user{}, false
	}
	if raw == "me" {
		return me, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		if a.user.ID == raw || a.user.Username == raw {
			return a.user, true
		}
	}
	if _, err := uuid.Parse(raw); err == nil {
		notFound(w)
	} else {
		writeJSON(w, http.StatusBadRequest, response{Message: "\"user\" must be an existing uuid or username."})
	}
	return user{}, false
}

// postWorkspace is postUserWorkspaces and postWorkspacesByOrganization:
// a workspace from a template's active version or a given version, and
// its first build, a start. A member creates workspaces only for
// themselves.
func (s *Server) postWorkspace(w http.ResponseWriter, r *http.Request) {
	owner, ok := s.userParam(w, r)
	if !ok {
		return
	}
	var req createWorkspaceRequest
	if !readJSON(w, r, &req) {
		return
	}
	var problems []validationError
	switch {
	case req.Name == "":
		problems = append(problems, tagFailure("name", "required", ""))
	case nameInvalid(req.Name) != "":
		problems = append(problems, tagFailure("name", "workspace_name", req.Name))
	}
	switch {
	case req.TemplateID == "" && req.TemplateVersionID == "":
		problems = append(problems, tagFailure("template_id", "required_without", ""))
	case req.TemplateID != "" && req.TemplateVersionID != "":
		problems = append(problems, tagFailure("template_id", "excluded_with", req.TemplateID))
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, response{Message: "Validation failed.", Validations: problems})
		return
	}
	me := identityOf(r)
	if !me.owner && owner.ID != me.user.ID {
		forbidden(w)
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	var t *template
	var v *templateVersion
	if req.TemplateVersionID != "" {
		v = s.work.versions[req.TemplateVersionID]
		if v == nil || v.templateID == "" {
			writeJSON(w, http.StatusBadRequest, response{Message: fmt.Sprintf("Template version %q doesn't exist.", req.TemplateVersionID)})
			return
		}
		t = s.work.templates[v.templateID]
	} else {
		t = s.work.templates[req.TemplateID]
		if t == nil {
			writeJSON(w, http.StatusBadRequest, response{Message: fmt.Sprintf("Template %q doesn't exist.", req.TemplateID)})
			return
		}
		v = s.work.versions[t.activeVersionID]
	}
	for _, ws := range s.work.workspaces {
		if !ws.deleted && ws.owner.ID == owner.ID && ws.name == req.Name {
			writeJSON(w, http.StatusConflict, response{
				Message:     fmt.Sprintf("Workspace %q already exists.", req.Name),
				Validations: []validationError{{Field: "name", Detail: "This value is already in use and should be unique."}},
			})
			return
		}
	}
	if err := s.advance(r.Context()); err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return
	}
	if status, msg := versionUnusable(v); msg != "" {
		writeJSON(w, status, response{Message: msg, Detail: msg})
		return
	}
	now := s.now()
	ws := &workspace{id: newID(), name: req.Name, owner: owner, templateID: t.id, createdAt: now, updatedAt: now}
	s.newBuild(ws, v, transitionStart, me.user)
	s.work.workspaces[ws.id] = ws
	writeJSON(w, http.StatusCreated, s.workspaceJSON(r.Context(), ws))
}

// versionUnusable is wsbuilder's checkTemplateJobStatus: a version still
// importing is 406, a failed import 400.
func versionUnusable(v *templateVersion) (int, string) {
	switch v.job.status {
	case statusPending, statusRunning:
		return http.StatusNotAcceptable, fmt.Sprintf("The provided template version is %s. Wait for it to complete importing!", v.job.status)
	case statusFailed:
		return http.StatusBadRequest, fmt.Sprintf("The provided template version %q has failed to import: %q. You cannot build workspaces with it!", v.name, v.job.errMsg)
	}
	return 0, ""
}

// newBuild queues a build of ws with v's template: its job carries the
// import's tags, as coderd's do.
func (s *Server) newBuild(ws *workspace, v *templateVersion, transition string, initiator user) *build {
	b := &build{id: newID(), number: int32(len(ws.builds) + 1), transition: transition, versionID: v.id, initiator: initiator, createdAt: s.now(), ws: ws}
	if v.parsed != nil {
		b.agents = s.newAgents(v.parsed)
	}
	b.job = s.newJob(jobBuild, initiator.ID, v.job.fileID, maps.Clone(v.job.tags))
	b.job.build, b.job.version = b, v
	ws.builds = append(ws.builds, b)
	ws.updatedAt = b.createdAt
	s.work.builds[b.id] = b
	return b
}

// findWorkspace resolves {workspace} after moving the jobs on. Callers
// hold s.work.mu.
func (s *Server) findWorkspace(w http.ResponseWriter, r *http.Request) (*workspace, bool) {
	id, ok := parseUUID(w, r, "workspace")
	if !ok {
		return nil, false
	}
	if err := s.advance(r.Context()); err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return nil, false
	}
	ws := s.work.workspaces[id]
	me := identityOf(r)
	if ws == nil || (!me.owner && ws.owner.ID != me.user.ID) {
		notFound(w)
		return nil, false
	}
	return ws, true
}

// getWorkspace answers even for a deleted workspace, as GetWorkspaceByID
// does; its latest build then says "deleted".
func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request) {
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if ws, ok := s.findWorkspace(w, r); ok {
		writeJSON(w, http.StatusOK, s.workspaceJSON(r.Context(), ws))
	}
}

// workspaceByOwnerAndName finds a workspace that is not deleted.
func (s *Server) workspaceByOwnerAndName(w http.ResponseWriter, r *http.Request) {
	owner, ok := s.userParam(w, r)
	if !ok {
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if err := s.advance(r.Context()); err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return
	}
	me := identityOf(r)
	for _, ws := range s.work.workspaces {
		if !ws.deleted && ws.owner.ID == owner.ID && ws.name == r.PathValue("workspacename") && (me.owner || owner.ID == me.user.ID) {
			writeJSON(w, http.StatusOK, s.workspaceJSON(r.Context(), ws))
			return
		}
	}
	notFound(w)
}

// postWorkspaceBuild is postWorkspaceBuilds: start, stop or delete with
// the previous build's version unless one is given; refused for a
// deleted workspace or while a build is active.
func (s *Server) postWorkspaceBuild(w http.ResponseWriter, r *http.Request) {
	var req createWorkspaceBuildRequest
	if !readJSON(w, r, &req) {
		return
	}
	switch req.Transition {
	case transitionStart, transitionStop, transitionDelete:
	case "":
		writeJSON(w, http.StatusBadRequest, response{Message: "Validation failed.", Validations: []validationError{tagFailure("transition", "required", "")}})
		return
	default:
		writeJSON(w, http.StatusBadRequest, response{Message: "Validation failed.", Validations: []validationError{tagFailure("transition", "oneof", req.Transition)}})
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	ws, ok := s.findWorkspace(w, r)
	if !ok {
		return
	}
	if ws.deleted {
		writeJSON(w, http.StatusConflict, response{Message: fmt.Sprintf("Cannot %s a deleted workspace!", req.Transition)})
		return
	}
	if req.Orphan && req.Transition != transitionDelete {
		writeJSON(w, http.StatusBadRequest, response{Message: "Orphan is only permitted when deleting a workspace."})
		return
	}
	latest := ws.builds[len(ws.builds)-1]
	if latest.job.status == statusPending || latest.job.status == statusRunning {
		msg := "A workspace build is already active."
		writeJSON(w, http.StatusConflict, response{Message: msg, Detail: msg})
		return
	}
	v := s.work.versions[latest.versionID]
	if req.TemplateVersionID != "" {
		v = s.work.versions[req.TemplateVersionID]
		if v == nil {
			writeJSON(w, http.StatusBadRequest, response{Message: "template version does not exist", Detail: "template version does not exist"})
			return
		}
		if v.templateID != ws.templateID {
			writeJSON(w, http.StatusBadRequest, response{Message: "template version doesn't match template", Detail: "template version doesn't match template"})
			return
		}
	}
	if status, msg := versionUnusable(v); msg != "" {
		writeJSON(w, status, response{Message: msg, Detail: msg})
		return
	}
	b := s.newBuild(ws, v, req.Transition, identityOf(r).user)
	if req.Orphan {
		// Orphan: coderd completes the job at once and forgets the
		// resources, leaving them on the cluster.
		now := s.now()
		b.job.status, b.job.startedAt, b.job.doneAt = statusSucceeded, &now, &now
		ws.state, ws.deleted = nil, true
	}
	writeJSON(w, http.StatusCreated, s.buildJSON(r.Context(), b))
}

// findBuild resolves {workspacebuild} after moving the jobs on.
func (s *Server) findBuild(w http.ResponseWriter, r *http.Request) (*build, bool) {
	id, ok := parseUUID(w, r, "workspacebuild")
	if !ok {
		return nil, false
	}
	if err := s.advance(r.Context()); err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return nil, false
	}
	b := s.work.builds[id]
	me := identityOf(r)
	if b == nil || (!me.owner && b.ws.owner.ID != me.user.ID) {
		notFound(w)
		return nil, false
	}
	return b, true
}

func (s *Server) getWorkspaceBuild(w http.ResponseWriter, r *http.Request) {
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if b, ok := s.findBuild(w, r); ok {
		writeJSON(w, http.StatusOK, s.buildJSON(r.Context(), b))
	}
}

func (s *Server) workspaceBuildLogs(w http.ResponseWriter, r *http.Request) {
	after, ok := afterParam(w, r)
	if !ok {
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if b, ok := s.findBuild(w, r); ok {
		writeJSON(w, http.StatusOK, sortedLogs(b.job, after))
	}
}

func (s *Server) workspaceJSON(ctx context.Context, ws *workspace) workspaceJSON {
	latest := s.buildJSON(ctx, ws.builds[len(ws.builds)-1])
	out := workspaceJSON{
		ID: ws.id, CreatedAt: ws.createdAt, UpdatedAt: ws.updatedAt, OwnerID: ws.owner.ID, OwnerName: ws.owner.Username,
		OrganizationID: s.org.ID, OrganizationName: s.org.Name, TemplateID: ws.templateID,
		LatestBuild: latest, Name: ws.name, LastUsedAt: ws.updatedAt, AutomaticUpdates: "never",
		Health: workspaceHealth{Healthy: true, FailingAgents: []string{}},
	}
	if t := s.work.templates[ws.templateID]; t != nil {
		out.TemplateName, out.TemplateDisplayName, out.TemplateIcon = t.name, t.displayName, t.icon
		out.TemplateActiveVersionID = t.activeVersionID
		out.Outdated = latest.TemplateVersionID != t.activeVersionID
	}
	for _, res := range latest.Resources {
		for _, a := range res.Agents {
			if !a.Health.Healthy {
				out.Health.Healthy = false
				out.Health.FailingAgents = append(out.Health.FailingAgents, a.ID)
			}
		}
	}
	return out
}

// buildStatus is codersdk.WorkspaceStatus from the job and transition.
func buildStatus(b *build) string {
	switch b.job.status {
	case statusPending:
		return "pending"
	case statusRunning:
		return map[string]string{transitionStart: "starting", transitionStop: "stopping", transitionDelete: "deleting"}[b.transition]
	case statusSucceeded:
		return map[string]string{transitionStart: "running", transitionStop: "stopped", transitionDelete: "deleted"}[b.transition]
	}
	return "failed"
}

func (s *Server) buildJSON(ctx context.Context, b *build) workspaceBuildJSON {
	out := workspaceBuildJSON{
		ID: b.id, CreatedAt: b.createdAt, UpdatedAt: b.createdAt, WorkspaceID: b.ws.id, WorkspaceName: b.ws.name,
		WorkspaceOwnerID: b.ws.owner.ID, WorkspaceOwnerName: b.ws.owner.Username,
		TemplateVersionID: b.versionID, BuildNumber: b.number, Transition: b.transition,
		InitiatorID: b.initiator.ID, InitiatorUsername: b.initiator.Username,
		Job: s.jobJSON(b.job), Reason: "initiator", Resources: []workspaceResourceJSON{}, Status: buildStatus(b),
		MatchedProvisioners: s.matched(ctx, b.job.tags),
	}
	if v := s.work.versions[b.versionID]; v != nil {
		out.TemplateVersionName = v.name
	}
	if b.job.status != statusSucceeded {
		return out // coderd records resources when the job completes
	}
	latest := b.ws.builds[len(b.ws.builds)-1] == b
	for _, res := range b.resources {
		rj := workspaceResourceJSON{ID: res.id, CreatedAt: *b.job.doneAt, JobID: b.job.id, Transition: b.transition, Type: res.typ, Name: res.name}
		for _, name := range res.agents {
			for _, a := range b.agents {
				if a.name == name {
					rj.Agents = append(rj.Agents, s.agentJSON(ctx, b, a, res.id, latest))
				}
			}
		}
		out.Resources = append(out.Resources, rj)
	}
	return out
}

// agentJSON reports an agent as coderd derives its status: connected
// while its pod runs it (see agentConnected), disconnected once it has
// been and no longer is, timeout when it never connected within the
// connection timeout, connecting before that.
func (s *Server) agentJSON(ctx context.Context, b *build, a *agentRecord, resourceID string, latest bool) workspaceAgentJSON {
	now := s.now()
	connected := false
	if latest && b.transition == transitionStart {
		var err error
		if connected, err = s.agentConnected(ctx, b, a); err != nil {
			connected = false
		}
	}
	if connected {
		if a.firstConnected == nil {
			a.firstConnected = &now
		}
		a.lastSeen, a.disconnectedAt = &now, nil
	} else if a.firstConnected != nil && a.disconnectedAt == nil {
		a.disconnectedAt = &now
	}
	out := workspaceAgentJSON{
		ID: a.identity.id, CreatedAt: a.createdAt, UpdatedAt: now, FirstConnectedAt: a.firstConnected, LastConnectedAt: a.lastSeen,
		DisconnectedAt: a.disconnectedAt, Name: a.name, ResourceID: resourceID, Architecture: a.arch, OperatingSystem: a.os,
		Directory: a.dir, EnvironmentVariables: map[string]string{}, Apps: []struct{}{},
		ConnectionTimeoutSeconds: int32(agentConnectionTimeout.Seconds()), LifecycleState: "created",
	}
	switch {
	case connected:
		out.Status, out.LifecycleState = "connected", "ready"
		out.StartedAt, out.ReadyAt = a.firstConnected, a.firstConnected
		out.Version, out.APIVersion = s.version, agentAPIVersion
		out.Health = agentHealth{Healthy: true}
	case a.firstConnected != nil:
		out.Status, out.LifecycleState = "disconnected", "ready"
		out.Health = agentHealth{Reason: "agent is not connected"}
	case now.Sub(a.createdAt) > agentConnectionTimeout:
		out.Status = "timeout"
		out.Health = agentHealth{Reason: "agent is taking too long to connect"}
	default:
		out.Status = "connecting"
		out.Health = agentHealth{Reason: "agent has not yet connected"}
	}
	return out
}
