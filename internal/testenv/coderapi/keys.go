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

// provisionerKey is a key as coderd stores it: the secret only as a hash,
// so it cannot be listed again after creation.
type provisionerKey struct {
	id        string
	name      string
	tags      map[string]string
	createdAt time.Time
	orgID     string
	hash      [sha256.Size]byte
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
	// coderd's built-in keys; their names cannot be taken.
	for _, reserved := range []string{"built-in", "user-auth", "psk"} {
		if strings.EqualFold(name, reserved) {
			return fmt.Sprintf("Name cannot be reserved name '%s'", name)
		}
	}
	return ""
}

// addKey stores a new key and returns its secret; false when the name is
// already taken in the organization.
func (s *Server) addKey(name string, tags map[string]string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.name == name {
			return "", false
		}
	}
	secret := randomString(32)
	if tags == nil {
		tags = map[string]string{}
	}
	s.keys = append(s.keys, &provisionerKey{
		id:        newID(),
		name:      name,
		tags:      maps.Clone(tags),
		createdAt: time.Now().UTC(),
		orgID:     s.org.ID,
		hash:      sha256.Sum256([]byte(secret)),
	})
	return secret, true
}

// removeKey deletes the named key; false when there is none.
func (s *Server) removeKey(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.keys {
		if k.name == name {
			s.keys = append(s.keys[:i], s.keys[i+1:]...)
			return true
		}
	}
	return false
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
