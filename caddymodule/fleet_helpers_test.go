package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/keystore"
)

// fleetOptions configure one gateway of a fleet test.
type fleetOptions struct {
	// redis is the argument list of the redis option (one URL, or the
	// URLs of a cluster's nodes); sentinel, when set, replaces it with
	// `redis_sentinel <sentinel>`.
	redis    []string
	sentinel string
	prefix   string
	cacheTTL string // default 15m
	grace    string // rotation_grace, default 2s
	// extra holds more lines for the access_keys global option.
	extra string
	// sites holds more site blocks, appended after the protected site.
	sites string
	// proxy holds more lines for the reverse_proxy block.
	proxy string
	// global holds more global options.
	global string
}

// fleetGateway is a real Caddy with the access_keys app and one protected
// site in front of an echoing upstream.
type fleetGateway struct {
	*gatewaytest.Gateway
	admin, site int
	upstream    string
}

const fleetCaddyfile = `{
	admin 127.0.0.1:%[1]d
	auto_https off
	persist_config off
	%[11]s
	access_keys {
		%[2]s
		key_prefix %[3]s
		cache_ttl %[4]s
		rotation_grace %[5]s
		sweep_interval 1h
		last_used_flush 1h
		%[6]s
	}
}

http://127.0.0.1:%[7]d {
	access_keys {
		realm "Fleet"
		scope viewCollectors GET /api/v1/collectors /api/v1/collectors/*
		scope runLogSearch * /api/v1/search/*
	}
	reverse_proxy %[8]s {
		%[10]s
	}
}
%[9]s
`

// caddyfile renders the gateway's Caddyfile for o.
func (g *fleetGateway) caddyfile(o fleetOptions) string {
	if o.cacheTTL == "" {
		o.cacheTTL = "15m"
	}
	if o.grace == "" {
		o.grace = "2s"
	}
	conn := "redis " + strings.Join(o.redis, " ")
	if o.sentinel != "" {
		conn = "redis_sentinel " + o.sentinel
	}
	return fmt.Sprintf(fleetCaddyfile, g.admin, conn, o.prefix, o.cacheTTL, o.grace, o.extra, g.site, g.upstream, o.sites, o.proxy, o.global)
}

// startFleetGateway starts a gateway in front of upstream.
func startFleetGateway(t *testing.T, upstream *httptest.Server, o fleetOptions) *fleetGateway {
	t.Helper()
	g := &fleetGateway{
		admin:    gatewaytest.FreePort(t),
		site:     gatewaytest.FreePort(t),
		upstream: strings.TrimPrefix(upstream.URL, "http://"),
	}
	g.Gateway = gatewaytest.Start(t, g.caddyfile(o))
	return g
}

// collectors is the URL of a route that needs viewCollectors.
func (g *fleetGateway) collectors() string { return g.Base + "/api/v1/collectors" }

// fleetClient is an HTTP client with keep-alive connections enough for
// the load loops of these tests.
func fleetClient(t testing.TB) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// fleetResult is a response read in full.
type fleetResult struct {
	status int
	header http.Header
	body   []byte
}

// code returns the code field of body A, or "".
func (r fleetResult) code() string {
	var a struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.body, &a)
	return a.Code
}

