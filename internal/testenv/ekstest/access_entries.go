package ekstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coderctl/coderctl/internal/awsx"
)

// The access entry API, which moto 5.2.1 lacks entirely (and moto forgets a
// cluster's accessConfig): served as EKS documents it
// (https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html).
// CreateCluster's accessConfig is kept beside moto's record and shown in
// every description; a cluster created with bootstrapClusterCreatorAdminPermissions
// and a mode that includes API gets the creator's entry (the caller as moto's
// STS sees it, an assumed-role session as its role) with
// AmazonEKSClusterAdminPolicy, as EKS does. Access entry calls on a
// CONFIG_MAP cluster are refused with InvalidRequestException.

var (
	accessEntriesPath  = regexp.MustCompile(`^/clusters/([^/]+)/access-entries$`)
	accessEntryPath    = regexp.MustCompile(`^/clusters/([^/]+)/access-entries/([^/]+)$`)
	entryPoliciesPath  = regexp.MustCompile(`^/clusters/([^/]+)/access-entries/([^/]+)/access-policies$`)
	entryPolicyPath    = regexp.MustCompile(`^/clusters/([^/]+)/access-entries/([^/]+)/access-policies/([^/]+)$`)
	clusterCreatePath  = "/clusters"
	accessPoliciesPath = "/access-policies"
)

// accessPolicyNames are EKS's access policies (ListAccessPolicies).
var accessPolicyNames = []string{
	"AmazonEKSAdminPolicy", "AmazonEKSAdminViewPolicy", "AmazonEKSAutoNodePolicy", "AmazonEKSBlockStoragePolicy",
	"AmazonEKSClusterAdminPolicy", "AmazonEKSComputePolicy", "AmazonEKSEditPolicy", "AmazonEKSHybridPolicy",
	"AmazonEKSLoadBalancingPolicy", "AmazonEKSNetworkingPolicy", "AmazonEKSViewPolicy",
}

// AccessPolicyARN is the ARN of the EKS access policy name.
func AccessPolicyARN(name string) string {
	return "arn:aws:eks::aws:cluster-access-policy/" + name
}

type accessCluster struct {
	mode      string
	bootstrap bool
	entries   map[string]*accessEntry
}

type accessEntry struct {
	principal, kind, username string
	groups                    []string
	tags                      map[string]string
	created, modified         time.Time
	policies                  map[string]*associatedPolicy
}

type associatedPolicy struct {
	scopeType  string
	namespaces []string
	at         time.Time
}

type accessTable struct {
	mu       sync.Mutex
	clusters map[string]*accessCluster
}

var accessTables sync.Map // *Server -> *accessTable

func (s *Server) access() *accessTable {
	t, _ := accessTables.LoadOrStore(s, &accessTable{clusters: map[string]*accessCluster{}})
	return t.(*accessTable)
}

// serveAccess answers the access entry API, CreateCluster's accessConfig and
// the accessConfig of cluster descriptions; false for every other request.
func (s *Server) serveAccess(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.EscapedPath()
	switch {
	case p == accessPoliciesPath && r.Method == http.MethodGet:
		s.listAccessPolicies(w)
	case p == clusterCreatePath && r.Method == http.MethodPost:
		s.createClusterAccess(w, r)
	case clusterPath.MatchString(p) && r.Method == http.MethodGet:
		s.describeClusterAccess(w, r, clusterPath.FindStringSubmatch(p)[1])
	case updateConfigPath.MatchString(p) && r.Method == http.MethodPost:
		return s.updateAccessConfig(w, r, updateConfigPath.FindStringSubmatch(p)[1])
	case strings.Contains(p, "/access-entries"):
		s.serveEntries(w, r, p)
	default:
		return false
	}
	return true
}

