package acm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

func (s *stage) planIssued(ctx context.Context) ([]engine.Action, error) {
	c, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	if c != nil && c.Status == acmtypes.CertificateStatusIssued {
		return []engine.Action{{Kind: engine.Nothing, Resource: c.arn(), Reason: "issued"}}, nil
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: "certificate for " + s.domain(), Reason: "wait for DNS validation (typically minutes, up to 75)"}}, nil
}

// applyIssued waits for ISSUED. With --no-wait a certificate still being
// validated leaves the step pending: the next run resumes here.
func (s *stage) applyIssued(ctx context.Context, r engine.Reporter) error {
	c, err := s.recordedCert(ctx)
	if err != nil {
		return err
	}
	certARN := c.arn()
	switch c.Status {
	case acmtypes.CertificateStatusIssued:
		return nil
	case acmtypes.CertificateStatusPendingValidation:
	default:
		return notIssuable(c)
	}
	if s.d.Opts.NoWait {
		return engine.Pending("certificate %s for %s is waiting for DNS validation; run apply again once the records resolve", certARN, s.domain())
	}
	wait := s.d.Opts.Wait.For(issuedWait)
	w := acm.NewCertificateValidatedWaiter(s.d.AWS.ACM, func(o *acm.CertificateValidatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = awsx.Watch(r, "DNS validation of "+s.domain(), validationStatus, o.Retryable)
	})
	timeout := wait.Timeout
	if err := w.Wait(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(certARN)}, timeout); err != nil {
		if c, derr := s.describe(ctx, certARN); derr == nil && c != nil && c.Status != acmtypes.CertificateStatusPendingValidation && c.Status != acmtypes.CertificateStatusIssued {
			return notIssuable(c)
		}
		return fmt.Errorf("certificate %s not validated after %s (%v): check that the CNAME records resolve (dig CNAME <name>), then apply again to keep waiting",
			certARN, timeout, err)
	}
	return s.confirmIssued(ctx, r, certARN)
}

// confirmTimeout bounds confirmIssued: ACM turns a validated certificate
// ISSUED within seconds to minutes.
const confirmTimeout = 10 * time.Minute

// confirmIssued covers the moment between every name validating (what the
// SDK waiter waits for) and the status turning ISSUED.
func (s *stage) confirmIssued(ctx context.Context, r engine.Reporter, certARN string) error {
	return awsx.Poll(ctx, r, "certificate "+certARN+" to be issued", s.d.Opts.Wait, confirmTimeout,
		func(ctx context.Context) (bool, string, error) {
			c, err := s.describe(ctx, certARN)
			if err != nil || c == nil {
				return false, "", fmt.Errorf("certificate %s: %v", certARN, err)
			}
			return c.Status == acmtypes.CertificateStatusIssued, string(c.Status), nil
		})
}

// validationStatus is what the wait reports at each poll: the status and
// each name's validation status.
func validationStatus(out *acm.DescribeCertificateOutput) string {
	c := out.Certificate
	if c == nil {
		return "unknown"
	}
	var names []string
	for _, dv := range c.DomainValidationOptions {
		names = append(names, fmt.Sprintf("%s %s", aws.ToString(dv.DomainName), dv.ValidationStatus))
	}
	return fmt.Sprintf("%s (%s)", c.Status, strings.Join(names, ", "))
}

// notIssuable explains a certificate that will never be issued.
func notIssuable(c *cert) error {
	reason := string(c.FailureReason)
	if reason == "" {
		reason = "no reason given"
	}
	hint := "delete it (coderctl stage acm destroy) and apply again"
	if !c.owned {
		hint = "set " + names.KeyCertARN + " to an ISSUED certificate, or remove it to have coderctl request one"
	}
	return fmt.Errorf("certificate %s is %s (%s): %s", c.arn(), c.Status, reason, hint)
}
