package coderapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"
)

// Provisioner jobs, as coderd queues them: created pending with tags,
// acquired by a connected daemon whose tags contain the job's (an
// untagged job only by an untagged daemon), run, then succeeded or
// failed. The double has no clock of its own driving them: each request
// that reads a version, a workspace or a build first moves every job one
// step (advance), so a client polling as coderd's own does sees pending,
// running, then the outcome, and a job nobody can run stays pending.

// Job types (codersdk.ProvisionerJobType).
const (
	jobImport = "template_version_import"
	jobBuild  = "workspace_build"
)

// Job statuses (codersdk.ProvisionerJobStatus).
const (
	statusPending   = "pending"
	statusRunning   = "running"
	statusSucceeded = "succeeded"
	statusFailed    = "failed"
)

// Workspace transitions.
const (
	transitionStart  = "start"
	transitionStop   = "stop"
	transitionDelete = "delete"
)

// errorCodeRequiredVariables is codersdk.RequiredTemplateVariables.
const errorCodeRequiredVariables = "REQUIRED_TEMPLATE_VARIABLES"

// workspaceState is everything the template and workspace endpoints keep,
// under its own lock (held across a job step's Kubernetes calls, so the
// Server's lock stays short).
type workspaceState struct {
	mu         sync.Mutex
	files      map[string]*storedFile
	versions   map[string]*templateVersion
	templates  map[string]*template
	workspaces map[string]*workspace
	builds     map[string]*build
	jobs       []*job // in creation order: the queue
	logID      int64
}

func (w *workspaceState) init() {
	w.files = map[string]*storedFile{}
	w.versions = map[string]*templateVersion{}
	w.templates = map[string]*template{}
	w.workspaces = map[string]*workspace{}
	w.builds = map[string]*build{}
}

type storedFile struct {
	id, hash, mimetype, createdBy string
	data                          []byte
	createdAt                     time.Time
}

type job struct {
	id, typ, status   string
	createdAt         time.Time
	startedAt, doneAt *time.Time
	errMsg, errCode   string
	workerID, worker  string
	fileID            string
	tags              map[string]string
	initiatorID       string
	version           *templateVersion // the import's, or the build's
	build             *build           // workspace builds only
	logs              []provisionerJobLog

	applied bool      // a build's objects were sent to the cluster
	waits   []waitFor // what the build still waits for
}

type templateVersion struct {
	id, name, message string
	templateID        string
	createdAt         time.Time
	updatedAt         time.Time
	createdBy         user
	job               *job
	values            []variableValue
	parsed            *tfTemplate // once the import succeeded
}

type template struct {
	id, name, displayName, description, icon string
	activeVersionID                          string
	createdBy                                user
	createdAt, updatedAt                     time.Time
}

type workspace struct {
	id, name             string
	owner                user
	templateID           string
	createdAt, updatedAt time.Time
	builds               []*build // oldest first
	deleted              bool
	state                []kubeRef // objects Terraform state holds, in creation order
}

type build struct {
	id         string
	number     int32
	transition string
	versionID  string
	initiator  user
	createdAt  time.Time
	ws         *workspace
	job        *job
	agents     []*agentRecord
	resources  []resourceRecord // once the job succeeded
}

type resourceRecord struct {
	id, typ, name string
	agents        []string // agent names
}

type agentRecord struct {
	name, os, arch, dir      string
	identity                 agentIdentity
	createdAt                time.Time
	firstConnected, lastSeen *time.Time
	disconnectedAt           *time.Time
}

// newJob queues a job.
func (s *Server) newJob(typ, initiatorID, fileID string, tags map[string]string) *job {
	j := &job{id: newID(), typ: typ, status: statusPending, createdAt: s.now(), fileID: fileID, tags: tags, initiatorID: initiatorID}
	s.work.jobs = append(s.work.jobs, j)
	return j
}

// jobTags is provisionersdk.MutateTags: the request's tags over scope
// organization with an empty owner; user scope is owned by the user.
func jobTags(userID string, provided map[string]string) map[string]string {
	tags := map[string]string{}
	for k, v := range provided {
		if v != "" {
			tags[k] = v
		}
	}
	if _, ok := tags[tagScope]; !ok {
		tags[tagScope], tags[tagOwner] = scopeOrganization, ""
	}
	switch tags[tagScope] {
	case scopeUser:
		tags[tagOwner] = userID
	default:
		tags[tagScope], tags[tagOwner] = scopeOrganization, ""
	}
	return tags
}

