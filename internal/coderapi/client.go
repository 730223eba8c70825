// Package coderapi is the small Coder REST API client coderctl needs: health,
// build info and coderd's own health report to verify a deployment,
// entitlements to explain Premium features, authorization checks to tell a
// token that lacks rights, and provisioner keys and daemons for external
// provisioners. It speaks the documented /api/v2 endpoints with codersdk's
// JSON field names (checked against coder v2.36.1); importing codersdk
// itself would pull most of coderd into the binary.
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

// IsConflict reports a 409 answer: coderd's unique-name refusal when a key
// of that name exists (enterprise/coderd/provisionerkeys.go).
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsRBACRefusal reports coderd refusing an action the token's user may not
// do where the check sits in its database layer (coderd/database/dbauthz):
// dbauthz's NotAuthorizedError reaches httpapi.InternalServerError, so the
// answer is a 500 whose detail starts "unauthorized" ("unauthorized: rbac:
// forbidden"), not a 403. Creating or deleting a provisioner key as a
// plain member answers this way.
func IsRBACRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusInternalServerError && strings.HasPrefix(e.Detail, "unauthorized")
}

// errorBody is codersdk.Response, the body of every coderd error.
type errorBody struct {
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// do sends one request and decodes a JSON answer into out (when not nil)
// if the status is want; any other status becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	_, err := c.doAt(ctx, method, path, body, want, out)
	return err
}

// doAt is do that also returns the server's clock at the answer (its Date
// header), for judging timestamps the server wrote without trusting this
// machine's clock; the local time when the header is missing or malformed.
func (c *Client) doAt(ctx context.Context, method, path string, body any, want int, out any) (time.Time, error) {
	a, err := c.send(ctx, method, path, body)
	if err != nil {
		return time.Time{}, err
	}
	if a.status != want {
		return a.at, answerError(method, path, a)
	}
	if out == nil {
		return a.at, nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return a.at, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return a.at, nil
}

// answerError is an unexpected answer with coderd's message and detail.
func answerError(method, path string, a answer) *Error {
	e := &Error{Method: method, Path: path, StatusCode: a.status}
	var eb errorBody
	if json.Unmarshal(a.body, &eb) == nil {
		e.Message, e.Detail = eb.Message, eb.Detail
	}
	return e
}

// answer is one HTTP answer: status, bounded body and the server's clock.
type answer struct {
	status int
	body   []byte
	at     time.Time
}

// send makes the request and returns the answer. Transport errors name the
// URL, never the token.
func (c *Client) send(ctx context.Context, method, path string, body any) (answer, error) {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return answer{}, err
	}
	return c.exchange(req, path)
}

// exchange sends a built request and reads its answer, at most maxBody bytes.
func (c *Client) exchange(req *http.Request, path string) (answer, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, &UnreachableError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read answer: %w", req.Method, path, err)
	}
	return answer{status: resp.StatusCode, body: raw, at: serverTime(resp.Header)}, nil
}

// request builds a request with a JSON body (none when body is nil).
func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	if body == nil {
		return c.newRequest(ctx, method, path, nil, "")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.newRequest(ctx, method, path, bytes.NewReader(b), "application/json")
}

// newRequest builds a request that accepts JSON and carries the session
// token; contentType is set when there is a body.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set(SessionTokenHeader, c.token)
	}
	return req, nil
}

// serverTime is the answer's Date header (every Go HTTP server, coderd
// included, sets it), else this machine's clock.
func serverTime(h http.Header) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t
	}
	return time.Now()
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
