package provisioners_test

import (
	"context"
	"strings"
	"testing"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	double "github.com/coderctl/coderctl/internal/testenv/coderapi"
	"github.com/coderctl/coderctl/stages/coder"
)

// coderHealthCheck runs the coder stage's checkpoint and returns its
// coderd-health check, if any.
func coderHealthCheck(st engine.Stage) (engine.Check, bool) {
	for _, c := range st.Verify(context.Background()) {
		if c.Name == coder.CheckDebugHealth {
			return c, true
		}
	}
	return engine.Check{}, false
}

// TestCoderVerifyReadsDebugHealth: with a token, the coder stage's verify
// reads coderd's health report and names its sections that are not ok:
// an error fails, a warning, a dismissed section or the provisioner
// daemons (the provisioners stage's own check) warns; without a token
// there is no such check, and a member's token only warns.
func TestCoderVerifyReadsDebugHealth(t *testing.T) {
	w := newWorld(t, true)
	verify := func(token string) (engine.Check, bool) {
		st := coder.New(w.Deps.With(deploy.StageOptions{HelmCacheDir: w.HelmDir, LookupEnv: w.LookupEnv(token)}))
		return coderHealthCheck(st)
	}
	cases := []struct {
		name      string
		set       func(*double.Server)
		status    engine.CheckStatus
		mentions  []string
		forbidden []string
	}{
		{"no provisioner daemons yet", func(*double.Server) {}, engine.Warn,
			[]string{"ProvisionerDaemons error (EPD01: No active provisioner daemons found!)"}, nil},
		{"database down", func(s *double.Server) { s.SetHealth(double.HealthDatabase, "error", "EDB01", "ping database: timeout") },
			engine.Fail, []string{"Database error (EDB01: ping database: timeout)", "ProvisionerDaemons"}, nil},
		{"websocket warning", func(s *double.Server) { s.SetHealth(double.HealthWebsocket, "warning", "EWS03", "slow echo") },
			engine.Warn, []string{"Websocket warning (EWS03: slow echo)"}, []string{"Database"}},
		{"dismissed DERP error", func(s *double.Server) {
			s.SetHealth(double.HealthDERP, "error", "EDERP01", "node uses websocket")
			s.DismissHealth(double.HealthDERP)
		}, engine.Warn, []string{"DERP error (EDERP01: node uses websocket) [dismissed]"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := w.Coder
			for _, sec := range []string{double.HealthDatabase, double.HealthWebsocket, double.HealthDERP} {
				s.SetHealth(sec, "ok", "", "")
			}
			tc.set(s)
			c, ok := verify(s.Token())
			if !ok || c.Status != tc.status {
				t.Fatalf("coderd-health = %+v (present %v), want %s", c, ok, tc.status)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(c.Reason, m) {
					t.Errorf("reason %q does not mention %q", c.Reason, m)
				}
			}
			for _, m := range tc.forbidden {
				if strings.Contains(c.Reason, m) {
					t.Errorf("reason %q mentions %q, which is ok", c.Reason, m)
				}
			}
		})
	}
	t.Run("no token, no check", func(t *testing.T) {
		if c, ok := verify(""); ok {
			t.Errorf("coderd-health without a token = %+v, want no such check", c)
		}
	})
	t.Run("member token warns", func(t *testing.T) {
		if c, ok := verify(w.Coder.MemberToken()); !ok || c.Status != engine.Warn || !strings.Contains(c.Reason, "403") {
			t.Errorf("coderd-health with a member's token = %+v, want a warning that it may not read the report", c)
		}
	})
	t.Run("all ok once the provisioners connect", func(t *testing.T) {
		w.Coder.SetHealth(double.HealthDERP, "ok", "", "")
		apply(t, w, w.Coder.Token())
		if c, _ := verify(w.Coder.Token()); c.Status != engine.Pass {
			t.Errorf("coderd-health with 20 daemons connected = %+v, want pass", c)
		}
	})
}
