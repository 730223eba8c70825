// Package acm is the guide's "TLS certificate" step: an ACM certificate for
// CODER_DOMAIN and *.CODER_DOMAIN (Coder's wildcard access URL), validated
// through DNS. With a Route53 hosted zone the validation records are
// created here; without one they are printed for the user to create, and
// the stage waits (or, with --no-wait, stays pending until a later run).
package acm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Name is the stage's registry name.
const Name = names.StageACM

// Step names; other stages refer to them as "acm/<name>".
const (
	StepCertificate       = "certificate"
	StepValidationRecords = "validation-records"
)

// Waiting for ISSUED: DNS validation takes minutes, sometimes over an hour
// (Terraform waits 75 minutes).
var issuedWait = awsx.WaitPolicy{MinDelay: 15 * time.Second, MaxDelay: 60 * time.Second, Timeout: 75 * time.Minute}

// minRemainingValidity is how long before expiry verify starts failing.
const minRemainingValidity = 30 * 24 * time.Hour

// New builds the acm stage.
func New(d *deploy.Deps) engine.Stage {
	s := &stage{d: d}
	return engine.Stage{
		Name:    Name,
		Summary: "TLS certificate for CODER_DOMAIN and *.CODER_DOMAIN, validated through DNS",
		Needs:   []string{names.StagePrereqs},
		Reads:   []string{config.KeyClusterName, config.KeyRegion, config.KeyDomain, config.KeyHostedZoneID, names.KeyCertARN},
		Writes:  []string{names.KeyCertARN},
		Steps: []engine.Step{
			{Name: StepCertificate, Needs: []string{names.StagePrereqs}, Typical: 5 * time.Second,
				Plan: s.planCertificate, Apply: s.applyCertificate, Destroy: s.destroyCertificate},
			{Name: StepValidationRecords, Needs: []string{stepID(StepCertificate)}, Typical: 30 * time.Second,
				Plan: s.planRecords, Apply: s.applyRecords, Destroy: s.destroyRecords},
			{Name: names.ACMStepIssued, Needs: []string{stepID(StepValidationRecords)}, Typical: 5 * time.Minute,
				Plan: s.planIssued, Apply: s.applyIssued},
		},
		Verify:   s.verify,
		Validate: s.validate,
	}
}

type stage struct{ d *deploy.Deps }

func stepID(step string) string { return engine.StepID(Name, step) }

func (s *stage) domain() string { return s.d.Inputs.Domain() }

// names are the names the certificate must cover.
func (s *stage) names() []string { return []string{s.domain(), "*." + s.domain()} }

// cert is a certificate and whether this deployment created it (tagged):
// only owned certificates are validated, deleted and have records deleted.
type cert struct {
	*acmtypes.CertificateDetail
	owned bool
}

func (c *cert) arn() string { return aws.ToString(c.CertificateArn) }

// recordedCert is the certificate the request step recorded, which the
// later steps work on; an error when it is gone.
func (s *stage) recordedCert(ctx context.Context) (*cert, error) {
	certARN, err := s.d.Output(names.KeyCertARN, Name)
	if err != nil {
		return nil, err
	}
	c, err := s.describe(ctx, certARN)
	if err == nil && c == nil {
		err = fmt.Errorf("certificate %s does not exist", certARN)
	}
	return c, err
}

