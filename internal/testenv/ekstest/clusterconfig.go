package ekstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The cluster configuration calls moto 5.2.1 lacks or gets wrong, served as
// EKS serves them:
//   - UpdateClusterConfig: moto replaces resourcesVpcConfig and logging
//     wholesale (dropping the subnets) and answers with the cluster instead
//     of an Update. EKS merges, takes one kind of change per call, refuses a
//     change that changes nothing, and runs it as an Update.
//   - AssociateEncryptionConfig, DescribeUpdate, ListUpdates: 404 in moto.
//
// The double keeps what the updates changed beside moto's record (a
// clusterConf per cluster) and overlays it on every cluster description, with
// EKS's defaults filled in where moto echoes the request (public access CIDRs
// 0.0.0.0/0, the disabled log types). EKS runs one update at a time: while
// one is InProgress (Options.UpdatePolls looks: descriptions of it or of the
// cluster, refused attempts), the cluster is UPDATING and another update is
// refused with ResourceInUseException.

var (
	updateConfigPath = regexp.MustCompile(`^/clusters/([^/]+)/update-config$`)
	associatePath    = regexp.MustCompile(`^/clusters/([^/]+)/encryption-config/associate$`)
	updatesPath      = regexp.MustCompile(`^/clusters/([^/]+)/updates$`)
	describeUpdPath  = regexp.MustCompile(`^/clusters/([^/]+)/updates/([^/]+)$`)
)

// logTypes are EKS's control-plane log types, in the order EKS lists them.
var logTypes = []string{"api", "audit", "authenticator", "controllerManager", "scheduler"}

// clusterConf is what the double's updates changed on one cluster.
type clusterConf struct {
	region string
	// vpc overrides endpointPublicAccess, endpointPrivateAccess and
	// publicAccessCidrs; nil until an endpoint update succeeds.
	vpc map[string]any
	// enabled is the set of enabled log types; nil until a logging update.
	enabled map[string]bool
	// encryption replaces encryptionConfig once an association succeeds.
	encryption []any
	// version replaces the Kubernetes version once a VersionUpdate succeeds.
	version string
	updates []*clusterUpdate
}

// clusterUpdate is one Update as DescribeUpdate returns it.
type clusterUpdate struct {
	id, kind, status, token string
	params                  []map[string]string
	created                 time.Time
	polls                   int
	// apply makes the change when the update succeeds.
	apply func(*clusterConf)
	// logGroup: the change enables logging, so EKS makes the log group.
	logGroup bool
}

func (u *clusterUpdate) json() map[string]any {
	params := []any{}
	for _, p := range u.params {
		params = append(params, p)
	}
	return map[string]any{"update": map[string]any{
		"id": u.id, "status": u.status, "type": u.kind, "params": params, "createdAt": epoch(u.created), "errors": []any{},
	}}
}

// serveClusterConfig answers the cluster configuration calls moto 5.2.1
// lacks (UpdateClusterConfig, AssociateEncryptionConfig, DescribeUpdate,
// ListUpdates), as EKS does; it reports false for every other request.
// Updates of node groups (nodegroupName) and add-ons (addonName) are not
// cluster updates and are left to whoever serves those.
func (s *Server) serveClusterConfig(w http.ResponseWriter, r *http.Request) bool {
	p, q := r.URL.Path, r.URL.Query()
	switch {
	case updateConfigPath.MatchString(p) && r.Method == http.MethodPost:
		return s.updateClusterConfig(w, r, updateConfigPath.FindStringSubmatch(p)[1])
	case associatePath.MatchString(p) && r.Method == http.MethodPost:
		s.associateEncryption(w, r, associatePath.FindStringSubmatch(p)[1])
	case q.Get("nodegroupName") != "" || q.Get("addonName") != "":
		return false
	case describeUpdPath.MatchString(p) && r.Method == http.MethodGet:
		m := describeUpdPath.FindStringSubmatch(p)
		s.describeClusterUpdate(w, r, m[1], m[2])
	case updatesPath.MatchString(p) && r.Method == http.MethodGet:
		s.listClusterUpdates(w, r, updatesPath.FindStringSubmatch(p)[1])
	default:
		return false
	}
	return true
}

