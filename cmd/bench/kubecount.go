package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeCounter is a counting reverse proxy in front of the kube-apiserver.
// coderctl gets a kubeconfig that points at it, so every request coderctl
// makes (client-go and helm alike) is counted, and none of the proving
// ground's own controllers are: apiserver_request_total cannot tell them
// apart. The proxy adds the admin credentials itself.
type kubeCounter struct {
	URL string
	srv *http.Server

	mu    sync.Mutex
	calls map[string]int // "VERB resource" -> count
}

// kubeCalls are the requests seen since the last reset.
type kubeCalls struct {
	Reads     int            `json:"reads"`
	Mutations int            `json:"mutations"`
	ByRequest map[string]int `json:"by_request"`
}

func startKubeCounter(upstream *rest.Config) (*kubeCounter, error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, err
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	kc := &kubeCounter{URL: "http://" + ln.Addr().String(), calls: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1, // watches stream
	}
	kc.srv = &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kc.count(r)
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = kc.srv.Serve(ln) }()
	return kc, nil
}

func (kc *kubeCounter) count(r *http.Request) {
	key := kubeVerb(r) + " " + kubeResource(r.URL.Path)
	kc.mu.Lock()
	defer kc.mu.Unlock()
	kc.calls[key]++
}

// kubeVerb names a request the way the apiserver's audit log does.
func kubeVerb(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
			return "watch"
		}
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return strings.ToLower(r.Method)
}

// kubeResource folds a request path to its resource type (and
// subresource): /api/v1/namespaces/coder/pods/x/status -> pods/status.
// Discovery paths (/api, /apis/apps/v1) are "discovery".
func kubeResource(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		rest = parts[3:]
	default:
		return "discovery"
	}
	if len(rest) > 2 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	switch len(rest) {
	case 0:
		return "discovery"
	case 1, 2:
		return rest[0]
	default:
		return rest[0] + "/" + rest[2]
	}
}

// Snapshot returns the counts since the last reset.
func (kc *kubeCounter) Snapshot() kubeCalls {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	out := kubeCalls{ByRequest: map[string]int{}}
	for k, v := range kc.calls {
		out.ByRequest[k] = v
		verb, _, _ := strings.Cut(k, " ")
		if verb == "get" || verb == "watch" {
			out.Reads += v
		} else {
			out.Mutations += v
		}
	}
	return out
}

// Reset forgets what was counted.
func (kc *kubeCounter) Reset() {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	kc.calls = map[string]int{}
}

// WriteKubeconfig writes a kubeconfig aimed at the counter (no
// credentials: the proxy adds them) and returns its path.
func (kc *kubeCounter) WriteKubeconfig(dir string) (string, error) {
	const name = "bench"
	path := filepath.Join(dir, "counted.kubeconfig")
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{name: {Server: kc.URL}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{name: {}},
		Contexts:       map[string]*clientcmdapi.Context{name: {Cluster: name, AuthInfo: name}},
		CurrentContext: name,
	}
	return path, clientcmd.WriteToFile(cfg, path)
}

// Stop closes the listener.
func (kc *kubeCounter) Stop() { _ = kc.srv.Close() }
