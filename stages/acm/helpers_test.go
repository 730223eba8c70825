package acm

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func TestMain(m *testing.M) { moto.Main(m) }

const (
	testDomain  = "coder.example.com"
	testCluster = "coder-prod"
)

type world struct {
	*stagetest.Env
	zone string
}

// newWorld starts from the default inputs; with zoneName it creates that
// public hosted zone and sets HOSTED_ZONE_ID to it.
func newWorld(t *testing.T, zoneName string) *world {
	t.Helper()
	w := &world{Env: stagetest.New(t, nil)}
	if zoneName != "" {
		w.zone = createZone(t, w.Deps.AWS.Route53, zoneName, false)
		w.setInput(t, config.KeyHostedZoneID, w.zone)
	}
	w.Calls.Reset()
	return w
}

// setInput writes a key to the env file and reloads, as a user editing
// coder-infra.env between runs.
func (w *world) setInput(t *testing.T, key, value string) {
	t.Helper()
	if err := w.Deps.State.Set(key, value); err != nil {
		t.Fatal(err)
	}
	w.Reload(t)
}

// createZone creates a hosted zone whose ID looks like Route53's (Z...):
// moto draws IDs from [A-Z0-9], and HOSTED_ZONE_ID is validated as a real ID.
func createZone(t *testing.T, c *route53.Client, name string, private bool) string {
	t.Helper()
	ctx := context.Background()
	for i := range 1000 {
		in := &route53.CreateHostedZoneInput{Name: aws.String(name), CallerReference: aws.String(fmt.Sprintf("%s-%d-%d", t.Name(), time.Now().UnixNano(), i))}
		if private {
			in.HostedZoneConfig = &r53types.HostedZoneConfig{PrivateZone: true}
		}
		out, err := c.CreateHostedZone(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
		if strings.HasPrefix(id, "Z") {
			return id
		}
		if _, err := c.DeleteHostedZone(ctx, &route53.DeleteHostedZoneInput{Id: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("moto never produced a hosted zone ID starting with Z")
	return ""
}

// stages is the acm stage after a stand-in for prereqs (checks only).
func (w *world) stages() []engine.Stage {
	return []engine.Stage{stagetest.Stub(names.StagePrereqs, nil), New(w.Deps)}
}

func (w *world) run(t *testing.T, mode engine.Mode) (*engine.Summary, []engine.Event, error) {
	t.Helper()
	return w.RunOnly(t, w.stages(), mode, Name)
}

func (w *world) apply(t *testing.T) []engine.Event {
	t.Helper()
	_, evs, err := w.run(t, engine.ModeApply)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, stagetest.EventLog(evs))
	}
	return evs
}

func (w *world) certificate(t *testing.T, arn string) *acmtypes.CertificateDetail {
	t.Helper()
	out, err := w.Deps.AWS.ACM.DescribeCertificate(context.Background(), &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("describe %s: %v", arn, err)
	}
	return out.Certificate
}

// zoneCNAMEs lists the zone's CNAME records as "name value".
func (w *world) zoneCNAMEs(t *testing.T) []string {
	t.Helper()
	out, err := w.Deps.AWS.Route53.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.zone)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for _, s := range out.ResourceRecordSets {
		if s.Type == r53types.RRTypeCname {
			for _, r := range s.ResourceRecords {
				recs = append(recs, aws.ToString(s.Name)+" "+aws.ToString(r.Value))
			}
		}
	}
	return recs
}

// ownedCertificates lists certificates tagged for the deployment.
func (w *world) ownedCertificates(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	out, err := w.Deps.AWS.ACM.ListCertificates(ctx, &acm.ListCertificatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var owned []string
	for _, c := range out.CertificateSummaryList {
		tags, err := w.Deps.AWS.ACM.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: c.CertificateArn})
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags.Tags {
			if aws.ToString(tag.Key) == awsx.TagDeployment && aws.ToString(tag.Value) == testCluster {
				owned = append(owned, aws.ToString(c.CertificateArn))
			}
		}
	}
	return owned
}

// requestForeign requests a certificate coderctl did not (no tags).
func requestForeign(t *testing.T, c *acm.Client, domain string, sans ...string) string {
	t.Helper()
	out, err := c.RequestCertificate(context.Background(), &acm.RequestCertificateInput{DomainName: aws.String(domain),
		SubjectAlternativeNames: sans, ValidationMethod: acmtypes.ValidationMethodDns})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CertificateArn)
}

// slowMoto is a second moto_server whose certificates stay
// PENDING_VALIDATION for validationWait seconds, to exercise waiting,
// printed records and --no-wait (the shared one issues at once).
type slowMoto struct {
	url string
	cmd *exec.Cmd
}

func startSlowMoto(t *testing.T, validationWait int) *slowMoto {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), "moto-slow.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("moto_server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), fmt.Sprintf("MOTO_ACM_VALIDATION_WAIT=%d", validationWait))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	m := &slowMoto{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
	})
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(m.url + "/moto-api/data.json"); err == nil {
			resp.Body.Close()
			return m
		}
	}
	t.Fatal("slow moto_server did not start")
	return nil
}

// use points the world's AWS clients at this server (after a reset).
func (m *slowMoto) use(t *testing.T, w *world) {
	t.Helper()
	resp, err := http.Post(m.url+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(w.Deps.Region()),
		awsconfig.WithBaseEndpoint(m.url),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		awsconfig.WithAPIOptions([]func(*middleware.Stack) error{w.Calls.Middleware}))
	if err != nil {
		t.Fatal(err)
	}
	w.Deps.AWS = awsx.NewClients(cfg)
}
