package coderapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// daemonQuery is the provisionerdaemons route's query string: the
// parameters coderd/provisionerdaemons.go parses, with its defaults.
type daemonQuery struct {
	limit    int // 50 unless given; 0 means no limit
	ids      []string
	tags     map[string]string
	offline  bool
	statuses []string
	maxAge   time.Duration
}

// parseDaemonQuery parses like httpapi.QueryParamParser: each bad value,
// and each parameter the route does not know, is a validation error.
func parseDaemonQuery(v url.Values) (daemonQuery, []validationError) {
	q := daemonQuery{limit: 50}
	var problems []validationError
	bad := func(field, format string, args ...any) {
		problems = append(problems, validationError{Field: field, Detail: fmt.Sprintf(format, args...)})
	}
	for name := range v {
		raw := v.Get(name)
		switch name {
		case "limit":
			n, err := strconv.ParseInt(raw, 10, 32)
			if err != nil || n < 0 {
				bad(name, "Query param %q must be a valid 32-bit positive integer", name)
			}
			q.limit = int(n)
		case "ids":
			q.ids = splitList(raw)
		case "tags":
			if err := json.Unmarshal([]byte(raw), &q.tags); err != nil {
				bad(name, "Query param %q must be a valid JSON object: %s", name, err)
			}
		case "offline":
			b, err := strconv.ParseBool(raw)
			if err != nil {
				bad(name, "Query param %q must be a valid boolean", name)
			}
			q.offline = b
		case "status":
			q.statuses = splitList(raw)
		case "max_age":
			d, err := time.ParseDuration(raw)
			if err != nil {
				bad(name, "Query param %q must be a valid duration (e.g., '24h', '30m', '1h30m'): %s", name, err)
			}
			q.maxAge = d
		default:
			bad(name, "%q is not a valid query param", name)
		}
	}
	return q, problems
}

func splitList(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// apply is the WHERE, ORDER BY and LIMIT of
// GetProvisionerDaemonsWithStatusByOrganization
// (coderd/database/queries/provisionerdaemons.sql): online daemons always,
// offline ones only when asked for (offline=true or status=offline),
// newest first.
func (q daemonQuery) apply(s *Server, all []daemonRecord, now time.Time) []provisionerDaemon {
	sort.Slice(all, func(i, j int) bool { return all[i].createdAt.After(all[j].createdAt) })
	out := []provisionerDaemon{}
	for _, d := range all {
		if q.limit > 0 && len(out) == q.limit {
			break
		}
		if q.matches(d, now) {
			out = append(out, d.withStatus(s, now))
		}
	}
	return out
}

func (q daemonQuery) matches(d daemonRecord, now time.Time) bool {
	stale := now.Sub(d.lastSeen) > staleInterval
	wantOffline := q.offline || slices.Contains(q.statuses, "offline")
	switch {
	case stale && !wantOffline:
		return false
	case q.maxAge > 0 && now.Sub(d.lastSeen) > q.maxAge:
		return false
	case len(q.ids) > 0 && !slices.Contains(q.ids, d.id):
		return false
	case !hasTags(d.tags, q.tags):
		return false
	}
	// The double runs no jobs: every daemon is idle or offline.
	return len(q.statuses) == 0 || slices.Contains(q.statuses, "idle") || (stale && slices.Contains(q.statuses, "offline"))
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