// tagsetContains is coderd's provisioner_tagset_contains: an untagged job
// ({scope: organization, owner: ""}) only matches a daemon with exactly
// those tags; otherwise the daemon's tags must include all of the job's.
func tagsetContains(daemon, job map[string]string) bool {
	untagged := map[string]string{tagScope: scopeOrganization, tagOwner: ""}
	if maps.Equal(job, untagged) {
		return maps.Equal(daemon, untagged)
	}
	for k, v := range job {
		if dv, ok := daemon[k]; !ok || dv != v {
			return false
		}
	}
	return true
}

// liveDaemons observes the cluster and returns the daemons connected now.
func (s *Server) liveDaemons(ctx context.Context) ([]daemonRecord, error) {
	all, _, err := s.registered(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var live []daemonRecord
	for _, d := range all {
		if s.connected[d.name] {
			live = append(live, d)
		}
	}
	return live, nil
}

// matched is codersdk.MatchedProvisioners for a job's tags.
func (s *Server) matched(ctx context.Context, tags map[string]string) *matchedProvisioners {
	all, now, err := s.registered(ctx)
	if err != nil {
		return &matchedProvisioners{}
	}
	m := &matchedProvisioners{}
	for _, d := range recent(all, now, staleInterval) {
		if !tagsetContains(d.tags, tags) {
			continue
		}
		m.Count++
		m.Available++
		if m.MostRecentlySeen == nil || d.lastSeen.After(*m.MostRecentlySeen) {
			seen := d.lastSeen
			m.MostRecentlySeen = &seen
		}
	}
	return m
}

// advance moves every job one step: a pending job to running when a free
// daemon matches it, a running one through its work. Callers hold
// s.work.mu.
func (s *Server) advance(ctx context.Context) error {
	var live []daemonRecord
	for _, j := range s.work.jobs {
		if j.status == statusPending {
			var err error
			if live, err = s.liveDaemons(ctx); err != nil {
				return err
			}
			break
		}
	}
	busy := map[string]bool{}
	for _, j := range s.work.jobs {
		if j.status == statusRunning {
			busy[j.workerID] = true
		}
	}
	for _, j := range s.work.jobs {
		switch j.status {
		case statusPending:
			for _, d := range live {
				if busy[d.id] || !tagsetContains(d.tags, j.tags) {
					continue
				}
				busy[d.id] = true
				now := s.now()
				j.status, j.startedAt, j.workerID, j.worker = statusRunning, &now, d.id, d.name
				s.log(j, "provisioner_daemon", "info", "Setting up", "")
				break
			}
		case statusRunning:
			var err error
			switch j.typ {
			case jobImport:
				err = s.runImport(j)
			case jobBuild:
				err = s.runBuild(ctx, j)
			}
			if err != nil {
				var te *templateError
				var rv *requiredVariableError
				switch {
				case errors.As(err, &rv):
					j.errCode = errorCodeRequiredVariables
				case !errors.As(err, &te) && ctx.Err() != nil:
					return err // the client went away: try again on the next request
				}
				s.fail(j, err.Error())
			}
		}
	}
	return nil
}

// log appends one provisioner job log line.
func (s *Server) log(j *job, source, level, stage, output string) {
	s.work.logID++
	j.logs = append(j.logs, provisionerJobLog{ID: s.work.logID, CreatedAt: s.now(), Source: source, Level: level, Stage: stage, Output: output})
}

func (s *Server) finish(j *job, status string) {
	now := s.now()
	j.status, j.doneAt = status, &now
	s.log(j, "provisioner_daemon", "info", "Cleaning Up", "")
}

// fail ends a job with Terraform's error as coderd reports it.
func (s *Server) fail(j *job, msg string) {
	for _, line := range strings.Split(msg, "\n") {
		s.log(j, "provisioner", "error", j.stage(), line)
	}
	j.errMsg = msg
	s.finish(j, statusFailed)
}

func (j *job) stage() string {
	if j.typ == jobImport {
		return "Parsing template parameters"
	}
	switch j.build.transition {
	case transitionStop:
		return "Stopping workspace"
	case transitionDelete:
		return "Destroying workspace"
	}
	return "Starting workspace"
}

// runImport reads the uploaded template as a provisioner's import does:
// parse it, then plan it for a start and a stop with placeholder
// workspace data, turning every Kubernetes resource into its object.
func (s *Server) runImport(j *job) error {
	v := j.version
	f := s.work.files[j.fileID]
	if f == nil {
		return tplErrorf("file %s not found", j.fileID)
	}
	t, err := parseTemplate(f.data, v.values)
	if err != nil {
		return err
	}
	for _, transition := range []string{transitionStart, transitionStop} {
		stage := "Detecting persistent resources"
		if transition == transitionStart {
			stage = "Detecting ephemeral resources"
		}
		s.log(j, "provisioner", "info", stage, "Terraform plan with placeholder workspace data")
		ws := placeholderWorkspace(t, transition)
		p, err := t.plan(ws)
		if err != nil {
			return err
		}
		for _, inst := range p.instances {
			if _, err := toKube(inst); err != nil {
				return err
			}
			s.log(j, "provisioner", "info", stage, fmt.Sprintf("%s: Plan to create", inst.addr()))
		}
	}
	v.parsed = t
	s.finish(j, statusSucceeded)
	return nil
}

// placeholderWorkspace is the workspace an import plans against.
func placeholderWorkspace(t *tfTemplate, transition string) tfWorkspace {
	ws := tfWorkspace{
		id: "00000000-0000-0000-0000-000000000000", name: "default", transition: transition,
		ownerID: "00000000-0000-0000-0000-000000000000", ownerName: "default", ownerEmail: "default@example.com",
		agents: map[string]agentIdentity{},
	}
	if transition == transitionStart {
		ws.startCount = 1
	}
	for _, r := range t.resources {
		if r.typ == resCoderAgent {
			ws.agents[r.name] = agentIdentity{id: "00000000-0000-0000-0000-000000000000", token: "placeholder", initScript: "placeholder"}
		}
	}
	return ws
}

// queueStats is a pending job's place in the queue (1-based) and the
// queue's length.
func (s *Server) queueStats(j *job) (int, int) {
	pos, size := 0, 0
	for _, other := range s.work.jobs {
		if other.status != statusPending {
			continue
		}
		size++
		if other == j {
			pos = size
		}
	}
	if j.status != statusPending {
		return 0, 0
	}
	return pos, size
}

func (s *Server) jobJSON(j *job) provisionerJobJSON {
	out := provisionerJobJSON{
		ID: j.id, CreatedAt: j.createdAt, StartedAt: j.startedAt, CompletedAt: j.doneAt,
		Error: j.errMsg, ErrorCode: j.errCode, Status: j.status, WorkerName: j.worker,
		FileID: j.fileID, Tags: maps.Clone(j.tags), OrganizationID: s.org.ID, InitiatorID: j.initiatorID, Type: j.typ,
	}
	if j.workerID != "" {
		id := j.workerID
		out.WorkerID = &id
	}
	out.QueuePosition, out.QueueSize = s.queueStats(j)
	if j.version != nil {
		out.Metadata.TemplateVersionName = j.version.name
		if t := s.work.templates[j.version.templateID]; t != nil {
			out.Metadata.TemplateID, out.Metadata.TemplateName, out.Metadata.TemplateDisplayName = t.id, t.name, t.displayName
		}
	}
	switch j.typ {
	case jobImport:
		id := j.version.id
		out.Input.TemplateVersionID = &id
	case jobBuild:
		id, wsID := j.build.id, j.build.ws.id
		out.Input.WorkspaceBuildID = &id
		out.Metadata.WorkspaceID, out.Metadata.WorkspaceName = &wsID, j.build.ws.name
		out.Metadata.WorkspaceBuildTransition = j.build.transition
	}
	return out
}

// sortedLogs returns a job's logs after the given ID.
func sortedLogs(j *job, after int64) []provisionerJobLog {
	out := []provisionerJobLog{}
	for _, l := range j.logs {
		if l.ID > after {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}
