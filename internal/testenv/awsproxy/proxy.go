// Package awsproxy is the slow and faulty AWS of the proving ground: a
// loopback HTTP proxy between coderctl and moto that keeps created resources
// in their in-progress status for a profile's durations (moto makes
// everything ready at once), injects throttling, 5xx answers and dropped
// connections at seeded rates, and counts calls per operation. Tests and
// benchmarks point AWS_ENDPOINT_URL at it.
package awsproxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Proxy is a running slow-and-faulty AWS proxy.
type Proxy struct {
	URL string

	upstream string
	profile  Profile
	client   *http.Client
	srv      *http.Server
	ln       net.Listener
	rules    []resourceRule

	mu        sync.Mutex
	rng       *rand.Rand
	calls     map[string]int
	seen      map[string]bool // "service:Operation" since Start, kept by ResetCounts
	reads     map[string]bool // operation -> only reads
	faults    map[string]int
	created   map[string]time.Time // kind/id -> create call time
	deleted   map[string]time.Time // kind/id -> delete call time
	cached    map[string][]byte    // kind/id -> last describe body
	readySeen map[string]time.Time // kind/id -> first describe that showed it ready
}

// Start listens on a free loopback port and forwards to upstream (moto).
func Start(upstream string, p Profile) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	px := &Proxy{URL: "http://" + ln.Addr().String(), upstream: strings.TrimRight(upstream, "/"), profile: p,
		client: &http.Client{Timeout: 2 * time.Minute}, ln: ln, rules: rules(),
		rng: rand.New(rand.NewSource(p.Seed)), calls: map[string]int{}, seen: map[string]bool{}, reads: map[string]bool{}, faults: map[string]int{},
		created: map[string]time.Time{}, deleted: map[string]time.Time{}, cached: map[string][]byte{}, readySeen: map[string]time.Time{}}
	px.srv = &http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = px.srv.Serve(ln) }()
	return px, nil
}

// Stop closes the listener.
func (px *Proxy) Stop() { _ = px.srv.Close() }

// SetProfile changes durations and fault rates from now on.
func (px *Proxy) SetProfile(p Profile) {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.profile = p
}

