// Package ekstest fills a gap of the proving ground: moto 5.2.1 does not
// implement the EKS add-on API (CreateAddon, DescribeAddon, ListAddons,
// UpdateAddon, DeleteAddon, DescribeAddonVersions all answer 404). Server
// is a test double that serves those operations itself and forwards every
// other request to moto, so the EKS client talks to one endpoint. Any test
// that applies the eks stage against moto needs it: call Use before
// stagetest.New.
package ekstest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// Options shape the double's behaviour.
type Options struct {
	// Polls is how many DescribeAddon answers say CREATING (after a create)
	// or DELETING (after a delete) before the add-on is ACTIVE or gone, so
	// tests exercise the waiters. 0: at once, as moto does everything.
	Polls int
	// ClusterCA, when set, replaces moto's random certificateAuthority.data
	// (not a PEM) with this PEM in cluster descriptions.
	ClusterCA []byte
	// ClusterEndpoint, when set, replaces the cluster's endpoint.
	ClusterEndpoint string
	// ClusterPolls is how many descriptions of a new cluster say CREATING
	// (without an endpoint, as EKS's do) before moto's ACTIVE shows.
	ClusterPolls int
	// RoleNotReady is how many CreateCluster calls are refused the way EKS
	// refuses them while a new IAM role propagates.
	RoleNotReady int
	// UpdatePolls is how many descriptions (DescribeUpdate, DescribeCluster)
	// a cluster update stays InProgress, the cluster UPDATING, before it
	// succeeds; 0: it succeeds on the next one.
	UpdatePolls int
}

// Server is the double, an http.Handler.
type Server struct {
	// URL is where Start serves it.
	URL   string
	moto  *url.URL
	opts  Options
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	addons   map[string]map[string]*addon // cluster -> add-on name -> add-on
	seq      int
	requests []request
	creating map[string]int // cluster -> descriptions left that say CREATING
	refused  int
	confs    map[string]*clusterConf // cluster -> what its updates changed
	faultMu  sync.Mutex
	faults   []error
}

// request is one EKS call the double received.
type request struct {
	method, path string
	body         []byte
}

type addon struct {
	name, cluster, version, role, status, token, arn string
	// values are the configurationValues as given (JSON or YAML).
	values  string
	tags    map[string]string
	created time.Time
	polls   int
}

// Use resets the test binary's moto, starts a double in front of it and
// sets AWS_ENDPOINT_URL_EKS for the rest of the test, so AWS configurations
// loaded from the environment (awsx.LoadConfig, a coderctl child process)
// send EKS calls to the double. stagetest's Deps pin every client to moto
// with config.WithBaseEndpoint, which outranks that variable: Wire them.
func Use(t testing.TB, opts Options) *Server {
	t.Helper()
	m := moto.Require(t)
	s := Start(t, m.URL, opts)
	t.Setenv("AWS_ENDPOINT_URL_EKS", s.URL)
	return s
}

// Wire points d's EKS client at the double, keeping the configuration's
// API options (the call counter). Call it after stagetest.New and after
// every Reload.
func (s *Server) Wire(d *deploy.Deps) {
	d.AWS.EKS = eks.NewFromConfig(d.AWS.Config, func(o *eks.Options) { o.BaseEndpoint = aws.String(s.URL) })
}

