package helmx

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// Every stage builds its own helm client over one cache directory; when
// two read the same repository at once, neither may see the other's
// half-written index (a run once failed with "empty index.yaml file").
func TestConcurrentClientsShareTheIndexSafely(t *testing.T) {
	const index = "apiVersion: v1\nentries:\n  demo:\n  - name: demo\n    version: 1.0.0\n    appVersion: 1.34.0\n    urls: [demo-1.0.0.tgz]\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Write the index in two parts, slowly: a reader racing the
		// writer would see the file empty or cut.
		w.Write([]byte(index[:20]))
		w.(http.Flusher).Flush()
		time.Sleep(2 * time.Millisecond)
		w.Write([]byte(index[20:]))
	}))
	defer srv.Close()
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 4; i++ {
		c, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				if _, err := c.repoIndex(srv.URL); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; j < 10; j++ {
			if vs, err := Releases(srv.URL, "demo", dir); err != nil || len(vs) != 1 {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent index read: %v", err)
	}
}
