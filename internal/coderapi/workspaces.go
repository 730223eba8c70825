package coderapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Workspaces and their builds (codersdk v2.36.1 workspaces.go,
// workspacebuilds.go, workspaceagents.go): creating a workspace queues its
// first build, a start; a delete is another build; each build is a
// provisioner job; an agent reports connecting, connected, disconnected or
// timeout.

// Build transitions (codersdk.WorkspaceTransition).
const (
	TransitionStart  = "start"
	TransitionStop   = "stop"
	TransitionDelete = "delete"
)

// Agent statuses (codersdk.WorkspaceAgentStatus).
const (
	AgentConnecting   = "connecting"
	AgentConnected    = "connected"
	AgentDisconnected = "disconnected"
	AgentTimeout      = "timeout"
)

// Workspace is codersdk.Workspace, the fields coderctl reads.
type Workspace struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	OwnerName    string         `json:"owner_name"`
	TemplateID   string         `json:"template_id"`
	TemplateName string         `json:"template_name"`
	LatestBuild  WorkspaceBuild `json:"latest_build"`
}

// WorkspaceBuild is codersdk.WorkspaceBuild, the fields coderctl reads.
type WorkspaceBuild struct {
	ID                string              `json:"id"`
	WorkspaceID       string              `json:"workspace_id"`
	WorkspaceName     string              `json:"workspace_name"`
	TemplateVersionID string              `json:"template_version_id"`
	BuildNumber       int32               `json:"build_number"`
	Transition        string              `json:"transition"`
	Status            string              `json:"status"`
	Job               ProvisionerJob      `json:"job"`
	Resources         []WorkspaceResource `json:"resources"`
}

// WorkspaceResource is codersdk.WorkspaceResource, the fields coderctl reads.
type WorkspaceResource struct {
	Type   string           `json:"type"`
	Name   string           `json:"name"`
	Agents []WorkspaceAgent `json:"agents"`
}

// WorkspaceAgent is codersdk.WorkspaceAgent, the fields coderctl reads.
type WorkspaceAgent struct {
	ID                       string `json:"id"`
	Name                     string `json:"name"`
	Status                   string `json:"status"`
	LifecycleState           string `json:"lifecycle_state"`
	ConnectionTimeoutSeconds int32  `json:"connection_timeout_seconds"`
	Health                   struct {
		Healthy bool   `json:"healthy"`
		Reason  string `json:"reason"`
	} `json:"health"`
}

// Agents lists the build's agents.
func (b WorkspaceBuild) Agents() []WorkspaceAgent {
	var out []WorkspaceAgent
	for _, r := range b.Resources {
		out = append(out, r.Agents...)
	}
	return out
}

// CreateWorkspace calls POST /api/v2/users/{user}/workspaces ("me" for the
// session's user) from the template's active version.
func (c *Client) CreateWorkspace(ctx context.Context, user, templateID, name string) (Workspace, error) {
	req := struct {
		TemplateID string `json:"template_id"`
		Name       string `json:"name"`
	}{templateID, name}
	var out Workspace
	err := c.do(ctx, http.MethodPost, "/api/v2/users/"+url.PathEscape(user)+"/workspaces", req, http.StatusCreated, &out)
	return out, err
}

// Workspace calls GET /api/v2/workspaces/{id}.
func (c *Client) Workspace(ctx context.Context, id string) (Workspace, error) {
	var out Workspace
	err := c.do(ctx, http.MethodGet, "/api/v2/workspaces/"+url.PathEscape(id), nil, http.StatusOK, &out)
	return out, err
}

// CreateBuild calls POST /api/v2/workspaces/{id}/builds with a transition
// (start, stop, delete) of the latest build's version.
func (c *Client) CreateBuild(ctx context.Context, workspaceID, transition string) (WorkspaceBuild, error) {
	req := struct {
		Transition string `json:"transition"`
	}{transition}
	var out WorkspaceBuild
	err := c.do(ctx, http.MethodPost, "/api/v2/workspaces/"+url.PathEscape(workspaceID)+"/builds", req, http.StatusCreated, &out)
	return out, err
}

// Build calls GET /api/v2/workspacebuilds/{id}.
func (c *Client) Build(ctx context.Context, id string) (WorkspaceBuild, error) {
	var out WorkspaceBuild
	err := c.do(ctx, http.MethodGet, "/api/v2/workspacebuilds/"+url.PathEscape(id), nil, http.StatusOK, &out)
	return out, err
}

