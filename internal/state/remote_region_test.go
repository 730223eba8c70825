package state

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// fakeS3 answers HeadBucket and GetBucketVersioning as S3 does for a bucket
// in bucketRegion: 301 with x-amz-bucket-region to a request signed for
// another region, 403 without a body when denied. moto serves every bucket
// from every region and grants everything, so these answers come from here.
type fakeS3 struct {
	bucketRegion string
	deny         bool
	mu           sync.Mutex
	regions      []string // the region each request was signed for
}

var signedRegion = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request`)

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	region := ""
	if m := signedRegion.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		region = m[1]
	}
	f.mu.Lock()
	f.regions = append(f.regions, region)
	f.mu.Unlock()
	switch {
	case f.deny:
		w.WriteHeader(http.StatusForbidden)
	case region != f.bucketRegion:
		w.Header().Set("x-amz-bucket-region", f.bucketRegion)
		w.WriteHeader(http.StatusMovedPermanently)
	case r.Method == http.MethodHead:
		w.Header().Set("x-amz-bucket-region", f.bucketRegion)
	case r.URL.Query().Has("versioning"):
		_, _ = w.Write([]byte(`<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>`))
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

func TestConnectRemoteRegionAndAccess(t *testing.T) {
	tests := []struct {
		name       string
		urlRegion  string
		deny       bool
		wantRegion string
		wantErr    []string
	}{
		{name: "the bucket's region is followed", wantRegion: "eu-west-1"},
		{name: "a region in the URL is used first", urlRegion: "eu-west-1", wantRegion: "eu-west-1"},
		{name: "a wrong region in the URL is refused", urlRegion: "us-east-2", wantErr: []string{"bucket state-bucket is in eu-west-1, not us-east-2", "?region="}},
		{name: "access denied is said plainly", deny: true, wantErr: []string{"access denied to s3://state-bucket/prod.env (S3 HeadBucket)", "s3:ListBucket", "prod.env.lock"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeS3{bucketRegion: "eu-west-1", deny: tc.deny}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			for k, v := range map[string]string{"AWS_ENDPOINT_URL": srv.URL, "AWS_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "testing",
				"AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"} {
				t.Setenv(k, v)
			}
			r, warnings, err := ConnectRemote(context.Background(), Location{Bucket: "state-bucket", Key: "prod.env", Region: tc.urlRegion}, "test")
			if tc.wantErr != nil {
				wantInputError(t, err, tc.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.cfg.Region != tc.wantRegion || len(warnings) != 0 {
				t.Errorf("region %q, warnings %q; want %q and none", r.cfg.Region, warnings, tc.wantRegion)
			}
			// The last call (GetBucketVersioning) went to the bucket's region.
			if last := fake.regions[len(fake.regions)-1]; last != "eu-west-1" {
				t.Errorf("requests were signed for %v", strings.Join(fake.regions, ", "))
			}
		})
	}
}
