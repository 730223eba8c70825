package ekstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/coderctl/coderctl/internal/config"
)

// Kubernetes version upgrades, which moto 5.2.1 lacks (UpdateClusterVersion
// and DescribeClusterVersions answer 404; a node group created without a
// version reports moto's default 1.19). Served as EKS serves them:
//   - DescribeClusterVersions lists the versions the double offers
//     (config.SupportedEKSVersions unless OfferVersions narrows them).
//   - UpdateClusterVersion starts a VersionUpdate that DescribeUpdate reports
//     InProgress for Options.UpdatePolls looks, the cluster UPDATING
//     meanwhile (the UpdateClusterConfig machinery of clusterconfig.go), then
//     Successful with the new version described. EKS refuses, with
//     InvalidParameterException, a version it does not offer, anything but
//     the next minor (no skipping, no downgrade, not the same version), and
//     an update while a managed node group does not run the cluster's
//     version (the API reference: "all of your node groups' Kubernetes
//     versions must match the cluster's Kubernetes version in order to
//     update the cluster"); with ResourceInUseException while another
//     update runs.
//   - A node group's Kubernetes version is the requested one, else the
//     cluster's (as EKS does at creation); UpdateNodegroupVersion moves it
//     to the requested version, or to the cluster's when none is given (the
//     API reference: "If no version is specified, then the node group will
//     be updated to match the cluster's current Kubernetes version"), and
//     refuses a version newer than the cluster's or older than the group's.

var clusterVersionsPath = regexp.MustCompile(`^/cluster-versions$`)

// offered holds each Server's offered versions when narrowed.
var offered sync.Map // *Server -> []string

// OfferVersions narrows the versions the double offers (DescribeClusterVersions,
// UpdateClusterVersion), as a region without the newest version would.
func (s *Server) OfferVersions(versions ...string) { offered.Store(s, slices.Clone(versions)) }

func (s *Server) offeredVersions() []string {
	if v, ok := offered.Load(s); ok {
		return v.([]string)
	}
	return config.SupportedEKSVersions()
}

// serveUpgrade answers UpdateClusterVersion and DescribeClusterVersions; it
// reports false for every other request.
func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case clusterVersionsPath.MatchString(p) && r.Method == http.MethodGet:
		s.describeClusterVersions(w, r)
	case updatesPath.MatchString(p) && r.Method == http.MethodPost:
		s.updateClusterVersion(w, r, updatesPath.FindStringSubmatch(p)[1])
	default:
		return false
	}
	return true
}

func (s *Server) describeClusterVersions(w http.ResponseWriter, r *http.Request) {
	asked := r.URL.Query()["clusterVersions"]
	out := []any{}
	all := s.offeredVersions()
	for i, v := range all {
		if len(asked) > 0 && !slices.Contains(asked, v) {
			continue
		}
		out = append(out, map[string]any{
			"clusterVersion": v, "clusterType": "eks", "defaultPlatformVersion": "eks.1", "defaultVersion": i == len(all)-1,
			"status": "STANDARD_SUPPORT", "versionStatus": "STANDARD_SUPPORT",
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"clusterVersions": out})
}

// minorOf reads the minor of "1.NN" (-1 when it is not such a version).
func minorOf(v string) int {
	rest, ok := strings.CutPrefix(v, "1.")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return n
}

func (s *Server) updateClusterVersion(w http.ResponseWriter, r *http.Request, name string) {
	var in struct {
		Version            string `json:"version"`
		ClientRequestToken string `json:"clientRequestToken"`
	}
	if err := json.Unmarshal(ngReadBody(r), &in); err != nil || in.Version == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "version is required")
		return
	}
	c, ok := s.fetchCluster(w, r, name)
	if !ok {
		return
	}
	groups := s.groupVersions(r, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	conf := s.clusterConfOf(name, regionOf(r))
	if s.admitUpdate(r.Context(), w, c, name, "UpdateClusterVersion", in.ClientRequestToken, conf) {
		return
	}
	current, _ := c["version"].(string)
	if msg := upgradeRefusal(current, in.Version, s.offeredVersions(), groups); msg != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return
	}
	target := in.Version
	u := &clusterUpdate{
		kind:   "VersionUpdate",
		params: []map[string]string{{"type": "Version", "value": target}, {"type": "PlatformVersion", "value": "eks.1"}},
		apply:  func(conf *clusterConf) { conf.version = target },
	}
	s.startClusterUpdate(conf, u, in.ClientRequestToken)
	writeJSON(w, http.StatusOK, u.json())
}

