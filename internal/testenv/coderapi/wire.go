package coderapi

import "time"

// Wire types of the files, templates, workspaces and builds endpoints,
// with codersdk's JSON field names, limited to what the double fills in.

// uploadResponse is codersdk.UploadResponse: the file's ID, under "hash".
type uploadResponse struct {
	ID string `json:"hash"`
}

// createTemplateVersionRequest is codersdk.CreateTemplateVersionRequest.
type createTemplateVersionRequest struct {
	Name               string            `json:"name,omitempty"`
	Message            string            `json:"message,omitempty"`
	TemplateID         string            `json:"template_id,omitempty"`
	StorageMethod      string            `json:"storage_method"`
	FileID             string            `json:"file_id,omitempty"`
	ExampleID          string            `json:"example_id,omitempty"`
	Provisioner        string            `json:"provisioner"`
	ProvisionerTags    map[string]string `json:"tags"`
	UserVariableValues []variableValue   `json:"user_variable_values,omitempty"`
}

// variableValue is codersdk.VariableValue.
type variableValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// minimalUser is codersdk.MinimalUser.
type minimalUser struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Name      string `json:"name,omitempty"`
	AvatarURL string `json:"avatar_url,omitempty"`
}

// matchedProvisioners is codersdk.MatchedProvisioners.
type matchedProvisioners struct {
	Count            int        `json:"count"`
	Available        int        `json:"available"`
	MostRecentlySeen *time.Time `json:"most_recently_seen"` // codersdk.NullTime
}

// templateVersionJSON is codersdk.TemplateVersion.
type templateVersionJSON struct {
	ID                  string               `json:"id"`
	TemplateID          *string              `json:"template_id,omitempty"`
	OrganizationID      string               `json:"organization_id,omitempty"`
	CreatedAt           time.Time            `json:"created_at"`
	UpdatedAt           time.Time            `json:"updated_at"`
	Name                string               `json:"name"`
	Message             string               `json:"message"`
	Job                 provisionerJobJSON   `json:"job"`
	Readme              string               `json:"readme"`
	CreatedBy           minimalUser          `json:"created_by"`
	Archived            bool                 `json:"archived"`
	MatchedProvisioners *matchedProvisioners `json:"matched_provisioners,omitempty"`
	HasExternalAgent    bool                 `json:"has_external_agent"`
}

// provisionerJobJSON is codersdk.ProvisionerJob.
type provisionerJobJSON struct {
	ID             string            `json:"id"`
	CreatedAt      time.Time         `json:"created_at"`
	StartedAt      *time.Time        `json:"started_at,omitempty"`
	CompletedAt    *time.Time        `json:"completed_at,omitempty"`
	CanceledAt     *time.Time        `json:"canceled_at,omitempty"`
	Error          string            `json:"error,omitempty"`
	ErrorCode      string            `json:"error_code,omitempty"`
	Status         string            `json:"status"`
	WorkerID       *string           `json:"worker_id,omitempty"`
	WorkerName     string            `json:"worker_name,omitempty"`
	FileID         string            `json:"file_id"`
	Tags           map[string]string `json:"tags"`
	QueuePosition  int               `json:"queue_position"`
	QueueSize      int               `json:"queue_size"`
	OrganizationID string            `json:"organization_id"`
	InitiatorID    string            `json:"initiator_id"`
	Input          jobInput          `json:"input"`
	Type           string            `json:"type"`
	Metadata       jobMetadata       `json:"metadata"`
	LogsOverflowed bool              `json:"logs_overflowed"`
}

// jobInput is codersdk.ProvisionerJobInput.
type jobInput struct {
	TemplateVersionID *string `json:"template_version_id,omitempty"`
	WorkspaceBuildID  *string `json:"workspace_build_id,omitempty"`
}

// jobMetadata is codersdk.ProvisionerJobMetadata.
type jobMetadata struct {
	TemplateVersionName      string  `json:"template_version_name"`
	TemplateID               string  `json:"template_id"`
	TemplateName             string  `json:"template_name"`
	TemplateDisplayName      string  `json:"template_display_name"`
	TemplateIcon             string  `json:"template_icon"`
	WorkspaceID              *string `json:"workspace_id,omitempty"`
	WorkspaceName            string  `json:"workspace_name,omitempty"`
	WorkspaceBuildTransition string  `json:"workspace_build_transition,omitempty"`
}

