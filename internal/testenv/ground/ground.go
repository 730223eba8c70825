// Package ground starts the whole proving ground that `coderctl up` needs
// when there is no AWS account: moto (optionally behind the slow-and-faulty
// proxy), a real Kubernetes control plane, fake EKS nodes that follow moto's
// node groups (and their Auto Scaling groups), a cloud controller for
// LoadBalancer Services, a CSI secret syncer, an EBS CSI provisioner, the
// cluster autoscaler's effect, a loopback chart repository and a Coder API
// double. The e2e tests and `make demo` use it; every piece is a test
// stand-in for a real service, except the charts the repository serves: the
// real coder, coder-provisioner and secrets-store-csi-driver charts, from
// their Go modules (chartrepo).
package ground

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"net/http/httptest"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/testenv/autoscalesim"
	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/coderapi"
	"github.com/coderctl/coderctl/internal/testenv/csisync"
	"github.com/coderctl/coderctl/internal/testenv/ebscsi"
	"github.com/coderctl/coderctl/internal/testenv/eksnodes"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/kubeground"
	"github.com/coderctl/coderctl/internal/testenv/lbcontroller"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

// Options configure the ground.
type Options struct {
	// WorkDir holds logs, the kubeconfig and the CA files ("" = a temp dir).
	WorkDir string
	// Profile, when set, puts the slow-and-faulty proxy in front of moto.
	Profile *awsproxy.Profile
	// Cluster is the EKS cluster name the controllers follow.
	Cluster string
	// Region is the AWS region coderctl uses.
	Region string
	// CoderVersion is what the Coder double reports as its build.
	CoderVersion string
	// Unlicensed makes the Coder double a deployment without Premium.
	Unlicensed bool
	// NoUsers starts the Coder double as a fresh Coder without any user
	// (and no owner token in Environ): an `up` with CODER_FIRST_USER_EMAIL
	// creates the first owner.
	NoUsers bool
	// Log receives the controllers' lines (nil discards).
	Log io.Writer
}

// Ground is a running proving ground.
type Ground struct {
	Moto   *moto.Server
	Proxy  *awsproxy.Proxy
	Kube   *kubeground.Ground
	Charts *chartrepo.Repo
	Coder  *coderapi.Server
	// AWSURL is what AWS_ENDPOINT_URL must be: the proxy, or moto itself.
	AWSURL string

	opts      Options
	cancel    context.CancelFunc
	stops     []func()
	addonsURL string // the EKS add-on stand-in, in front of moto
}

// Start brings every piece up. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (g *Ground, err error) {
	if opts.Cluster == "" || opts.Region == "" || opts.CoderVersion == "" {
		return nil, errors.New("ground: Cluster, Region and CoderVersion are required")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.WorkDir == "" {
		if opts.WorkDir, err = os.MkdirTemp("", "coderctl-ground-"); err != nil {
			return nil, err
		}
	}
	started := &Ground{opts: opts}
	g = started
	defer func() {
		if err != nil {
			started.Stop() // g itself is nil on the error returns
		}
	}()
	if err = g.startAWS(ctx); err != nil {
		return nil, err
	}
	if g.Kube, err = kubeground.Start(ctx, kubeground.Options{WorkDir: filepath.Join(opts.WorkDir, "kube"), Log: opts.Log}); err != nil {
		return nil, fmt.Errorf("kubernetes control plane: %w", err)
	}
	g.stops = append(g.stops, func() { _ = g.Kube.Stop() })
	if g.Charts, err = chartrepo.Start(ctx); err != nil {
		return nil, fmt.Errorf("chart repository: %w", err)
	}
	g.stops = append(g.stops, g.Charts.Stop)
	kube, err := kubernetes.NewForConfig(g.Kube.RESTConfig())
	if err != nil {
		return nil, err
	}
	if g.Coder, err = coderapi.Start(coderapi.Options{Version: opts.CoderVersion, Licensed: !opts.Unlicensed, Kube: kube, NoUsers: opts.NoUsers}); err != nil {
		return nil, fmt.Errorf("coder API double: %w", err)
	}
	g.stops = append(g.stops, g.Coder.Stop)
	return g, g.startControllers(kube)
}

func (g *Ground) startAWS(ctx context.Context) error {
	var err error
	if g.Moto, err = moto.Start(ctx, g.opts.WorkDir); err != nil {
		return err
	}
	g.stops = append(g.stops, g.Moto.Stop)
	// moto has no EKS add-on API: a stand-in answers those calls and passes
	// everything else through to moto.
	addons, err := ekstest.New(g.Moto.URL, ekstest.Options{})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(addons)
	addons.URL = srv.URL
	g.addonsURL = srv.URL
	g.stops = append(g.stops, srv.Close)
	g.AWSURL = srv.URL
	if g.opts.Profile != nil {
		if g.Proxy, err = awsproxy.Start(srv.URL, *g.opts.Profile); err != nil {
			return err
		}
		g.stops = append(g.stops, g.Proxy.Stop)
		g.AWSURL = g.Proxy.URL
	}
	return nil
}