func (s *Server) serveEntries(w http.ResponseWriter, r *http.Request, p string) {
	var m []string
	switch {
	case accessEntriesPath.MatchString(p):
		m = accessEntriesPath.FindStringSubmatch(p)
	case accessEntryPath.MatchString(p):
		m = accessEntryPath.FindStringSubmatch(p)
	case entryPoliciesPath.MatchString(p):
		m = entryPoliciesPath.FindStringSubmatch(p)
	case entryPolicyPath.MatchString(p):
		m = entryPolicyPath.FindStringSubmatch(p)
	default:
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "Unknown operation")
		return
	}
	for i := range m {
		m[i], _ = url.PathUnescape(m[i])
	}
	if _, ok := s.fetchCluster(w, r, m[1]); !ok {
		return
	}
	t := s.access()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cluster(m[1])
	if c.mode == "CONFIG_MAP" {
		writeError(w, http.StatusBadRequest, "InvalidRequestException",
			"The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.")
		return
	}
	switch {
	case accessEntriesPath.MatchString(p) && r.Method == http.MethodPost:
		s.createEntry(w, r, c, m[1])
	case accessEntriesPath.MatchString(p) && r.Method == http.MethodGet:
		c.list(w, r.URL.Query().Get("associatedPolicyArn"))
	case len(m) == 3 && r.Method == http.MethodGet && accessEntryPath.MatchString(p):
		c.withEntry(w, m[1], m[2], func(e *accessEntry) { writeJSON(w, http.StatusOK, map[string]any{"accessEntry": e.json(m[1])}) })
	case len(m) == 3 && r.Method == http.MethodPost && accessEntryPath.MatchString(p):
		c.withEntry(w, m[1], m[2], func(e *accessEntry) { updateEntry(w, r, e, m[1]) })
	case len(m) == 3 && r.Method == http.MethodDelete && accessEntryPath.MatchString(p):
		c.withEntry(w, m[1], m[2], func(*accessEntry) { delete(c.entries, m[2]); writeJSON(w, http.StatusOK, map[string]any{}) })
	case entryPoliciesPath.MatchString(p) && r.Method == http.MethodPost:
		c.withEntry(w, m[1], m[2], func(e *accessEntry) { associate(w, r, e, m[1]) })
	case entryPoliciesPath.MatchString(p) && r.Method == http.MethodGet:
		c.withEntry(w, m[1], m[2], func(e *accessEntry) { writeJSON(w, http.StatusOK, e.policiesJSON(m[1])) })
	case entryPolicyPath.MatchString(p) && r.Method == http.MethodDelete:
		c.withEntry(w, m[1], m[2], func(e *accessEntry) {
			delete(e.policies, m[3]) // EKS answers 200 for a policy not associated too
			writeJSON(w, http.StatusOK, map[string]any{})
		})
	default:
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "Unknown operation")
	}
}

// cluster returns the cluster's record; one moto created before the double
// saw it has EKS's defaults. Caller holds t.mu.
func (t *accessTable) cluster(name string) *accessCluster {
	if t.clusters[name] == nil {
		// A cluster the double did not see created (made in moto directly)
		// gets what EKS gives a create without accessConfig.
		t.clusters[name] = &accessCluster{mode: "API_AND_CONFIG_MAP", bootstrap: true, entries: map[string]*accessEntry{}}
	}
	return t.clusters[name]
}

func (c *accessCluster) withEntry(w http.ResponseWriter, cluster, principal string, f func(*accessEntry)) {
	e := c.entries[principal]
	if e == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException",
			fmt.Sprintf("The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'. (cluster %s)", cluster))
		return
	}
	f(e)
}