// provisionerJobLog is codersdk.ProvisionerJobLog.
type provisionerJobLog struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Source    string    `json:"log_source"` // provisioner_daemon | provisioner
	Level     string    `json:"log_level"`  // trace | debug | info | warn | error
	Stage     string    `json:"stage"`
	Output    string    `json:"output"`
}

// createTemplateRequest is the part of codersdk.CreateTemplateRequest the
// double reads.
type createTemplateRequest struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	Icon        string `json:"icon,omitempty"`
	VersionID   string `json:"template_version_id"`
}

// updateActiveTemplateVersion is codersdk.UpdateActiveTemplateVersion.
type updateActiveTemplateVersion struct {
	ID string `json:"id"`
}

// templateJSON is codersdk.Template (scheduling fields at coderd's
// defaults).
type templateJSON struct {
	ID                           string    `json:"id"`
	CreatedAt                    time.Time `json:"created_at"`
	UpdatedAt                    time.Time `json:"updated_at"`
	OrganizationID               string    `json:"organization_id"`
	OrganizationName             string    `json:"organization_name"`
	OrganizationDisplayName      string    `json:"organization_display_name"`
	OrganizationIcon             string    `json:"organization_icon"`
	Name                         string    `json:"name"`
	DisplayName                  string    `json:"display_name"`
	Provisioner                  string    `json:"provisioner"`
	ActiveVersionID              string    `json:"active_version_id"`
	ActiveUserCount              int       `json:"active_user_count"`
	BuildTimeStats               struct{}  `json:"build_time_stats"`
	Description                  string    `json:"description"`
	Deprecated                   bool      `json:"deprecated"`
	DeprecationMessage           string    `json:"deprecation_message"`
	Deleted                      bool      `json:"deleted"`
	Icon                         string    `json:"icon"`
	DefaultTTLMillis             int64     `json:"default_ttl_ms"`
	ActivityBumpMillis           int64     `json:"activity_bump_ms"`
	CreatedByID                  string    `json:"created_by_id"`
	CreatedByName                string    `json:"created_by_name"`
	AllowUserAutostart           bool      `json:"allow_user_autostart"`
	AllowUserAutostop            bool      `json:"allow_user_autostop"`
	AllowUserCancelWorkspaceJobs bool      `json:"allow_user_cancel_workspace_jobs"`
	RequireActiveVersion         bool      `json:"require_active_version"`
	MaxPortShareLevel            string    `json:"max_port_share_level"`
	UseClassicParameterFlow      bool      `json:"use_classic_parameter_flow"`
}

// createWorkspaceRequest is the part of codersdk.CreateWorkspaceRequest
// the double reads.
type createWorkspaceRequest struct {
	TemplateID        string `json:"template_id,omitempty"`
	TemplateVersionID string `json:"template_version_id,omitempty"`
	Name              string `json:"name"`
}

// createWorkspaceBuildRequest is the part of
// codersdk.CreateWorkspaceBuildRequest the double reads.
type createWorkspaceBuildRequest struct {
	TemplateVersionID string `json:"template_version_id,omitempty"`
	Transition        string `json:"transition"`
	Orphan            bool   `json:"orphan,omitempty"`
}

// workspaceJSON is codersdk.Workspace.
type workspaceJSON struct {
	ID                      string             `json:"id"`
	CreatedAt               time.Time          `json:"created_at"`
	UpdatedAt               time.Time          `json:"updated_at"`
	OwnerID                 string             `json:"owner_id"`
	OwnerName               string             `json:"owner_name"`
	OwnerAvatarURL          string             `json:"owner_avatar_url"`
	OrganizationID          string             `json:"organization_id"`
	OrganizationName        string             `json:"organization_name"`
	TemplateID              string             `json:"template_id"`
	TemplateName            string             `json:"template_name"`
	TemplateDisplayName     string             `json:"template_display_name"`
	TemplateIcon            string             `json:"template_icon"`
	TemplateActiveVersionID string             `json:"template_active_version_id"`
	LatestBuild             workspaceBuildJSON `json:"latest_build"`
	LatestAppStatus         *struct{}          `json:"latest_app_status"`
	Outdated                bool               `json:"outdated"`
	Name                    string             `json:"name"`
	LastUsedAt              time.Time          `json:"last_used_at"`
	DeletingAt              *time.Time         `json:"deleting_at"`
	DormantAt               *time.Time         `json:"dormant_at"`
	Health                  workspaceHealth    `json:"health"`
	AutomaticUpdates        string             `json:"automatic_updates"`
	AllowRenames            bool               `json:"allow_renames"`
	Favorite                bool               `json:"favorite"`
	NextStartAt             *time.Time         `json:"next_start_at"`
}