type vpcRequest struct {
	EndpointPublicAccess  *bool    `json:"endpointPublicAccess"`
	EndpointPrivateAccess *bool    `json:"endpointPrivateAccess"`
	PublicAccessCidrs     []string `json:"publicAccessCidrs"`
	SubnetIDs             []string `json:"subnetIds"`
	SecurityGroupIDs      []string `json:"securityGroupIds"`
}

type loggingRequest struct {
	ClusterLogging []struct {
		Types   []string `json:"types"`
		Enabled *bool    `json:"enabled"`
	} `json:"clusterLogging"`
}

// updateClusterConfig serves the endpoint-access and logging updates; any
// other kind of configuration change (access config, upgrade policy, ...)
// goes to moto as before.
func (s *Server) updateClusterConfig(w http.ResponseWriter, r *http.Request, name string) bool {
	var in struct {
		ResourcesVpcConfig *vpcRequest     `json:"resourcesVpcConfig"`
		Logging            *loggingRequest `json:"logging"`
		ClientRequestToken string          `json:"clientRequestToken"`
	}
	body, _ := io.ReadAll(r.Body)
	// Another kind of change goes to moto, which must see the body too.
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return true
	}
	// Any other key is another kind of change (access config, ...).
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(body, &raw)
	delete(raw, "resourcesVpcConfig")
	delete(raw, "logging")
	delete(raw, "clientRequestToken")
	switch {
	case (in.ResourcesVpcConfig != nil || in.Logging != nil) && len(raw) > 0,
		in.ResourcesVpcConfig != nil && in.Logging != nil:
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "Only one type of update can be allowed.")
		return true
	case in.ResourcesVpcConfig == nil && in.Logging == nil:
		return false
	}
	c, ok := s.fetchCluster(w, r, name)
	if !ok {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conf := s.clusterConfOf(name, regionOf(r))
	kind := "EndpointAccessUpdate"
	if in.Logging != nil {
		kind = "LoggingUpdate"
	}
	if s.admitUpdate(r.Context(), w, c, name, kind, in.ClientRequestToken, conf) {
		return true
	}
	var u *clusterUpdate
	var msg string
	if in.ResourcesVpcConfig != nil {
		u, msg = endpointUpdate(c, in.ResourcesVpcConfig)
	} else {
		u, msg = loggingUpdate(c, in.Logging)
	}
	if u == nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return true
	}
	s.startClusterUpdate(conf, u, in.ClientRequestToken)
	writeJSON(w, http.StatusOK, u.json())
	return true
}