// Start serves the double in front of the moto at motoURL until the test ends.
func Start(t testing.TB, motoURL string, opts Options) *Server {
	t.Helper()
	s, err := New(motoURL, opts)
	if err != nil {
		t.Fatalf("ekstest: %v", err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// New builds the double for the moto at motoURL without serving it, for a
// process (`make demo`) that serves it itself and points coderctl at it
// with AWS_ENDPOINT_URL_EKS.
func New(motoURL string, opts Options) (*Server, error) {
	target, err := url.Parse(motoURL)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("moto URL %q: not an absolute URL", motoURL)
	}
	s := &Server{moto: target, opts: opts, addons: map[string]map[string]*addon{}, creating: map[string]int{}, confs: map[string]*clusterConf{}}
	s.proxy = httputil.NewSingleHostReverseProxy(target)
	s.proxy.ModifyResponse = s.rewriteCluster
	return s, nil
}

var (
	addonsPath   = regexp.MustCompile(`^/clusters/([^/]+)/addons$`)
	addonPath    = regexp.MustCompile(`^/clusters/([^/]+)/addons/([^/]+)$`)
	updatePath   = regexp.MustCompile(`^/clusters/([^/]+)/addons/([^/]+)/update$`)
	clusterPath  = regexp.MustCompile(`^/clusters/([^/]+)$`)
	clustersPath = regexp.MustCompile(`^/clusters(/[^/]+)?$`)
)

// ServeHTTP routes the add-on operations to the double and the rest to moto.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.record(r)
	p := r.URL.Path
	// Node group and cluster-configuration calls moto lacks have their own
	// files (nodegroups.go, clusterconfig.go); each says whether it answered.
	if s.serveAccess(w, r) { // access entries and accessConfig (access_entries.go)
		return
	}
	if s.serveNodegroup(w, r) || s.serveClusterConfig(w, r) || s.serveUpgrade(w, r) { // upgrade.go
		return
	}
	switch {
	case p == "/addons/supported-versions" && r.Method == http.MethodGet:
		s.describeVersions(w, r)
	case p == "/addons/configuration-schemas" && r.Method == http.MethodGet:
		s.describeConfiguration(w, r)
	case addonsPath.MatchString(p) && r.Method == http.MethodPost:
		s.create(w, r, addonsPath.FindStringSubmatch(p)[1])
	case addonsPath.MatchString(p) && r.Method == http.MethodGet:
		s.list(w, addonsPath.FindStringSubmatch(p)[1])
	case updatePath.MatchString(p) && r.Method == http.MethodPost:
		m := updatePath.FindStringSubmatch(p)
		s.update(w, r, m[1], m[2])
	case addonPath.MatchString(p) && r.Method == http.MethodGet:
		m := addonPath.FindStringSubmatch(p)
		s.describe(w, m[1], m[2])
	case addonPath.MatchString(p) && r.Method == http.MethodDelete:
		m := addonPath.FindStringSubmatch(p)
		s.delete(w, m[1], m[2])
	case p == "/clusters" && r.Method == http.MethodPost && s.refuseCreate():
		writeError(w, http.StatusBadRequest, "InvalidParameterException",
			"Role with arn: arn:aws:iam::123456789012:role/x, could not be assumed because it does not exist or the trusted entity is not correct")
	case clusterPath.MatchString(p) && r.Method == http.MethodDelete:
		s.deleteCluster(w, r, clusterPath.FindStringSubmatch(p)[1])
	default:
		s.proxy.ServeHTTP(w, r)
	}
}

// record keeps the request's body for Requests and gives it back to r.
func (s *Server) record(r *http.Request) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, request{method: r.Method, path: r.URL.Path, body: body})
}

// Requests returns the bodies of the EKS calls received with method and
// path (e.g. "POST", "/clusters" for CreateCluster), oldest first.
func (s *Server) Requests(method, path string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, r := range s.requests {
		if r.method == method && r.path == path {
			out = append(out, r.body)
		}
	}
	return out
}

// refuseCreate counts down the CreateCluster calls to refuse.
func (s *Server) refuseCreate() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused < s.opts.RoleNotReady {
		s.refused++
		return true
	}
	return false
}

// catalog is the add-on versions the double offers for every Kubernetes
// version coderctl supports, newest first as EKS lists them.
func catalog(name, k8s string) []string {
	minor := strings.TrimPrefix(k8s, "1.")
	switch name {
	case "vpc-cni":
		return []string{"v1.20.4-eksbuild.1", "v1.19.6-eksbuild.1"}
	case "coredns":
		return []string{"v1.12.3-eksbuild.1", "v1.11.4-eksbuild.2"}
	case "kube-proxy":
		return []string{"v1." + minor + ".0-eksbuild.2", "v1." + minor + ".0-eksbuild.1"}
	case "aws-ebs-csi-driver":
		return []string{"v1.48.0-eksbuild.2", "v1.47.0-eksbuild.1"}
	}
	return nil
}

func knownAddons() []string {
	return []string{"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}
}

func supported(k8s string) bool {
	for _, v := range config.SupportedEKSVersions() {
		if v == k8s {
			return true
		}
	}
	return false
}

func (s *Server) describeVersions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k8s := q.Get("kubernetesVersion")
	names := knownAddons()
	if n := q.Get("addonName"); n != "" {
		names = []string{n}
	}
	infos := []any{}
	for _, name := range names {
		if k8s != "" && !supported(k8s) {
			continue
		}
		versions := catalog(name, k8s)
		if versions == nil {
			continue
		}
		var vs []any
		for i, v := range versions {
			vs = append(vs, map[string]any{
				"addonVersion": v, "architecture": []string{"amd64", "arm64"},
				"compatibilities": []any{map[string]any{"clusterVersion": k8s, "defaultVersion": i == 0, "platformVersions": []string{"*"}}},
			})
		}
		infos = append(infos, map[string]any{"addonName": name, "type": "networking", "owner": "aws", "addonVersions": vs})
	}
	writeJSON(w, http.StatusOK, map[string]any{"addons": infos})
}

