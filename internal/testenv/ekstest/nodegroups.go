package ekstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// What moto 5.2.1 does with managed node groups, and what this file adds
// (probed against moto_server 5.2.1):
//   - CreateNodegroup keeps amiType, launchTemplate (the version as sent,
//     none when omitted) and updateConfig, but accepts a launch template
//     together with diskSize or remoteAccess, a template or version that
//     does not exist, and an AMI type of the wrong architecture; it also
//     reports diskSize 20 and a remoteAccess key for every group. The
//     stand-in refuses those requests as EKS does (InvalidParameterException)
//     and describes launch-template groups without diskSize and remoteAccess.
//   - UpdateNodegroupVersion, DescribeUpdate: 404 in moto. Served here.
//   - UpdateNodegroupConfig: moto applies it and answers Successful, without
//     knowing about an update in progress; the stand-in refuses it then
//     (ResourceInUseException) and remembers moto's update for DescribeUpdate.
// A node group's launch template version after UpdateNodegroupVersion, and
// its UPDATING status while an update runs (Options.Polls descriptions),
// live here and are laid over moto's description.

var (
	nodegroupsPath    = regexp.MustCompile(`^/clusters/([^/]+)/node-groups$`)
	nodegroupPath     = regexp.MustCompile(`^/clusters/([^/]+)/node-groups/([^/]+)$`)
	ngUpdateVerPath   = regexp.MustCompile(`^/clusters/([^/]+)/node-groups/([^/]+)/update-version$`)
	ngUpdateCfgPath   = regexp.MustCompile(`^/clusters/([^/]+)/node-groups/([^/]+)/update-config$`)
	clusterUpdatePath = regexp.MustCompile(`^/clusters/([^/]+)/updates/([^/]+)$`)
)

// ngState is what the stand-in knows of one node group beyond moto.
type ngState struct {
	ltID, ltName, ltVersion string
	version                 string // Kubernetes version, when an update set it
	updates                 map[string]*ngUpdate
	running                 *ngUpdate // the update in progress, if any
	polls                   int       // descriptions left before it completes
}

type ngUpdate struct {
	id, kind, status, token string
	params                  [][2]string
	created                 time.Time
}

// nodegroupStates holds each Server's node group state: the Server type
// is shared with the add-on double, so this file keeps its own table.
var nodegroupStates sync.Map // *Server -> *ngTable

type ngTable struct {
	mu     sync.Mutex
	groups map[string]*ngState // cluster/nodegroup -> state
	seq    int
}

func (s *Server) ngTable() *ngTable {
	t, _ := nodegroupStates.LoadOrStore(s, &ngTable{groups: map[string]*ngState{}})
	return t.(*ngTable)
}

// serveNodegroup answers the node group calls moto 5.2.1 lacks or gets
// wrong, as EKS does; it reports false for every other request.
func (s *Server) serveNodegroup(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case nodegroupsPath.MatchString(p) && r.Method == http.MethodPost:
		s.createNodegroup(w, r, nodegroupsPath.FindStringSubmatch(p)[1])
	case nodegroupPath.MatchString(p) && r.Method == http.MethodGet:
		m := nodegroupPath.FindStringSubmatch(p)
		s.describeNodegroup(w, r, m[1], m[2])
	case nodegroupPath.MatchString(p) && r.Method == http.MethodDelete:
		m := nodegroupPath.FindStringSubmatch(p)
		s.deleteNodegroup(w, r, m[1], m[2])
	case ngUpdateVerPath.MatchString(p) && r.Method == http.MethodPost:
		m := ngUpdateVerPath.FindStringSubmatch(p)
		s.updateNodegroupVersion(w, r, m[1], m[2])
	case ngUpdateCfgPath.MatchString(p) && r.Method == http.MethodPost:
		m := ngUpdateCfgPath.FindStringSubmatch(p)
		s.updateNodegroupConfig(w, r, m[1], m[2])
	case clusterUpdatePath.MatchString(p) && r.Method == http.MethodGet && r.URL.Query().Get("nodegroupName") != "":
		m := clusterUpdatePath.FindStringSubmatch(p)
		s.describeNodegroupUpdate(w, m[1], r.URL.Query().Get("nodegroupName"), m[2])
	default:
		return false
	}
	return true
}