// endpointUpdate builds the EndpointAccessUpdate a request asks for, or
// says why EKS refuses it.
func endpointUpdate(c map[string]any, in *vpcRequest) (*clusterUpdate, string) {
	if len(in.SubnetIDs)+len(in.SecurityGroupIDs) > 0 {
		return nil, "The double does not model VpcConfigUpdate (subnets, security groups): send only endpoint access."
	}
	vpc, _ := c["resourcesVpcConfig"].(map[string]any)
	public, private := vpc["endpointPublicAccess"].(bool), vpc["endpointPrivateAccess"].(bool)
	cidrs := ccStrings(vpc["publicAccessCidrs"])
	wantPublic, wantPrivate, wantCIDRs := public, private, cidrs
	if in.EndpointPublicAccess != nil {
		wantPublic = *in.EndpointPublicAccess
	}
	if in.EndpointPrivateAccess != nil {
		wantPrivate = *in.EndpointPrivateAccess
	}
	if in.PublicAccessCidrs != nil {
		wantCIDRs = slices.Clone(in.PublicAccessCidrs)
	}
	var bad []string
	for _, cidr := range wantCIDRs {
		if _, n, err := net.ParseCIDR(cidr); err != nil || n.IP.To4() == nil || n.String() != cidr {
			bad = append(bad, cidr)
		}
	}
	switch {
	case len(bad) > 0:
		return nil, fmt.Sprintf("The following CIDRs are invalid in publicAccessCidrs: [%s]", strings.Join(bad, ", "))
	case !wantPublic && !wantPrivate:
		return nil, "Cluster must have either public or private access enabled."
	case wantPublic == public && wantPrivate == private && slices.Equal(ccSorted(wantCIDRs), ccSorted(cidrs)):
		return nil, fmt.Sprintf("Cluster is already at the desired configuration with endpointPrivateAccess: %v , endpointPublicAccess: %v, and Public Endpoint Restrictions: [%s]",
			private, public, strings.Join(cidrs, ", "))
	}
	cidrJSON, _ := json.Marshal(wantCIDRs)
	return &clusterUpdate{
		kind: "EndpointAccessUpdate",
		params: []map[string]string{
			{"type": "EndpointPublicAccess", "value": fmt.Sprint(wantPublic)},
			{"type": "EndpointPrivateAccess", "value": fmt.Sprint(wantPrivate)},
			{"type": "PublicAccessCidrs", "value": string(cidrJSON)},
		},
		apply: func(conf *clusterConf) {
			conf.vpc = map[string]any{"endpointPublicAccess": wantPublic, "endpointPrivateAccess": wantPrivate, "publicAccessCidrs": wantCIDRs}
		},
	}, ""
}

// loggingUpdate builds the LoggingUpdate: the request's setups change only
// the types they name.
func loggingUpdate(c map[string]any, in *loggingRequest) (*clusterUpdate, string) {
	have := enabledTypes(c["logging"])
	want := map[string]bool{}
	for t := range have {
		want[t] = true
	}
	for _, setup := range in.ClusterLogging {
		for _, t := range setup.Types {
			if !slices.Contains(logTypes, t) {
				return nil, fmt.Sprintf("Unknown log type %q: valid types are %s", t, strings.Join(logTypes, ", "))
			}
			if setup.Enabled != nil && *setup.Enabled {
				want[t] = true
			} else {
				delete(want, t)
			}
		}
	}
	if ccSameSet(have, want) {
		return nil, "No changes needed for the logging config provided"
	}
	value, _ := json.Marshal(loggingJSON(want))
	return &clusterUpdate{
		kind:     "LoggingUpdate",
		params:   []map[string]string{{"type": "ClusterLogging", "value": string(value)}},
		apply:    func(conf *clusterConf) { conf.enabled = want },
		logGroup: len(want) > 0,
	}, ""
}

type encryptionRequest struct {
	EncryptionConfig []struct {
		Resources []string `json:"resources"`
		Provider  *struct {
			KeyArn string `json:"keyArn"`
		} `json:"provider"`
	} `json:"encryptionConfig"`
	ClientRequestToken string `json:"clientRequestToken"`
}

// associateEncryption serves AssociateEncryptionConfig: one configuration
// for secrets with a key, on a cluster that has none yet (EKS can neither
// remove nor change it afterwards).
func (s *Server) associateEncryption(w http.ResponseWriter, r *http.Request, name string) {
	var in encryptionRequest
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return
	}
	if msg := checkEncryption(in); msg != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return
	}
	c, ok := s.fetchCluster(w, r, name)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conf := s.clusterConfOf(name, regionOf(r))
	if s.admitUpdate(r.Context(), w, c, name, "AssociateEncryptionConfig", in.ClientRequestToken, conf) {
		return
	}
	if enc, _ := c["encryptionConfig"].([]any); len(enc) > 0 {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "Encryption is already enabled on the cluster")
		return
	}
	key := in.EncryptionConfig[0].Provider.KeyArn
	config := []any{map[string]any{"resources": []string{"secrets"}, "provider": map[string]any{"keyArn": key}}}
	value, _ := json.Marshal(config)
	u := &clusterUpdate{
		kind:   "AssociateEncryptionConfig",
		params: []map[string]string{{"type": "EncryptionConfig", "value": string(value)}},
		apply:  func(conf *clusterConf) { conf.encryption = config },
	}
	s.startClusterUpdate(conf, u, in.ClientRequestToken)
	writeJSON(w, http.StatusOK, u.json())
}