type createRequest struct {
	AddonName             string            `json:"addonName"`
	AddonVersion          string            `json:"addonVersion"`
	ServiceAccountRoleArn string            `json:"serviceAccountRoleArn"`
	ConfigurationValues   *string           `json:"configurationValues"`
	ClientRequestToken    string            `json:"clientRequestToken"`
	Tags                  map[string]string `json:"tags"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, cluster string) {
	var in createRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.AddonName == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "addonName is required")
		return
	}
	k8s, ok := s.clusterVersion(w, r, cluster)
	if !ok {
		return
	}
	versions := catalog(in.AddonName, k8s)
	if len(versions) == 0 {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", fmt.Sprintf("Addon %s specified is not supported in %s kubernetes version", in.AddonName, k8s))
		return
	}
	if in.AddonVersion == "" {
		in.AddonVersion = versions[0]
	}
	if in.ConfigurationValues != nil {
		if msg := checkValues(in.AddonName, *in.ConfigurationValues); msg != "" {
			writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addons[cluster] == nil {
		s.addons[cluster] = map[string]*addon{}
	}
	if cur := s.addons[cluster][in.AddonName]; cur != nil {
		if in.ClientRequestToken != "" && cur.token == in.ClientRequestToken {
			writeJSON(w, http.StatusOK, map[string]any{"addon": cur.json()})
			return
		}
		writeError(w, http.StatusConflict, "ResourceInUseException", "Addon already exists.")
		return
	}
	s.seq++
	a := &addon{
		name: in.AddonName, cluster: cluster, version: in.AddonVersion, role: in.ServiceAccountRoleArn, values: deref(in.ConfigurationValues),
		status: "CREATING", token: in.ClientRequestToken, tags: in.Tags, created: time.Now().UTC(), polls: s.opts.Polls,
		arn: fmt.Sprintf("arn:aws:eks:%s:123456789012:addon/%s/%s/%08d", regionOf(r), cluster, in.AddonName, s.seq),
	}
	if a.polls == 0 {
		a.status = "ACTIVE"
	}
	s.addons[cluster][in.AddonName] = a
	writeJSON(w, http.StatusOK, map[string]any{"addon": a.json()})
}

// clusterVersion asks moto for the cluster's version, answering the EKS
// error itself when the cluster does not exist.
func (s *Server) clusterVersion(w http.ResponseWriter, r *http.Request, cluster string) (string, bool) {
	c, ok := s.fetchCluster(w, r, cluster)
	if !ok {
		return "", false
	}
	v, _ := c["version"].(string)
	s.mu.Lock()
	if conf := s.confs[cluster]; conf != nil && conf.version != "" {
		v = conf.version // upgraded (upgrade.go)
	}
	s.mu.Unlock()
	return v, true
}

func (s *Server) list(w http.ResponseWriter, cluster string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := []string{}
	for n := range s.addons[cluster] {
		names = append(names, n)
	}
	writeJSON(w, http.StatusOK, map[string]any{"addons": names})
}

func (s *Server) describe(w http.ResponseWriter, cluster, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.addons[cluster][name]
	if a == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("No addon: %s found in cluster: %s", name, cluster))
		return
	}
	if a.polls > 0 {
		a.polls--
	} else {
		switch a.status {
		case "CREATING", "UPDATING":
			a.status = "ACTIVE"
		case "DELETING":
			delete(s.addons[cluster], name)
			writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("No addon: %s found in cluster: %s", name, cluster))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"addon": a.json()})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, cluster, name string) {
	var in createRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return
	}
	if in.ConfigurationValues != nil {
		if msg := checkValues(name, *in.ConfigurationValues); msg != "" {
			writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.addons[cluster][name]
	if a == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("No addon: %s found in cluster: %s", name, cluster))
		return
	}
	if in.AddonVersion != "" {
		a.version = in.AddonVersion
	}
	if in.ServiceAccountRoleArn != "" {
		a.role = in.ServiceAccountRoleArn
	}
	if in.ConfigurationValues != nil {
		a.values = *in.ConfigurationValues
	}
	a.status, a.polls = "UPDATING", s.opts.Polls
	if a.polls == 0 {
		a.status = "ACTIVE"
	}
	s.seq++
	writeJSON(w, http.StatusOK, map[string]any{"update": map[string]any{
		"id": fmt.Sprintf("update-%d", s.seq), "status": "InProgress", "type": "AddonUpdate", "createdAt": epoch(time.Now()),
	}})
}

func (s *Server) delete(w http.ResponseWriter, cluster, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.addons[cluster][name]
	if a == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("No addon: %s found in cluster: %s", name, cluster))
		return
	}
	a.status, a.polls = "DELETING", s.opts.Polls
	body := map[string]any{"addon": a.json()}
	if a.polls == 0 {
		delete(s.addons[cluster], name)
	}
	writeJSON(w, http.StatusOK, body)
}

// deleteCluster forwards to moto and, when moto deleted the cluster, drops
// its add-ons as EKS does.
func (s *Server) deleteCluster(w http.ResponseWriter, r *http.Request, cluster string) {
	rec := httptest.NewRecorder()
	s.proxy.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		s.mu.Lock()
		delete(s.addons, cluster)
		delete(s.confs, cluster)
		s.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Addon reports an add-on's status and service-account role as the double
// holds them ("" when it does not exist), for tests' assertions.
func (s *Server) Addon(cluster, name string) (status, role, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.addons[cluster][name]; a != nil {
		return a.status, a.role, a.version
	}
	return "", "", ""
}

// SetAddonRole changes an add-on's role behind coderctl's back, as drift.
func (s *Server) SetAddonRole(cluster, name, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.addons[cluster][name]; a != nil {
		a.role = role
	}
}

// rewriteCluster makes cluster descriptions EKS's: EKS's defaults and the
// double's updates over moto's record (clusterconfig.go), a real CA and
// endpoint and a CREATING phase for a new cluster when the options ask.
func (s *Server) rewriteCluster(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK || !clustersPath.MatchString(resp.Request.URL.Path) || resp.Request.Method == http.MethodDelete {
		return nil
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var body map[string]any
	if json.Unmarshal(raw, &body) == nil {
		if c, ok := body["cluster"].(map[string]any); ok {
			s.rewrite(resp.Request, c, resp.Request.Method == http.MethodPost)
			if out, err := json.Marshal(body); err == nil {
				raw = out
			}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	resp.ContentLength = int64(len(raw))
	resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	return nil
}

func (s *Server) rewrite(r *http.Request, c map[string]any, created bool) {
	if s.opts.ClusterCA != nil {
		c["certificateAuthority"] = map[string]any{"data": base64.StdEncoding.EncodeToString(s.opts.ClusterCA)}
	}
	if s.opts.ClusterEndpoint != "" {
		c["endpoint"] = s.opts.ClusterEndpoint
	}
	name, _ := c["name"].(string)
	s.mu.Lock()
	if created {
		s.creating[name] = s.opts.ClusterPolls
		delete(s.confs, name) // a new cluster: nothing of a predecessor's
	}
	conf := s.confs[name]
	logGroup := created && len(enabledTypes(c["logging"])) > 0
	if conf != nil && !created {
		logGroup = conf.tick()
	}
	s.overlayCluster(c, conf)
	if s.creating[name] > 0 {
		if !created {
			s.creating[name]--
		}
		c["status"] = "CREATING"
		delete(c, "endpoint")
	}
	s.mu.Unlock()
	if logGroup {
		// EKS makes the group once logging is on.
		s.ensureLogGroup(r.Context(), regionOf(r), name)
	}
}

func (a *addon) json() map[string]any {
	out := map[string]any{
		"addonName": a.name, "clusterName": a.cluster, "status": a.status, "addonVersion": a.version,
		"addonArn": a.arn, "createdAt": epoch(a.created), "modifiedAt": epoch(a.created),
		"health": map[string]any{"issues": []any{}}, "tags": a.tags,
	}
	if a.role != "" {
		out["serviceAccountRoleArn"] = a.role
	}
	if a.values != "" {
		out["configurationValues"] = a.values
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// regionOf reads the region from a SigV4 credential scope.
func regionOf(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if _, scope, ok := strings.Cut(auth, "Credential="); ok {
		parts := strings.Split(scope, "/")
		if len(parts) > 2 {
			return parts[2]
		}
	}
	return "us-west-2"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, errType, msg string) {
	w.Header().Set("X-Amzn-Errortype", errType)
	writeJSON(w, code, map[string]any{"message": msg})
}
