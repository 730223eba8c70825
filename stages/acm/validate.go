package acm

import (
	"context"
	"strings"
	"time"

	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// validate is the stage's Validator. The domain and zone formats are
// checked again here, whatever built the inputs; then the zone must be the
// domain's (or a parent) and a CERT_ARN must name a usable certificate.
func (s *stage) validate(ctx context.Context) error {
	if err := s.d.Inputs.Require(config.KeyDomain); err != nil {
		return err
	}
	if err := checkDomain(s.d.Inputs.Source(config.KeyDomain), s.domain()); err != nil {
		return err
	}
	if zone := s.d.Inputs.HostedZoneID(); zone != "" {
		if _, err := config.CheckInput(s.d.Inputs.Source(config.KeyHostedZoneID), config.KeyHostedZoneID, zone); err != nil {
			return err
		}
		if _, err := s.zoneName(ctx, zone, s.domain()); err != nil {
			return err
		}
	}
	if a := s.d.State.Get(names.KeyCertARN); a != "" {
		return s.checkGivenCert(ctx, a)
	}
	return nil
}

// checkDomain refuses what is not a bare DNS name (a URL, a wildcard, a
// name with a port or path), with what to write instead. internal/config
// holds the one definition of a valid CODER_DOMAIN; values it would change
// (upper case, a trailing dot) are refused here, as they were not resolved
// through it.
func checkDomain(source, domain string) error {
	normalized, err := config.CheckInput(source, config.KeyDomain, domain)
	if err != nil {
		return err
	}
	if normalized != domain {
		return fault.Input(source, config.KeyDomain, "write it as "+normalized, "%q is not in canonical form", domain)
	}
	return nil
}

// checkGivenCert checks CERT_ARN: a certificate in the deployment's region
// that covers both names and, unless coderctl requested it, is ISSUED.
func (s *stage) checkGivenCert(ctx context.Context, certARN string) error {
	src := s.d.State.Path()
	region := certRegion(certARN)
	switch {
	case region == "":
		return fault.Input(src, names.KeyCertARN, "e.g. arn:aws:acm:"+s.d.Region()+":123456789012:certificate/<id>", "%q is not an ACM certificate ARN", certARN)
	case region != s.d.Region():
		return fault.Input(src, names.KeyCertARN, "the load balancer can only use a certificate of its own region: request one in "+s.d.Region()+" or remove "+names.KeyCertARN,
			"certificate is in %s, the deployment in %s", region, s.d.Region())
	}
	c, err := s.describe(ctx, certARN)
	if err != nil {
		return err
	}
	if c == nil {
		return fault.Input(src, names.KeyCertARN, "remove "+names.KeyCertARN+" to have coderctl request a certificate", "certificate %s does not exist", certARN)
	}
	if !c.owned && c.Status != acmtypes.CertificateStatusIssued {
		return fault.Input(src, names.KeyCertARN, "give an ISSUED certificate, or remove "+names.KeyCertARN+" to have coderctl request one",
			"certificate %s is %s, not ISSUED", certARN, c.Status)
	}
	for _, n := range s.names() {
		if !covers(certNames(c), n) {
			hint := "give a certificate for " + strings.Join(s.names(), " and ") + ", or remove " + names.KeyCertARN
			if c.owned {
				hint = "CODER_DOMAIN changed since it was requested: run 'coderctl stage acm destroy', then apply"
			}
			return fault.Input(src, names.KeyCertARN, hint, "certificate %s covers %s, not %s", certARN, strings.Join(certNames(c), ", "), n)
		}
	}
	return nil
}

const applyHint = "run 'coderctl stage acm apply'"

// verify is the stage's checkpoint.
func (s *stage) verify(ctx context.Context) []engine.Check {
	c, err := s.current(ctx)
	switch {
	case err != nil:
		return []engine.Check{engine.Failf("certificate", "check ACM permissions", "%v", err)}
	case c == nil && s.d.State.Get(names.KeyCertARN) != "":
		return []engine.Check{engine.Failf("certificate", "remove "+names.KeyCertARN+" and apply", "%s %s does not exist", names.KeyCertARN, s.d.State.Get(names.KeyCertARN))}
	case c == nil:
		return []engine.Check{engine.Failf("certificate", applyHint, "no certificate for %s", s.domain())}
	}
	checks := []engine.Check{s.checkIssued(c), s.checkNames(c), s.checkExpiry(c), s.checkRegion(c)}
	if zone := s.d.Inputs.HostedZoneID(); zone != "" && c.owned {
		checks = append(checks, s.checkRecords(ctx, zone, c))
	}
	return checks
}

func (s *stage) checkIssued(c *cert) engine.Check {
	if c.Status != acmtypes.CertificateStatusIssued {
		return engine.Failf("issued", "create the validation CNAME records (coderctl stage acm apply prints them), then apply again",
			"certificate %s is %s", c.arn(), c.Status)
	}
	return engine.Passf("issued", "%s issued", c.arn())
}

func (s *stage) checkNames(c *cert) engine.Check {
	for _, n := range s.names() {
		if !covers(certNames(c), n) {
			return engine.Failf("names", "request a certificate for "+strings.Join(s.names(), " and "),
				"certificate covers %s, not %s", strings.Join(certNames(c), ", "), n)
		}
	}
	return engine.Passf("names", "covers %s", strings.Join(s.names(), " and "))
}

func (s *stage) checkExpiry(c *cert) engine.Check {
	if c.NotAfter == nil {
		if c.Status == acmtypes.CertificateStatusIssued {
			return engine.Warnf("expiry", "", "ACM reports no expiry date")
		}
		return engine.Failf("expiry", "wait for the certificate to be issued", "not issued yet, no validity period")
	}
	left := c.NotAfter.Sub(s.d.Clock())
	if left < minRemainingValidity {
		hint := "ACM renews certificates whose validation records still resolve: check the CNAME records"
		if !c.owned {
			hint = "renew or replace the certificate named by " + names.KeyCertARN
		}
		return engine.Failf("expiry", hint, "expires %s, in %s", c.NotAfter.UTC().Format(time.DateOnly), left.Round(time.Hour))
	}
	return engine.Passf("expiry", "valid until %s (%d days)", c.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
}

func (s *stage) checkRegion(c *cert) engine.Check {
	if r := certRegion(c.arn()); r != s.d.Region() {
		return engine.Failf("region", "the load balancer needs a certificate in "+s.d.Region(), "certificate is in %q", r)
	}
	return engine.Passf("region", "in %s, with the load balancer", s.d.Region())
}

// checkRecords warns when the validation records are gone: the certificate
// stays valid, but ACM cannot renew it.
func (s *stage) checkRecords(ctx context.Context, zone string, c *cert) engine.Check {
	recs := validationRecords(c)
	miss, err := s.missing(ctx, zone, recs)
	switch {
	case err != nil:
		return engine.Warnf("validation-records", "", "cannot read zone %s: %v", zone, err)
	case len(recs) == 0:
		return engine.Warnf("validation-records", "", "ACM lists no validation records for %s", c.arn())
	case len(miss) > 0:
		return engine.Warnf("validation-records", applyHint+" to recreate them",
			"%d of %d validation record(s) missing from zone %s: ACM cannot renew the certificate without them", len(miss), len(recs), zone)
	}
	return engine.Passf("validation-records", "%d record(s) in zone %s", len(recs), zone)
}