func checkEncryption(in encryptionRequest) string {
	if len(in.EncryptionConfig) != 1 {
		return "encryptionConfig must hold exactly one configuration"
	}
	e := in.EncryptionConfig[0]
	if !slices.Equal(e.Resources, []string{"secrets"}) {
		return "Only secrets resources are supported for encryption"
	}
	if e.Provider == nil || e.Provider.KeyArn == "" {
		return "KeyArn is required"
	}
	return ""
}

// admitUpdate is how each cluster update call starts, with s.mu held: a
// retried request (its client token seen) gets its update back, a request
// while another update runs is refused, and c is overlaid with the updates
// made so far. It reports whether the request was answered here.
func (s *Server) admitUpdate(ctx context.Context, w http.ResponseWriter, c map[string]any, name, kind, token string, conf *clusterConf) bool {
	if u := conf.findToken(token); u != nil {
		writeJSON(w, http.StatusOK, u.json())
		return true
	}
	if s.refuseWhileUpdating(ctx, w, name, kind, conf) {
		return true
	}
	s.overlayCluster(c, conf)
	return false
}

// refuseWhileUpdating answers EKS's refusal when an update is running. A
// refused attempt counts as a look at the cluster, as time passes between
// a client's retries on EKS too. Caller holds s.mu.
func (s *Server) refuseWhileUpdating(ctx context.Context, w http.ResponseWriter, name, kind string, conf *clusterConf) bool {
	if conf.tick() {
		s.ensureLogGroup(ctx, conf.region, name)
	}
	if u := conf.running(); u != nil {
		writeError(w, http.StatusConflict, "ResourceInUseException",
			fmt.Sprintf("Cannot %s because cluster %s currently has update %s in progress", kind, name, u.id))
		return true
	}
	return false
}

// startClusterUpdate records a new update, InProgress until Options.UpdatePolls
// descriptions of it or of the cluster have passed.
func (s *Server) startClusterUpdate(conf *clusterConf, u *clusterUpdate, token string) {
	s.seq++
	u.id = fmt.Sprintf("%08x-0000-4000-8000-%012x", s.seq, s.seq)
	u.status, u.token, u.created, u.polls = "InProgress", token, time.Now().UTC(), s.opts.UpdatePolls
	conf.updates = append(conf.updates, u)
}

func (conf *clusterConf) findToken(token string) *clusterUpdate {
	if token == "" {
		return nil
	}
	for _, u := range conf.updates {
		if u.token == token {
			return u
		}
	}
	return nil
}

func (conf *clusterConf) running() *clusterUpdate {
	for _, u := range conf.updates {
		if u.status == "InProgress" {
			return u
		}
	}
	return nil
}

// settle finishes a running update whose polls are used up.
func (conf *clusterConf) settle() (logGroup bool) {
	if u := conf.running(); u != nil && u.polls <= 0 {
		u.status = "Successful"
		u.apply(conf)
		return u.logGroup
	}
	return false
}

// tick is one look at the cluster (DescribeCluster, DescribeUpdate): it
// counts a running update down, or finishes it. It reports whether the
// finished update enabled logging (the caller then makes the log group).
func (conf *clusterConf) tick() (logGroup bool) {
	u := conf.running()
	if u == nil {
		return false
	}
	if u.polls > 0 {
		u.polls--
		return false
	}
	return conf.settle()
}

// clusterConfOf returns the cluster's record, making it on first use.
func (s *Server) clusterConfOf(name, region string) *clusterConf {
	if s.confs[name] == nil {
		s.confs[name] = &clusterConf{region: region}
	}
	return s.confs[name]
}

