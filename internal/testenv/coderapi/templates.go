package coderapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/google/uuid"
)

// Content types of POST /api/v2/files (coderd/files.go).
const (
	contentTypeTar = "application/x-tar"
	contentTypeZip = "application/zip"
)

// fileMaxBytes is coderd's HTTPFileMaxBytes.
const fileMaxBytes = 10 << 20

// templateVersionNamePattern is codersdk's template version name rule.
var templateVersionNamePattern = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[_.-]{1}[a-zA-Z0-9]+)*$`)

// parseUUID answers 400 as httpmw.ParseUUIDParam does when a path ID is
// not a UUID.
func parseUUID(w http.ResponseWriter, r *http.Request, param string) (string, bool) {
	raw := r.PathValue(param)
	id, err := uuid.Parse(raw)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: fmt.Sprintf("Invalid UUID %q.", raw), Detail: err.Error()})
		return "", false
	}
	return id.String(), true
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, response{Message: notFoundMessage})
}

func forbidden(w http.ResponseWriter) {
	writeJSON(w, http.StatusForbidden, response{Message: forbiddenMessage, Detail: forbiddenDetail})
}

// postFile is coderd's postFile for tar archives: the same bytes from the
// same user are the same file (200 with its ID), new ones get a new ID
// (201). The double does not unpack zip archives.
func (s *Server) postFile(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	switch ct {
	case contentTypeTar:
	case contentTypeZip, "application/x-zip-compressed":
		writeJSON(w, http.StatusBadRequest, response{Message: fmt.Sprintf("Unsupported content type header %q.", ct), Detail: "the coderapi double takes only application/x-tar"})
		return
	default:
		writeJSON(w, http.StatusBadRequest, response{Message: fmt.Sprintf("Unsupported content type header %q.", ct)})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fileMaxBytes))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "Failed to read file from request.", Detail: err.Error()})
		return
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	me := identityOf(r).user.ID
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	for _, f := range s.work.files {
		if f.hash == hash && f.createdBy == me {
			writeJSON(w, http.StatusOK, uploadResponse{ID: f.id})
			return
		}
	}
	f := &storedFile{id: newID(), hash: hash, mimetype: ct, createdBy: me, data: data, createdAt: s.now()}
	s.work.files[f.id] = f
	writeJSON(w, http.StatusCreated, uploadResponse{ID: f.id})
}

// fileByID is coderd's fileByID without format conversion: the bytes
// with their content type.
func (s *Server) fileByID(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("fileID")
	id, err := uuid.Parse(raw)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "File id must be a valid UUID.", Detail: err.Error()})
		return
	}
	s.work.mu.Lock()
	f := s.work.files[id.String()]
	s.work.mu.Unlock()
	if f == nil {
		notFound(w)
		return
	}
	w.Header().Set("Content-Type", f.mimetype)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.data)
}

// postTemplateVersion is postTemplateVersionsByOrganization: validation,
// the template and file looked up, tags as MutateTags makes them, and an
// import job queued.
func (s *Server) postTemplateVersion(w http.ResponseWriter, r *http.Request) {
	var req createTemplateVersionRequest
	if !readJSON(w, r, &req) {
		return
	}
	var problems []validationError
	if req.Name != "" && (len(req.Name) > 64 || !templateVersionNamePattern.MatchString(req.Name)) {
		problems = append(problems, tagFailure("name", "template_version_name", req.Name))
	}
	switch req.StorageMethod {
	case "file":
	case "":
		problems = append(problems, tagFailure("storage_method", "required", ""))
	default:
		problems = append(problems, tagFailure("storage_method", "oneof", req.StorageMethod))
	}
	if req.FileID == "" && req.ExampleID == "" {
		problems = append(problems, tagFailure("file_id", "required_without", ""))
	}
	switch req.Provisioner {
	case "terraform", "echo":
	case "":
		problems = append(problems, tagFailure("provisioner", "required", ""))
	default:
		problems = append(problems, tagFailure("provisioner", "oneof", req.Provisioner))
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, response{Message: "Validation failed.", Validations: problems})
		return
	}
	me := identityOf(r)
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if req.TemplateID != "" && s.work.templates[req.TemplateID] == nil {
		writeJSON(w, http.StatusNotFound, response{Message: "Template does not exist."})
		return
	}
	if req.ExampleID != "" && req.FileID != "" {
		writeJSON(w, http.StatusBadRequest, response{Message: "You cannot specify both an example_id and a file_id."})
		return
	}
	if !me.owner {
		forbidden(w)
		return
	}
	if req.ExampleID != "" {
		writeJSON(w, http.StatusNotFound, response{Message: "Example not found.", Detail: "the coderapi double has no examples"})
		return
	}
	if s.work.files[req.FileID] == nil {
		writeJSON(w, http.StatusNotFound, response{Message: "File not found."})
		return
	}
	if req.Name == "" {
		req.Name = generatedName()
	}
	if req.TemplateID != "" {
		for _, v := range s.work.versions {
			if v.templateID == req.TemplateID && v.name == req.Name {
				writeJSON(w, http.StatusConflict, response{
					Message:     fmt.Sprintf("A template version with name %q already exists for this template.", req.Name),
					Validations: []validationError{{Field: "name", Detail: "This value is already in use and should be unique."}},
				})
				return
			}
		}
	}
	now := s.now()
	v := &templateVersion{id: newID(), name: req.Name, message: req.Message, templateID: req.TemplateID, createdAt: now, updatedAt: now, createdBy: me.user, values: req.UserVariableValues}
	v.job = s.newJob(jobImport, me.user.ID, req.FileID, jobTags(me.user.ID, req.ProvisionerTags))
	v.job.version = v
	if req.Provisioner != "terraform" {
		v.job.status = statusFailed
		v.job.doneAt = &now
		v.job.errMsg = "the coderapi double runs only the terraform provisioner"
	}
	s.work.versions[v.id] = v
	writeJSON(w, http.StatusCreated, s.versionJSON(r, v))
}

func (s *Server) versionJSON(r *http.Request, v *templateVersion) templateVersionJSON {
	out := templateVersionJSON{
		ID: v.id, OrganizationID: s.org.ID, CreatedAt: v.createdAt, UpdatedAt: v.updatedAt, Name: v.name, Message: v.message,
		Job: s.jobJSON(v.job), CreatedBy: minimalUser{ID: v.createdBy.ID, Username: v.createdBy.Username, Name: v.createdBy.Name},
		MatchedProvisioners: s.matched(r.Context(), v.job.tags),
	}
	if v.templateID != "" {
		id := v.templateID
		out.TemplateID = &id
	}
	return out
}

// findVersion finds {templateversion} after moving the jobs on, answering
// coderd's errors itself.
func (s *Server) findVersion(w http.ResponseWriter, r *http.Request) (*templateVersion, bool) {
	id, ok := parseUUID(w, r, "templateversion")
	if !ok {
		return nil, false
	}
	if err := s.advance(r.Context()); err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return nil, false
	}
	v := s.work.versions[id]
	if v == nil {
		notFound(w)
		return nil, false
	}
	return v, true
}

func (s *Server) getTemplateVersion(w http.ResponseWriter, r *http.Request) {
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if v, ok := s.findVersion(w, r); ok {
		writeJSON(w, http.StatusOK, s.versionJSON(r, v))
	}
}

func (s *Server) templateVersionLogs(w http.ResponseWriter, r *http.Request) {
	after, ok := afterParam(w, r)
	if !ok {
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if v, ok := s.findVersion(w, r); ok {
		writeJSON(w, http.StatusOK, sortedLogs(v.job, after))
	}
}

// afterParam reads the logs routes' "after" query parameter.
func afterParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := r.URL.Query().Get("after")
	if raw == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "Query param \"after\" must be an integer.", Validations: []validationError{{Field: "after", Detail: "Must be an integer"}}})
		return 0, false
	}
	return n, true
}

// postTemplate is postTemplateByOrganization.
func (s *Server) postTemplate(w http.ResponseWriter, r *http.Request) {
	var req createTemplateRequest
	if !readJSON(w, r, &req) {
		return
	}
	var problems []validationError
	switch {
	case req.Name == "":
		problems = append(problems, tagFailure("name", "required", ""))
	case nameInvalid(req.Name) != "":
		problems = append(problems, tagFailure("name", "template_name", req.Name))
	}
	if req.VersionID == "" {
		problems = append(problems, tagFailure("template_version_id", "required", ""))
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, response{Message: "Validation failed.", Validations: problems})
		return
	}
	me := identityOf(r)
	if !me.owner {
		forbidden(w)
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if s.templateByName(req.Name) != nil {
		writeJSON(w, http.StatusConflict, response{
			Message:     fmt.Sprintf("Template with name %q already exists.", req.Name),
			Validations: []validationError{{Field: "name", Detail: "This value is already in use and should be unique."}},
		})
		return
	}
	v := s.work.versions[req.VersionID]
	if v == nil {
		writeJSON(w, http.StatusNotFound, response{
			Message:     fmt.Sprintf("Template version %q does not exist.", req.VersionID),
			Validations: []validationError{{Field: "template_version_id", Detail: "Template version does not exist"}},
		})
		return
	}
	if v.templateID != "" {
		writeJSON(w, http.StatusBadRequest, response{
			Message:     fmt.Sprintf("Template version %s is already part of a template", req.VersionID),
			Validations: []validationError{{Field: "template_version_id", Detail: "Template version is already part of a template"}},
		})
		return
	}
	now := s.now()
	t := &template{id: newID(), name: req.Name, displayName: req.DisplayName, description: req.Description, icon: req.Icon, activeVersionID: v.id, createdBy: me.user, createdAt: now, updatedAt: now}
	s.work.templates[t.id] = t
	v.templateID = t.id
	writeJSON(w, http.StatusCreated, s.templateJSON(t))
}

func (s *Server) templateByName(name string) *template {
	for _, t := range s.work.templates {
		if t.name == name {
			return t
		}
	}
	return nil
}

func (s *Server) templateJSON(t *template) templateJSON {
	return templateJSON{
		ID: t.id, CreatedAt: t.createdAt, UpdatedAt: t.updatedAt,
		OrganizationID: s.org.ID, OrganizationName: s.org.Name, OrganizationDisplayName: s.org.DisplayName, OrganizationIcon: s.org.Icon,
		Name: t.name, DisplayName: t.displayName, Provisioner: "terraform", ActiveVersionID: t.activeVersionID,
		Description: t.description, Icon: t.icon, ActivityBumpMillis: 3600000,
		CreatedByID: t.createdBy.ID, CreatedByName: t.createdBy.Username,
		AllowUserAutostart: true, AllowUserAutostop: true, AllowUserCancelWorkspaceJobs: false,
		MaxPortShareLevel: "owner",
	}
}

func (s *Server) getTemplateByName(w http.ResponseWriter, r *http.Request) {
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	t := s.templateByName(r.PathValue("templatename"))
	if t == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.templateJSON(t))
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) {
	id, ok := parseUUID(w, r, "template")
	if !ok {
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	t := s.work.templates[id]
	if t == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.templateJSON(t))
}

// patchActiveVersion is patchActiveTemplateVersion: only a version of
// this template whose import succeeded can be promoted.
func (s *Server) patchActiveVersion(w http.ResponseWriter, r *http.Request) {
	id, ok := parseUUID(w, r, "template")
	if !ok {
		return
	}
	var req updateActiveTemplateVersion
	if !readJSON(w, r, &req) {
		return
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	t := s.work.templates[id]
	if t == nil || !identityOf(r).owner {
		notFound(w)
		return
	}
	if err := s.advance(r.Context()); err != nil {
		writeJSON(w, http.StatusInternalServerError, response{Message: internalMessage, Detail: err.Error()})
		return
	}
	v := s.work.versions[req.ID]
	switch {
	case v == nil:
		writeJSON(w, http.StatusNotFound, response{Message: "Template version not found."})
	case v.templateID != t.id:
		writeJSON(w, http.StatusBadRequest, response{Message: "The provided template version doesn't belong to the specified template."})
	case v.job.status != statusSucceeded:
		writeJSON(w, http.StatusForbidden, response{
			Message: "Only versions that have been built successfully can be promoted.",
			Detail:  fmt.Sprintf("Attempted to promote a version with a %s build", v.job.status),
		})
	default:
		t.activeVersionID, t.updatedAt = v.id, s.now()
		writeJSON(w, http.StatusOK, response{Message: "Updated the active template version!"})
	}
}

// generatedName is a version name when the request has none, in the shape
// of coderd's namesgenerator.NameDigitWith("_"): adjective, surname and two
// digits. coderd draws from gofakeit's long word lists, so two versions of
// a template practically never collide; these lists are long enough that a
// test's few versions do not either (a collision is a 409, as in coderd).
func generatedName() string {
	adjectives := []string{"brave", "calm", "eager", "gentle", "happy", "jolly", "keen", "lucid", "merry", "quirky",
		"amber", "bold", "bright", "clever", "daring", "fair", "fancy", "glad", "grand", "hearty",
		"honest", "kind", "lively", "mighty", "noble", "proud", "quiet", "rapid", "shiny", "witty"}
	names := []string{"turing", "hopper", "lovelace", "ritchie", "thompson", "knuth", "liskov", "hamilton", "dijkstra", "pike",
		"allen", "backus", "cerf", "engelbart", "floyd", "goldberg", "hoare", "kay", "lamport", "mccarthy",
		"milner", "naur", "perlis", "rivest", "scott", "shamir", "stroustrup", "torvalds", "wirth", "yao"}
	b := uuid.New()
	return fmt.Sprintf("%s_%s%02d", adjectives[int(b[0])%len(adjectives)], names[int(b[1])%len(names)], int(b[2])%100)
}
