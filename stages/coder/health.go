package coder

import (
	"context"
	"fmt"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/coderapi"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

func (s *stage) planHealthy(context.Context) ([]engine.Action, error) {
	return []engine.Action{{Kind: engine.Nothing, Resource: s.d.Inputs.CoderURL() + "/healthz", Reason: "waits until coderd answers through the NLB"}}, nil
}

// applyHealthy waits until GET CODER_URL/healthz answers 200 "OK" through
// DNS and the NLB. Without a hosted zone, missing DNS records leave the step
// pending (the user must create them) instead of failing.
func (s *stage) applyHealthy(ctx context.Context, r engine.Reporter) error {
	url := s.d.Inputs.CoderURL()
	client, err := coderapi.ForInputs(s.d.Inputs, "")
	if err != nil {
		return err
	}
	var last error
	err = awsx.Poll(ctx, r, "GET "+url+"/healthz", s.d.Opts.Wait, healthTimeout, func(ctx context.Context) (bool, string, error) {
		h, err := client.Healthz(ctx)
		switch {
		case err != nil && coderapi.IsDNSNotFound(err) && s.d.Inputs.HostedZoneID() == "":
			return false, "", engine.Pending("%s does not resolve: %s", url, s.unreachableHint(err))
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
	return fmt.Errorf("%w; last: %v (%s)", err, last, s.unreachableHint(last))
}

// unreachableHint says what to do when CODER_URL does not answer.
func (s *stage) unreachableHint(err error) string {
	return coderapi.UnreachableHint(s.d.Inputs, s.d.State.Get(names.KeyNLBHostname), err)
}