// motoCall sends a request to moto with r's headers (moto reads the region
// from the signature) and returns moto's answer.
func (s *Server) ngMotoCall(r *http.Request, method, path string, body []byte) *httptest.ResponseRecorder {
	req := r.Clone(r.Context())
	req.Method = method
	req.URL.Path, req.URL.RawPath = path, ""
	req.Body = http.NoBody
	req.ContentLength = int64(len(body))
	if body != nil {
		req.Body = ngReadCloser(body)
	}
	rec := httptest.NewRecorder()
	s.proxy.ServeHTTP(rec, req)
	return rec
}

// relay writes a recorded answer to w.
func ngRelay(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// motoNodegroup describes a node group in moto: its JSON object, or nil
// with moto's answer when moto does not answer 200.
func (s *Server) motoNodegroup(r *http.Request, cluster, name string) (map[string]any, *httptest.ResponseRecorder) {
	rec := s.ngMotoCall(r, http.MethodGet, "/clusters/"+cluster+"/node-groups/"+name, nil)
	if rec.Code != http.StatusOK {
		return nil, rec
	}
	var out struct {
		Nodegroup map[string]any `json:"nodegroup"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Nodegroup == nil {
		return nil, rec
	}
	return out.Nodegroup, rec
}

type ngLTSpec struct {
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

type ngCreateRequest struct {
	NodegroupName  string          `json:"nodegroupName"`
	InstanceTypes  []string        `json:"instanceTypes"`
	AmiType        string          `json:"amiType"`
	DiskSize       *int            `json:"diskSize"`
	RemoteAccess   json.RawMessage `json:"remoteAccess"`
	LaunchTemplate *ngLTSpec       `json:"launchTemplate"`
	UpdateConfig   *ngUpdateConfig `json:"updateConfig"`
}

type ngUpdateConfig struct {
	MaxUnavailable           *int `json:"maxUnavailable,omitempty"`
	MaxUnavailablePercentage *int `json:"maxUnavailablePercentage,omitempty"`
}

// createNodegroup checks what EKS checks and moto does not, resolves the
// launch template's version, and lets moto create the group.
func (s *Server) createNodegroup(w http.ResponseWriter, r *http.Request, cluster string) {
	body := ngReadBody(r)
	var in ngCreateRequest
	var raw map[string]any
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(body, &raw) != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "the request body is not valid JSON")
		return
	}
	if msg := ngCheckUpdateConfig(in.UpdateConfig); msg != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return
	}
	if in.LaunchTemplate != nil {
		if msg := s.checkCreateWithTemplate(r, &in); msg != "" {
			writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
			return
		}
		raw["launchTemplate"] = in.LaunchTemplate
	}
	if msg := s.ngCheckArchitecture(r, in.AmiType, in.InstanceTypes); msg != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return
	}
	body, _ = json.Marshal(raw)
	rec := s.ngMotoCall(r, http.MethodPost, r.URL.Path, body)
	if rec.Code == http.StatusOK && in.LaunchTemplate != nil {
		t := s.ngTable()
		t.mu.Lock()
		t.groups[cluster+"/"+in.NodegroupName] = &ngState{
			ltID: in.LaunchTemplate.ID, ltName: in.LaunchTemplate.Name, ltVersion: in.LaunchTemplate.Version,
			updates: map[string]*ngUpdate{},
		}
		t.mu.Unlock()
	}
	if rec.Code == http.StatusOK {
		s.ngRecordVersion(r, cluster, body) // upgrade.go
	}
	ngRelay(w, rec, s.ngOverlayAnswer(rec, cluster, in.NodegroupName, false))
}

// checkCreateWithTemplate refuses what EKS refuses with a launch template
// and fills in the template's ID, name and version (the default version
// when none is given, as EKS does).
func (s *Server) checkCreateWithTemplate(r *http.Request, in *ngCreateRequest) string {
	switch {
	case in.DiskSize != nil:
		return "Disk size must be specified within the launch template."
	case len(in.RemoteAccess) > 0 && string(in.RemoteAccess) != "null":
		return "Remote access configuration cannot be specified with a launch template."
	case in.LaunchTemplate.ID != "" && in.LaunchTemplate.Name != "":
		return "Either launch template ID or name can be specified, but not both."
	case in.LaunchTemplate.ID == "" && in.LaunchTemplate.Name == "":
		return "Launch template ID or name must be specified."
	}
	lt, msg := s.ngLaunchTemplate(r, *in.LaunchTemplate)
	if msg != "" {
		return msg
	}
	if lt.instanceType != "" && len(in.InstanceTypes) > 0 {
		return "Instance types cannot be specified both in the launch template and in the request."
	}
	*in.LaunchTemplate = ngLTSpec{ID: lt.id, Name: lt.name, Version: lt.version}
	return ""
}

// checkUpdateConfig is EKS's rule for updateConfig: exactly one of the two.
func ngCheckUpdateConfig(u *ngUpdateConfig) string {
	switch {
	case u == nil:
		return ""
	case u.MaxUnavailable != nil && u.MaxUnavailablePercentage != nil:
		return "Only one of maxUnavailable or maxUnavailablePercentage can be specified."
	case u.MaxUnavailable == nil && u.MaxUnavailablePercentage == nil:
		return "Either maxUnavailable or maxUnavailablePercentage must be specified."
	case u.MaxUnavailable != nil && (*u.MaxUnavailable < 1 || *u.MaxUnavailable > 100):
		return "maxUnavailable must be between 1 and 100."
	case u.MaxUnavailablePercentage != nil && (*u.MaxUnavailablePercentage < 1 || *u.MaxUnavailablePercentage > 100):
		return "maxUnavailablePercentage must be between 1 and 100."
	}
	return ""
}

func (s *Server) describeNodegroup(w http.ResponseWriter, r *http.Request, cluster, name string) {
	rec := s.ngMotoCall(r, http.MethodGet, r.URL.Path, nil)
	ngRelay(w, rec, s.ngOverlayAnswer(rec, cluster, name, true))
}

// ngOverlayAnswer lays the stand-in's state over moto's node group answer.
// A description (describing) counts down an update in progress.
func (s *Server) ngOverlayAnswer(rec *httptest.ResponseRecorder, cluster, name string, describing bool) []byte {
	raw := rec.Body.Bytes()
	if rec.Code != http.StatusOK {
		return raw
	}
	var body map[string]any
	if json.Unmarshal(raw, &body) != nil {
		return raw
	}
	ng, ok := body["nodegroup"].(map[string]any)
	if !ok {
		return raw
	}
	s.ngOverlay(cluster, name, ng, describing)
	out, err := json.Marshal(body)
	if err != nil {
		return raw
	}
	return out
}

func (s *Server) ngOverlay(cluster, name string, ng map[string]any, describing bool) {
	if lt, ok := ng["launchTemplate"].(map[string]any); ok && lt != nil {
		// EKS describes a launch-template group without them: the disk is
		// the template's, and remote access cannot be combined with one.
		delete(ng, "diskSize")
		delete(ng, "remoteAccess")
	}
	t := s.ngTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.groups[cluster+"/"+name]
	if st == nil {
		return
	}
	if st.ltID != "" {
		ng["launchTemplate"] = map[string]any{"id": st.ltID, "name": st.ltName, "version": st.ltVersion}
	}
	if st.version != "" {
		ng["version"] = st.version
	}
	if st.running == nil {
		return
	}
	if describing && st.polls > 0 {
		st.polls--
	}
	if st.polls > 0 {
		ng["status"] = "UPDATING"
		return
	}
	st.running.status = "Successful"
	st.running = nil
}

func (s *Server) deleteNodegroup(w http.ResponseWriter, r *http.Request, cluster, name string) {
	t := s.ngTable()
	t.mu.Lock()
	st := t.groups[cluster+"/"+name]
	busy := st != nil && st.running != nil && st.polls > 0
	t.mu.Unlock()
	if busy {
		writeError(w, http.StatusConflict, "ResourceInUseException", "Nodegroup "+name+" is currently being updated; retry after the update completes.")
		return
	}
	rec := s.ngMotoCall(r, http.MethodDelete, r.URL.Path, nil)
	if rec.Code == http.StatusOK {
		t.mu.Lock()
		delete(t.groups, cluster+"/"+name)
		t.mu.Unlock()
	}
	ngRelay(w, rec, rec.Body.Bytes())
}

type ngUpdateVersionRequest struct {
	Version            string    `json:"version"`
	ReleaseVersion     string    `json:"releaseVersion"`
	LaunchTemplate     *ngLTSpec `json:"launchTemplate"`
	ClientRequestToken string    `json:"clientRequestToken"`
}

// updateNodegroupVersion is EKS's UpdateNodegroupVersion for the launch
// template path: the group must have been created with a launch template,
// the same template (by ID or name) must be named, its version must exist,
// and version/releaseVersion cannot be combined with a template whose
// version names a custom AMI.
func (s *Server) updateNodegroupVersion(w http.ResponseWriter, r *http.Request, cluster, name string) {
	var in ngUpdateVersionRequest
	if err := json.Unmarshal(ngReadBody(r), &in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "the request body is not valid JSON")
		return
	}
	ng, rec := s.motoNodegroup(r, cluster, name)
	if ng == nil {
		ngNotFoundOrRelay(w, rec, name)
		return
	}
	t := s.ngTable()
	if u := t.byToken(cluster, name, in.ClientRequestToken); u != nil {
		writeJSON(w, http.StatusOK, map[string]any{"update": u.json()})
		return
	}
	st, msg := t.updatable(cluster, name, ng)
	if msg != "" {
		writeError(w, http.StatusConflict, "ResourceInUseException", msg)
		return
	}
	params := [][2]string{}
	newLT := "" // set once every check has passed
	if in.LaunchTemplate != nil {
		var lt ngTemplateVersion
		if lt, msg = s.checkTemplateUpdate(r, st, in); msg != "" {
			writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
			return
		}
		params = append(params, [2]string{"LaunchTemplateName", lt.name}, [2]string{"LaunchTemplateVersion", lt.version})
		newLT = lt.version
	}
	// Without a version EKS moves the group to the cluster's (upgrade.go).
	version, vmsg := s.ngTargetVersion(r, cluster, st, in.Version)
	if vmsg != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", vmsg)
		return
	}
	if newLT != "" {
		t.mu.Lock()
		st.ltVersion = newLT
		t.mu.Unlock()
	}
	if in.Version != "" {
		params = append(params, [2]string{"Version", in.Version})
	}
	if version != "" {
		t.mu.Lock()
		st.version = version
		t.mu.Unlock()
	}
	if in.ReleaseVersion != "" {
		params = append(params, [2]string{"ReleaseVersion", in.ReleaseVersion})
	}
	u := t.start(st, "VersionUpdate", in.ClientRequestToken, params, s.opts.Polls)
	writeJSON(w, http.StatusOK, map[string]any{"update": u.json()})
}

// checkTemplateUpdate checks the launch template of an UpdateNodegroupVersion.
func (s *Server) checkTemplateUpdate(r *http.Request, st *ngState, in ngUpdateVersionRequest) (ngTemplateVersion, string) {
	if st.ltID == "" {
		return ngTemplateVersion{}, "You cannot specify a launch template for a nodegroup that was not created with a launch template."
	}
	spec := *in.LaunchTemplate
	if (spec.ID != "" && spec.ID != st.ltID) || (spec.Name != "" && spec.Name != st.ltName) {
		return ngTemplateVersion{}, fmt.Sprintf("The launch template must be the one the nodegroup was created with (%s).", st.ltID)
	}
	if spec.ID == "" && spec.Name == "" {
		spec.ID = st.ltID
	}
	lt, msg := s.ngLaunchTemplate(r, spec)
	if msg != "" {
		return ngTemplateVersion{}, msg
	}
	if lt.imageID != "" && (in.Version != "" || in.ReleaseVersion != "") {
		return ngTemplateVersion{}, "You cannot specify a Kubernetes version or a release version when the launch template specifies a custom AMI."
	}
	return lt, ""
}

// updatable returns the group's state when an update may start, else why not.
func (t *ngTable) updatable(cluster, name string, ng map[string]any) (*ngState, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.groups[cluster+"/"+name]
	if st == nil {
		// A group created before the stand-in knew it (or without a
		// launch template): start tracking it.
		st = &ngState{updates: map[string]*ngUpdate{}}
		t.groups[cluster+"/"+name] = st
	}
	if st.running != nil && st.polls > 0 {
		return nil, "An update is already in progress for nodegroup " + name + "."
	}
	if status, _ := ng["status"].(string); status != "ACTIVE" {
		return nil, fmt.Sprintf("Nodegroup %s cannot be updated as it is currently not in ACTIVE state (%s).", name, status)
	}
	return st, ""
}

// start records a new update; it is InProgress for polls descriptions.
func (t *ngTable) start(st *ngState, kind, token string, params [][2]string, polls int) *ngUpdate {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	u := &ngUpdate{id: fmt.Sprintf("%08x-0000-4000-8000-%012x", t.seq, t.seq), kind: kind, status: "InProgress",
		token: token, params: params, created: time.Now().UTC()}
	if polls == 0 {
		u.status = "Successful"
	} else {
		st.running, st.polls = u, polls
	}
	st.updates[u.id] = u
	return u
}

func (t *ngTable) byToken(cluster, name, token string) *ngUpdate {
	if token == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.groups[cluster+"/"+name]; st != nil {
		for _, u := range st.updates {
			if u.token == token {
				return u
			}
		}
	}
	return nil
}

// updateNodegroupConfig refuses a change while an update runs (moto does
// not know), checks updateConfig as EKS does, lets moto apply it and
// remembers the update for DescribeUpdate.
func (s *Server) updateNodegroupConfig(w http.ResponseWriter, r *http.Request, cluster, name string) {
	body := ngReadBody(r)
	var in struct {
		UpdateConfig *ngUpdateConfig `json:"updateConfig"`
	}
	if json.Unmarshal(body, &in) != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "the request body is not valid JSON")
		return
	}
	if msg := ngCheckUpdateConfig(in.UpdateConfig); msg != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return
	}
	ng, rec := s.motoNodegroup(r, cluster, name)
	if ng == nil {
		ngNotFoundOrRelay(w, rec, name)
		return
	}
	t := s.ngTable()
	st, msg := t.updatable(cluster, name, ng)
	if msg != "" {
		writeError(w, http.StatusConflict, "ResourceInUseException", msg)
		return
	}
	rec = s.ngMotoCall(r, http.MethodPost, r.URL.Path, body)
	if rec.Code == http.StatusOK {
		var out struct {
			Update struct {
				ID     string `json:"id"`
				Params []struct {
					Type  string `json:"type"`
					Value string `json:"value"`
				} `json:"params"`
			} `json:"update"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &out) == nil && out.Update.ID != "" {
			u := &ngUpdate{id: out.Update.ID, kind: "ConfigUpdate", status: "Successful", created: time.Now().UTC()}
			for _, p := range out.Update.Params {
				u.params = append(u.params, [2]string{p.Type, p.Value})
			}
			t.mu.Lock()
			st.updates[u.id] = u
			t.mu.Unlock()
		}
	}
	ngRelay(w, rec, rec.Body.Bytes())
}

