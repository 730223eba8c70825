package chartrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

func TestStartServesRepositoryAndRegistry(t *testing.T) {
	r := Require(t)

	wantCharts := []string{"cluster-autoscaler", "coder", "coder-provisioner", "secrets-store-csi-driver", "secrets-store-csi-driver-provider-aws"}
	if got := r.Charts(); !slices.Equal(got, wantCharts) {
		t.Fatalf("Charts() = %v, want %v", got, wantCharts)
	}

	t.Run("index.yaml over http", func(t *testing.T) {
		index := fetchIndex(t, r.URL)
		wantVersions := map[string][]string{
			"coder":                                 {"2.36.1", "2.35.2"},
			"coder-provisioner":                     {"2.36.1", "2.35.2"},
			"secrets-store-csi-driver":              {"1.5.5"},
			"secrets-store-csi-driver-provider-aws": {"2.2.0"},
			"cluster-autoscaler":                    {"9.58.0", "9.57.0", "9.56.0", "9.53.0", "9.52.1", "9.51.0"},
		}
		for name, want := range wantVersions {
			var got []string
			for _, cv := range index.Entries[name] {
				got = append(got, cv.Version)
				if len(cv.URLs) != 1 || !strings.HasPrefix(cv.URLs[0], r.URL+"/") {
					t.Errorf("%s %s URLs = %v, want one under %s", name, cv.Version, cv.URLs, r.URL)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("index versions of %s = %v, want %v", name, got, want)
			}
			if !slices.Equal(r.Versions(name), want) {
				t.Errorf("Versions(%s) = %v, want %v", name, r.Versions(name), want)
			}
		}
		coder, err := index.Get("coder", "2.35.2")
		if err != nil {
			t.Fatal(err)
		}
		if coder.AppVersion != "2.35.2" {
			t.Errorf("coder 2.35.2 appVersion = %q, want it to follow the version", coder.AppVersion)
		}
		resp, err := http.Get(coder.URLs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if want := fileSHA(t, r.ChartArchive("coder", "2.35.2")); resp.StatusCode != 200 || sha(body) != want || coder.Digest != want {
			t.Errorf("GET %s: status %d sha %s, index digest %s, want 200 and %s", coder.URLs[0], resp.StatusCode, sha(body), coder.Digest, want)
		}
	})

	t.Run("same packages over oci", func(t *testing.T) {
		client, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard),
			registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
		if err != nil {
			t.Fatal(err)
		}
		ref := strings.TrimPrefix(r.OCI, "oci://") + "/coder"
		tags, err := client.Tags(ref)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tags, []string{"2.36.1", "2.35.2"}) {
			t.Errorf("tags of %s = %v, want [2.36.1 2.35.2]", ref, tags)
		}
		pulled, err := client.Pull(ref + ":2.36.1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sha(pulled.Chart.Data), fileSHA(t, r.ChartArchive("coder", "2.36.1")); got != want {
			t.Errorf("pulled chart sha %s, packaged %s", got, want)
		}
		if pulled.Chart.Meta.Version != "2.36.1" {
			t.Errorf("pulled chart version %q", pulled.Chart.Meta.Version)
		}
	})

	t.Run("stop releases the ports and files", func(t *testing.T) {
		r2, err := Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dir := r2.ChartDir("coder")
		r2.Stop()
		if _, err := http.Get(r2.URL + "/index.yaml"); err == nil {
			t.Errorf("%s still answers after Stop", r2.URL)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Stop (err %v)", dir, err)
		}
	})
}

func TestProviderChartBundlesTheRealDriver(t *testing.T) {
	r := Require(t)
	provider, err := loader.Load(r.ChartDir("secrets-store-csi-driver-provider-aws"))
	if err != nil {
		t.Fatal(err)
	}
	deps := provider.Dependencies()
	if len(deps) != 1 || deps[0].Name() != "secrets-store-csi-driver" || deps[0].Metadata.Version != CSIDriverVersions[0] {
		t.Fatalf("provider stand-in vendors %v, want the real secrets-store-csi-driver %s", chartNames(deps), CSIDriverVersions[0])
	}
	dir := moduleChartDir(t, CSIDriverModule, CSIDriverVersions[0], "charts/secrets-store-csi-driver")
	assertSameTemplates(t, deps[0], dir)
}

