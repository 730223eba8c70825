package coderapi

import (
	"context"
	"net/http"
	"time"
)

// StaleInterval is how long after a daemon's last heartbeat coderd stops
// counting it as online: provisionerdserver.StaleInterval (90 s) in
// coderd/provisionerdserver/provisionerdserver.go of v2.36.1, which the
// provisionerdaemons route's status ("offline" past it) and the health
// report's provisioner section use. A connected daemon's last_seen_at is
// written every DefaultHeartbeatInterval (1 min, same file), so a live one
// is never older than that.
//
// The key-daemons route itself is laxer: it keeps a daemon listed for
// DefaultHeartbeatInterval*3 (enterprise/coderd/provisionerkeys.go), so a
// daemon whose pod a rollout replaced stays in its answer for up to three
// minutes. Counting that answer's length would count replaced daemons.
const StaleInterval = 90 * time.Second

// Daemon statuses (codersdk.ProvisionerDaemonStatus).
const (
	DaemonOffline = "offline"
	DaemonIdle    = "idle"
	DaemonBusy    = "busy"
)

// ProvisionerDaemon is codersdk.ProvisionerDaemon, the fields coderctl
// reads.
type ProvisionerDaemon struct {
	ID      string            `json:"id"`
	KeyID   string            `json:"key_id"`
	Name    string            `json:"name"`
	Version string            `json:"version"`
	Tags    map[string]string `json:"tags"`
	// LastSeenAt is codersdk.NullTime: null for a daemon never seen.
	LastSeenAt *time.Time `json:"last_seen_at"`
	// KeyName and Status are pointers in codersdk and only the
	// provisionerdaemons route fills them; the key-daemons route converts
	// rows with db2sdk.ProvisionerDaemon, which leaves both null.
	KeyName *string `json:"key_name"`
	Status  *string `json:"status"`
}

// Live reports whether coderd heard from the daemon within StaleInterval
// before at (the server's clock) and does not call it offline.
func (d ProvisionerDaemon) Live(at time.Time) bool {
	if d.Status != nil && *d.Status == DaemonOffline {
		return false
	}
	return d.LastSeenAt != nil && at.Sub(*d.LastSeenAt) <= StaleInterval
}

// KeyDaemons is codersdk.ProvisionerKeyDaemons: a key and the daemons
// connected with it.
type KeyDaemons struct {
	Key     ProvisionerKey      `json:"key"`
	Daemons []ProvisionerDaemon `json:"daemons"`
}

// ProvisionerKeyDaemons calls GET
// /api/v2/organizations/{org}/provisionerkeys/daemons and returns its
// answer with the server's clock at that moment. The answer includes the
// reserved keys (built-in, user-auth, psk) that the plain key list omits.
func (c *Client) ProvisionerKeyDaemons(ctx context.Context, org string) ([]KeyDaemons, time.Time, error) {
	var out []KeyDaemons
	at, err := c.doAt(ctx, http.MethodGet, keysPath(org)+"/daemons", nil, http.StatusOK, &out)
	return out, at, err
}

// KeyDaemonList is one key's daemons as coderd listed them, and the
// server's clock when it did.
type KeyDaemonList struct {
	// Key is nil when the organization has no key of that name.
	Key     *ProvisionerKey
	Daemons []ProvisionerDaemon
	At      time.Time
}

// Live is the daemons coderd heard from within StaleInterval.
func (l KeyDaemonList) Live() []ProvisionerDaemon { return l.filter(true) }

// Stale is the daemons still listed but not heard from within
// StaleInterval: typically the pods a rollout replaced.
func (l KeyDaemonList) Stale() []ProvisionerDaemon { return l.filter(false) }

func (l KeyDaemonList) filter(live bool) []ProvisionerDaemon {
	var out []ProvisionerDaemon
	for _, d := range l.Daemons {
		if d.Live(l.At) == live {
			out = append(out, d)
		}
	}
	return out
}

// DaemonsForKey returns the daemons listed under the named key.
func (c *Client) DaemonsForKey(ctx context.Context, org, name string) (KeyDaemonList, error) {
	all, at, err := c.ProvisionerKeyDaemons(ctx, org)
	if err != nil {
		return KeyDaemonList{}, err
	}
	for i := range all {
		if all[i].Key.Name == name {
			return KeyDaemonList{Key: &all[i].Key, Daemons: all[i].Daemons, At: at}, nil
		}
	}
	return KeyDaemonList{At: at}, nil
}