// describeNodegroupUpdate answers DescribeUpdate for a node group's update.
func (s *Server) describeNodegroupUpdate(w http.ResponseWriter, cluster, name, id string) {
	t := s.ngTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.groups[cluster+"/"+name]
	if st == nil || st.updates[id] == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("No update found for ID: %s.", id))
		return
	}
	u := st.updates[id]
	if st.running == u {
		if st.polls > 0 {
			st.polls--
		}
		if st.polls == 0 {
			u.status, st.running = "Successful", nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"update": u.json()})
}

func (u *ngUpdate) json() map[string]any {
	params := []any{}
	for _, p := range u.params {
		params = append(params, map[string]any{"type": p[0], "value": p[1]})
	}
	return map[string]any{"id": u.id, "status": u.status, "type": u.kind, "params": params,
		"createdAt": epoch(u.created), "errors": []any{}}
}

func ngNotFoundOrRelay(w http.ResponseWriter, rec *httptest.ResponseRecorder, name string) {
	if rec.Code == http.StatusNotFound || rec.Code == http.StatusOK {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "No node group found for name: "+name+".")
		return
	}
	ngRelay(w, rec, rec.Body.Bytes())
}

func ngReadBody(r *http.Request) []byte {
	var buf bytes.Buffer
	if r.Body != nil {
		_, _ = buf.ReadFrom(r.Body)
		r.Body = ngReadCloser(buf.Bytes())
	}
	return buf.Bytes()
}

func ngReadCloser(b []byte) *ngBodyReader { return &ngBodyReader{bytes.NewReader(b)} }

type ngBodyReader struct{ *bytes.Reader }

func (ngBodyReader) Close() error { return nil }

// isARM reports whether an AMI type is for arm64 instances ("" for types
// without an architecture, such as CUSTOM).
func ngAMIArchitecture(amiType string) string {
	switch {
	case amiType == "" || amiType == "CUSTOM":
		return ""
	case strings.Contains(amiType, "ARM_64") || strings.Contains(amiType, "ARM64") || strings.Contains(amiType, "arm64"):
		return "arm64"
	}
	return "x86_64"
}
