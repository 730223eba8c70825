package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// stsClient signs with static credentials; presigning sends nothing, so no
// endpoint is needed unless baseURL is set.
func stsClient(baseURL string) *sts.Client {
	return sts.New(sts.Options{
		Region:      "us-west-2",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "session-token"),
		BaseEndpoint: func() *string {
			if baseURL == "" {
				return nil
			}
			return aws.String(baseURL)
		}(),
	})
}

// decodeToken undoes the token's encoding and parses the presigned URL.
func decodeToken(t *testing.T, token string) *url.URL {
	t.Helper()
	enc, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		t.Fatalf("token %.20q... lacks the %s prefix", token, TokenPrefix)
	}
	if strings.ContainsAny(enc, "=+/") {
		t.Errorf("token is not unpadded base64url: %q", enc)
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("token does not decode: %v", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatalf("token is not a URL: %v", err)
	}
	return u
}

func TestTokenIsAPresignedGetCallerIdentityForTheCluster(t *testing.T) {
	before := time.Now()
	token, expires, err := Token(context.Background(), stsClient(""), "coder-prod")
	if err != nil {
		t.Fatal(err)
	}
	u := decodeToken(t, token)
	if u.Scheme != "https" || u.Host != "sts.us-west-2.amazonaws.com" || u.Path != "/" {
		t.Errorf("presigned URL %s://%s%s, want https://sts.us-west-2.amazonaws.com/", u.Scheme, u.Host, u.Path)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"Action": "GetCallerIdentity", "Version": "2011-06-15", "X-Amz-Expires": "60",
		"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Security-Token": "session-token",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";"); !contains(signed, "host") || !contains(signed, ClusterIDHeader) {
		t.Errorf("signed headers %v, want host and %s", signed, ClusterIDHeader)
	}
	if cred := q.Get("X-Amz-Credential"); !strings.HasPrefix(cred, "AKIDEXAMPLE/") || !strings.HasSuffix(cred, "/us-west-2/sts/aws4_request") {
		t.Errorf("credential scope %q", cred)
	}
	if q.Get("X-Amz-Signature") == "" {
		t.Error("no signature")
	}
	// EKS's authenticator refuses any query parameter outside this list.
	allowed := map[string]bool{"action": true, "version": true, "x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true,
		"x-amz-expires": true, "x-amz-security-token": true, "x-amz-signature": true, "x-amz-signedheaders": true}
	for k := range q {
		if !allowed[strings.ToLower(k)] {
			t.Errorf("query parameter %s would be refused by EKS", k)
		}
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	// EKS accepts the token for 15 minutes after X-Amz-Date; we say 14.
	if lifetime := expires.Sub(before); lifetime < 14*time.Minute-time.Second || lifetime > 14*time.Minute+time.Second {
		t.Errorf("expires %s after signing, want 14m", lifetime)
	}
	if !expires.Before(signedAt.Add(15 * time.Minute)) {
		t.Errorf("expiry %s is not before the URL's end %s", expires, signedAt.Add(15*time.Minute))
	}
}

func TestTokensDifferPerCluster(t *testing.T) {
	a, _, err := Token(context.Background(), stsClient(""), "one")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Token(context.Background(), stsClient(""), "two")
	if err != nil {
		t.Fatal(err)
	}
	if decodeToken(t, a).Query().Get("X-Amz-Signature") == decodeToken(t, b).Query().Get("X-Amz-Signature") {
		t.Error("tokens for two clusters carry the same signature: the cluster header is not signed")
	}
}

func TestTokenNeedsClusterAndClient(t *testing.T) {
	if _, _, err := Token(context.Background(), stsClient(""), ""); err == nil || !strings.Contains(err.Error(), "cluster name") {
		t.Errorf("empty cluster: %v", err)
	}
	if _, _, err := Token(context.Background(), nil, "x"); err == nil {
		t.Error("nil client accepted")
	}
}

func TestExecCredentialJSON(t *testing.T) {
	exp := time.Date(2026, 11, 30, 4, 20, 30, 500, time.FixedZone("x", 3600))
	data, err := ExecCredentialJSON("k8s-aws-v1.abc", exp)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Status     struct {
			Token               string `json:"token"`
			ExpirationTimestamp string `json:"expirationTimestamp"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.APIVersion != "client.authentication.k8s.io/v1beta1" || got.Kind != "ExecCredential" ||
		got.Status.Token != "k8s-aws-v1.abc" || got.Status.ExpirationTimestamp != "2026-11-30T03:20:30Z" {
		t.Errorf("ExecCredential %s", data)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