// upgradeRefusal says why EKS refuses to move a control plane from
// current to target ("" when it does not).
func upgradeRefusal(current, target string, offered []string, groups map[string]string) string {
	switch {
	case !slices.Contains(offered, target):
		return fmt.Sprintf("unsupported Kubernetes version %s", target)
	case target == current:
		return fmt.Sprintf("Cluster is already at the desired configuration with version %s", current)
	case minorOf(target) != minorOf(current)+1:
		return fmt.Sprintf("Unsupported Kubernetes minor version update from %s to %s", current, target)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if groups[n] != current {
			return fmt.Sprintf("Nodegroup %s is at Kubernetes version %s: all managed node groups must match the cluster's version %s before it can be updated to %s",
				n, groups[n], current, target)
		}
	}
	return ""
}

// groupVersions is the Kubernetes version of each of the cluster's node
// groups, as the double describes them.
func (s *Server) groupVersions(r *http.Request, cluster string) map[string]string {
	out := map[string]string{}
	rec := s.ngMotoCall(r, http.MethodGet, "/clusters/"+cluster+"/node-groups", nil)
	var list struct {
		Nodegroups []string `json:"nodegroups"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
		return out
	}
	t := s.ngTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range list.Nodegroups {
		if st := t.groups[cluster+"/"+n]; st != nil && st.version != "" {
			out[n] = st.version
		}
	}
	return out
}

// effectiveVersion is the cluster's Kubernetes version: moto's, or what a
// VersionUpdate made it. Caller does not hold s.mu.
func (s *Server) effectiveVersion(r *http.Request, cluster string) string {
	c, ok := s.fetchCluster(discard{}, r, cluster)
	if !ok {
		return ""
	}
	v, _ := c["version"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if conf := s.confs[cluster]; conf != nil && conf.version != "" {
		v = conf.version
	}
	return v
}

// ngRecordVersion gives a new node group its Kubernetes version: the
// requested one, else the cluster's.
func (s *Server) ngRecordVersion(r *http.Request, cluster string, body []byte) {
	var in struct {
		NodegroupName string `json:"nodegroupName"`
		Version       string `json:"version"`
	}
	if json.Unmarshal(body, &in) != nil || in.NodegroupName == "" {
		return
	}
	v := in.Version
	if v == "" {
		v = s.effectiveVersion(r, cluster)
	}
	t := s.ngTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.groups[cluster+"/"+in.NodegroupName]
	if st == nil {
		st = &ngState{updates: map[string]*ngUpdate{}}
		t.groups[cluster+"/"+in.NodegroupName] = st
	}
	st.version = v
}

// ngTargetVersion is the version an UpdateNodegroupVersion moves the group
// to, or why EKS refuses it.
func (s *Server) ngTargetVersion(r *http.Request, cluster string, st *ngState, asked string) (string, string) {
	clusterVersion := s.effectiveVersion(r, cluster)
	if asked == "" {
		return clusterVersion, ""
	}
	if minorOf(asked) < 0 || minorOf(asked) > minorOf(clusterVersion) {
		return "", fmt.Sprintf("Requested Kubernetes version %s is invalid: the node group cannot be newer than the cluster (%s).", asked, clusterVersion)
	}
	t := s.ngTable()
	t.mu.Lock()
	have := st.version
	t.mu.Unlock()
	if have != "" && minorOf(asked) < minorOf(have) {
		return "", fmt.Sprintf("Requested Kubernetes version %s is older than the node group's %s: downgrades are not supported.", asked, have)
	}
	return asked, ""
}

// SetNodegroupVersion sets a node group's Kubernetes version behind
// coderctl's back, as a group left behind by an earlier upgrade.
func (s *Server) SetNodegroupVersion(cluster, name, version string) {
	t := s.ngTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.groups[cluster+"/"+name]; st != nil {
		st.version = version
	}
}

// ClusterVersion is the cluster's Kubernetes version as the double
// describes it ("" until a VersionUpdate succeeded: moto's then).
func (s *Server) ClusterVersion(cluster string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conf := s.confs[cluster]; conf != nil {
		return conf.version
	}
	return ""
}

// discard is a ResponseWriter for lookups whose error answer nobody reads.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// Mutations lists the mutating EKS calls the double received, oldest
// first, as "METHOD path" (e.g. "POST /clusters/c/updates"), for tests of
// the order of an upgrade's steps.
func (s *Server) Mutations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		if r.method != http.MethodGet && r.method != http.MethodHead {
			out = append(out, r.method+" "+r.path)
		}
	}
	return out
}
