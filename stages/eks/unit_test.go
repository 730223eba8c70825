package eks

import (
	"crypto/sha1" //nolint:gosec // the thumbprint IAM wants
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
)

func TestSamePolicyAcceptsIAMsRewritings(t *testing.T) {
	want := awsx.IRSATrust("arn:aws:iam::1:oidc-provider/oidc.example/id/X", "oidc.example/id/X", ebsCSIServiceAccount)
	tests := []struct {
		name string
		doc  string
		same bool
	}{
		{"as sent, URL-encoded", url.QueryEscape(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/oidc.example/id/X"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.example/id/X:aud":"sts.amazonaws.com","oidc.example/id/X:sub":"system:serviceaccount:kube-system:ebs-csi-controller-sa"}}}]}`), true},
		{"one-element lists, other key order, raw JSON", `{"Statement":{"Action":["sts:AssumeRoleWithWebIdentity"],"Condition":{"StringEquals":{"oidc.example/id/X:sub":["system:serviceaccount:kube-system:ebs-csi-controller-sa"],"oidc.example/id/X:aud":"sts.amazonaws.com"}},"Principal":{"Federated":"arn:aws:iam::1:oidc-provider/oidc.example/id/X"},"Effect":"Allow"},"Version":"2012-10-17"}`, true},
		{"another service account", url.QueryEscape(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/oidc.example/id/X"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.example/id/X:aud":"sts.amazonaws.com","oidc.example/id/X:sub":"system:serviceaccount:default:default"}}}]}`), false},
		{"no condition", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/oidc.example/id/X"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false},
		{"not JSON", "%7Bnope", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := awsx.SamePolicy(tc.doc, want); got != tc.same {
				t.Errorf("samePolicy = %v, want %v", got, tc.same)
			}
		})
	}
}

func TestWantedLogTypes(t *testing.T) {
	tests := []struct {
		types []string
		want  string
	}{
		{[]string{"audit", "api", "authenticator"}, "api,audit,authenticator"},
		{[]string{"all"}, "api,audit,authenticator,controllerManager,scheduler"},
		{[]string{"*", "api"}, "api,audit,authenticator,controllerManager,scheduler"},
		{nil, ""},
	}
	for _, tc := range tests {
		cfg := &api.ClusterConfig{CloudWatch: &api.ClusterCloudWatch{ClusterLogging: &api.ClusterCloudWatchLogging{EnableTypes: tc.types}}}
		if got := strings.Join(wantedLogTypes(cfg), ","); got != tc.want {
			t.Errorf("wantedLogTypes(%v) = %q, want %q", tc.types, got, tc.want)
		}
	}
}

func TestEndpointAndLoggingDrift(t *testing.T) {
	c := &ekstypes.Cluster{
		ResourcesVpcConfig: &ekstypes.VpcConfigResponse{EndpointPublicAccess: true, PublicAccessCidrs: []string{"0.0.0.0/0"}},
		Logging: &ekstypes.Logging{ClusterLogging: []ekstypes.LogSetup{
			{Types: []ekstypes.LogType{"api", "scheduler"}, Enabled: aws.Bool(true)},
			{Types: []ekstypes.LogType{"audit"}, Enabled: aws.Bool(false)},
		}},
	}
	w := clusterWant{public: true, private: true, publicCIDRs: []string{"10.0.0.0/8"}, logTypes: []string{"api", "audit"}}
	d := endpointDrift(c, w)
	if !strings.Contains(d, "private endpoint access false, want true") || !strings.Contains(d, "public access CIDRs 0.0.0.0/0, want 10.0.0.0/8") {
		t.Errorf("endpoint drift %q", d)
	}
	enable, disable := loggingDrift(c, w)
	if strings.Join(enable, ",") != "audit" || strings.Join(disable, ",") != "scheduler" {
		t.Errorf("logging drift enable %v disable %v", enable, disable)
	}
	w.publicCIDRs = nil // not set in the file: AWS's default is not drift
	c.ResourcesVpcConfig.EndpointPrivateAccess = true
	if d := endpointDrift(c, w); d != "" {
		t.Errorf("drift %q with matching access", d)
	}
	if d := endpointDrift(&ekstypes.Cluster{}, w); d != "" {
		t.Errorf("a cluster without VPC config (moto after an update) has drift %q", d)
	}
}

func TestClusterSecurityGroupPrefersEKSs(t *testing.T) {
	withSG := &ekstypes.Cluster{ResourcesVpcConfig: &ekstypes.VpcConfigResponse{ClusterSecurityGroupId: aws.String("sg-eks")}}
	for _, tc := range []struct {
		c    *ekstypes.Cluster
		want string
	}{
		{withSG, "sg-eks"},
		{&ekstypes.Cluster{ResourcesVpcConfig: &ekstypes.VpcConfigResponse{}}, "sg-shared"}, // moto
		{&ekstypes.Cluster{}, "sg-shared"},
		{nil, "sg-shared"},
	} {
		if got := clusterSecurityGroup(tc.c, "sg-shared"); got != tc.want {
			t.Errorf("clusterSecurityGroup = %s, want %s", got, tc.want)
		}
	}
}

