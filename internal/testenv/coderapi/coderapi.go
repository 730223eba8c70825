// Package coderapi is a TEST DOUBLE of the Coder REST API (coderd), served
// over HTTPS on loopback for tests and `make demo`. It speaks only the
// documented endpoints coderctl uses — health, build info, the current user,
// the first user and password login, authorization checks, organizations,
// entitlements, provisioner keys and daemons, the debug health report,
// files, template versions, templates, workspaces and builds —
// with Coder's paths, JSON field names, session-token header and error shape
// ({"message": ..., "detail": ...}). It is not Coder: there is no database,
// no RBAC beyond owners and a plain member, and no provisioner protocol.
//
// Template imports and workspace builds are provisioner jobs a connected
// daemon with matching tags runs (work.go). An import reads the template's
// Terraform with hcl/v2 (tfeval.go); a build creates the claim and the
// Deployment it declares on the Kubernetes cluster in Options.Kube and its
// agent counts as connected once that pod runs with its claim bound
// (kubeapply.go). Jobs move one step each time a version, workspace or
// build is read, so a client polling as coderd's own does sees them pass
// pending, running and their outcome.
//
// Two users exist: the owner (Token) and a plain organization member
// (MemberToken), who gets coderd's answers for what members may not do —
// unless Options.NoUsers starts it as a fresh Coder with no user at all,
// whose first owner is created through POST /api/v2/users/first and gets
// its session from POST /api/v2/users/login (see users.go).
//
// Provisioner daemons are derived from the Kubernetes cluster it is given:
// each Running pod in the namespace whose CODER_PROVISIONER_DAEMON_KEY
// environment variable resolves (through a secretKeyRef, or a literal value)
// to a key created here connects as one daemon named after the pod, the way
// `coder provisioner start` names itself after its hostname. As in coderd,
// a daemon stays registered after its pod is gone, with last_seen_at
// frozen at its last heartbeat; the double's clock (Advance) ages it.
//
// Clients trust the server through CAFile. Go on Linux also honours
// SSL_CERT_FILE=CAFile() for the system pool, but reads it only once per
// process (the first time any TLS verification needs the system roots), so
// a test must set it before anything in the process has made an HTTPS call;
// passing Client() or a pool built from CAPEM() is more robust.
package coderapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/client-go/kubernetes"
)

// DefaultVersion is what GET /api/v2/buildinfo reports unless Options.Version
// says otherwise; the "+commit" suffix is how coderd builds report versions.
const DefaultVersion = "v2.36.1+abcdef0"

// DefaultNamespace is where the provisioner pods are looked for.
const DefaultNamespace = "coder"

// SessionTokenHeader is the header coderd reads the session token from.
const SessionTokenHeader = "Coder-Session-Token"

// sessionTokenCookie is the cookie (and query parameter) coderd also accepts.
const sessionTokenCookie = "coder_session_token"

// ProvisionerKeyEnv is the variable the provisioner chart sets on its pods
// (from provisionerDaemon.keySecretName / keySecretKey).
const ProvisionerKeyEnv = "CODER_PROVISIONER_DAEMON_KEY"

// Options configure Start. The zero value is usable: a generated owner
// token, DefaultVersion, no license and no cluster (so no daemons).
type Options struct {
	// Token is the owner's session token. Empty means a generated one in
	// coderd's "<10-char id>-<22-char secret>" form (see Server.Token).
	Token string
	// MemberToken is the session token of a member of the default
	// organization without any admin role. Empty means a generated one.
	MemberToken string
	// Version is reported by /api/v2/buildinfo and by listed daemons.
	Version string
	// Licensed makes the deployment Premium: external provisioner daemons
	// and high availability are entitled. Unlicensed, the provisioner key
	// endpoints answer 403 as coderd does and no external daemon connects.
	Licensed bool
	// Kube is the cluster whose provisioner pods become daemons. Nil means
	// no daemons are ever listed.
	Kube kubernetes.Interface
	// Namespace holds the provisioner pods. Empty means DefaultNamespace.
	Namespace string
	// NoUsers starts the deployment as a fresh Coder: no user and no
	// session token exist (Token and MemberToken are empty) until a client
	// creates the first owner through POST /api/v2/users/first and logs in.
	// Token and MemberToken are ignored.
	NoUsers bool
	// DNSNames are extra names the server certificate is valid for (e.g. a
	// CODER_DOMAIN mapped to 127.0.0.1 by the caller). 127.0.0.1, ::1 and
	// localhost are always included.
	DNSNames []string
}

