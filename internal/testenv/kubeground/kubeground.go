// Package kubeground runs a real Kubernetes control plane on loopback for
// tests and for `make kubeground-up`: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler at v1.37.2, with kwok playing
// the kubelets of fake nodes, so pods get scheduled, become Running/Ready,
// and taints, tolerations, node selectors and DaemonSets behave as on EKS.
//
// The binaries are built once per machine by scripts/build-kube.sh into a
// versioned cache (see CacheDir); this package only executes them, so the
// main module never imports k8s.io/kubernetes.
//
// Pod and Service IPs (10.244.0.0/16, 10.96.0.0/16) are strings in the API
// only: nothing routes to them, and tests must never dial them.
package kubeground

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeVersion is the Kubernetes release the cache holds; the cache directory
// is named after it so a version bump builds afresh.
const KubeVersion = "v1.37.2"

// CacheEnv overrides the cache directory.
const CacheEnv = "CODERCTL_KUBE_CACHE"

// binaries are the executables Start needs in <cache>/bin.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// defaultStartTimeout bounds Start when ctx has no deadline. Warm starts
// take seconds; this leaves room for a cold page cache on a busy machine.
const defaultStartTimeout = 2 * time.Minute

// Options configure Start. The zero value is usable.
type Options struct {
	// CacheDir holds bin/ and stages/ as written by scripts/build-kube.sh.
	// Empty means CacheDir().
	CacheDir string
	// WorkDir receives certificates, kubeconfigs, etcd data and one log per
	// component. Empty means a new temporary directory that Stop removes.
	WorkDir string
	// Log receives one line per start/stop step. Nil discards them.
	Log io.Writer
}

// Ground is a running control plane.
type Ground struct {
	workDir     string
	ownsWorkDir bool
	keepWorkDir bool // set when the caller may need the logs
	kubeconfig  string
	restConfig  *rest.Config
	client      kubernetes.Interface
	log         io.Writer
	started     time.Duration

	// Components in start order: etcd, kube-apiserver, then the rest.
	components    []*component
	etcdAddr      string
	apiserverAddr string

	stopOnce sync.Once
	stopErr  error
}

// CacheDir is where scripts/build-kube.sh puts the binaries: $CODERCTL_KUBE_CACHE,
// else ~/.cache/coderctl/kube-v1.37.2.
func CacheDir() string {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return dir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(base, "coderctl", "kube-"+KubeVersion)
}

// BinDir is the directory holding the cached control-plane binaries.
func BinDir() string { return filepath.Join(CacheDir(), "bin") }

// MissingBinariesError says the cache is not built yet and how to build it.
type MissingBinariesError struct {
	CacheDir string
	Missing  []string
}

func (e *MissingBinariesError) Error() string {
	return fmt.Sprintf("kube test binaries missing in %s (%s): run scripts/build-kube.sh (or `make kube-binaries`; ~10 min once, cached afterwards; set %s to use another cache)",
		e.CacheDir, strings.Join(e.Missing, ", "), CacheEnv)
}

// checkCache reports the binaries and stage files missing from cacheDir and
// returns the stage files kwok should load.
func checkCache(cacheDir string) ([]string, error) {
	var missing []string
	for _, b := range binaries {
		if st, err := os.Stat(filepath.Join(cacheDir, "bin", b)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, "bin/"+b)
		}
	}
	stages, _ := filepath.Glob(filepath.Join(cacheDir, "stages", "*.yaml"))
	if len(stages) == 0 {
		missing = append(missing, "stages/*.yaml")
	}
	if len(missing) > 0 {
		return nil, &MissingBinariesError{CacheDir: cacheDir, Missing: missing}
	}
	return stages, nil
}

