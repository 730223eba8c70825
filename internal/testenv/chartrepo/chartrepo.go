// Package chartrepo serves Helm charts from a loopback chart repository
// (index.yaml over HTTP) and from a loopback OCI registry, so that tests and
// `make demo` exercise the same repository code paths as the real
// https://helm.coder.com/v2 and OCI registries.
//
// The coder, coder-provisioner and secrets-store-csi-driver charts are the
// REAL charts, taken from the Go modules that carry them (see sources.go and
// modules.go) and packaged as their projects release them. Only
// secrets-store-csi-driver-provider-aws and cluster-autoscaler are TEST
// STAND-INS (under charts/): no module the Go proxy serves holds them. They
// read the same values keys as the real charts for everything coderctl
// sets; cluster-autoscaler is served in several versions
// (AutoscalerVersions), one autoscaler release per Kubernetes minor.
//
// The OCI endpoint is a minimal in-process implementation of the parts of
// the OCI distribution spec that helm push/pull use (see registry.go); the
// distribution/distribution registry would pull tracing, redis and storage
// driver dependencies into every test binary that starts a repository.
package chartrepo

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

// The `all:` prefix keeps _helpers.tpl files, which embed skips otherwise.
//
//go:embed all:charts
var chartsFS embed.FS // the stand-ins only

// OCIPath is the repository namespace the charts are pushed under.
const OCIPath = "charts"

// Repo is a running chart repository and OCI registry on 127.0.0.1.
type Repo struct {
	URL string // http://127.0.0.1:PORT, a classic chart repository
	OCI string // oci://127.0.0.1:PORT2/charts, a base for oci://…/charts/<name>

	dir      string              // work dir: src/ (chart dirs), repo/ (packages + index.yaml), stand-ins/
	versions map[string][]string // chart name -> published versions, highest first
	servers  []*http.Server
}

// Start loads the real charts from their modules (downloaded through the Go
// module proxy the first time on a machine, from the module cache after
// that), packages every served chart version, writes index.yaml, serves the
// repository over HTTP and pushes the same packages to the OCI registry.
// Stop releases everything.
func Start(ctx context.Context) (*Repo, error) {
	dir, err := os.MkdirTemp("", "coderctl-chartrepo-")
	if err != nil {
		return nil, err
	}
	r := &Repo{dir: dir, versions: map[string][]string{}}
	if err := r.start(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

func (r *Repo) start(ctx context.Context) (err error) {
	httpLn, err := listenLoopback()
	if err != nil {
		return err
	}
	ociLn, err := listenLoopback()
	if err != nil {
		_ = httpLn.Close()
		return err
	}
	served := false
	defer func() {
		if !served { // Stop only shuts down servers that were started
			_ = httpLn.Close()
			_ = ociLn.Close()
		}
	}()
	r.URL = "http://" + httpLn.Addr().String()
	r.OCI = "oci://" + ociLn.Addr().String() + "/" + OCIPath

	charts, err := loadCharts(ctx, filepath.Join(r.dir, "stand-ins"))
	if err != nil {
		return err
	}
	packages, err := r.publish(charts)
	if err != nil {
		return err
	}
	index, err := repo.IndexDirectory(r.repoDir(), r.URL)
	if err != nil {
		return fmt.Errorf("index %s: %w", r.repoDir(), err)
	}
	index.SortEntries()
	if err := index.WriteFile(filepath.Join(r.repoDir(), "index.yaml"), 0o644); err != nil {
		return err
	}

	r.serve(httpLn, http.FileServer(http.Dir(r.repoDir())))
	r.serve(ociLn, newRegistry())
	served = true
	return r.pushAll(ctx, ociLn.Addr().String(), packages)
}

// Stop shuts the servers down and removes the work directory.
func (r *Repo) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range r.servers {
		_ = s.Shutdown(ctx)
	}
	r.servers = nil
	_ = os.RemoveAll(r.dir)
}

// Require starts a repository for one test and stops it when the test ends.
// Start takes well under a second once the modules are in the module cache
// (a test binary asks `go` for each module once), so tests do not share one.
// The bound leaves room for the first download on a machine (~260 MB, which
// scripts/ground-prereqs.sh normally did already).
func Require(t testing.TB) *Repo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := Start(ctx)
	if err != nil {
		t.Fatalf("chartrepo: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Charts lists the chart names the repository serves.
func (r *Repo) Charts() []string {
	names := make([]string, 0, len(r.versions))
	for n := range r.versions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Versions lists the published versions of a chart, highest first.
func (r *Repo) Versions(name string) []string { return append([]string(nil), r.versions[name]...) }

// ChartDir is the unpacked chart directory (with its subcharts under
// charts/), usable as a local chart path. It carries the Chart.yaml version.
func (r *Repo) ChartDir(name string) string { return filepath.Join(r.dir, "src", name) }

// SecretProviderClassCRD is the real CSI driver chart's SecretProviderClass
// CRD file, for tests that need the CRD without installing the driver.
func (r *Repo) SecretProviderClassCRD() string {
	return filepath.Join(r.ChartDir("secrets-store-csi-driver"), "crds", "secrets-store.csi.x-k8s.io_secretproviderclasses.yaml")
}

// ChartArchive is the packaged chart, usable as a local .tgz chart path.
func (r *Repo) ChartArchive(name, version string) string {
	return filepath.Join(r.repoDir(), fmt.Sprintf("%s-%s.tgz", name, version))
}

func (r *Repo) repoDir() string { return filepath.Join(r.dir, "repo") }

func (r *Repo) serve(ln net.Listener, h http.Handler) {
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	r.servers = append(r.servers, s)
	go func() { _ = s.Serve(ln) }()
}

// publish writes <name>-<version>.tgz for every chart version into repo/,
// and the highest version of each chart unpacked into src/ (ChartDir). It
// returns the package paths.
func (r *Repo) publish(charts map[string][]*chart.Chart) ([]string, error) {
	if err := os.MkdirAll(r.repoDir(), 0o755); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(charts))
	for n := range charts {
		names = append(names, n)
	}
	sort.Strings(names)
	var packages []string
	for _, name := range names {
		versions := charts[name]
		sort.Slice(versions, func(i, j int) bool {
			return versionLess(versions[j].Metadata.Version, versions[i].Metadata.Version)
		})
		if err := chartutil.SaveDir(versions[0], filepath.Join(r.dir, "src")); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", name, err)
		}
		for _, ch := range versions {
			path, err := chartutil.Save(ch, r.repoDir())
			if err != nil {
				return nil, fmt.Errorf("package %s %s: %w", name, ch.Metadata.Version, err)
			}
			packages = append(packages, path)
			r.versions[name] = append(r.versions[name], ch.Metadata.Version)
		}
	}
	return packages, nil
}

// pushAll pushes the packages with helm's own registry client, as
// `helm push` does, so the registry is proven against the real client.
func (r *Repo) pushAll(ctx context.Context, host string, packages []string) error {
	client, err := registry.NewClient(
		registry.ClientOptPlainHTTP(),
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(filepath.Join(r.dir, "registry-config.json")),
	)
	if err != nil {
		return err
	}
	for _, p := range packages {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		ch, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("load %s: %w", p, err)
		}
		ref := fmt.Sprintf("%s/%s/%s:%s", host, OCIPath, ch.Name(), ch.Metadata.Version)
		if _, err := client.Push(data, ref); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
	}
	return nil
}

func listenLoopback() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	return ln, nil
}

// versionLess orders semantic versions; unparsable ones sort as strings.
func versionLess(a, b string) bool {
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	if errA != nil || errB != nil {
		return a < b
	}
	return va.LessThan(vb)
}