// ServeHTTP implements http.Handler.
func (px *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	op := identify(r, body)
	fault := px.record(op)
	switch fault {
	case "throttle":
		writeThrottle(w, op)
		return
	case "5xx":
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case "drop":
		hangUp(w)
		return
	}
	status, header, respBody, err := px.forward(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if fault == "drop-after" {
		hangUp(w)
		return
	}
	status, respBody = px.shape(op, r.URL.Path, body, status, respBody)
	for k, vs := range header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
}

// record counts the call and draws its fault, if any.
func (px *Proxy) record(op Operation) string {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.calls[op.String()]++
	px.seen[op.Service+":"+op.Name] = true
	px.reads[op.String()] = op.IsRead()
	p := px.profile
	if p.FaultMutationsOnly && op.IsRead() {
		return ""
	}
	x := px.rng.Float64()
	for _, f := range []struct {
		name string
		rate float64
	}{{"throttle", p.Throttle}, {"5xx", p.ServerError}, {"drop", p.Drop}, {"drop-after", p.DropAfter}} {
		if x < f.rate {
			px.faults[f.name]++
			return f.name
		}
		x -= f.rate
	}
	return ""
}

func (px *Proxy) forward(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, px.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header = r.Header.Clone()
	resp, err := px.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// shape applies the resource rules: records creates and deletes, and makes
// describes show in-progress statuses until the profile's durations pass.
func (px *Proxy) shape(op Operation, urlPath string, req []byte, status int, resp []byte) (int, []byte) {
	path := strings.Split(strings.Trim(urlPath, "/"), "/")
	now := time.Now()
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, rule := range px.rules {
		switch op.Name {
		case rule.create:
			if status < 300 && rule.createdID != nil {
				if id := rule.createdID(op, req, resp, path); id != "" {
					key := string(rule.kind) + "/" + id
					if _, seen := px.created[key]; !seen {
						px.created[key] = now
					}
					// The create answer itself must say in progress, as AWS's
					// does: moto's says ACTIVE, and a client may trust it.
					if now.Before(px.created[key].Add(px.profile.Create[rule.kind])) {
						resp = rule.rewrite(resp, id, rule.creating)
					}
				}
			}
		case rule.delete:
			if rule.deletedID != nil {
				if id := rule.deletedID(op, req, path); id != "" {
					key := string(rule.kind) + "/" + id
					if _, seen := px.deleted[key]; !seen && status < 300 {
						px.deleted[key] = now
					}
				}
			}
		case rule.describe:
			status, resp = px.shapeDescribe(rule, op, path, status, resp, now)
		}
	}
	return status, resp
}

func (px *Proxy) shapeDescribe(rule resourceRule, op Operation, path []string, status int, resp []byte, now time.Time) (int, []byte) {
	var ids []string
	if rule.describedIDs != nil {
		ids = rule.describedIDs(op, path)
	}
	// A resource being deleted that moto already forgot: answer with its
	// last description, in the deleting status, until the duration passes.
	if status >= 400 && rule.notFoundOnClear {
		for _, id := range ids {
			key := string(rule.kind) + "/" + id
			if t, ok := px.deleted[key]; ok && now.Before(t.Add(px.profile.Delete[rule.kind])) && px.cached[key] != nil {
				return http.StatusOK, rule.rewrite(px.cached[key], id, rule.gone)
			}
		}
		return status, resp
	}
	if status >= 300 {
		return status, resp
	}
	for _, id := range ids {
		if id != "" {
			px.cached[string(rule.kind)+"/"+id] = resp
		}
	}
	prefix := string(rule.kind) + "/"
	for key, t := range px.created {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		id := strings.TrimPrefix(key, prefix)
		if !bytes.Contains(resp, []byte(lastSegment(id))) {
			continue
		}
		if ready := t.Add(px.profile.Create[rule.kind]); now.Before(ready) {
			resp = rule.rewrite(resp, id, rule.creating)
		} else if _, seen := px.readySeen[key]; !seen {
			px.readySeen[key] = now
		}
	}
	for key, t := range px.deleted {
		if !strings.HasPrefix(key, prefix) || rule.gone == "" || rule.notFoundOnClear {
			continue
		}
		id := strings.TrimPrefix(key, prefix)
		if now.Before(t.Add(px.profile.Delete[rule.kind])) {
			resp = rule.rewrite(resp, id, rule.gone)
		}
	}
	return status, resp
}

func lastSegment(id string) string { return id[strings.LastIndexByte(id, '/')+1:] }

// writeThrottle answers in the protocol the client speaks, with the codes
// the AWS SDK's retryer treats as throttling.
func writeThrottle(w http.ResponseWriter, op Operation) {
	switch {
	case op.REST && op.Service == "eks":
		w.Header().Set("X-Amzn-Errortype", "ThrottlingException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"message":"Rate exceeded"}`)
	case op.REST:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId></ErrorResponse>`)
	case op.Form == nil:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
	case op.Service == "ec2":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>proxy</RequestID></Response>`)
	default:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId></ErrorResponse>`)
	}
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Counts are the calls seen, per "service.Operation".
type Counts struct {
	Reads, Mutations map[string]int
	Faults           map[string]int
}

// TotalMutations sums the mutating calls.
func (c Counts) TotalMutations() int { return sum(c.Mutations) }

// TotalReads sums the reading calls.
func (c Counts) TotalReads() int { return sum(c.Reads) }

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// MutationNames lists mutating operations, sorted, for messages.
func (c Counts) MutationNames() []string {
	var out []string
	for k, v := range c.Mutations {
		out = append(out, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(out)
	return out
}

// Counts returns the calls seen so far.
func (px *Proxy) Counts() Counts {
	px.mu.Lock()
	defer px.mu.Unlock()
	c := Counts{Reads: map[string]int{}, Mutations: map[string]int{}, Faults: map[string]int{}}
	for k, v := range px.calls {
		if px.reads[k] {
			c.Reads[k] = v
		} else {
			c.Mutations[k] = v
		}
	}
	for k, v := range px.faults {
		c.Faults[k] = v
	}
	return c
}

// ResetCounts forgets the calls and faults seen so far.
func (px *Proxy) ResetCounts() {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.calls, px.faults = map[string]int{}, map[string]int{}
}

// Operations lists, sorted, every operation a client called through the
// proxy since it started (or since ForgetOperations) as "service:Operation":
// the SigV4 signing name, which is the IAM action prefix of every service
// coderctl calls (ec2, eks, iam, elasticloadbalancing, logs, ...), and the
// SDK's operation name. Throttled and dropped calls count: the client made
// them, so its identity needs the permission. ResetCounts leaves this
// record alone, so a test that resets counts between runs (the lifecycle's
// "second up changes nothing") does not erase what an IAM check needs.
func (px *Proxy) Operations() []string {
	px.mu.Lock()
	defer px.mu.Unlock()
	out := make([]string, 0, len(px.seen))
	for k := range px.seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ForgetOperations empties the record Operations reads.
func (px *Proxy) ForgetOperations() {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.seen = map[string]bool{}
}

// Readiness says, for each slowed resource, when the proxy let it become
// ready and when a client first saw it ready: the gap is the client's
// polling overhead.
type Readiness struct {
	Key     string
	Ready   time.Time
	Seen    time.Time
	Waiting time.Duration // from create call to ready
}

// Readiness lists every resource seen ready so far.
func (px *Proxy) Readiness() []Readiness {
	px.mu.Lock()
	defer px.mu.Unlock()
	var out []Readiness
	for key, seen := range px.readySeen {
		kind := Kind(key[:strings.IndexByte(key, '/')])
		d := px.profile.Create[kind]
		out = append(out, Readiness{Key: key, Ready: px.created[key].Add(d), Seen: seen, Waiting: d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