// startControllers runs the stand-ins for what EKS and the cluster's
// add-ons do on AWS. They talk to moto directly (not through the proxy):
// they play AWS's side, whose calls are not coderctl's to count or slow.
func (g *Ground) startControllers(kube kubernetes.Interface) error {
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(g.opts.Region),
		config.WithBaseEndpoint(g.Moto.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("ground", "ground", "")))
	if err != nil {
		return err
	}
	clients := awsx.NewClients(cfg)
	dyn, err := dynamic.NewForConfig(g.Kube.RESTConfig())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	logErr := func(err error) { fmt.Fprintf(g.opts.Log, "ground: %v\n", err) }
	asg := autoscaling.NewFromConfig(cfg)
	nodes := &eksnodes.Syncer{EKS: clients.EKS, EC2: clients.EC2, AutoScaling: asg, Kube: kube, Cluster: g.opts.Cluster, OnError: logErr}
	go nodes.Watch(ctx, 200*time.Millisecond)
	stopLB, err := lbcontroller.Start(ctx, lbcontroller.Options{Kube: kube, ELB: clients.ELB, EC2: clients.EC2,
		Cluster: g.opts.Cluster, Interval: 200 * time.Millisecond, Log: g.opts.Log})
	if err != nil {
		return err
	}
	g.stops = append(g.stops, stopLB)
	stopCSI := csisync.Start(ctx, csisync.Options{Kube: kube, Dynamic: dyn, SecretsManager: clients.SecretsManager,
		Interval: 200 * time.Millisecond, OnError: logErr})
	g.stops = append(g.stops, stopCSI)
	// The EBS CSI driver exists while its EKS add-on does: ask the add-on stand-in.
	addonsAPI := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(g.addonsURL) })
	g.stops = append(g.stops, ebscsi.Start(ctx, ebscsi.Options{Kube: kube, Interval: 200 * time.Millisecond, OnError: logErr,
		Addons: addonsAPI, Cluster: g.opts.Cluster}))
	g.stops = append(g.stops, autoscalesim.Start(ctx, autoscalesim.Options{Kube: kube, EKS: clients.EKS, AutoScaling: asg,
		Interval: 200 * time.Millisecond, OnError: logErr, Log: g.opts.Log}))
	return nil
}

// Stop stops every piece, newest first.
func (g *Ground) Stop() {
	if g.cancel != nil {
		g.cancel()
	}
	for i := len(g.stops) - 1; i >= 0; i-- {
		g.stops[i]()
	}
	g.stops = nil
}

// Environ is what a coderctl process needs in its environment to deploy
// onto this ground: the AWS endpoint and dummy credentials, the kubeconfig,
// fast polling, and the Coder owner token (read from the environment only).
func (g *Ground) Environ() []string {
	env := []string{
		"AWS_ENDPOINT_URL=" + g.AWSURL,
		"AWS_ACCESS_KEY_ID=ground", "AWS_SECRET_ACCESS_KEY=ground",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"CODERCTL_KUBECONFIG=" + g.Kube.Kubeconfig(),
		"CODERCTL_POLL_INTERVAL=100ms",
	}
	if tok := g.Coder.Token(); tok != "" { // none with NoUsers
		env = append(env, "CODER_SESSION_TOKEN="+tok)
	}
	return env
}

// Inputs are the coder-infra.env inputs that aim the Kubernetes stages at
// the ground's chart repository and Coder double.
func (g *Ground) Inputs() map[string]string {
	return map[string]string{
		"CODER_VERSION":                  g.opts.CoderVersion,
		"CODER_URL":                      g.Coder.URL(),
		"CODER_CA_FILE":                  g.Coder.CAFile(),
		"CODER_CHART_REPO":               g.Charts.URL,
		"PROVISIONER_CHART_REPO":         g.Charts.URL,
		"CSI_DRIVER_CHART_REPO":          g.Charts.URL,
		"CSI_AWS_PROVIDER_CHART_REPO":    g.Charts.URL,
		"AUTOSCALER_CHART_REPO":          g.Charts.URL,
		"CSI_DRIVER_CHART_VERSION":       latest(g.Charts.Versions("secrets-store-csi-driver")),
		"CSI_AWS_PROVIDER_CHART_VERSION": latest(g.Charts.Versions("secrets-store-csi-driver-provider-aws")),
	}
}

// latest picks the highest of chartrepo's versions (listed highest first).
func latest(versions []string) string {
	if len(versions) == 0 {
		return ""
	}
	return versions[0]
}

// InitArgs are the inputs as KEY=VALUE arguments for `coderctl init`.
func (g *Ground) InitArgs() []string {
	in := g.Inputs()
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+in[k])
	}
	return out
}

// EnvFile writes the inputs and environment as a shell file to source.
func (g *Ground) EnvFile(path string) error {
	var b strings.Builder
	b.WriteString("# proving ground: source this file to aim coderctl at it\n")
	for _, kv := range g.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%q\n", k, v)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// AWSConfig returns an SDK configuration aimed at moto directly, for tests
// that inspect what coderctl created.
func (g *Ground) AWSConfig(ctx context.Context) (aws.Config, error) {
	return g.Moto.AWSConfig(ctx, g.opts.Region)
}
