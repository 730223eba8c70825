package coderapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"maps"
	"strings"
	"time"
)

const maxKeyNameLength = 64

// keySecretLength is coderd's provisioner key length: secretLength (43) in
// coderd/provisionerkey/provisionerkey.go, drawn from cryptorand.Default
// (digits and ASCII letters) by apikey.GenerateSecret, stored as its
// SHA-256.
const keySecretLength = 43

// provisionerKey is a key as coderd stores it: the secret only as a hash,
// so it cannot be listed again after creation.
type provisionerKey struct {
	id        string
	name      string
	tags      map[string]string
	createdAt time.Time
	orgID     string
	hash      [sha256.Size]byte
	reserved  bool // built-in, user-auth, psk: no secret, never matches one
}

// The reserved keys coderd's migrations insert for the default
// organization (codersdk/provisionerdaemons.go): daemons that authenticate
// otherwise than with a key are filed under them. The plain key list
// leaves them out (ListProvisionerKeysByOrganizationExcludeReserved); the
// key-daemons list includes them (enterprise/coderd/provisionerkeys.go).
var reservedKeyNames = []struct{ id, name string }{
	{"00000000-0000-0000-0000-000000000001", "built-in"},
	{"00000000-0000-0000-0000-000000000002", "user-auth"},
	{"00000000-0000-0000-0000-000000000003", "psk"},
}

func reservedKeys(created time.Time, orgID string) []*provisionerKey {
	var out []*provisionerKey
	for _, r := range reservedKeyNames {
		out = append(out, &provisionerKey{id: r.id, name: r.name, tags: map[string]string{}, createdAt: created, orgID: orgID, reserved: true})
	}
	return out
}

func (k *provisionerKey) public() provisionerKeyJSON {
	return provisionerKeyJSON{
		ID:             k.id,
		CreatedAt:      k.createdAt,
		OrganizationID: k.orgID,
		Name:           k.name,
		Tags:           maps.Clone(k.tags),
	}
}

// matches reports whether secret is this key's secret.
func (k *provisionerKey) matches(secret string) bool {
	if k.reserved {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], k.hash[:]) == 1
}

// validateKeyName returns coderd's message for a bad name, or "".
func validateKeyName(name string) string {
	switch {
	case name == "":
		return "Name is required"
	case len(name) > maxKeyNameLength:
		return fmt.Sprintf("Name must be at most %d characters", maxKeyNameLength)
	}
	for _, reserved := range reservedKeyNames {
		if strings.EqualFold(name, reserved.name) {
			return fmt.Sprintf("Name cannot be reserved name '%s'", name)
		}
	}
	return ""
}

// addKey stores a new key and returns its secret; false when the name is
// already taken in the organization (coderd's unique index on
// organization and name).
func (s *Server) addKey(name string, tags map[string]string, now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.name == name {
			return "", false
		}
	}
	secret := randomString(keySecretLength)
	if tags == nil {
		tags = map[string]string{}
	}
	s.keys = append(s.keys, &provisionerKey{
		id:        newID(),
		name:      name,
		tags:      maps.Clone(tags),
		createdAt: now,
		orgID:     s.org.ID,
		hash:      sha256.Sum256([]byte(secret)),
	})
	return secret, true
}

// findKey returns the named key, reserved ones included, or nil.
func (s *Server) findKey(name string) *provisionerKey {
	for _, k := range s.keySnapshot() {
		if k.name == name {
			return k
		}
	}
	return nil
}

// removeKey deletes the named key and, as the database's ON DELETE CASCADE
// from provisioner_daemons.key_id does, the daemons registered with it.
func (s *Server) removeKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.keys {
		if k.id == id {
			s.keys = append(s.keys[:i], s.keys[i+1:]...)
			break
		}
	}
	for name, d := range s.daemons {
		if d.keyID == id {
			delete(s.daemons, name)
		}
	}
}

// keySnapshot copies the key list so handlers work without the lock.
func (s *Server) keySnapshot() []*provisionerKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*provisionerKey(nil), s.keys...)
}

// keyFor returns the key whose secret this is, or nil.
func (s *Server) keyFor(secret string) *provisionerKey {
	for _, k := range s.keySnapshot() {
		if k.matches(secret) {
			return k
		}
	}
	return nil
}
