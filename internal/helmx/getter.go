package helmx

import (
	"net/http"
	"sync"

	"helm.sh/helm/v3/pkg/kube"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Client-side rate limits like helm's CLI defaults: a release install makes
// bursts of requests that the client-go defaults (5 QPS) would throttle.
const (
	defaultQPS   = 100
	defaultBurst = 200
)

// clusterAccess holds what every namespace's helm configuration shares: the
// REST config and one cached discovery client and REST mapper, so discovery
// runs once per Client rather than once per action.
type clusterAccess struct {
	restConfig *rest.Config

	once      sync.Once
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	err       error
}

func newClusterAccess(rc *rest.Config) *clusterAccess {
	cfg := rest.CopyConfig(rc)
	if cfg.QPS == 0 {
		cfg.QPS = defaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = defaultBurst
	}
	// Retry the transient apiserver errors helm's CLI retries too.
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &kube.RetryingRoundTripper{Wrapped: rt}
	})
	return &clusterAccess{restConfig: cfg}
}

func (a *clusterAccess) init() error {
	a.once.Do(func() {
		dc, err := discovery.NewDiscoveryClientForConfig(a.restConfig)
		if err != nil {
			a.err = err
			return
		}
		a.discovery = memory.NewMemCacheClient(dc)
		deferred := restmapper.NewDeferredDiscoveryRESTMapper(a.discovery)
		a.mapper = restmapper.NewShortcutExpander(deferred, a.discovery, nil)
	})
	return a.err
}

// restClientGetter gives helm's kube client the cluster and the release
// namespace without a kubeconfig file: coderctl derives its access from EKS
// (or --kubeconfig) and must never fall back to the user's $KUBECONFIG.
type restClientGetter struct {
	access    *clusterAccess
	namespace string
}

func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.access.restConfig), nil
}

func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	if err := g.access.init(); err != nil {
		return nil, err
	}
	return g.access.discovery, nil
}

func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	if err := g.access.init(); err != nil {
		return nil, err
	}
	return g.access.mapper, nil
}

// ToRawKubeConfigLoader is how helm's kube client learns the namespace of
// the release's objects.
func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return fixedClientConfig{getter: g}
}

// fixedClientConfig is a clientcmd.ClientConfig that answers from the
// getter instead of from kubeconfig files.
type fixedClientConfig struct{ getter *restClientGetter }

func (c fixedClientConfig) RawConfig() (clientcmdapi.Config, error) {
	const name = "coderctl"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: c.getter.access.restConfig.Host}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: c.getter.namespace}
	cfg.CurrentContext = name
	return *cfg, nil
}

func (c fixedClientConfig) ClientConfig() (*rest.Config, error) { return c.getter.ToRESTConfig() }

func (c fixedClientConfig) Namespace() (string, bool, error) {
	return c.getter.namespace, true, nil
}

// ConfigAccess is only used to edit kubeconfig files, which coderctl never
// does through helm.
func (c fixedClientConfig) ConfigAccess() clientcmd.ConfigAccess { return nil }
