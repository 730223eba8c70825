package coder

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
)

// APIClient is a Coder API client for CODER_URL that trusts CODER_CA_FILE
// when it is set; token may be empty for the unauthenticated endpoints.
func APIClient(d *deploy.Deps, token string) (*coderapi.Client, error) {
	return coderapi.New(d.Inputs.CoderURL(), coderapi.Options{Token: token, CAFile: d.Inputs.Get(KeyCAFile)})
}

// IsDNSNotFound reports whether err is a DNS lookup that found no such
// host: the records for CODER_URL do not exist (yet).
func IsDNSNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// UnreachableHint says what to do when CODER_URL does not answer.
func UnreachableHint(d *deploy.Deps, err error) string {
	url := d.Inputs.CoderURL()
	switch {
	case IsDNSNotFound(err) && d.Inputs.HostedZoneID() == "":
		return fmt.Sprintf("create the DNS records printed by 'coderctl stage coder apply' (CODER_DOMAIN and *.CODER_DOMAIN to %s), then retry", valueOr(d.State.Get(KeyNLBHostname), "the NLB"))
	case IsDNSNotFound(err):
		return "the alias records in HOSTED_ZONE_ID are new: DNS may take a few minutes; check the zone is the one the domain's registrar delegates to"
	default:
		return fmt.Sprintf("check that the NLB's targets are healthy (coderd pods Ready) and that %s is reachable from here", url)
	}
}

func (s *stage) planHealthy(context.Context) ([]engine.Action, error) {
	return []engine.Action{{Kind: engine.Nothing, Resource: s.d.Inputs.CoderURL() + "/healthz", Reason: "waits until coderd answers through the NLB"}}, nil
}

// applyHealthy waits until GET CODER_URL/healthz answers 200 "OK" through
// DNS and the NLB. Without a hosted zone, missing DNS records leave the step
// pending (the user must create them) instead of failing.
func (s *stage) applyHealthy(ctx context.Context, r engine.Reporter) error {
	url := s.d.Inputs.CoderURL()
	client, err := APIClient(s.d, "")
	if err != nil {
		return err
	}
	var last error
	err = awsx.Poll(ctx, r, "GET "+url+"/healthz", s.d.Opts.Wait, healthTimeout, func(ctx context.Context) (bool, string, error) {
		h, err := client.Healthz(ctx)
		switch {
		case err != nil && IsDNSNotFound(err) && s.d.Inputs.HostedZoneID() == "":
			return false, "", engine.Pending("%s does not resolve: %s", url, UnreachableHint(s.d, err))
		case err != nil:
			last = err
			return false, "unreachable", nil
		case h.OK():
			return true, "200 OK", nil
		default:
			last = fmt.Errorf("GET /healthz answered %d %q", h.StatusCode, h.Body)
			return false, fmt.Sprint(h.StatusCode), nil
		}
	})
	if err == nil || engine.IsPending(err) || last == nil {
		return err
	}
	return fmt.Errorf("%w; last: %v (%s)", err, last, UnreachableHint(s.d, last))
}