func TestProviderFor(t *testing.T) {
	c := &ekstypes.Cluster{
		Name: aws.String("coder-prod"), Arn: aws.String("arn:aws-cn:eks:cn-north-1:123456789012:cluster/coder-prod"),
		Identity: &ekstypes.Identity{Oidc: &ekstypes.OIDC{Issuer: aws.String("https://oidc.eks.cn-north-1.amazonaws.com.cn/id/ABC")}},
	}
	arn, issuer, err := providerFor(c)
	if err != nil || arn != "arn:aws-cn:iam::123456789012:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/ABC" || issuer != *c.Identity.Oidc.Issuer {
		t.Errorf("providerFor = %s, %s, %v", arn, issuer, err)
	}
	if host, ok := awsx.IssuerHostOf(arn); !ok || host != "oidc.eks.cn-north-1.amazonaws.com.cn/id/ABC" {
		t.Errorf("issuerHostOf = %q, %v", host, ok)
	}
	c.Identity = nil
	if _, _, err := providerFor(c); err == nil || !strings.Contains(err.Error(), "no OIDC issuer") {
		t.Errorf("cluster without issuer: %v", err)
	}
}

func TestThumbprint(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	sum := sha1.Sum(srv.Certificate().Raw) //nolint:gosec
	if got := thumbprintOf(ctx, srv.URL+"/id/ABC", roots); got != hex.EncodeToString(sum[:]) {
		t.Errorf("thumbprint of a reachable issuer = %s, want its certificate's %x", got, sum)
	}
	for name, issuer := range map[string]string{
		"untrusted certificate": srv.URL,
		"unreachable":           "https://127.0.0.1:1/id/ABC",
		"not a URL":             "::",
	} {
		if got := issuerThumbprint(ctx, issuer); got != eksRootCAThumbprint {
			t.Errorf("%s: thumbprint %s, want the documented root CA's", name, got)
		}
	}
}

func TestClientTokenAndPartition(t *testing.T) {
	for _, tc := range []struct{ region, partition string }{
		{"us-west-2", "aws"}, {"cn-north-1", "aws-cn"}, {"us-gov-west-1", "aws-us-gov"},
	} {
		in, err := config.ResolveInputs("coder-infra.env", map[string]string{"CLUSTER_NAME": "coder-prod", "AWS_REGION": tc.region}, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		st := &stage{d: &deploy.Deps{Inputs: in}}
		if st.partition() != tc.partition || st.managedPolicyARN("AmazonEKSClusterPolicy") != "arn:"+tc.partition+":iam::aws:policy/AmazonEKSClusterPolicy" {
			t.Errorf("%s: partition %s", tc.region, st.partition())
		}
		a := st.clientToken("cluster", "sg-1")
		if a != st.clientToken("cluster", "sg-1") || len(a) != 32 || a == st.clientToken("cluster", "sg-2") || a == st.clientToken("addon/x", "sg-1") {
			t.Errorf("tokens are not deterministic per resource and incarnation")
		}
	}
}

func TestValuesDrift(t *testing.T) {
	tests := []struct {
		name, have, want, drift string
	}{
		{"same JSON, other order", `{"a": 1, "b": {"c": "x"}}`, `{"b": {"c": "x"}, "a": 1}`, ""},
		{"YAML for the same JSON", `{"replicaCount": 3}`, "replicaCount: 3\n", ""},
		{"file sets none", `{"replicaCount": 3}`, "", ""},
		{"one key changed", `{"a": 1, "b": 2}`, `{"a": 1, "b": 3}`, "configuration values differ in b"},
		{"add-on has none", "", `{"a": 1}`, "configuration values differ in a"},
		{"a key removed", `{"a": 1, "b": 2}`, `{"a": 1}`, "configuration values differ in b"},
	}
	for _, tc := range tests {
		if got := valuesDrift(tc.have, tc.want); got != tc.drift {
			t.Errorf("%s: valuesDrift = %q, want %q", tc.name, got, tc.drift)
		}
	}
}

func TestClusterKeyAndEncryptionWords(t *testing.T) {
	c := &ekstypes.Cluster{EncryptionConfig: encryptionConfig("arn:aws:kms:us-west-2:1:key/k")}
	if clusterKey(c) != "arn:aws:kms:us-west-2:1:key/k" || clusterKey(&ekstypes.Cluster{}) != "" || clusterKeyOf(nil) != "" {
		t.Errorf("clusterKey wrong")
	}
	if w := unmanagedKeyWords(c, clusterWant{}); !strings.Contains(w, "EKS cannot remove it") {
		t.Errorf("unmanaged key words %q", w)
	}
	if w := unmanagedKeyWords(c, clusterWant{keyARN: "arn:aws:kms:us-west-2:1:key/k"}); w != "" {
		t.Errorf("managed key words %q", w)
	}
}
