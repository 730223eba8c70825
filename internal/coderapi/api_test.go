package coderapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coderctl/coderctl/internal/coderapi"
	double "github.com/coderctl/coderctl/internal/testenv/coderapi"
)

func ptr[T any](v T) *T { return &v }

// TestDaemonLive: a daemon counts only when coderd heard from it within
// StaleInterval before the server's clock and does not call it offline.
func TestDaemonLive(t *testing.T) {
	at := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		seen   *time.Time
		status *string
		want   bool
	}{
		{"never seen (last_seen_at null)", nil, nil, false},
		{"heartbeat 59 s ago", ptr(at.Add(-59 * time.Second)), nil, true},
		{"exactly StaleInterval", ptr(at.Add(-coderapi.StaleInterval)), nil, true},
		{"just past StaleInterval", ptr(at.Add(-coderapi.StaleInterval - time.Second)), nil, false},
		{"listed for 3 min after its pod stopped", ptr(at.Add(-170 * time.Second)), nil, false},
		{"recent but reported offline", ptr(at.Add(-10 * time.Second)), ptr(coderapi.DaemonOffline), false},
		{"busy", ptr(at.Add(-10 * time.Second)), ptr(coderapi.DaemonBusy), true},
		{"seen after the answer's Date (clock skew)", ptr(at.Add(2 * time.Second)), ptr(coderapi.DaemonIdle), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := coderapi.ProvisionerDaemon{Name: "p", LastSeenAt: tc.seen, Status: tc.status}
			if got := d.Live(at); got != tc.want {
				t.Errorf("Live = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestKeyDaemonsAnswerDecodes: the key-daemons route answers with
// key_name, status and current_job null (db2sdk.ProvisionerDaemon), and
// last_seen_at null for a daemon never seen; Live and Stale split it.
func TestKeyDaemonsAnswerDecodes(t *testing.T) {
	const answer = `[{"key":{"id":"k1","created_at":"2026-12-05T02:00:00Z","organization":"o","name":"eks","tags":{"scope":"organization"}},
	"daemons":[
	 {"id":"a","organization_id":"o","key_id":"k1","created_at":"2026-12-05T02:00:00Z","last_seen_at":"2026-12-05T02:59:30Z","name":"new-1","version":"v2.36.1","api_version":"1.7","provisioners":null,"tags":{},"key_name":null,"status":null,"current_job":null,"previous_job":null},
	 {"id":"b","organization_id":"o","key_id":"k1","created_at":"2026-12-05T02:00:00Z","last_seen_at":"2026-12-05T02:57:30Z","name":"old-1","version":"v2.36.1","api_version":"1.7","provisioners":null,"tags":{},"key_name":null,"status":null,"current_job":null,"previous_job":null},
	 {"id":"c","organization_id":"o","key_id":"k1","created_at":"2026-12-05T02:00:00Z","last_seen_at":null,"name":"never","version":"","api_version":"","provisioners":null,"tags":{},"key_name":null,"status":null,"current_job":null,"previous_job":null}]}]`
	var all []coderapi.KeyDaemons
	if err := json.Unmarshal([]byte(answer), &all); err != nil {
		t.Fatal(err)
	}
	list := coderapi.KeyDaemonList{Key: &all[0].Key, Daemons: all[0].Daemons, At: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)}
	if live := names(list.Live()); live != "new-1" {
		t.Errorf("Live = %s, want new-1", live)
	}
	if stale := names(list.Stale()); stale != "old-1,never" {
		t.Errorf("Stale = %s, want old-1,never", stale)
	}
}

func names(ds []coderapi.ProvisionerDaemon) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return strings.Join(out, ",")
}

// TestDaemonsAreJudgedByTheServersClock: DaemonsForKey dates its answer by
// coderd's Date header, not this machine's clock.
func TestDaemonsAreJudgedByTheServersClock(t *testing.T) {
	s := double.Require(t, double.Options{Licensed: true})
	s.Advance(time.Hour)
	c := newClient(t, s, s.Token())
	list, err := c.DaemonsForKey(context.Background(), "default", "psk")
	if err != nil {
		t.Fatal(err)
	}
	if ahead := time.Until(list.At); ahead < 59*time.Minute {
		t.Errorf("answer dated %s, %s from now; want the server's clock, an hour ahead", list.At, ahead)
	}
	if list.Key == nil || list.Key.ID != "00000000-0000-0000-0000-000000000003" {
		t.Errorf("reserved key psk = %+v, want it listed with its fixed ID", list.Key)
	}
}

func TestSupportsProvisionerKeys(t *testing.T) {
	cases := []struct {
		version string
		want    bool
		err     bool
	}{
		{"2.15.0", false, false},
		{"2.15.9", false, false},
		{"2.16.0-rc.1", false, false},
		{"2.16.0", true, false},
		{"v2.16.0+abcdef0", true, false},
		{"2.36.1", true, false},
		{"3.0.0", true, false},
		{"2.16", false, true},
		{"latest", false, true},
	}
	for _, tc := range cases {
		got, err := coderapi.SupportsProvisionerKeys(tc.version)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("SupportsProvisionerKeys(%q) = %v, %v; want %v, error %v", tc.version, got, err, tc.want, tc.err)
		}
	}
}

// TestTokensByRole: what each user's token may do, as coderd answers it.
func TestTokensByRole(t *testing.T) {
	s := double.Require(t, double.Options{Licensed: true})
	ctx := context.Background()
	cases := []struct {
		name, token  string
		missing      string // MissingKeyRights, joined
		createRefuse bool   // CreateProvisionerKey is an RBAC refusal
		healthRefuse bool   // DebugHealth is forbidden
	}{
		{"owner", s.Token(), "", false, false},
		{"member", s.MemberToken(), "create,delete", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, s, tc.token)
			missing, err := c.MissingKeyRights(ctx, s.OrganizationID())
			if err != nil || strings.Join(missing, ",") != tc.missing {
				t.Errorf("MissingKeyRights = %v, %v; want %q", missing, err, tc.missing)
			}
			_, err = c.CreateProvisionerKey(ctx, s.OrganizationID(), "k-"+tc.name, nil)
			if coderapi.IsRBACRefusal(err) != tc.createRefuse {
				t.Errorf("CreateProvisionerKey err = %v, RBAC refusal want %v", err, tc.createRefuse)
			}
			_, err = c.DebugHealth(ctx)
			if coderapi.IsForbidden(err) != tc.healthRefuse {
				t.Errorf("DebugHealth err = %v, forbidden want %v", err, tc.healthRefuse)
			}
			if _, err := c.Entitlements(ctx); err != nil {
				t.Errorf("Entitlements: %v", err)
			}
		})
	}
	if _, err := newClient(t, s, "").Entitlements(ctx); err != nil {
		t.Errorf("Entitlements without a token: %v, want the answer (no auth needed)", err)
	}
}

