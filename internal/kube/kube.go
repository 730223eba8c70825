// Package kube gives coderctl a Kubernetes client for the deployment's
// cluster: built from the EKS cluster itself (endpoint and CA from
// DescribeCluster, a bearer token signed with the caller's AWS
// credentials), or from a kubeconfig the user names with --kubeconfig or
// $CODERCTL_KUBECONFIG. A stray $KUBECONFIG is never read: it may point at
// another cluster.
package kube

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/oauth2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/deploy"
)

// Client rate limits. client-go's defaults (5 QPS, burst 10) throttle helm
// installs and readiness polling of a whole deployment; the API server's own
// priority and fairness protects it from us.
const (
	clientQPS   = 50
	clientBurst = 100
	// tokenTimeout bounds signing one token (credential refresh included).
	tokenTimeout = 30 * time.Second
)

// ClusterAccess is what a client needs to reach an EKS cluster's API server.
type ClusterAccess struct {
	Name     string
	ARN      string
	Endpoint string
	// CAData is the cluster CA certificate, PEM encoded.
	CAData []byte
}

// DescribeAccess reads the cluster's endpoint and CA from EKS. It fails
// with a clear message, never a panic, when EKS has no endpoint yet or
// returns CA data that is not a PEM certificate (moto does that).
func DescribeAccess(ctx context.Context, clients *awsx.Clients, cluster string) (ClusterAccess, error) {
	if clients == nil || clients.EKS == nil {
		return ClusterAccess{}, errors.New("kube: no AWS clients to find the EKS cluster with")
	}
	out, err := clients.EKS.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(cluster)})
	if err != nil {
		if awsx.IsNotFound(err) {
			return ClusterAccess{}, fmt.Errorf("EKS cluster %s not found in %s: run 'coderctl stage eks apply' first", cluster, clients.Config.Region)
		}
		return ClusterAccess{}, fmt.Errorf("describe EKS cluster %s: %w", cluster, err)
	}
	return accessOf(out.Cluster, cluster)
}

// accessOf checks and extracts what DescribeCluster returned.
func accessOf(c *ekstypes.Cluster, cluster string) (ClusterAccess, error) {
	if c == nil {
		return ClusterAccess{}, fmt.Errorf("EKS returned no description of cluster %s", cluster)
	}
	acc := ClusterAccess{Name: cluster, ARN: aws.ToString(c.Arn), Endpoint: aws.ToString(c.Endpoint)}
	if acc.Endpoint == "" {
		return ClusterAccess{}, fmt.Errorf("EKS cluster %s has no API endpoint yet (status %s): wait until it is ACTIVE", cluster, c.Status)
	}
	var data string
	if c.CertificateAuthority != nil {
		data = aws.ToString(c.CertificateAuthority.Data)
	}
	ca, err := decodeCA(data)
	if err != nil {
		return ClusterAccess{}, fmt.Errorf("EKS cluster %s: certificate authority %v (the moto AWS emulator returns random data here); "+
			"reach the cluster with --kubeconfig or $CODERCTL_KUBECONFIG instead", cluster, err)
	}
	acc.CAData = ca
	return acc, nil
}

// decodeCA turns EKS's base64 certificateAuthority.data into PEM bytes,
// proving it holds a certificate.
func decodeCA(data string) ([]byte, error) {
	if data == "" {
		return nil, errors.New("is missing")
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, errors.New("data is not base64")
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("data is not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("certificate does not parse: %v", err)
	}
	return raw, nil
}

// FromEKS builds a client configuration for the EKS cluster named cluster.
// Its bearer token is signed with the clients' AWS credentials and renewed
// before it expires (and after a 401), so long runs keep working.
func FromEKS(ctx context.Context, clients *awsx.Clients, cluster string) (*rest.Config, error) {
	acc, err := DescribeAccess(ctx, clients, cluster)
	if err != nil {
		return nil, err
	}
	return restConfig(acc, &tokenSource{sts: clients.STS, cluster: cluster}), nil
}

// restConfig is the client configuration for acc with tokens from ts.
func restConfig(acc ClusterAccess, ts oauth2.TokenSource) *rest.Config {
	cfg := &rest.Config{
		Host:            acc.Endpoint,
		TLSClientConfig: rest.TLSClientConfig{CAData: acc.CAData},
	}
	cfg.WrapTransport = transport.ResettableTokenSourceWrapTransport(transport.NewCachedTokenSource(ts))
	tune(cfg)
	return cfg
}

// tokenSource signs EKS tokens on demand for client-go's transport.
type tokenSource struct {
	sts     *sts.Client
	cluster string
}

// Token implements oauth2.TokenSource. The transport calls it without a
// context, at any time in the client's life, so it gets its own deadline.
func (t *tokenSource) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
	defer cancel()
	tok, exp, err := Token(ctx, t.sts, t.cluster)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer", Expiry: exp}, nil
}

// FromKubeconfig builds a client configuration from the kubeconfig at path
// (its current context), and from nothing else: neither $KUBECONFIG nor
// ~/.kube/config nor an in-cluster service account is consulted.
func FromKubeconfig(path string) (*rest.Config, error) {
	if path == "" {
		return nil, errors.New("kube: no kubeconfig path given")
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("kubeconfig %s not found: check --kubeconfig or $CODERCTL_KUBECONFIG", path)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	// ExplicitPath alone: the loading rules then ignore $KUBECONFIG and the
	// home file, and resolve relative certificate paths against the file.
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	tune(cfg)
	return cfg, nil
}

func tune(cfg *rest.Config) {
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	if cfg.UserAgent == "" {
		cfg.UserAgent = "coderctl"
	}
}

// Factory returns the deployment's Kubernetes access: from kubeconfigPath
// when it is set (--kubeconfig or $CODERCTL_KUBECONFIG, resolved by the
// CLI), else from the EKS cluster through clients. The client is built on
// first use and kept once it works; a failure is retried on the next call,
// since the cluster may simply not exist yet.
func Factory(kubeconfigPath string, clients *awsx.Clients, cluster string) deploy.KubeFactory {
	var mu sync.Mutex
	var client kubernetes.Interface
	var config *rest.Config
	return func(ctx context.Context) (kubernetes.Interface, *rest.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		if client != nil {
			return client, rest.CopyConfig(config), nil
		}
		cfg, err := configFor(ctx, kubeconfigPath, clients, cluster)
		if err != nil {
			return nil, nil, err
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("kubernetes client: %w", err)
		}
		client, config = cs, cfg
		return client, rest.CopyConfig(config), nil
	}
}

func configFor(ctx context.Context, kubeconfigPath string, clients *awsx.Clients, cluster string) (*rest.Config, error) {
	if kubeconfigPath != "" {
		return FromKubeconfig(kubeconfigPath)
	}
	return FromEKS(ctx, clients, cluster)
}