// Server is a running test double.
type Server struct {
	url         string
	caFile      string
	caPEM       []byte
	dir         string
	http        *http.Server
	listener    net.Listener
	served      chan struct{}
	token       string // the initial owner's session ("" with NoUsers)
	memberToken string
	version     string
	kube        kubernetes.Interface
	namespace   string
	started     time.Time
	org         organization

	mu        sync.Mutex
	licensed  bool
	keys      []*provisionerKey // in creation order
	offset    time.Duration     // Advance: the double's clock runs this far ahead
	daemons   map[string]*daemonRecord
	connected map[string]bool // daemons whose pod ran at the last observation
	health    map[string]healthProblem
	onCreate  func(name string)   // BeforeNextKeyCreate
	accounts  []*account          // users in creation order; the first is the owner
	sessions  map[string]*account // session token → its user

	work workspaceState // files, templates, workspaces and their jobs (own lock)

	stopOnce sync.Once
}

// Start serves the double on a free 127.0.0.1 port and returns once it
// accepts connections.
func Start(opts Options) (*Server, error) {
	s := &Server{
		version:   valueOr(opts.Version, DefaultVersion),
		kube:      opts.Kube,
		namespace: valueOr(opts.Namespace, DefaultNamespace),
		licensed:  opts.Licensed,
		started:   time.Now().UTC(),
		served:    make(chan struct{}),
		daemons:   map[string]*daemonRecord{},
		health:    map[string]healthProblem{},
		sessions:  map[string]*account{},
	}
	s.org = newDefaultOrganization(s.started)
	if !opts.NoUsers {
		s.token = valueOr(opts.Token, newSessionToken())
		s.memberToken = valueOr(opts.MemberToken, newSessionToken())
		owner := &account{user: newOwner(s.started, s.org.ID), password: newPassword(), owner: true}
		member := &account{user: newMember(s.started, s.org.ID), password: newPassword()}
		s.accounts = []*account{owner, member}
		s.sessions[s.token] = owner
		s.sessions[s.memberToken] = member
	}
	s.work.init()
	s.keys = reservedKeys(s.started, s.org.ID)

	tlsState, err := newServerTLS(opts.DNSNames)
	if err != nil {
		return nil, err
	}
	if s.dir, err = os.MkdirTemp("", "coderapi-"); err != nil {
		return nil, err
	}
	if s.caFile, err = writeCAFile(s.dir, tlsState.caPEM); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	s.caPEM = tlsState.caPEM

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("coderapi: listen: %w", err)
	}
	s.listener = tls.NewListener(ln, tlsState.config)
	s.url = "https://" + ln.Addr().String()
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.http.Serve(s.listener)
	}()
	return s, nil
}

// Require starts a double for one test and stops it when the test ends.
// Each call gets its own server, CA and state, so tests never share keys.
func Require(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("coderapi: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL is the base URL, e.g. https://127.0.0.1:41234 (no trailing slash).
func (s *Server) URL() string { return s.url }

// CAFile is the path of the PEM CA certificate that signed the server's.
func (s *Server) CAFile() string { return s.caFile }

// CAPEM is the CA certificate itself.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// Token is the owner session token the server accepts; empty with
// Options.NoUsers (the first owner then logs in for a session).
func (s *Server) Token() string { return s.token }

// MemberToken is the session token of a plain member of the default
// organization: not an owner, no organization or template admin role.
// Empty with Options.NoUsers.
func (s *Server) MemberToken() string { return s.memberToken }

// Advance moves the double's clock forward: what it reports as now (in
// timestamps and in its answers' Date header) and how old daemons are.
// Pods still running keep heartbeating; a daemon whose pod is gone ages.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// BeforeNextKeyCreate runs f once, with the requested name, when the next
// key-creating request arrives and before the double handles it: a test
// can play a concurrent run that creates the same key in between a
// client's look-up and its create.
func (s *Server) BeforeNextKeyCreate(f func(name string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCreate = f
}

// takeOnCreate returns and clears the BeforeNextKeyCreate hook.
func (s *Server) takeOnCreate() func(string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.onCreate
	s.onCreate = nil
	return f
}

// now is the double's clock.
func (s *Server) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().UTC().Add(s.offset)
}

// OrganizationID is the ID of the default organization ("coder").
func (s *Server) OrganizationID() string { return s.org.ID }

// Client is an HTTP client that trusts only this server's CA.
func (s *Server) Client() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

// SetLicensed switches the deployment between Premium and unlicensed, as
// adding or expiring a license would.
func (s *Server) SetLicensed(licensed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.licensed = licensed
}

// Stop shuts the server down and removes the CA file. It is safe to call
// more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			_ = s.http.Close()
		}
		<-s.served
		os.RemoveAll(s.dir)
	})
}

func (s *Server) isLicensed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.licensed
}

// newSessionToken mimics coderd's API key format: a 10-character ID, a dash
// and a 22-character secret.
func newSessionToken() string {
	return randomString(10) + "-" + randomString(22)
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("coderapi: crypto/rand: %v", err)) // never happens on Linux
	}
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return string(b)
}

func newID() string { return uuid.NewString() }

func valueOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