func (s *Server) describeClusterUpdate(w http.ResponseWriter, r *http.Request, name, id string) {
	if _, ok := s.fetchCluster(w, r, name); !ok {
		return
	}
	s.mu.Lock()
	conf := s.clusterConfOf(name, regionOf(r))
	logGroup := conf.tick()
	var found *clusterUpdate
	for _, u := range conf.updates {
		if u.id == id {
			found = u
		}
	}
	var body map[string]any
	if found != nil {
		body = found.json()
	}
	s.mu.Unlock()
	if logGroup {
		s.ensureLogGroup(r.Context(), conf.region, name)
	}
	if found == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("No update found for ID: %s.", id))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) listClusterUpdates(w http.ResponseWriter, r *http.Request, name string) {
	if _, ok := s.fetchCluster(w, r, name); !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []string{}
	if conf := s.confs[name]; conf != nil {
		for _, u := range conf.updates {
			ids = append(ids, u.id)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"updateIds": ids})
}

// overlayCluster puts EKS's defaults and the updates' changes on a cluster as
// moto describes it, and the status UPDATING while an update runs. conf
// may be nil (no update ever). Caller holds s.mu.
func (s *Server) overlayCluster(c map[string]any, conf *clusterConf) {
	vpc, _ := c["resourcesVpcConfig"].(map[string]any)
	if vpc == nil {
		vpc = map[string]any{}
		c["resourcesVpcConfig"] = vpc
	}
	// moto echoes the request; EKS fills in its defaults.
	if _, ok := vpc["endpointPublicAccess"].(bool); !ok {
		vpc["endpointPublicAccess"] = true
	}
	if _, ok := vpc["endpointPrivateAccess"].(bool); !ok {
		vpc["endpointPrivateAccess"] = false
	}
	if len(ccStrings(vpc["publicAccessCidrs"])) == 0 {
		vpc["publicAccessCidrs"] = []string{"0.0.0.0/0"}
	}
	enabled := enabledTypes(c["logging"])
	if conf != nil {
		for k, v := range conf.vpc {
			vpc[k] = v
		}
		if conf.enabled != nil {
			enabled = conf.enabled
		}
		if conf.encryption != nil {
			c["encryptionConfig"] = conf.encryption
		}
		if conf.version != "" {
			c["version"] = conf.version
		}
		if conf.running() != nil && c["status"] == "ACTIVE" {
			c["status"] = "UPDATING"
		}
	}
	c["logging"] = loggingJSON(enabled)
}

// enabledTypes reads the enabled log types of a logging configuration.
func enabledTypes(logging any) map[string]bool {
	out := map[string]bool{}
	l, _ := logging.(map[string]any)
	setups, _ := l["clusterLogging"].([]any)
	for _, s := range setups {
		setup, _ := s.(map[string]any)
		on, _ := setup["enabled"].(bool)
		for _, t := range ccStrings(setup["types"]) {
			if on {
				out[t] = true
			} else {
				delete(out, t)
			}
		}
	}
	return out
}

// loggingJSON is a logging configuration as EKS describes it: the enabled
// types and the disabled ones, each group present only when not empty.
func loggingJSON(enabled map[string]bool) map[string]any {
	var on, off []string
	for _, t := range logTypes {
		if enabled[t] {
			on = append(on, t)
		} else {
			off = append(off, t)
		}
	}
	setups := []any{}
	if len(on) > 0 {
		setups = append(setups, map[string]any{"types": on, "enabled": true})
	}
	if len(off) > 0 {
		setups = append(setups, map[string]any{"types": off, "enabled": false})
	}
	return map[string]any{"clusterLogging": setups}
}

func ccStrings(v any) []string {
	var out []string
	switch l := v.(type) {
	case []any:
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = slices.Clone(l)
	}
	return out
}

func ccSorted(l []string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	return out
}

func ccSameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
