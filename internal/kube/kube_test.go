package kube

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"golang.org/x/oauth2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// apiServer is a TLS server answering /version that records the
// Authorization header of each request; with refuseSecond it refuses the
// second request, as an API server does once a token has expired.
type apiServer struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
}

func newAPIServer(t *testing.T, refuseSecond bool) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		n := len(s.auths)
		s.mu.Unlock()
		if refuseSecond && n == 2 {
			http.Error(w, `{"kind":"Status","code":401}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"major":"1","minor":"34","gitVersion":"v1.34.2"}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func (s *apiServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// writeKubeconfig writes a one-context kubeconfig for server with a static token.
func writeKubeconfig(t *testing.T, path, server string, ca []byte, token string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

func TestFromKubeconfigUsesOnlyTheNamedFile(t *testing.T) {
	api := newAPIServer(t, false)
	dir := t.TempDir()
	path := filepath.Join(dir, "coder.kubeconfig")
	writeKubeconfig(t, path, api.URL, api.caPEM(), "the-right-token")
	// A stray $KUBECONFIG naming another cluster must not leak in.
	stray := filepath.Join(dir, "stray")
	writeKubeconfig(t, stray, "https://other.example.com", nil, "wrong-token")
	t.Setenv("KUBECONFIG", stray)

	cfg, err := FromKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != api.URL || cfg.BearerToken != "the-right-token" || cfg.QPS != clientQPS {
		t.Errorf("config host %s token %q qps %v", cfg.Host, cfg.BearerToken, cfg.QPS)
	}
	client, _, err := Factory(path, nil, "")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil || v.GitVersion != "v1.34.2" {
		t.Fatalf("server version %v, %v", v, err)
	}
	if got := api.seen(); len(got) != 1 || got[0] != "Bearer the-right-token" {
		t.Errorf("API server saw Authorization %q", got)
	}
}

func TestFromKubeconfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("clusters: [this is not: a kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"missing file", filepath.Join(dir, "nope"), "--kubeconfig"},
		{"not a kubeconfig", bad, bad},
		{"no path", "", "no kubeconfig path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromKubeconfig(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromKubeconfig(%q) = %v, want an error mentioning %q", tc.path, err, tc.want)
			}
		})
	}
}

func TestFactoryWithoutKubeconfigNeverReadsKUBECONFIG(t *testing.T) {
	api := newAPIServer(t, false)
	stray := filepath.Join(t.TempDir(), "stray")
	writeKubeconfig(t, stray, api.URL, api.caPEM(), "stray-token")
	t.Setenv("KUBECONFIG", stray)
	_, _, err := Factory("", nil, "coder-prod")(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no AWS clients") {
		t.Errorf("Factory without kubeconfig or AWS = %v, want an error about AWS", err)
	}
	if len(api.seen()) != 0 {
		t.Error("the stray kubeconfig's server was contacted")
	}
}

func TestAccessOfClusterDescriptions(t *testing.T) {
	api := newAPIServer(t, false)
	good := base64.StdEncoding.EncodeToString(api.caPEM())
	tests := []struct {
		name    string
		cluster ekstypes.Cluster
		want    string // error fragment; "" for success
	}{
		{"active with a PEM CA", ekstypes.Cluster{Endpoint: aws.String(api.URL), CertificateAuthority: &ekstypes.Certificate{Data: aws.String(good)}}, ""},
		{"moto's random CA data", ekstypes.Cluster{Endpoint: aws.String(api.URL), CertificateAuthority: &ekstypes.Certificate{Data: aws.String("aGVsbG8gd29ybGQ=")}}, "not a PEM certificate"},
		{"CA data not base64", ekstypes.Cluster{Endpoint: aws.String(api.URL), CertificateAuthority: &ekstypes.Certificate{Data: aws.String("%%%")}}, "not base64"},
		{"no CA", ekstypes.Cluster{Endpoint: aws.String(api.URL)}, "certificate authority is missing"},
		{"still creating", ekstypes.Cluster{Status: ekstypes.ClusterStatusCreating}, "no API endpoint yet (status CREATING)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			acc, err := accessOf(&tc.cluster, "coder-prod")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want == "" && string(acc.CAData) != string(api.caPEM()):
				t.Errorf("CA data not the decoded PEM")
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := accessOf(nil, "coder-prod"); err == nil {
		t.Error("nil cluster accepted")
	}
}

// countingSource hands out numbered tokens.
type countingSource struct {
	mu sync.Mutex
	n  int
}

func (c *countingSource) Token() (*oauth2.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return &oauth2.Token{AccessToken: fmt.Sprintf("token-%d", c.n), Expiry: time.Now().Add(time.Hour)}, nil
}

// TestEKSConfigSendsTokensAndRenewsAfter401: the rest.Config FromEKS builds
// authenticates with the token source, reuses the token while it is good,
// and fetches a new one once the API server refuses it.
func TestEKSConfigSendsTokensAndRenewsAfter401(t *testing.T) {
	api := newAPIServer(t, true)
	cfg := restConfig(ClusterAccess{Name: "coder-prod", Endpoint: api.URL, CAData: api.caPEM()}, &countingSource{})
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, wantOK := range []bool{true, false, true} {
		if _, err := client.Discovery().ServerVersion(); (err == nil) != wantOK {
			t.Fatalf("request %d: err %v, want ok=%v", i+1, err, wantOK)
		}
	}
	want := []string{"Bearer token-1", "Bearer token-1", "Bearer token-2"}
	if got := api.seen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers %q, want %q", got, want)
	}
}

func TestMergeKubeconfigKeepsOtherEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kube", "config")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	writeKubeconfig(t, path, "https://other.example.com", nil, "other-token")
	arn := "arn:aws:eks:us-west-2:123456789012:cluster/coder-prod"
	entry := ExecEntry{
		Name: arn, Access: ClusterAccess{Endpoint: "https://abc.eks.amazonaws.com", CAData: []byte("CA")},
		Command: "/usr/local/bin/coderctl", Args: []string{"token", "--cluster-name", "coder-prod", "--region", "us-west-2"},
		Env: map[string]string{"AWS_PROFILE": "prod"},
	}
	name, err := MergeKubeconfig(path, entry, true)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if name != arn || cfg.CurrentContext != arn {
		t.Errorf("context %q, current %q; want %s", name, cfg.CurrentContext, arn)
	}
	if cfg.Clusters["c"] == nil || cfg.AuthInfos["u"].Token != "other-token" || cfg.Contexts["x"] == nil {
		t.Error("merging dropped the existing entries")
	}
	exec := cfg.AuthInfos[arn].Exec
	if exec == nil || exec.APIVersion != "client.authentication.k8s.io/v1beta1" || exec.Command != entry.Command ||
		strings.Join(exec.Args, " ") != "token --cluster-name coder-prod --region us-west-2" ||
		len(exec.Env) != 1 || exec.Env[0].Name != "AWS_PROFILE" || exec.InteractiveMode != clientcmdapi.NeverExecInteractiveMode {
		t.Errorf("exec config %+v", exec)
	}
	if c := cfg.Clusters[arn]; c == nil || c.Server != entry.Access.Endpoint || string(c.CertificateAuthorityData) != "CA" {
		t.Errorf("cluster entry %+v", c)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", info.Mode().Perm())
	}
	// The same entry again changes nothing; an alias adds a context.
	if _, err := MergeKubeconfig(path, entry, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Errorf("re-merging the same entry changed the file")
	}
	entry.Context = "coder"
	if _, err := MergeKubeconfig(path, entry, false); err != nil {
		t.Fatal(err)
	}
	cfg, _ = clientcmd.LoadFromFile(path)
	if cfg.Contexts["coder"] == nil || cfg.CurrentContext != arn {
		t.Errorf("alias context %v, current %q", cfg.Contexts["coder"], cfg.CurrentContext)
	}
}

func TestMergeKubeconfigRefusesAFileThatIsNotAKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte("{not yaml: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := MergeKubeconfig(path, ExecEntry{Name: "n", Access: ClusterAccess{Endpoint: "https://x"}, Command: "coderctl"}, true)
	if err == nil || !strings.Contains(err.Error(), "is not a kubeconfig") {
		t.Errorf("got %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "{not yaml: [" {
		t.Error("the unreadable file was overwritten")
	}
}