// describe reads a certificate and its tags; nil when it does not exist. It
// asks the region in the ARN, so a certificate of another region is found
// (and then refused for being there) rather than reported missing.
func (s *stage) describe(ctx context.Context, certARN string) (*cert, error) {
	inRegion := func(o *acm.Options) {
		if r := certRegion(certARN); r != "" {
			o.Region = r
		}
	}
	out, err := s.d.AWS.ACM.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(certARN)}, inRegion)
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Describe("describe certificate "+certARN, err)
	}
	tags, err := s.d.AWS.ACM.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: aws.String(certARN)}, inRegion)
	if err != nil {
		return nil, awsx.Describe("list tags of certificate "+certARN, err)
	}
	have := map[string]string{}
	for _, t := range tags.Tags {
		have[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &cert{CertificateDetail: out.Certificate, owned: awsx.HasTags(have, s.d.Tags(Name, nil))}, nil
}

// find returns the certificate named by CERT_ARN, or the deployment's own
// (by tags; ISSUED preferred), or nil. A CERT_ARN that names nothing is an
// error: it may be the user's typo, and requesting another certificate
// would hide it.
func (s *stage) find(ctx context.Context) (*cert, error) {
	c, err := s.current(ctx)
	if err == nil && c == nil && s.d.State.Get(names.KeyCertARN) != "" {
		a := s.d.State.Get(names.KeyCertARN)
		return nil, fmt.Errorf("%s %s does not exist in %s: remove %s from %s to have coderctl request a certificate",
			names.KeyCertARN, a, s.d.Region(), names.KeyCertARN, s.d.State.Path())
	}
	return c, err
}

// current is find without the complaint: nil when CERT_ARN names nothing.
func (s *stage) current(ctx context.Context) (*cert, error) {
	if a := s.d.State.Get(names.KeyCertARN); a != "" {
		return s.describe(ctx, a)
	}
	return s.findByTags(ctx)
}

func (s *stage) findByTags(ctx context.Context) (*cert, error) {
	all, err := s.forDomain(ctx, acmtypes.CertificateStatusIssued, acmtypes.CertificateStatusPendingValidation)
	if err != nil {
		return nil, err
	}
	var pending *cert
	for _, c := range all {
		switch {
		case !c.owned:
		case c.Status == acmtypes.CertificateStatusIssued:
			return c, nil
		case pending == nil:
			pending = c
		}
	}
	return pending, nil
}

// forDomain lists the certificates whose first name is the domain, with
// the given statuses (all when none given).
func (s *stage) forDomain(ctx context.Context, statuses ...acmtypes.CertificateStatus) ([]*cert, error) {
	var out []*cert
	pager := acm.NewListCertificatesPaginator(s.d.AWS.ACM, &acm.ListCertificatesInput{CertificateStatuses: statuses})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, awsx.Describe("list certificates", err)
		}
		for _, sum := range page.CertificateSummaryList {
			if !strings.EqualFold(aws.ToString(sum.DomainName), s.domain()) {
				continue
			}
			c, err := s.describe(ctx, aws.ToString(sum.CertificateArn))
			if err != nil {
				return nil, err
			}
			if c != nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func (s *stage) planCertificate(ctx context.Context) ([]engine.Action, error) {
	c, err := s.find(ctx)
	if err != nil {
		return nil, err
	}
	res := "certificate for " + strings.Join(s.names(), ", ")
	switch {
	case c == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: "request it from ACM with DNS validation"}}, nil
	case !c.owned:
		return []engine.Action{{Kind: engine.Nothing, Resource: c.arn(), Reason: "given as " + names.KeyCertARN + " (" + string(c.Status) + "); used as is"}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: c.arn(), Reason: "exists, " + string(c.Status)}}, nil
}

func (s *stage) applyCertificate(ctx context.Context, r engine.Reporter) error {
	c, err := s.find(ctx)
	if err != nil {
		return err
	}
	if c != nil {
		if s.d.State.Get(names.KeyCertARN) != c.arn() {
			return s.d.Record(map[string]string{names.KeyCertARN: c.arn()})
		}
		return nil
	}
	certARN, err := s.requestOnce(ctx, r)
	if err != nil {
		return err
	}
	return s.d.Record(map[string]string{names.KeyCertARN: certARN})
}

// requestOnce requests the certificate with the deterministic token. ACM
// keeps a token for an hour: after a destroy and a new apply within that
// hour it names the deleted certificate (moto fails with HTTP 500 then).
// Either way the request is repeated once with a token salted by the
// clock; a duplicate this could make is found by tags and deleted by
// destroy with the rest.
func (s *stage) requestOnce(ctx context.Context, r engine.Reporter) (string, error) {
	certARN, err := s.request(ctx, r, IdempotencyToken(s.d.Deployment(), s.domain()))
	stale := false
	switch {
	case err != nil && serverError(err):
		stale = true
	case err != nil:
		return "", err
	default:
		c, err := s.describe(ctx, certARN)
		if err != nil {
			return "", err
		}
		stale = c == nil
	}
	if !stale {
		return certARN, nil
	}
	return s.request(ctx, r, IdempotencyToken(s.d.Deployment(), s.domain(), fmt.Sprint(s.d.Clock().UnixNano())))
}

// serverError reports an HTTP 5xx answer that survived the SDK's retries.
func serverError(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500
}

