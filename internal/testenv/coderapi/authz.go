package coderapi

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// authCheckRequest is codersdk.AuthorizationRequest.
type authCheckRequest struct {
	Checks map[string]authCheck `json:"checks"`
}

// authCheck is codersdk.AuthorizationCheck.
type authCheck struct {
	Object struct {
		ResourceType   string `json:"resource_type"`
		OwnerID        string `json:"owner_id,omitempty"`
		OrganizationID string `json:"organization_id,omitempty"`
		ResourceID     string `json:"resource_id,omitempty"`
		AnyOrg         bool   `json:"any_org,omitempty"`
	} `json:"object"`
	Action string `json:"action"`
}

// authcheck is checkAuthorization (coderd/authorize.go): a map from each
// check's name to whether the token's user may do it.
func (s *Server) authcheck(w http.ResponseWriter, r *http.Request) {
	var req authCheckRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, response{Message: "Request body must be valid JSON.", Detail: err.Error()})
		return
	}
	id := identityOf(r)
	out := map[string]bool{}
	for name, c := range req.Checks {
		if c.Object.ResourceType == "" {
			writeJSON(w, http.StatusBadRequest, response{Message: fmt.Sprintf("Object's \"resource_type\" field must be defined for key %q.", name)})
			return
		}
		out[name] = id.owner || s.memberMay(id.user.ID, c)
	}
	writeJSON(w, http.StatusOK, out)
}

// memberMay is the part of a plain member's permissions the double models
// (coderd/rbac/roles.go): reading the organization and its provisioner
// daemons and keys (OrgMemberPermissions), reading themselves. Creating,
// updating or deleting provisioner keys, reading debug_info and the rest
// are denied.
func (s *Server) memberMay(userID string, c authCheck) bool {
	o := c.Object
	inOrg := o.OrganizationID == s.org.ID
	switch {
	case c.Action != "read":
		return false
	case o.ResourceType == "provisioner_daemon" || o.ResourceType == "organization":
		return inOrg
	case o.ResourceType == "user":
		return o.OwnerID == "me" || o.OwnerID == userID
	}
	return false
}
