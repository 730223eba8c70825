package acm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acm"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

func assertInputError(t *testing.T, err error, field string, mentions ...string) {
	t.Helper()
	var ie *fault.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("want an InputError naming %s, got %v", field, err)
	}
	if ie.Field != field {
		t.Errorf("InputError names %q, want %q: %v", ie.Field, field, err)
	}
	if fault.ExitCode(err) != 2 {
		t.Errorf("exit code %d, want 2", fault.ExitCode(err))
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%q does not mention %q", err, m)
		}
	}
}

// TestBadDomainBothLayers: internal/config refuses a domain that is not a
// bare DNS name when it resolves the inputs, and the stage's Validator
// refuses it again on its own; both as bad input naming CODER_DOMAIN.
func TestBadDomainBothLayers(t *testing.T) {
	cluster, err := config.LoadCluster(stagetest.ClusterConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ value, mention string }{
		{"https://coder.example.com", "URL"},
		{"*.coder.example.com", "wildcard"},
		{"coder", "single label"},
		{"coder.example.com:443", "port"},
		{"coder.example.com/app", "path"},
		{"coder example.com", "spaces"},
		{"coder_1.example.com", "invalid label"},
		{"10.0.0.1", "not a DNS name"},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			_, err := config.ResolveInputs("coder-infra.env", map[string]string{config.KeyDomain: tc.value}, nil, cluster, "cluster-config.yaml")
			assertInputError(t, err, config.KeyDomain, tc.mention)
			assertInputError(t, checkDomain("coder-infra.env", tc.value), config.KeyDomain, tc.mention)
		})
	}
	if err := checkDomain("coder-infra.env", "Coder.Example.com."); err == nil {
		t.Error("the stage accepted a domain internal/config would have rewritten")
	}
	if err := checkDomain("coder-infra.env", testDomain); err != nil {
		t.Errorf("good domain refused: %v", err)
	}
}

// TestValidatorRefuses runs ValidateAll, as the CLI does before a run, on
// inputs only AWS can judge: each is bad input naming the key, and nothing
// is changed.
func TestValidatorRefuses(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		prepare func(*testing.T, *world)
		field   string
		mention string
	}{
		{"zone of another domain", func(t *testing.T, w *world) {
			w.setInput(t, config.KeyHostedZoneID, createZone(t, w.Deps.AWS.Route53, "other.org", false))
		}, config.KeyHostedZoneID, "cannot hold records for coder.example.com"},
		{"zone of a sibling", func(t *testing.T, w *world) {
			w.setInput(t, config.KeyHostedZoneID, createZone(t, w.Deps.AWS.Route53, "dev.example.com", false))
		}, config.KeyHostedZoneID, "cannot hold records"},
		{"zone that does not exist", func(t *testing.T, w *world) {
			w.setInput(t, config.KeyHostedZoneID, "ZNOSUCHZONE0123456789")
		}, config.KeyHostedZoneID, "does not exist"},
		{"private zone", func(t *testing.T, w *world) {
			w.setInput(t, config.KeyHostedZoneID, createZone(t, w.Deps.AWS.Route53, "example.com", true))
		}, config.KeyHostedZoneID, "private"},
		{"CERT_ARN not an ACM ARN", func(t *testing.T, w *world) {
			w.setInput(t, names.KeyCertARN, "arn:aws:s3:::my-bucket")
		}, names.KeyCertARN, "not an ACM certificate ARN"},
		{"CERT_ARN in another region", func(t *testing.T, w *world) {
			east := acm.NewFromConfig(w.Deps.AWS.Config, func(o *acm.Options) { o.Region = "us-east-1" })
			w.setInput(t, names.KeyCertARN, requestForeign(t, east, testDomain, "*."+testDomain))
		}, names.KeyCertARN, "us-east-1"},
		{"CERT_ARN that does not exist", func(t *testing.T, w *world) {
			w.setInput(t, names.KeyCertARN, "arn:aws:acm:us-west-2:123456789012:certificate/00000000-0000-0000-0000-000000000000")
		}, names.KeyCertARN, "does not exist"},
		{"CERT_ARN without the wildcard", func(t *testing.T, w *world) {
			w.setInput(t, names.KeyCertARN, requestForeign(t, w.Deps.AWS.ACM, testDomain))
		}, names.KeyCertARN, "not *.coder.example.com"},
	}
	w := newWorld(t, "")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer w.unsetInputs(t, config.KeyHostedZoneID, names.KeyCertARN)
			tc.prepare(t, w)
			g, err := engine.NewGraph(w.stages())
			if err != nil {
				t.Fatal(err)
			}
			w.Calls.Reset()
			err = g.ValidateAll(ctx, []string{Name}, nil)
			assertInputError(t, err, tc.field, tc.mention)
			if m := w.Calls.Mutations(); len(m) != 0 {
				t.Errorf("validation made mutating calls: %v", m)
			}
		})
	}
}

func TestValidatorAccepts(t *testing.T) {
	w := newWorld(t, "")
	for _, zone := range []string{"", "example.com", "coder.example.com"} {
		t.Run("zone "+zone, func(t *testing.T) {
			defer w.unsetInputs(t, config.KeyHostedZoneID)
			if zone != "" {
				w.setInput(t, config.KeyHostedZoneID, createZone(t, w.Deps.AWS.Route53, zone, false))
			}
			g, err := engine.NewGraph(w.stages())
			if err != nil {
				t.Fatal(err)
			}
			if err := g.ValidateAll(context.Background(), []string{Name}, nil); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

func (w *world) unsetInputs(t *testing.T, keys ...string) {
	t.Helper()
	if err := w.Deps.State.Unset(keys...); err != nil {
		t.Fatal(err)
	}
	w.Reload(t)
}