func (s *stage) request(ctx context.Context, r engine.Reporter, token string) (string, error) {
	r.Progress("requesting a certificate for " + strings.Join(s.names(), " and "))
	out, err := s.d.AWS.ACM.RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName:              aws.String(s.domain()),
		SubjectAlternativeNames: []string{"*." + s.domain()},
		ValidationMethod:        acmtypes.ValidationMethodDns,
		IdempotencyToken:        aws.String(token),
		Tags: awsx.TagList(s.d.Tags(Name, map[string]string{"Name": s.domain()}), func(k, v string) acmtypes.Tag {
			return acmtypes.Tag{Key: aws.String(k), Value: aws.String(v)}
		}),
	})
	if err != nil {
		return "", awsx.Describe("request certificate for "+s.domain(), err)
	}
	return aws.ToString(out.CertificateArn), nil
}

// IdempotencyToken derives ACM's idempotency token (at most 32
// alphanumeric characters) from the deployment, domain and any salt.
func IdempotencyToken(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// destroyCertificate deletes the deployment's own certificate. One still
// attached to a load balancer is refused with the user's ARN named.
func (s *stage) destroyCertificate(ctx context.Context, r engine.Reporter) error {
	if a := s.d.State.Get(names.KeyCertARN); a != "" {
		c, err := s.describe(ctx, a)
		if err != nil {
			return err
		}
		if c != nil && !c.owned {
			r.Progress("certificate " + a + " was given as " + names.KeyCertARN + ", not created by coderctl: left in place")
			return nil
		}
	}
	all, err := s.forDomain(ctx)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.owned {
			if err := s.deleteCertificate(ctx, r, c); err != nil {
				return err
			}
		}
	}
	return s.d.State.Unset(names.KeyCertARN)
}

// deleteCertificate deletes one of the deployment's certificates; one still
// attached to a load balancer is refused with the user named.
func (s *stage) deleteCertificate(ctx context.Context, r engine.Reporter, c *cert) error {
	if err := s.inUse(ctx, c); err != nil {
		return err
	}
	r.Progress("deleting certificate " + c.arn())
	_, err := s.d.AWS.ACM.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: c.CertificateArn})
	switch {
	case awsx.ErrorCode(err) == "ResourceInUseException":
		if fresh, derr := s.describe(ctx, c.arn()); derr == nil && fresh != nil {
			if err := s.inUse(ctx, fresh); err != nil {
				return err
			}
		}
		return fmt.Errorf("certificate %s is still in use by an AWS resource: delete the load balancer that uses it (coderctl stage coder destroy) and try again", c.arn())
	case err != nil && !awsx.IsNotFound(err):
		return awsx.Describe("delete certificate "+c.arn(), err)
	}
	return nil
}

// inUse names what still uses a certificate. InUseBy can lag behind a
// deleted load balancer (and moto never clears it), so each load balancer or
// listener it names is looked up; only those that still exist count. The
// DeleteCertificate call stays the final word.
func (s *stage) inUse(ctx context.Context, c *cert) error {
	var live []string
	for _, user := range c.InUseBy {
		if s.elbResourceExists(ctx, user) {
			live = append(live, user)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return fmt.Errorf("certificate %s is still in use by %s: delete that load balancer first (coderctl stage coder destroy) and try again",
		c.arn(), strings.Join(live, ", "))
}

// elbResourceExists reports whether a listener or load balancer ARN still
// exists; ARNs of other services are assumed to.
func (s *stage) elbResourceExists(ctx context.Context, resource string) bool {
	var err error
	switch {
	case strings.Contains(resource, ":listener/"):
		_, err = s.d.AWS.ELB.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{resource}})
	case strings.Contains(resource, ":loadbalancer/"):
		_, err = s.d.AWS.ELB.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{resource}})
	default:
		return true
	}
	return err == nil || !awsx.IsNotFound(err)
}

// certRegion is the region in a certificate ARN ("" when it does not parse).
func certRegion(certARN string) string {
	a, err := arn.Parse(certARN)
	if err != nil || a.Service != "acm" {
		return ""
	}
	return a.Region
}

// covers reports whether a certificate's names cover want: exactly, or by
// a wildcard one label up (a wildcard want needs the same wildcard).
func covers(certNames []string, want string) bool {
	want = strings.ToLower(want)
	for _, n := range certNames {
		n = strings.ToLower(n)
		if n == want {
			return true
		}
		base, isWildcard := strings.CutPrefix(n, "*.")
		if !isWildcard || strings.HasPrefix(want, "*.") {
			continue
		}
		if label, rest, ok := strings.Cut(want, "."); ok && label != "" && rest == base {
			return true
		}
	}
	return false
}

func certNames(c *cert) []string {
	return append([]string{aws.ToString(c.DomainName)}, c.SubjectAlternativeNames...)
}
