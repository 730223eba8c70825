package coderapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Templates and their versions (codersdk v2.36.1 templates.go,
// templateversions.go, organizations.go): a version is created from an
// uploaded file and imported by a provisioner job; a template is created
// from an imported version, and a later version is promoted to active.

// WorkspaceTemplateName is the template coderctl pushes (the template
// stage) and builds the smoke test's workspace from.
const WorkspaceTemplateName = "kubernetes-eks"

// Provisioner job statuses (codersdk.ProvisionerJobStatus).
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobCanceling = "canceling"
	JobCanceled  = "canceled"
	JobFailed    = "failed"
)

// ProvisionerJob is codersdk.ProvisionerJob, the fields coderctl reads.
type ProvisionerJob struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	Error         string            `json:"error"`
	ErrorCode     string            `json:"error_code"`
	FileID        string            `json:"file_id"`
	Tags          map[string]string `json:"tags"`
	QueuePosition int               `json:"queue_position"`
	CreatedAt     time.Time         `json:"created_at"`
	StartedAt     *time.Time        `json:"started_at"`
	CompletedAt   *time.Time        `json:"completed_at"`
}

// Done reports whether the job will not change any more.
func (j ProvisionerJob) Done() bool {
	switch j.Status {
	case JobSucceeded, JobFailed, JobCanceled:
		return true
	}
	return false
}

// MatchedProvisioners is codersdk.MatchedProvisioners.
type MatchedProvisioners struct {
	Count     int `json:"count"`
	Available int `json:"available"`
}

// TemplateVersion is codersdk.TemplateVersion, the fields coderctl reads.
type TemplateVersion struct {
	ID                  string               `json:"id"`
	TemplateID          *string              `json:"template_id"`
	Name                string               `json:"name"`
	Message             string               `json:"message"`
	Job                 ProvisionerJob       `json:"job"`
	MatchedProvisioners *MatchedProvisioners `json:"matched_provisioners"`
}

// Template is codersdk.Template, the fields coderctl reads.
type Template struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	DisplayName     string `json:"display_name"`
	OrganizationID  string `json:"organization_id"`
	ActiveVersionID string `json:"active_version_id"`
}

// JobLog is codersdk.ProvisionerJobLog.
type JobLog struct {
	ID     int64  `json:"id"`
	Level  string `json:"log_level"`
	Stage  string `json:"stage"`
	Output string `json:"output"`
}

// String is the line as `coder templates push` shows it.
func (l JobLog) String() string {
	switch {
	case l.Output == "":
		return l.Stage
	case l.Stage == "":
		return l.Output
	}
	return l.Stage + ": " + l.Output
}

// NewVersion is what CreateTemplateVersion sends.
type NewVersion struct {
	// Name is optional (coderd generates one); unique per template.
	Name    string
	Message string
	// TemplateID is empty for a version of a template not created yet.
	TemplateID string
	FileID     string
	// Tags select the provisioners; empty means coderd's default
	// (scope=organization), which organization-scoped keys' daemons take.
	Tags map[string]string
}

// CreateTemplateVersion calls POST /api/v2/organizations/{org}/templateversions
// with storage_method file and the terraform provisioner; coderd queues
// the import job and answers 201.
func (c *Client) CreateTemplateVersion(ctx context.Context, org string, v NewVersion) (TemplateVersion, error) {
	req := struct {
		Name          string            `json:"name,omitempty"`
		Message       string            `json:"message,omitempty"`
		TemplateID    string            `json:"template_id,omitempty"`
		StorageMethod string            `json:"storage_method"`
		FileID        string            `json:"file_id"`
		Provisioner   string            `json:"provisioner"`
		Tags          map[string]string `json:"tags"`
	}{v.Name, v.Message, v.TemplateID, "file", v.FileID, "terraform", v.Tags}
	if req.Tags == nil {
		req.Tags = map[string]string{}
	}
	var out TemplateVersion
	err := c.do(ctx, http.MethodPost, "/api/v2/organizations/"+url.PathEscape(org)+"/templateversions", req, http.StatusCreated, &out)
	return out, err
}

// TemplateVersion calls GET /api/v2/templateversions/{id}.
func (c *Client) TemplateVersion(ctx context.Context, id string) (TemplateVersion, error) {
	var out TemplateVersion
	err := c.do(ctx, http.MethodGet, "/api/v2/templateversions/"+url.PathEscape(id), nil, http.StatusOK, &out)
	return out, err
}

// TemplateVersionLogs calls GET /api/v2/templateversions/{id}/logs: the
// import job's logs so far (without ?follow, coderd answers the list).
func (c *Client) TemplateVersionLogs(ctx context.Context, id string) ([]JobLog, error) {
	var out []JobLog
	err := c.do(ctx, http.MethodGet, "/api/v2/templateversions/"+url.PathEscape(id)+"/logs", nil, http.StatusOK, &out)
	return out, err
}