func (c *accessCluster) list(w http.ResponseWriter, policy string) {
	out := []string{}
	for p, e := range c.entries {
		if policy == "" || e.policies[policy] != nil {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	writeJSON(w, http.StatusOK, map[string]any{"accessEntries": out})
}

type entryRequest struct {
	PrincipalArn     string            `json:"principalArn"`
	KubernetesGroups []string          `json:"kubernetesGroups"`
	Username         *string           `json:"username"`
	Type             string            `json:"type"`
	Tags             map[string]string `json:"tags"`
}

// principalProblem says why EKS refuses a principal ARN ("" when it takes it):
// an IAM user or role, of any path.
func principalProblem(p string) string {
	a, err := arn.Parse(p)
	if err != nil || a.Service != "iam" || !(strings.HasPrefix(a.Resource, "role/") || strings.HasPrefix(a.Resource, "user/")) {
		return fmt.Sprintf("The principalArn parameter format is not valid: %s", p)
	}
	return ""
}

func (s *Server) createEntry(w http.ResponseWriter, r *http.Request, c *accessCluster, cluster string) {
	var in entryRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return
	}
	if msg := principalProblem(in.PrincipalArn); msg != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return
	}
	if c.entries[in.PrincipalArn] != nil {
		writeError(w, http.StatusConflict, "ResourceInUseException",
			fmt.Sprintf("The specified access entry resource is already in use on this cluster. (principal %s)", in.PrincipalArn))
		return
	}
	if in.Type == "" {
		in.Type = "STANDARD"
	}
	now := time.Now().UTC()
	e := &accessEntry{principal: in.PrincipalArn, kind: in.Type, groups: in.KubernetesGroups, tags: in.Tags,
		created: now, modified: now, policies: map[string]*associatedPolicy{}, username: aws.ToString(in.Username)}
	c.entries[in.PrincipalArn] = e
	writeJSON(w, http.StatusOK, map[string]any{"accessEntry": e.json(cluster)})
}

func updateEntry(w http.ResponseWriter, r *http.Request, e *accessEntry, cluster string) {
	var in entryRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return
	}
	if in.KubernetesGroups != nil {
		e.groups = in.KubernetesGroups
	}
	if in.Username != nil {
		e.username = *in.Username
	}
	e.modified = time.Now().UTC()
	writeJSON(w, http.StatusOK, map[string]any{"accessEntry": e.json(cluster)})
}