// BuildLogs calls GET /api/v2/workspacebuilds/{id}/logs.
func (c *Client) BuildLogs(ctx context.Context, id string, after int64) ([]JobLog, error) {
	var out []JobLog
	err := c.do(ctx, http.MethodGet, "/api/v2/workspacebuilds/"+url.PathEscape(id)+"/logs"+afterQuery(after), nil, http.StatusOK, &out)
	return out, err
}

// WaitForBuild polls the build until its job is done. A job that fails or
// is canceled is a *JobError with the build log's last lines.
func (c *Client) WaitForBuild(ctx context.Context, id string, p Poll) (WorkspaceBuild, error) {
	last := ""
	for {
		b, err := c.Build(ctx, id)
		if err != nil && ctx.Err() != nil && last != "" {
			return b, &JobError{What: "build " + id, Status: "still " + last, Msg: ctx.Err().Error(), Logs: c.buildTail(id)}
		}
		if err != nil {
			return b, err
		}
		if b.Job.Status != last && p.Progress != nil {
			p.Progress(b.Job.Status)
		}
		last = b.Job.Status
		if b.Job.Done() {
			if b.Job.Status == JobSucceeded {
				return b, nil
			}
			return b, c.buildError(ctx, b)
		}
		select {
		case <-ctx.Done():
			return b, &JobError{What: buildWhat(b), Status: "still " + b.Job.Status, Msg: ctx.Err().Error(), Logs: c.buildTail(b.ID)}
		case <-time.After(p.interval()):
		}
	}
}

func buildWhat(b WorkspaceBuild) string {
	return fmt.Sprintf("%s build #%d of workspace %s", b.Transition, b.BuildNumber, b.WorkspaceName)
}

func (c *Client) buildError(ctx context.Context, b WorkspaceBuild) error {
	je := &JobError{What: buildWhat(b), Status: b.Job.Status, Msg: b.Job.Error}
	if logs, err := c.BuildLogs(ctx, b.ID, 0); err == nil {
		je.Logs = tailLogs(logs, LogTail)
	}
	return je
}

// buildTail reads the log's tail with a fresh short deadline, for when the
// caller's context has run out.
func (c *Client) buildTail(id string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs, err := c.BuildLogs(ctx, id, 0)
	if err != nil {
		return nil
	}
	return tailLogs(logs, LogTail)
}

// BuildLogTail is the last lines of a build's log ("" when unreadable).
func (c *Client) BuildLogTail(ctx context.Context, id string) []string {
	logs, err := c.BuildLogs(ctx, id, 0)
	if err != nil {
		return nil
	}
	return tailLogs(logs, LogTail)
}

// AgentError is an agent that did not connect.
type AgentError struct {
	Agent  string
	Status string
	Reason string
}

func (e *AgentError) Error() string {
	msg := fmt.Sprintf("agent %s is %s", e.Agent, e.Status)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg
}

// WaitForAgents polls the workspace until every agent of its latest build
// is connected. An agent coderd reports as "timeout" (it did not connect
// within its connection_timeout) or "disconnected" ends the wait with an
// *AgentError; so does the context.
func (c *Client) WaitForAgents(ctx context.Context, workspaceID string, p Poll) (WorkspaceBuild, error) {
	last, lastAgent := "", ""
	for {
		ws, err := c.Workspace(ctx, workspaceID)
		if err != nil && ctx.Err() != nil && last != "" {
			// The deadline cut the request: the agent is still where
			// it was last seen.
			return WorkspaceBuild{}, &AgentError{Agent: lastAgent, Status: "still " + last, Reason: ctx.Err().Error()}
		}
		if err != nil {
			return WorkspaceBuild{}, err
		}
		b := ws.LatestBuild
		agents := b.Agents()
		if len(agents) == 0 {
			return b, &AgentError{Agent: "(none)", Status: "missing", Reason: "the build has no workspace agent"}
		}
		done, status := true, ""
		for _, a := range agents {
			status = a.Status
			switch a.Status {
			case AgentConnected:
				continue
			case AgentTimeout, AgentDisconnected:
				return b, &AgentError{Agent: a.Name, Status: a.Status, Reason: a.Health.Reason}
			}
			done = false
			if status != last && p.Progress != nil {
				p.Progress(a.Name + " " + a.Status)
			}
			last, lastAgent = status, a.Name
		}
		if done {
			return b, nil
		}
		select {
		case <-ctx.Done():
			a := agents[0]
			return b, &AgentError{Agent: a.Name, Status: "still " + a.Status, Reason: ctx.Err().Error()}
		case <-time.After(p.interval()):
		}
	}
}
