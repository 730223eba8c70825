// Package coderapi is the small Coder REST API client coderctl needs: health
// and build info to verify a deployment, entitlements to explain Premium
// features, and provisioner keys and daemons for external provisioners. It
// speaks the documented /api/v2 endpoints with codersdk's JSON field names;
// importing codersdk itself would pull most of coderd into the binary.
//
// The session token is sent in the Coder-Session-Token header and never
// appears in errors; provisioner key secrets are returned as KeySecret, which
// prints as "[redacted]".
package coderapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// SessionTokenHeader is the header coderd reads the session token from.
const SessionTokenHeader = "Coder-Session-Token"

// DefaultTimeout bounds one request when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxBody bounds how much of a response is read: every answer coderctl
// expects is small, and an error page must not fill memory.
const maxBody = 4 << 20

// Options configure New.
type Options struct {
	// Token is an owner's session token; empty for unauthenticated calls
	// (healthz, buildinfo).
	Token string
	// CAFile is a PEM bundle trusted in addition to the system roots, for
	// a CODER_URL whose certificate a private CA signed.
	CAFile string
	// Timeout bounds one request; zero means DefaultTimeout.
	Timeout time.Duration
}

// Client calls one Coder deployment.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client for the deployment at baseURL (e.g.
// https://coder.example.com). It contacts nothing yet.
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("coder URL %q is not an http(s) URL", baseURL)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if opts.CAFile != "" {
		pool, err := caPool(opts.CAFile)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{base: u, token: opts.Token, http: &http.Client{Transport: transport, Timeout: timeout}}, nil
}

// caPool is the system roots plus the PEM certificates in path.
func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return pool, nil
}

// URL is the deployment's base URL.
func (c *Client) URL() string { return c.base.String() }

// HasToken reports whether the client authenticates its calls.
func (c *Client) HasToken() bool { return c.token != "" }

// Error is an answer other than the one expected, with coderd's message.
type Error struct {
	Method, Path string
	StatusCode   int
	Message      string
	Detail       string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, msg)
}

// StatusCode returns the HTTP status of an *Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports a 404 answer.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnauthorized reports a 401 answer: no token, or an expired or wrong one.
func IsUnauthorized(err error) bool { return StatusCode(err) == http.StatusUnauthorized }

// IsForbidden reports a 403 answer. coderd answers 403 to Premium endpoints
// when the license does not cover the feature.
func IsForbidden(err error) bool { return StatusCode(err) == http.StatusForbidden }

// errorBody is codersdk.Response, the body of every coderd error.
type errorBody struct {
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// do sends one request and decodes a JSON answer into out (when not nil)
// if the status is want; any other status becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	raw, status, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	if status != want {
		e := &Error{Method: method, Path: path, StatusCode: status}
		var eb errorBody
		if json.Unmarshal(raw, &eb) == nil {
			e.Message, e.Detail = eb.Message, eb.Detail
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send makes the request and returns the body and status. Transport errors
// name the URL, never the token.
func (c *Client) send(ctx context.Context, method, path string, body any) ([]byte, int, error) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, reader)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set(SessionTokenHeader, c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, &UnreachableError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return raw, resp.StatusCode, nil
}

// UnreachableError says no HTTP answer came back: DNS, connection, TLS or
// timeout.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("%s is unreachable: %v", e.URL, e.Err) }

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err is an *UnreachableError.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}
