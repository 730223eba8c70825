package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	coderctl "github.com/coderctl/coderctl"
	"github.com/coderctl/coderctl/internal/kube"
	"github.com/coderctl/coderctl/internal/testenv/ekstest"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/stages"
)

// kubeCmdRun runs one of the kube commands outside the root command (the
// root registers them), with the deployment files in a temp directory.
type kubeCmdRun struct {
	t                *testing.T
	envFile, cfgFile string
	env              map[string]string
	output           string // -o; text when empty
}

func newKubeCmdRun(t *testing.T) *kubeCmdRun {
	t.Helper()
	dir := t.TempDir()
	r := &kubeCmdRun{t: t, envFile: filepath.Join(dir, "coder-infra.env"), cfgFile: filepath.Join(dir, "cluster-config.yaml"), env: map[string]string{}}
	for path, data := range map[string][]byte{r.cfgFile: coderctl.DefaultClusterConfig, r.envFile: []byte("CODER_DOMAIN=coder.example.com\n")} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *kubeCmdRun) run(build func(*Factory, *globalOptions) *cobra.Command, args ...string) (stdout, stderr string, err error) {
	r.t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{
		IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		LookupEnv: func(k string) (string, bool) {
			v, ok := r.env[k]
			return v, ok
		},
		Registry: stages.Registry,
		Build:    BuildInfo{Version: "v0.0.0-test"},
		Now:      time.Now,
	}
	g := &globalOptions{envFile: r.envFile, configPath: r.cfgFile, output: "text"}
	if r.output != "" {
		g.output = r.output
	}
	cmd := build(f, g)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// staticCredentials gives the SDK's default chain dummy keys and nothing
// else to read.
func staticCredentials(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
}

func TestTokenCommandPrintsAnExecCredential(t *testing.T) {
	staticCredentials(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"as kubectl runs it", []string{"--cluster-name", "coder-prod", "--region", "us-west-2"}},
		{"by hand, from the deployment's files", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := newKubeCmdRun(t).run(newTokenCmd, tc.args...)
			if err != nil {
				t.Fatalf("token: %v (stderr %q)", err, stderr)
			}
			if stderr != "" || strings.Count(stdout, "\n") != 1 {
				t.Errorf("stdout must hold exactly the credential: stdout %q stderr %q", stdout, stderr)
			}
			var cred struct {
				APIVersion string            `json:"apiVersion"`
				Kind       string            `json:"kind"`
				Spec       map[string]any    `json:"spec"`
				Status     map[string]string `json:"status"`
			}
			if err := json.Unmarshal([]byte(stdout), &cred); err != nil {
				t.Fatalf("not JSON: %v: %s", err, stdout)
			}
			if cred.APIVersion != "client.authentication.k8s.io/v1beta1" || cred.Kind != "ExecCredential" || cred.Spec == nil || len(cred.Status) != 2 {
				t.Errorf("ExecCredential shape: %s", stdout)
			}
			exp, err := time.Parse(time.RFC3339, cred.Status["expirationTimestamp"])
			if err != nil || time.Until(exp) < 13*time.Minute || time.Until(exp) > 15*time.Minute {
				t.Errorf("expirationTimestamp %q, want about 14 minutes from now", cred.Status["expirationTimestamp"])
			}
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(cred.Status["token"], kube.TokenPrefix))
			if !strings.HasPrefix(cred.Status["token"], kube.TokenPrefix) || err != nil {
				t.Fatalf("token %.24q... is not an EKS token", cred.Status["token"])
			}
			u, _ := url.Parse(string(raw))
			if u.Host != "sts.us-west-2.amazonaws.com" || !strings.Contains(u.Query().Get("X-Amz-SignedHeaders"), kube.ClusterIDHeader) {
				t.Errorf("token URL %s", raw)
			}
		})
	}
}

// TestKubeconfigCommand writes a context whose user runs `coderctl token`,
// from the cluster EKS describes. moto's CA data is not a certificate, so
// the EKS double puts a real one in the description.
func TestKubeconfigCommand(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})

	t.Run("writes an exec-plugin context", func(t *testing.T) {
		emu := ekstest.Use(t, ekstest.Options{ClusterCA: ca})
		endpoint := createMotoCluster(t, emu.URL)
		r := newKubeCmdRun(t)
		r.env["AWS_PROFILE"] = "prod"
		r.env["KUBECONFIG"] = "/elsewhere/config"
		file := filepath.Join(t.TempDir(), "kube", "config")
		stdout, stderr, err := r.run(newKubeconfigCmd, "--file", file, "--exec-command", "/opt/bin/coderctl")
		if err != nil {
			t.Fatalf("kubeconfig: %v", err)
		}
		arn := "arn:aws:eks:us-west-2:123456789012:cluster/coder-prod"
		if !strings.Contains(stdout, "wrote context "+arn) || !strings.Contains(stderr, "$KUBECONFIG is /elsewhere/config") {
			t.Errorf("stdout %q stderr %q", stdout, stderr)
		}
		cfg, err := clientcmd.LoadFromFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c, user := cfg.Clusters[arn], cfg.AuthInfos[arn]
		if cfg.CurrentContext != arn || c == nil || c.Server != endpoint || string(c.CertificateAuthorityData) != string(ca) {
			t.Fatalf("kubeconfig current %q cluster %+v", cfg.CurrentContext, c)
		}
		if user == nil || user.Exec == nil || user.Exec.Command != "/opt/bin/coderctl" ||
			strings.Join(user.Exec.Args, " ") != "token --cluster-name coder-prod --region us-west-2" ||
			len(user.Exec.Env) != 1 || user.Exec.Env[0].Value != "prod" {
			t.Errorf("user %+v", user)
		}
	})
	t.Run("moto's CA data: a clear error, nothing written", func(t *testing.T) {
		srv := moto.Require(t)
		createMotoCluster(t, srv.URL)
		file := filepath.Join(t.TempDir(), "config")
		_, _, err := newKubeCmdRun(t).run(newKubeconfigCmd, "--file", file)
		if err == nil || !strings.Contains(err.Error(), "not a PEM certificate") {
			t.Errorf("got %v, want the CA explained", err)
		}
		if _, statErr := os.Stat(file); !os.IsNotExist(statErr) {
			t.Error("a kubeconfig was written anyway")
		}
	})
}

// createMotoCluster makes the shipped config's cluster through endpoint
// (moto, or the EKS double in front of it) and returns its API endpoint.
func createMotoCluster(t *testing.T, endpoint string) string {
	t.Helper()
	cfg, err := moto.Require(t).AWSConfig(context.Background(), "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	client := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out, err := client.CreateCluster(context.Background(), &eks.CreateClusterInput{
		Name: aws.String("coder-prod"), Version: aws.String("1.34"), RoleArn: aws.String("arn:aws:iam::123456789012:role/r"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1", "subnet-2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Cluster.Endpoint)
}