func associate(w http.ResponseWriter, r *http.Request, e *accessEntry, cluster string) {
	var in struct {
		PolicyArn   string `json:"policyArn"`
		AccessScope struct {
			Type       string   `json:"type"`
			Namespaces []string `json:"namespaces"`
		} `json:"accessScope"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return
	}
	switch {
	case !knownPolicy(in.PolicyArn):
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("The specified policyArn could not be found: %s", in.PolicyArn))
		return
	case in.AccessScope.Type == "namespace" && len(in.AccessScope.Namespaces) == 0,
		in.AccessScope.Type == "cluster" && len(in.AccessScope.Namespaces) > 0,
		in.AccessScope.Type != "namespace" && in.AccessScope.Type != "cluster":
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "The accessScope parameter is not valid.")
		return
	}
	if e.kind != "STANDARD" {
		writeError(w, http.StatusBadRequest, "InvalidRequestException", "Access policies can only be associated with access entries of type STANDARD.")
		return
	}
	ap := &associatedPolicy{scopeType: in.AccessScope.Type, namespaces: in.AccessScope.Namespaces, at: time.Now().UTC()}
	if old := e.policies[in.PolicyArn]; old != nil {
		ap.at = old.at // a new scope replaces the old one
	}
	e.policies[in.PolicyArn] = ap
	writeJSON(w, http.StatusOK, map[string]any{"clusterName": cluster, "principalArn": e.principal, "associatedAccessPolicy": ap.json(in.PolicyArn)})
}

func knownPolicy(p string) bool {
	for _, n := range accessPolicyNames {
		if p == AccessPolicyARN(n) {
			return true
		}
	}
	return false
}

func (s *Server) listAccessPolicies(w http.ResponseWriter) {
	out := []any{}
	for _, n := range accessPolicyNames {
		out = append(out, map[string]any{"name": n, "arn": AccessPolicyARN(n)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"accessPolicies": out})
}

func (e *accessEntry) json(cluster string) map[string]any {
	username := e.username
	if username == "" {
		username = defaultUsername(e.principal)
	}
	return map[string]any{
		"clusterName": cluster, "principalArn": e.principal, "kubernetesGroups": e.groups, "username": username, "type": e.kind,
		"accessEntryArn": fmt.Sprintf("arn:aws:eks:us-west-2:123456789012:access-entry/%s/%s", cluster, e.principal),
		"createdAt":      epoch(e.created), "modifiedAt": epoch(e.modified), "tags": e.tags,
	}
}

// defaultUsername is EKS's username for an entry created without one.
func defaultUsername(principal string) string {
	if a, err := arn.Parse(principal); err == nil && strings.HasPrefix(a.Resource, "role/") {
		return "arn:aws:sts::" + a.AccountID + ":assumed-role/" + a.Resource[strings.LastIndex(a.Resource, "/")+1:] + "/{{SessionName}}"
	}
	return principal
}

func (e *accessEntry) policiesJSON(cluster string) map[string]any {
	names := make([]string, 0, len(e.policies))
	for n := range e.policies {
		names = append(names, n)
	}
	sort.Strings(names)
	list := []any{}
	for _, n := range names {
		list = append(list, e.policies[n].json(n))
	}
	return map[string]any{"clusterName": cluster, "principalArn": e.principal, "associatedAccessPolicies": list}
}

func (ap *associatedPolicy) json(policy string) map[string]any {
	scope := map[string]any{"type": ap.scopeType}
	if len(ap.namespaces) > 0 {
		scope["namespaces"] = ap.namespaces
	}
	return map[string]any{"policyArn": policy, "accessScope": scope, "associatedAt": epoch(ap.at), "modifiedAt": epoch(ap.at)}
}

// createClusterAccess forwards CreateCluster to moto and, when moto made
// the cluster, records its access configuration and the creator's entry.
func (s *Server) createClusterAccess(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		Name         string `json:"name"`
		AccessConfig *struct {
			AuthenticationMode                      string `json:"authenticationMode"`
			BootstrapClusterCreatorAdminPermissions *bool  `json:"bootstrapClusterCreatorAdminPermissions"`
		} `json:"accessConfig"`
	}
	_ = json.Unmarshal(body, &in)
	// EKS finishes a create it has received even when the caller goes away
	// (a run killed mid-request): so must moto's forward, the creator's
	// identity lookup and the record of its accessConfig and entry.
	r = r.WithContext(context.WithoutCancel(r.Context()))
	rec := httptest.NewRecorder()
	s.ServeHTTPWithout(rec, r)
	if rec.Code == http.StatusOK {
		// EKS's defaults: API_AND_CONFIG_MAP (the API answers CONFIG_MAP for
		// older clusters), the creator an admin.
		c := &accessCluster{mode: "API_AND_CONFIG_MAP", bootstrap: true, entries: map[string]*accessEntry{}}
		if ac := in.AccessConfig; ac != nil {
			if ac.AuthenticationMode != "" {
				c.mode = ac.AuthenticationMode
			}
			if ac.BootstrapClusterCreatorAdminPermissions != nil {
				c.bootstrap = *ac.BootstrapClusterCreatorAdminPermissions
			}
		}
		if c.bootstrap && c.mode != "CONFIG_MAP" {
			if creator := s.callerRole(r); creator != "" {
				now := time.Now().UTC()
				c.entries[creator] = &accessEntry{principal: creator, kind: "STANDARD", created: now, modified: now,
					policies: map[string]*associatedPolicy{AccessPolicyARN("AmazonEKSClusterAdminPolicy"): {scopeType: "cluster", at: now}}}
			}
		}
		t := s.access()
		t.mu.Lock()
		t.clusters[in.Name] = c
		t.mu.Unlock()
	}
	relayWithAccess(w, rec, s.accessJSON(in.Name))
}

// ServeHTTPWithout routes r as ServeHTTP does, past the access hook.
func (s *Server) ServeHTTPWithout(w http.ResponseWriter, r *http.Request) {
	if s.serveNodegroup(w, r) || s.serveClusterConfig(w, r) {
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/clusters" && s.refuseCreate() {
		writeError(w, http.StatusBadRequest, "InvalidParameterException",
			"Role with arn: arn:aws:iam::123456789012:role/x, could not be assumed because it does not exist or the trusted entity is not correct")
		return
	}
	s.proxy.ServeHTTP(w, r)
}

func (s *Server) describeClusterAccess(w http.ResponseWriter, r *http.Request, name string) {
	rec := httptest.NewRecorder()
	s.ServeHTTPWithout(rec, r)
	relayWithAccess(w, rec, s.accessJSON(name))
}

// accessJSON is the cluster's accessConfig as EKS describes it.
func (s *Server) accessJSON(name string) map[string]any {
	t := s.access()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cluster(name)
	return map[string]any{"authenticationMode": c.mode, "bootstrapClusterCreatorAdminPermissions": c.bootstrap}
}

// relayWithAccess writes rec's answer with accessConfig on its cluster.
func relayWithAccess(w http.ResponseWriter, rec *httptest.ResponseRecorder, ac map[string]any) {
	raw := rec.Body.Bytes()
	var body map[string]any
	if rec.Code == http.StatusOK && json.Unmarshal(raw, &body) == nil {
		if c, ok := body["cluster"].(map[string]any); ok {
			c["accessConfig"] = ac
			raw, _ = json.Marshal(body)
		}
	}
	ngRelay(w, rec, raw)
}

// updateAccessConfig serves UpdateClusterConfig's accessConfig: EKS moves
// the mode only towards API (CONFIG_MAP → API_AND_CONFIG_MAP → API) and
// never changes bootstrapClusterCreatorAdminPermissions after creation.
func (s *Server) updateAccessConfig(w http.ResponseWriter, r *http.Request, name string) bool {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		AccessConfig *struct {
			AuthenticationMode string `json:"authenticationMode"`
		} `json:"accessConfig"`
	}
	if json.Unmarshal(body, &in) != nil || in.AccessConfig == nil {
		return false
	}
	if _, ok := s.fetchCluster(w, r, name); !ok {
		return true
	}
	t := s.access()
	t.mu.Lock()
	have := t.cluster(name).mode
	t.mu.Unlock()
	rank := map[string]int{"CONFIG_MAP": 0, "API_AND_CONFIG_MAP": 1, "API": 2}
	mode := in.AccessConfig.AuthenticationMode
	if want, ok := rank[mode]; !ok || want <= rank[have] {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "Unsupported authentication mode update from "+have+" to "+mode)
		return true
	}
	// An Update like the others (clusterconfig.go): one at a time, the
	// mode changed when it succeeds. Lock order: s.mu, then t.mu.
	s.mu.Lock()
	defer s.mu.Unlock()
	conf := s.clusterConfOf(name, regionOf(r))
	if s.refuseWhileUpdating(r.Context(), w, name, "AccessConfigUpdate", conf) {
		return true
	}
	u := &clusterUpdate{kind: "AccessConfigUpdate", params: []map[string]string{{"type": "AuthenticationMode", "value": mode}},
		apply: func(*clusterConf) {
			t.mu.Lock()
			t.cluster(name).mode = mode
			t.mu.Unlock()
		}}
	s.startClusterUpdate(conf, u, "")
	writeJSON(w, http.StatusOK, u.json())
	return true
}

// callerRole is the caller's identity as moto's STS sees it from the
// request's access key, an assumed-role session as its role: whom EKS
// makes the creator's entry for.
func (s *Server) callerRole(r *http.Request) string {
	key := ""
	if _, scope, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		key, _, _ = strings.Cut(scope, "/")
	}
	client := sts.New(sts.Options{Region: regionOf(r), BaseEndpoint: aws.String(s.moto.String()),
		Credentials: credentials.NewStaticCredentialsProvider(key, "ekstest", "")})
	out, err := client.GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		return ""
	}
	return awsx.PrincipalOf(aws.ToString(out.Arn))
}

// AccessEntryFor creates an access entry behind coderctl's back (someone
// else's), for tests.
func (s *Server) AccessEntryFor(cluster, principal string, policies ...string) {
	t := s.access()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now().UTC()
	e := &accessEntry{principal: principal, kind: "STANDARD", created: now, modified: now, policies: map[string]*associatedPolicy{}}
	for _, p := range policies {
		e.policies[p] = &associatedPolicy{scopeType: "cluster", at: now}
	}
	t.cluster(cluster).entries[principal] = e
}

// AccessEntries lists the cluster's entries' principals, for tests.
func (s *Server) AccessEntries(cluster string) []string {
	t := s.access()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for p := range t.cluster(cluster).entries {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
