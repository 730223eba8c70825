package eks

import (
	"context"
	"crypto/sha1" //nolint:gosec // IAM's thumbprint is defined as a SHA-1 fingerprint
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// The thumbprint IAM requires when creating an OIDC provider.
//
// IAM wants the SHA-1 fingerprint of the top certificate of the issuer's
// TLS chain. For EKS issuers (oidc.eks.<region>.amazonaws.com) AWS ignores
// it: STS trusts them through its own library of root CAs. The API still
// requires one, so coderctl computes it from the issuer when the issuer is
// reachable and otherwise (offline, moto) uses the thumbprint of the root
// CA AWS documents for EKS issuers, valid until 2037.
const (
	eksRootCAThumbprint = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
	thumbprintTimeout   = 5 * time.Second
)

// issuerThumbprint fingerprints the last certificate the issuer presents,
// trusting the system's roots.
func issuerThumbprint(ctx context.Context, issuer string) string {
	return thumbprintOf(ctx, issuer, nil)
}

// thumbprintOf is issuerThumbprint with the roots to verify against (nil:
// the system's). An issuer that cannot be reached or verified gets the
// documented root CA's thumbprint.
func thumbprintOf(ctx context.Context, issuer string, roots *x509.CertPool) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return eksRootCAThumbprint
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	ctx, cancel := context.WithTimeout(ctx, thumbprintTimeout)
	defer cancel()
	dialer := &tls.Dialer{Config: &tls.Config{ServerName: u.Hostname(), RootCAs: roots, MinVersion: tls.VersionTLS12}}
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return eksRootCAThumbprint
	}
	defer conn.Close()
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return eksRootCAThumbprint
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return eksRootCAThumbprint
	}
	sum := sha1.Sum(certs[len(certs)-1].Raw) //nolint:gosec // see above
	return hex.EncodeToString(sum[:])
}

// providerFor returns the IAM OIDC provider ARN for the cluster's issuer,
// and the issuer URL.
func providerFor(c *ekstypes.Cluster) (providerARN, issuer string, err error) {
	if c.Identity != nil && c.Identity.Oidc != nil {
		issuer = aws.ToString(c.Identity.Oidc.Issuer)
	}
	if issuer == "" {
		return "", "", fmt.Errorf("EKS cluster %s reports no OIDC issuer", aws.ToString(c.Name))
	}
	a, err := arn.Parse(aws.ToString(c.Arn))
	if err != nil {
		return "", "", fmt.Errorf("EKS cluster ARN %q: %w", aws.ToString(c.Arn), err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(issuer, "https://"), "/")
	return fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", a.Partition, a.AccountID, host), issuer, nil
}

// wantedProviderARN is the provider ARN for the cluster as it is now; ""
// when the cluster does not exist yet.
func (s *stage) wantedProviderARN(ctx context.Context) (string, error) {
	c, err := s.describeCluster(ctx)
	if err != nil || c == nil {
		return "", err
	}
	providerARN, _, err := providerFor(c)
	return providerARN, err
}

// readProvider returns the provider, nil when it does not exist.
func (s *stage) readProvider(ctx context.Context, providerARN string) (*iam.GetOpenIDConnectProviderOutput, error) {
	out, err := s.d.AWS.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("IAM GetOpenIDConnectProvider "+providerARN, err)
	}
	return out, nil
}

func (s *stage) planOIDC(ctx context.Context) ([]engine.Action, error) {
	c, err := s.describeCluster(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return action(engine.Create, "iam-oidc-provider/"+s.clusterName(), "create for the cluster's OIDC issuer once the cluster exists"), nil
	}
	providerARN, issuer, err := providerFor(c)
	if err != nil {
		return nil, err
	}
	res := "iam-oidc-provider/" + strings.TrimPrefix(issuer, "https://")
	p, err := s.readProvider(ctx, providerARN)
	switch {
	case err != nil:
		return nil, err
	case p == nil:
		return action(engine.Create, res, "missing: create it for IRSA with audience %s", awsx.STSAudience), nil
	case !slices.Contains(p.ClientIDList, awsx.STSAudience):
		return action(engine.Update, res, "audience %s missing: add it", awsx.STSAudience), nil
	}
	return action(engine.Nothing, res, "exists for the cluster's issuer"), nil
}