// workspaceHealth is codersdk.WorkspaceHealth.
type workspaceHealth struct {
	Healthy       bool     `json:"healthy"`
	FailingAgents []string `json:"failing_agents"`
}

// workspaceBuildJSON is codersdk.WorkspaceBuild.
type workspaceBuildJSON struct {
	ID                  string                  `json:"id"`
	CreatedAt           time.Time               `json:"created_at"`
	UpdatedAt           time.Time               `json:"updated_at"`
	WorkspaceID         string                  `json:"workspace_id"`
	WorkspaceName       string                  `json:"workspace_name"`
	WorkspaceOwnerID    string                  `json:"workspace_owner_id"`
	WorkspaceOwnerName  string                  `json:"workspace_owner_name"`
	TemplateVersionID   string                  `json:"template_version_id"`
	TemplateVersionName string                  `json:"template_version_name"`
	BuildNumber         int32                   `json:"build_number"`
	Transition          string                  `json:"transition"`
	InitiatorID         string                  `json:"initiator_id"`
	InitiatorUsername   string                  `json:"initiator_name"`
	Job                 provisionerJobJSON      `json:"job"`
	Reason              string                  `json:"reason"`
	Resources           []workspaceResourceJSON `json:"resources"`
	Deadline            *time.Time              `json:"deadline,omitempty"`
	MaxDeadline         *time.Time              `json:"max_deadline,omitempty"`
	Status              string                  `json:"status"`
	DailyCost           int32                   `json:"daily_cost"`
	MatchedProvisioners *matchedProvisioners    `json:"matched_provisioners,omitempty"`
}

// workspaceResourceJSON is codersdk.WorkspaceResource.
type workspaceResourceJSON struct {
	ID         string               `json:"id"`
	CreatedAt  time.Time            `json:"created_at"`
	JobID      string               `json:"job_id"`
	Transition string               `json:"workspace_transition"`
	Type       string               `json:"type"`
	Name       string               `json:"name"`
	Hide       bool                 `json:"hide"`
	Icon       string               `json:"icon"`
	Agents     []workspaceAgentJSON `json:"agents,omitempty"`
	DailyCost  int32                `json:"daily_cost"`
}

// workspaceAgentJSON is the part of codersdk.WorkspaceAgent the double
// fills in.
type workspaceAgentJSON struct {
	ID                       string            `json:"id"`
	CreatedAt                time.Time         `json:"created_at"`
	UpdatedAt                time.Time         `json:"updated_at"`
	FirstConnectedAt         *time.Time        `json:"first_connected_at,omitempty"`
	LastConnectedAt          *time.Time        `json:"last_connected_at,omitempty"`
	DisconnectedAt           *time.Time        `json:"disconnected_at,omitempty"`
	StartedAt                *time.Time        `json:"started_at,omitempty"`
	ReadyAt                  *time.Time        `json:"ready_at,omitempty"`
	Status                   string            `json:"status"`          // connecting | connected | disconnected | timeout
	LifecycleState           string            `json:"lifecycle_state"` // created | ready | ...
	Name                     string            `json:"name"`
	ResourceID               string            `json:"resource_id"`
	Architecture             string            `json:"architecture"`
	EnvironmentVariables     map[string]string `json:"environment_variables"`
	OperatingSystem          string            `json:"operating_system"`
	Directory                string            `json:"directory,omitempty"`
	Version                  string            `json:"version"`
	APIVersion               string            `json:"api_version"`
	Apps                     []struct{}        `json:"apps"`
	ConnectionTimeoutSeconds int32             `json:"connection_timeout_seconds"`
	TroubleshootingURL       string            `json:"troubleshooting_url"`
	Health                   agentHealth       `json:"health"`
}

// agentHealth is codersdk.WorkspaceAgentHealth.
type agentHealth struct {
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
}
