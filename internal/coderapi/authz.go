package coderapi

import (
	"context"
	"net/http"
)

// AuthCheck is codersdk.AuthorizationCheck: may the token's user do Action
// on objects like Object?
type AuthCheck struct {
	Object AuthObject `json:"object"`
	Action string     `json:"action"` // create | read | update | delete
}

// AuthObject is codersdk.AuthorizationObject, the fields coderctl sets.
type AuthObject struct {
	ResourceType   string `json:"resource_type"`
	OrganizationID string `json:"organization_id,omitempty"`
}

// Authorize calls POST /api/v2/authcheck (coderd/authorize.go), which
// answers for each named check whether the token's user may do it. It is
// coderd's own RBAC evaluation, so owners, organization admins, template
// admins and custom roles are all judged as the real calls would be.
func (c *Client) Authorize(ctx context.Context, checks map[string]AuthCheck) (map[string]bool, error) {
	req := struct {
		Checks map[string]AuthCheck `json:"checks"`
	}{checks}
	out := map[string]bool{}
	err := c.do(ctx, http.MethodPost, "/api/v2/authcheck", req, http.StatusOK, &out)
	return out, err
}

// resourceProvisionerDaemon is the RBAC type of provisioner keys as well as
// daemons: ProvisionerKey.RBACObject in coderd/database/modelmethods.go.
const resourceProvisionerDaemon = "provisioner_daemon"

// keyRights are what the provisioners stage does with its key: create it
// (dbauthz InsertProvisionerKey checks create on provisioner_daemon in the
// organization) and delete it to rotate or destroy (DeleteProvisionerKey
// checks delete), in coderd/database/dbauthz/dbauthz.go. Plain members may
// only read provisioner daemons in their organization (coderd/rbac/roles.go,
// OrgMemberPermissions).
var keyRights = []string{"create", "delete"}

// MissingKeyRights lists the actions on provisioner keys in the
// organization ("create", "delete") that the token's user may not do;
// empty when it may do all the stage needs.
func (c *Client) MissingKeyRights(ctx context.Context, org string) ([]string, error) {
	checks := map[string]AuthCheck{}
	for _, action := range keyRights {
		checks[action] = AuthCheck{Object: AuthObject{ResourceType: resourceProvisionerDaemon, OrganizationID: org}, Action: action}
	}
	got, err := c.Authorize(ctx, checks)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, action := range keyRights {
		if !got[action] {
			missing = append(missing, action)
		}
	}
	return missing, nil
}