// send makes one request; an error is returned rather than reported, so
// that load goroutines can count it.
func send(client *http.Client, method, url string, c *cred, hdr map[string]string) (fleetResult, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return fleetResult{}, err
	}
	if c != nil {
		req.SetBasicAuth(c.id, c.secret)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fleetResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fleetResult{}, err
	}
	return fleetResult{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// mustSend is send that fails the test on a transport error.
func mustSend(t *testing.T, client *http.Client, method, url string, c *cred, hdr map[string]string) fleetResult {
	t.Helper()
	r, err := send(client, method, url, c, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// wantStatus fails the test unless a GET of url with c answers want.
func wantStatus(t *testing.T, client *http.Client, url string, c *cred, hdr map[string]string, want int) fleetResult {
	t.Helper()
	r := mustSend(t, client, http.MethodGet, url, c, hdr)
	if r.status != want {
		t.Fatalf("GET %s as %s: status %d, want %d; body %s", url, c.id, r.status, want, r.body)
	}
	return r
}

// pollInterval is how often the propagation tests ask again.
const pollInterval = 5 * time.Millisecond

// pollStatus asks GET url with c every 5 ms until it answers want, and
// returns the time since start. Statuses other than want and ok, or no
// answer by start+limit, fail the test.
func pollStatus(t *testing.T, client *http.Client, url string, c *cred, hdr map[string]string, ok, want int, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		r := mustSend(t, client, http.MethodGet, url, c, hdr)
		if r.status == want {
			return time.Since(start)
		}
		if r.status != ok {
			t.Fatalf("GET %s as %s: status %d while waiting for %d; body %s", url, c.id, r.status, want, r.body)
		}
		if time.Since(start) > limit {
			t.Fatalf("GET %s as %s: still %d %v after the change, want %d within %v", url, c.id, r.status, time.Since(start).Round(time.Millisecond), want, limit)
		}
		time.Sleep(pollInterval)
	}
}

// waitUntil polls cond every 20 ms until it holds, failing the test after
// timeout, and returns how long it took.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s did not happen within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// redisCounter reads a command counter of the Redis a gateway uses.
type redisCounter interface {
	CommandCount(t testing.TB, cmd string) int64
}

// assertCached makes a request that must be answered 200 without any
// Redis GET: proof that the gateway holds the credential in its cache.
func assertCached(t *testing.T, rc redisCounter, client *http.Client, url string, c *cred, hdr map[string]string) {
	t.Helper()
	// Invalidation messages of the set-up (role, user, key) arrive
	// asynchronously and may drop an entry cached just before; once they
	// have landed, a request must be answered from the cache.
	var made int64
	for range 20 {
		before := rc.CommandCount(t, "get")
		wantStatus(t, client, url, c, hdr, http.StatusOK)
		if made = rc.CommandCount(t, "get") - before; made == 0 {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("GET %s as %s still made %d Redis GETs after 20 tries; the credential is not cached", url, c.id, made)
}

// fleetStore is a store with the test's operator, on any Redis client.
type fleetStore struct {
	*keystore.Store
}

func newFleetStore(rdb redis.UniversalClient, prefix string) fleetStore {
	return fleetStore{keystore.New(rdb, keystore.Options{Prefix: prefix, RotationGrace: 2 * time.Second})}
}

// viewer creates the role viewer (viewCollectors) and its user u1.
func (s fleetStore) viewer(t *testing.T) {
	t.Helper()
	s.role(t, "viewer", "viewCollectors")
	s.user(t, "u1", "viewer")
}

// viewerKey creates viewer and u1, and a Default-scope key of u1.
func (s fleetStore) viewerKey(t *testing.T) cred {
	t.Helper()
	s.viewer(t)
	return s.key(t, keystore.KeySpec{OwnerID: "u1"})
}

// role creates or replaces a role.
func (s fleetStore) role(t *testing.T, id string, caps ...string) {
	t.Helper()
	if _, err := s.PutRole(context.Background(), keystore.Role{ID: id, Capabilities: caps}, "test"); err != nil {
		t.Fatal(err)
	}
}

// user creates or replaces an active user with the given roles.
func (s fleetStore) user(t *testing.T, id string, roles ...string) {
	t.Helper()
	o := keystore.Owner{ID: id, Kind: keystore.OwnerUser, Email: id + "@example.com", RoleIDs: roles, IsActive: true}
	if _, err := s.PutOwner(context.Background(), o, "test"); err != nil {
		t.Fatal(err)
	}
}

// key creates a key for spec.OwnerID.
func (s fleetStore) key(t *testing.T, spec keystore.KeySpec) cred {
	t.Helper()
	if spec.Label == "" {
		spec.Label = "fleet key"
	}
	k, secret, err := s.CreateKey(context.Background(), spec, testOp)
	if err != nil {
		t.Fatal(err)
	}
	return cred{k.ID, secret}
}

// metricsText fetches the Prometheus text of a gateway's admin /metrics.
func metricsText(t *testing.T, g *fleetGateway) string {
	t.Helper()
	resp, err := http.Get("http://" + g.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET admin /metrics: %s: %s", resp.Status, body)
	}
	return string(body)
}

// metricValue returns the value of the sample whose name and labels are
// exactly series (such as `x_total{outcome="a"}`), and whether it exists.
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%g", &v); err == nil {
			return v, true
		}
	}
	return 0, false
}

// isBodyA reports whether body is body A with the given status and code.
func isBodyA(body []byte, status int, code string) bool {
	var a map[string]any
	if json.Unmarshal(body, &a) != nil || len(a) != 4 {
		return false
	}
	id, _ := a["id"].(string)
	return a["status"] == float64(status) && a["code"] == code && errorIDPattern.MatchString(id) && bytes.Contains(body, []byte(`"message"`))
}

// wakeMessage is an invalidation message for an Access ID that no key
// has: it wakes a gateway's subscriber and drops nothing.
const wakeMessage = "key:su000000000000"

// wakeWhile runs fn and, if it has not returned after patience, publishes
// wakeMessage every 50 ms until it does, so that a gateway whose shutdown
// waits for its invalidation subscriber to read a message fails the test
// at once instead of waiting for the subscriber's 30 s receive timeout.
// It returns how long fn took and whether it needed waking. fn runs on
// the calling goroutine, so it may fail the test.
func wakeWhile(st fleetStore, patience time.Duration, fn func()) (took time.Duration, woken bool) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var wakes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			return
		case <-time.After(patience):
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = st.Client().Publish(ctx, st.InvalidationChannel(), wakeMessage).Err()
			cancel()
			wakes.Add(1)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		close(done)
		wg.Wait()
	}()
	fn()
	return time.Since(start), time.Since(start) >= patience && wakes.Load() > 0
}