// Start brings up etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok on free loopback ports, and returns once the
// apiserver is ready and the default ServiceAccount exists (the sign that
// the controller-manager works). On failure everything started is stopped,
// the work directory is kept, and the error quotes the failing component's
// log.
func Start(ctx context.Context, opts Options) (*Ground, error) {
	began := time.Now()
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		cacheDir = CacheDir()
	}
	stages, err := checkCache(cacheDir)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}

	g := &Ground{workDir: opts.WorkDir, log: opts.Log}
	if g.log == nil {
		g.log = io.Discard
	}
	if g.workDir == "" {
		if g.workDir, err = os.MkdirTemp("", "kubeground-"); err != nil {
			return nil, err
		}
		g.ownsWorkDir = true
	} else if err := os.MkdirAll(g.workDir, 0o755); err != nil {
		return nil, err
	}

	if err := g.start(ctx, filepath.Join(cacheDir, "bin"), stages); err != nil {
		g.keepWorkDir = true
		_ = g.Stop()
		return nil, fmt.Errorf("kubeground did not start (logs in %s): %w", g.workDir, err)
	}
	g.started = time.Since(began)
	g.logf("control plane ready in %s (kubeconfig %s)", g.started.Round(time.Millisecond), g.kubeconfig)
	return g, nil
}

func (g *Ground) start(ctx context.Context, bin string, stages []string) error {
	// A fresh etcd data dir per start: a reused WorkDir must not resurrect
	// objects signed by the previous start's keys.
	etcdData := filepath.Join(g.workDir, "etcd")
	if err := os.RemoveAll(etcdData); err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	g.etcdAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(etcdClient))
	g.apiserverAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))

	p, err := writePKI(g.workDir)
	if err != nil {
		return fmt.Errorf("write certificates: %w", err)
	}
	tokenFile := filepath.Join(g.workDir, "tokens.csv")
	if err := writeTokenFile(tokenFile, p.adminToken); err != nil {
		return err
	}
	g.restConfig = &rest.Config{
		Host:            "https://" + g.apiserverAddr,
		BearerToken:     p.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
		// Tests create many objects quickly; the default 5 QPS throttles them.
		QPS:   200,
		Burst: 400,
	}
	if g.client, err = kubernetes.NewForConfig(g.restConfig); err != nil {
		return err
	}
	g.kubeconfig = filepath.Join(g.workDir, "admin.kubeconfig")
	if err := writeKubeconfig(g.kubeconfig, g.restConfig.Host, p.caPEM, p.adminToken); err != nil {
		return err
	}

	env := os.Environ()
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	clientURL := "http://" + g.etcdAddr
	if err := g.run("etcd", filepath.Join(bin, "etcd"), env,
		"--name", "kubeground",
		"--data-dir", etcdData,
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "kubeground="+peerURL,
		"--unsafe-no-fsync", // test data; fsync dominates start time otherwise
		"--log-level", "warn",
	); err != nil {
		return err
	}
	// The apiserver retries etcd until it answers, so both start together.
	if err := g.run("kube-apiserver", filepath.Join(bin, "kube-apiserver"), env,
		"--etcd-servers", clientURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(apiPort),
		"--tls-cert-file", p.servingCert,
		"--tls-private-key-file", p.servingKey,
		"--client-ca-file", p.caCert,
		"--token-auth-file", tokenFile,
		"--authorization-mode", "RBAC,Node",
		// One apiserver on loopback: no endpoints for the kubernetes Service.
		"--endpoint-reconciler-type", "none",
		"--allow-privileged",
		"--enable-priority-and-fairness=false",
		"--service-account-issuer", serviceAccountIssuer,
		"--service-account-key-file", p.saPublic,
		"--service-account-signing-key-file", p.saPrivate,
		"--service-cluster-ip-range", serviceClusterIPRange,
		"--cert-dir", filepath.Join(g.workDir, "apiserver-certs"),
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := g.waitFor(ctx, "kube-apiserver /readyz", g.apiserverReady); err != nil {
		return err
	}

	if err := g.run("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"), env,
		"--kubeconfig", g.kubeconfig,
		"--secure-port", "0",
		"--leader-elect=false",
		"--service-account-private-key-file", p.saPrivate,
		"--root-ca-file", p.caCert,
		"--cluster-signing-cert-file", p.caCert,
		"--cluster-signing-key-file", p.caKey,
		"--service-cluster-ip-range", serviceClusterIPRange,
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := g.run("kube-scheduler", filepath.Join(bin, "kube-scheduler"), env,
		"--kubeconfig", g.kubeconfig,
		"--secure-port", "0",
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return err
	}
	// kwok loads ~/.kwok/kwok.yaml when it exists; a private HOME keeps a
	// developer's own kwok settings out of the tests.
	kwokHome := filepath.Join(g.workDir, "kwok-home")
	if err := os.MkdirAll(kwokHome, 0o755); err != nil {
		return err
	}
	kwokArgs := []string{
		"--kubeconfig", g.kubeconfig,
		"--manage-all-nodes",
		"--node-ip", "127.0.0.1",
		"--cidr", podCIDR,
		// Without leases the stage's 10-minute status heartbeat is all the
		// node lifecycle controller sees, and it marks nodes unreachable.
		"--node-lease-duration-seconds", "40",
	}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "--config", s)
	}
	if err := g.run("kwok", filepath.Join(bin, "kwok"), append(env, "HOME="+kwokHome), kwokArgs...); err != nil {
		return err
	}
	return g.waitFor(ctx, "default ServiceAccount", g.defaultServiceAccountExists)
}