// applyOIDC creates (or adopts) the provider for the cluster's issuer.
// IAM has no idempotency token here; the provider's ARN is fixed by the
// issuer, so a repeated create answers EntityAlreadyExists.
func (s *stage) applyOIDC(ctx context.Context, r engine.Reporter) error {
	c, err := s.describeCluster(ctx)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("EKS cluster %s not found: the eks/cluster step must succeed first", s.clusterName())
	}
	providerARN, issuer, err := providerFor(c)
	if err != nil {
		return err
	}
	p, err := s.readProvider(ctx, providerARN)
	if err != nil {
		return err
	}
	switch {
	case p == nil:
		if err := s.createProvider(ctx, r, issuer); err != nil {
			return err
		}
	case !slices.Contains(p.ClientIDList, awsx.STSAudience):
		if _, err := s.d.AWS.IAM.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{
			OpenIDConnectProviderArn: aws.String(providerARN), ClientID: aws.String(awsx.STSAudience),
		}); err != nil {
			return awsx.Describe("IAM AddClientIDToOpenIDConnectProvider "+providerARN, err)
		}
	}
	return s.recordIfChanged(names.KeyOIDCProviderARN, providerARN)
}

func (s *stage) createProvider(ctx context.Context, r engine.Reporter, issuer string) error {
	r.Progress("creating the IAM OIDC provider for " + issuer)
	_, err := s.d.AWS.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url:            aws.String(issuer),
		ClientIDList:   []string{awsx.STSAudience},
		ThumbprintList: []string{issuerThumbprint(ctx, issuer)},
		Tags:           awsx.IAMTagList(s.tags(s.clusterName())),
	})
	if err != nil && awsx.ErrorCode(err) != "EntityAlreadyExists" {
		return awsx.Describe("IAM CreateOpenIDConnectProvider "+issuer, err)
	}
	return nil
}

// destroyOIDC deletes the provider of the cluster's issuer, the one in the
// state file, and any other provider tagged for this deployment's eks
// stage: the cluster may already be gone, taking the issuer's name with it.
func (s *stage) destroyOIDC(ctx context.Context, r engine.Reporter) error {
	candidates, err := s.providersToDelete(ctx)
	if err != nil {
		return err
	}
	for _, p := range candidates {
		r.Progress("deleting IAM OIDC provider " + p)
		_, err := s.d.AWS.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(p)})
		if err != nil && !awsx.IsNotFound(err) {
			return awsx.Describe("IAM DeleteOpenIDConnectProvider "+p, err)
		}
	}
	return s.d.State.Unset(names.KeyOIDCProviderARN)
}

func (s *stage) providersToDelete(ctx context.Context) ([]string, error) {
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	add(s.d.State.Get(names.KeyOIDCProviderARN))
	current, err := s.wantedProviderARN(ctx)
	if err != nil && !isForeign(err) { // someone else's cluster: not its provider
		return nil, err
	}
	add(current)
	tagged, err := s.taggedProviders(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range tagged {
		add(a)
	}
	return out, nil
}

// taggedProviders lists the OIDC providers tagged for this deployment's
// eks stage.
func (s *stage) taggedProviders(ctx context.Context) ([]string, error) {
	list, err := s.d.AWS.IAM.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		return nil, awsx.Describe("IAM ListOpenIDConnectProviders", err)
	}
	var out []string
	for _, entry := range list.OpenIDConnectProviderList {
		a := aws.ToString(entry.Arn)
		p, err := s.readProvider(ctx, a)
		if err != nil {
			return nil, err
		}
		if p != nil {
			tags := awsx.IAMTags(p.Tags)
			if s.ownedBy(tags) && tags[awsx.TagStage] == Name {
				out = append(out, a)
			}
		}
	}
	return out, nil
}