// TestDebugHealthSections: each section by its healthsdk name, with its
// severity and summary.
func TestDebugHealthSections(t *testing.T) {
	s := double.Require(t, double.Options{Licensed: true})
	s.SetHealth(double.HealthDatabase, "error", "EDB01", "ping database: connection refused")
	s.SetHealth(double.HealthWebsocket, "warning", "EWS03", "slow echo")
	s.DismissHealth(double.HealthWebsocket)
	rep, err := newClient(t, s, s.Token()).DebugHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		level, summary string
		dismissed      bool
	}{
		coderapi.SectionDERP:               {"ok", "", false},
		coderapi.SectionAccessURL:          {"ok", "", false},
		coderapi.SectionWebsocket:          {"warning", "EWS03: slow echo", true},
		coderapi.SectionDatabase:           {"error", "EDB01: ping database: connection refused", false},
		coderapi.SectionWorkspaceProxy:     {"ok", "", false},
		coderapi.SectionProvisionerDaemons: {"error", "EPD01: No active provisioner daemons found!", false},
	}
	secs := rep.Sections()
	if len(secs) != len(want) {
		t.Fatalf("%d sections, want %d", len(secs), len(want))
	}
	for _, sec := range secs {
		w := want[sec.Name]
		if sec.Level() != w.level || sec.Summary() != w.summary || sec.Dismissed != w.dismissed {
			t.Errorf("%s = %s %q dismissed=%v, want %s %q dismissed=%v", sec.Name, sec.Level(), sec.Summary(), sec.Dismissed, w.level, w.summary, w.dismissed)
		}
	}
	if rep.Severity != "error" || !strings.HasPrefix(rep.CoderVersion, "v2.36.1") {
		t.Errorf("report severity %q version %q", rep.Severity, rep.CoderVersion)
	}
}

func TestHealthSectionLevelWithoutSeverity(t *testing.T) {
	cases := []struct {
		name string
		sec  coderapi.HealthSection
		want string
	}{
		{"severity given", coderapi.HealthSection{Severity: "warning"}, "warning"},
		{"older coderd: error only", coderapi.HealthSection{Error: ptr("boom")}, "error"},
		{"older coderd: nothing", coderapi.HealthSection{}, "ok"},
	}
	for _, tc := range cases {
		if got := tc.sec.Level(); got != tc.want {
			t.Errorf("%s: Level = %s, want %s", tc.name, got, tc.want)
		}
	}
}