// JobError is a provisioner job that ended without success, with the last
// lines of its log.
type JobError struct {
	What   string // "import of template version X", "start build #2 of workspace Y"
	Status string
	Msg    string
	Logs   []string
}

func (e *JobError) Error() string {
	msg := fmt.Sprintf("%s %s", e.What, e.Status)
	if e.Msg != "" {
		msg += ": " + e.Msg
	}
	return msg
}

// LastLines is the log's tail, one line each, for a report.
func (e *JobError) LastLines() string { return strings.Join(e.Logs, "\n") }

// AsJobError returns the *JobError in err's chain.
func AsJobError(err error) (*JobError, bool) {
	var je *JobError
	ok := errors.As(err, &je)
	return je, ok
}

// LogTail is how many log lines a JobError keeps.
const LogTail = 15

func tailLogs(logs []JobLog, n int) []string {
	if len(logs) > n {
		logs = logs[len(logs)-n:]
	}
	out := make([]string, 0, len(logs))
	for _, l := range logs {
		out = append(out, l.String())
	}
	return out
}

// Poll configures the waits: how often to ask, and what to call with each
// answer (nil for nothing).
type Poll struct {
	Interval time.Duration
	// Progress is told the job's status whenever it changes.
	Progress func(status string)
}

func (p Poll) interval() time.Duration {
	if p.Interval <= 0 {
		return time.Second
	}
	return p.Interval
}

// WaitForImport polls the version until its import job is done. A job
// that fails or is canceled is a *JobError with its last log lines; the
// context bounds the wait.
func (c *Client) WaitForImport(ctx context.Context, id string, p Poll) (TemplateVersion, error) {
	last := ""
	for {
		v, err := c.TemplateVersion(ctx, id)
		if err != nil && ctx.Err() != nil && last != "" {
			return v, fmt.Errorf("import of template version %s still %s: %w", id, last, ctx.Err())
		}
		if err != nil {
			return v, err
		}
		if v.Job.Status != last && p.Progress != nil {
			p.Progress(v.Job.Status)
		}
		last = v.Job.Status
		if v.Job.Done() {
			if v.Job.Status == JobSucceeded {
				return v, nil
			}
			je := &JobError{What: "import of template version " + v.Name, Status: v.Job.Status, Msg: v.Job.Error}
			if logs, err := c.TemplateVersionLogs(ctx, id); err == nil {
				je.Logs = tailLogs(logs, LogTail)
			}
			return v, je
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("import of template version %s still %s%s: %w", v.Name, v.Job.Status, noProvisioner(v), ctx.Err())
		case <-time.After(p.interval()):
		}
	}
}

// noProvisioner explains a job that waits for a provisioner nobody runs.
func noProvisioner(v TemplateVersion) string {
	if v.Job.Status == JobPending && v.MatchedProvisioners != nil && v.MatchedProvisioners.Count == 0 {
		return " (no provisioner daemon with matching tags " + formatTags(v.Job.Tags) + " is connected)"
	}
	return ""
}

func formatTags(tags map[string]string) string {
	var parts []string
	for k, v := range tags {
		parts = append(parts, k+"="+v)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TemplateByName calls GET /api/v2/organizations/{org}/templates/{name};
// nil when there is no such template.
func (c *Client) TemplateByName(ctx context.Context, org, name string) (*Template, error) {
	var out Template
	err := c.do(ctx, http.MethodGet, "/api/v2/organizations/"+url.PathEscape(org)+"/templates/"+url.PathEscape(name), nil, http.StatusOK, &out)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// NewTemplate is what CreateTemplate sends.
type NewTemplate struct {
	Name, DisplayName, Description, Icon string
	VersionID                            string
}

// CreateTemplate calls POST /api/v2/organizations/{org}/templates with an
// imported version that belongs to no template yet; 409 when the name is
// taken.
func (c *Client) CreateTemplate(ctx context.Context, org string, t NewTemplate) (Template, error) {
	req := struct {
		Name        string `json:"name"`
		DisplayName string `json:"display_name,omitempty"`
		Description string `json:"description,omitempty"`
		Icon        string `json:"icon,omitempty"`
		VersionID   string `json:"template_version_id"`
	}{t.Name, t.DisplayName, t.Description, t.Icon, t.VersionID}
	var out Template
	err := c.do(ctx, http.MethodPost, "/api/v2/organizations/"+url.PathEscape(org)+"/templates", req, http.StatusCreated, &out)
	return out, err
}

// PromoteVersion calls PATCH /api/v2/templates/{id}/versions: the version
// (of this template, imported successfully) becomes the active one.
func (c *Client) PromoteVersion(ctx context.Context, templateID, versionID string) error {
	req := struct {
		ID string `json:"id"`
	}{versionID}
	return c.do(ctx, http.MethodPatch, "/api/v2/templates/"+url.PathEscape(templateID)+"/versions", req, http.StatusOK, nil)
}

// afterQuery is the logs routes' ?after= parameter.
func afterQuery(after int64) string {
	if after <= 0 {
		return ""
	}
	return "?after=" + strconv.FormatInt(after, 10)
}
