// Package moto starts moto_server, the AWS emulator on this machine image, on
// a free loopback port for tests, benchmarks and `make demo`. A missing
// moto_server is a setup error, never a skipped test.
package moto

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Server is a running moto_server.
type Server struct {
	URL string
	cmd *exec.Cmd
	log *os.File
}

// Env returns the settings moto needs (see TESTBED.md): certificates are
// issued at once and AWS managed IAM policies exist.
func Env() []string {
	return append(os.Environ(), "MOTO_ACM_VALIDATION_WAIT=0", "MOTO_IAM_LOAD_MANAGED_POLICIES=true")
}

// Start runs moto_server on a free loopback port and waits until it answers.
// logDir receives moto.log ("" = a temp dir).
func Start(ctx context.Context, logDir string) (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server not found on PATH: it ships with the machine image (moto 5.2.1); elsewhere run `pip install 'moto[server]==5.2.1'`")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "moto-"); err != nil {
			return nil, err
		}
	}
	logf, err := os.Create(filepath.Join(logDir, "moto.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = Env()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: logf}
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	tail, _ := os.ReadFile(s.log.Name())
	return fmt.Errorf("moto_server did not answer within %s: %s", timeout, lastLines(string(tail), 5))
}

// Reset clears every resource moto holds.
func (s *Server) Reset() error {
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", bytes.NewReader(nil))
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	return nil
}

// Stop kills moto_server and its process group.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
	}
	if s.log != nil {
		s.log.Close()
	}
}

// Environ returns the variables that point the AWS SDK (and a coderctl child
// process) at this server with dummy credentials.
func (s *Server) Environ(region string) []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.URL,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=" + region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// AWSConfig is an SDK configuration aimed at this server.
func (s *Server) AWSConfig(ctx context.Context, region string) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithBaseEndpoint(s.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
	)
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Require returns the test binary's shared moto_server, reset to empty, and
// sets the process environment so the SDK's default chain reaches it. Call
// Main from TestMain so the server stops when the tests end.
func Require(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start(context.Background(), "") })
	if sharedErr != nil {
		t.Fatalf("moto: %v", sharedErr)
	}
	if err := shared.Reset(); err != nil {
		t.Fatalf("moto: %v", err)
	}
	for _, kv := range shared.Environ("us-west-2") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return shared
}

// Main runs the tests and stops the shared server afterwards.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// StopShared stops the shared server if one was started. For TestMains that
// combine several grounds.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