func chartNames(charts []*chart.Chart) []string {
	var out []string
	for _, c := range charts {
		out = append(out, c.Name()+"-"+c.Metadata.Version)
	}
	return out
}

func TestRegistryProtocol(t *testing.T) {
	srv := httptest.NewServer(newRegistry())
	defer srv.Close()
	blob := []byte("chart bytes")
	d := digestOf(blob)

	tests := []struct {
		name       string
		method     string
		path       string
		body       []byte
		wantStatus int
		wantInBody string
	}{
		{"ping", "GET", "/v2/", nil, 200, "{}"},
		{"unknown repository tags", "GET", "/v2/charts/none/tags/list", nil, 404, "NAME_UNKNOWN"},
		{"unknown blob", "HEAD", "/v2/charts/x/blobs/" + d, nil, 404, ""},
		{"monolithic upload with a wrong digest", "POST", "/v2/charts/x/blobs/uploads/?digest=sha256:00", blob, 400, "DIGEST_INVALID"},
		{"monolithic upload", "POST", "/v2/charts/x/blobs/uploads/?digest=" + d, blob, 201, ""},
		{"blob after upload", "GET", "/v2/charts/x/blobs/" + d, nil, 200, "chart bytes"},
		{"unknown manifest", "GET", "/v2/charts/x/manifests/1.0.0", nil, 404, "NAME_UNKNOWN"},
		{"manifest by tag", "PUT", "/v2/charts/x/manifests/1.0.0", []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`), 201, ""},
		{"tags after push", "GET", "/v2/charts/x/tags/list", nil, 200, `"tags":["1.0.0"]`},
		{"other tag", "GET", "/v2/charts/x/manifests/2.0.0", nil, 404, "MANIFEST_UNKNOWN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, tc.method, srv.URL+tc.path, tc.body)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantInBody) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, status, body, tc.wantStatus, tc.wantInBody)
			}
		})
	}

	t.Run("chunked upload", func(t *testing.T) {
		content := []byte("part one, part two")
		resp, _ := doResp(t, "POST", srv.URL+"/v2/charts/y/blobs/uploads/", nil)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 202 || loc == "" {
			t.Fatalf("start upload = %d, Location %q", resp.StatusCode, loc)
		}
		resp, _ = doResp(t, "PATCH", srv.URL+loc, content[:9])
		if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-8" {
			t.Fatalf("patch = %d, Range %q", resp.StatusCode, resp.Header.Get("Range"))
		}
		resp, _ = doResp(t, "PUT", srv.URL+resp.Header.Get("Location")+"?digest="+digestOf(content), content[9:])
		if resp.StatusCode != 201 || resp.Header.Get("Docker-Content-Digest") != digestOf(content) {
			t.Fatalf("finish = %d, digest %q", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
		}
		if status, body := do(t, "GET", srv.URL+"/v2/charts/y/blobs/"+digestOf(content), nil); status != 200 || body != string(content) {
			t.Errorf("blob = %d %q, want 200 %q", status, body, content)
		}
	})

	t.Run("manifest by digest carries its media type", func(t *testing.T) {
		m := []byte(`{"schemaVersion":2}`)
		req, _ := http.NewRequest("PUT", srv.URL+"/v2/charts/z/manifests/"+digestOf(m), bytes.NewReader(m))
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp, _ = doResp(t, "HEAD", srv.URL+"/v2/charts/z/manifests/"+digestOf(m), nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" ||
			resp.Header.Get("Content-Length") != "19" {
			t.Errorf("HEAD manifest = %d, type %q, length %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Length"))
		}
	})
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"2.35.2", "2.36.1", true},
		{"2.4.0", "2.36.1", true},
		{"2.36.1", "2.36.1", false},
		{"10.0.0", "9.9.9", false},
	}
	for _, tc := range tests {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func fetchIndex(t *testing.T, base string) *repo.IndexFile {
	t.Helper()
	status, body := do(t, "GET", base+"/index.yaml", nil)
	if status != 200 {
		t.Fatalf("GET index.yaml = %d", status)
	}
	path := filepath.Join(t.TempDir(), "index.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	index, err := repo.LoadIndexFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return index
}

func do(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	resp, data := doResp(t, method, url, body)
	return resp.StatusCode, data
}

func doResp(t *testing.T, method, url string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(data)
}