// run starts one component and records it for Stop.
func (g *Ground) run(name, binary string, env []string, args ...string) error {
	c, err := startComponent(name, binary, g.workDir, args, env)
	if err != nil {
		return err
	}
	g.components = append(g.components, c)
	g.logf("started %s (pid %d, log %s)", name, c.pid(), c.logPath)
	return nil
}

// waitFor polls cond until it holds, failing fast when a component exits.
func (g *Ground) waitFor(ctx context.Context, what string, cond func(context.Context) bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, c := range g.components {
			if c.hasExited() {
				return c.exitError()
			}
		}
		if cond(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; last lines of %s:\n%s", what, ctx.Err(),
				g.components[len(g.components)-1].logPath, g.components[len(g.components)-1].tail(25))
		case <-tick.C:
		}
	}
}

func (g *Ground) apiserverReady(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, err := g.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
	return err == nil && strings.TrimSpace(string(body)) == "ok"
}

func (g *Ground) defaultServiceAccountExists(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := g.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(rctx, "default", metav1.GetOptions{})
	return err == nil
}

// Kubeconfig is the path of a kubeconfig for an admin (system:masters)
// identity, with the CA embedded.
func (g *Ground) Kubeconfig() string { return g.kubeconfig }

// RESTConfig returns a fresh copy of the admin client configuration.
func (g *Ground) RESTConfig() *rest.Config { return rest.CopyConfig(g.restConfig) }

// Client returns an admin clientset.
func (g *Ground) Client() kubernetes.Interface { return g.client }

// WorkDir is where the certificates, kubeconfig, etcd data and logs live.
func (g *Ground) WorkDir() string { return g.workDir }

// StartDuration is how long Start took.
func (g *Ground) StartDuration() time.Duration { return g.started }

// Stop stops kwok, the scheduler, the controller-manager and the apiserver,
// then etcd (the apiserver stalls for seconds when etcd goes first), killing
// any that do not exit within a grace period. It removes the work directory
// only if Start created it. Calling Stop again returns the first result.
func (g *Ground) Stop() error {
	g.stopOnce.Do(func() { g.stopErr = g.stop() })
	return g.stopErr
}

func (g *Ground) stop() error {
	began := time.Now()
	var etcd *component
	var others []*component
	for _, c := range g.components {
		if c.name == "etcd" {
			etcd = c
		} else {
			others = append(others, c)
		}
	}
	var errs []error
	for _, c := range others {
		c.signal(syscall.SIGTERM)
	}
	for _, c := range others {
		errs = append(errs, c.waitExit(5*time.Second))
	}
	if etcd != nil {
		etcd.signal(syscall.SIGTERM)
		errs = append(errs, etcd.waitExit(5*time.Second))
	}
	g.logf("stopped in %s", time.Since(began).Round(time.Millisecond))
	if g.ownsWorkDir && !g.keepWorkDir {
		errs = append(errs, os.RemoveAll(g.workDir))
	}
	return errors.Join(errs...)
}

func (g *Ground) logf(format string, args ...any) {
	fmt.Fprintf(g.log, "kubeground: "+format+"\n", args...)
}

// freePorts reserves n distinct loopback ports by holding all listeners
// open at once, then releases them for the components to bind.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a loopback port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeKubeconfig(path, server string, caPEM []byte, token string) error {
	const name = "kubeground"
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{name: {Server: server, CertificateAuthorityData: caPEM}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{name: {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{name: {Cluster: name, AuthInfo: name}},
		CurrentContext: name,
	}
	return clientcmd.WriteToFile(cfg, path)
}
