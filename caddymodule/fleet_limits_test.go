package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// startProxiedGateway is startFleetGateway with the loopback address
// trusted as a proxy, so that a test picks each request's client address
// with X-Forwarded-For.
func startProxiedGateway(t *testing.T, upstream *httptest.Server, o fleetOptions) *fleetGateway {
	t.Helper()
	g := &fleetGateway{
		admin:    gatewaytest.FreePort(t),
		site:     gatewaytest.FreePort(t),
		upstream: strings.TrimPrefix(upstream.URL, "http://"),
	}
	plain := g.caddyfile(o)
	const anchor = "\tpersist_config off\n"
	cf := strings.Replace(plain, anchor, anchor+"\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}\n", 1)
	if cf == plain {
		t.Fatalf("the fleet Caddyfile has no line %q to add trusted_proxies after", anchor)
	}
	g.Gateway = gatewaytest.Start(t, cf)
	return g
}

// from is the header map of a request made from client address ip.
func from(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }

// TestFleetForgedKeysDoNotLockOutKey sends forged, well-formed wrong keys
// for a real Access ID from many client addresses, none of which reaches
// its own failure limit. The Access ID goes far over
// max_failures_per_key, yet its real, uncached credential must still be
// answered 200, every forged key 401 (never 429), and past the first
// failures the forged keys must cost Redis nothing: at most
// max_failures_per_key full lookups, one per request in flight, and a few
// reads of the record. A client address that keeps failing still gets 429,
// and a deactivation still applies at once.
func TestFleetForgedKeysDoNotLockOutKey(t *testing.T) {
	const (
		addresses  = 200
		perAddress = 10 // below max_failures_per_client (100)
		requests   = addresses * perAddress
		workers    = 16
		perKey     = 20  // max_failures_per_key (the default)
		perClient  = 100 // max_failures_per_client (the default)
	)
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetforged"}
	gw := startProxiedGateway(t, up, o)
	st := newFleetStore(rs.Client(t), o.prefix)
	c := st.viewerKey(t)
	client := fleetClient(t)

	var (
		counts  sync.Map // status -> *atomic.Int64
		next    atomic.Int64
		wg      sync.WaitGroup
		failure atomic.Value
	)
	count := func(status int) int64 {
		v, _ := counts.LoadOrStore(status, new(atomic.Int64))
		return v.(*atomic.Int64).Load()
	}
	getsBefore := rs.CommandCount(t, "get")
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				ip := fmt.Sprintf("10.1.%d.%d", i%addresses/250, i%addresses%250+1)
				r, err := send(client, http.MethodGet, gw.collectors(), &cred{c.id, keystore.NewAccessKey()}, from(ip))
				if err != nil {
					failure.CompareAndSwap(nil, err.Error())
					return
				}
				v, _ := counts.LoadOrStore(r.status, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
				if r.status != http.StatusUnauthorized {
					failure.CompareAndSwap(nil, fmt.Sprintf("forged key from %s: status %d, body %s", ip, r.status, r.body))
				}
			}
		}()
	}
	wg.Wait()
	gets := rs.CommandCount(t, "get") - getsBefore
	t.Logf("%d forged keys for one Access ID from %d addresses: %d × 401, %d × 429; Redis GETs %d",
		requests, addresses, count(http.StatusUnauthorized), count(http.StatusTooManyRequests), gets)
	if f := failure.Load(); f != nil {
		t.Errorf("want every forged key answered 401; first other outcome: %v", f)
	}
	// Full lookups until the Access ID reaches its failure limit, plus
	// those in flight at that moment; then one read of the record, again
	// after any invalidation message of the set-up that lands meanwhile.
	if bound := int64(perKey + 2*workers + 4); gets > bound {
		t.Errorf("the forged keys cost %d Redis GETs, want at most %d (max_failures_per_key %d + %d in flight + 4 record reads)", gets, bound, perKey, 2*workers)
	}

	// The real credential, never used before, from a fresh address.
	wantStatus(t, client, gw.collectors(), &c, from("10.2.0.1"), http.StatusOK)

	// A client address that keeps failing is still limited.
	for i := range perClient {
		r := mustSend(t, client, http.MethodGet, gw.collectors(), &cred{c.id, keystore.NewAccessKey()}, from("10.3.0.1"))
		if r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d of one address: status %d, want 401; body %s", i+1, r.status, r.body)
		}
	}
	r := mustSend(t, client, http.MethodGet, gw.collectors(), &cred{c.id, keystore.NewAccessKey()}, from("10.3.0.1"))
	if r.status != http.StatusTooManyRequests || r.code() != "rate.limit.exceeded" || r.header.Get("Retry-After") == "" {
		t.Errorf("failure %d of one address: status %d, code %q, Retry-After %q; want 429 rate.limit.exceeded with Retry-After",
			perClient+1, r.status, r.code(), r.header.Get("Retry-After"))
	}

	// A deactivation applies at once; forged keys still cost at most one
	// read of the record.
	disabled := true
	if _, err := st.UpdateKey(context.Background(), c.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
		t.Fatal(err)
	}
	pollStatus(t, client, gw.collectors(), &c, from("10.2.0.1"), http.StatusOK, http.StatusUnauthorized, time.Now(), 10*time.Second)
	before := rs.CommandCount(t, "get")
	for i := range 20 {
		wantStatus(t, client, gw.collectors(), &cred{c.id, keystore.NewAccessKey()}, from(fmt.Sprintf("10.4.0.%d", i+1)), http.StatusUnauthorized)
	}
	if reads := rs.CommandCount(t, "get") - before; reads > 1 {
		t.Errorf("20 forged keys after the deactivation cost %d Redis GETs, want at most 1", reads)
	}
}

// TestFleetLongClientTextCapped sends requests whose path (as long as
// Caddy's 16 KiB header limit allows) and Origin are far longer than
// 1 KiB: the audit events in the stream and in Caddy's log carry at most
// 1 KiB of each, cut on a rune boundary and marked with "…". (Caddy itself
// refuses methods longer than 32 bytes.)
func TestFleetLongClientTextCapped(t *testing.T) {
	const limit = 1024
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetlong"}
	gw := startFleetGateway(t, up, o)
	st := newFleetStore(rs.Client(t), o.prefix)
	c := st.viewerKey(t)
	client := fleetClient(t)
	ctx := context.Background()

	// About 15 KB of path, two-byte characters from an odd offset around
	// the cut, so that a cut at 1024 bytes would split one.
	longPath := "/api/v1/collectors/" + strings.Repeat("é", 600) + strings.Repeat("a", 14000)
	pathURL := gw.Base + (&url.URL{Path: longPath}).EscapedPath()
	longOrigin := "https://" + strings.Repeat("a", 3000) + ".example.com"

	type probe struct {
		name   string
		method string
		url    string
		cred   *cred
		hdr    map[string]string
		status int
		event  string
		fields map[string]string // details field -> full value sent
	}
	probes := []probe{
		{"long path, no credentials", http.MethodGet, pathURL, nil, nil, http.StatusUnauthorized, keystore.EventAuthFailed,
			map[string]string{"path": longPath}},
		{"long origin", http.MethodGet, gw.collectors(), &c, map[string]string{"Origin": longOrigin}, http.StatusForbidden, keystore.EventOriginRejected,
			map[string]string{"origin": longOrigin}},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			r := mustSend(t, client, p.method, p.url, p.cred, p.hdr)
			if r.status != p.status {
				t.Fatalf("status %d, want %d; body %.200s", r.status, p.status, r.body)
			}
			var a struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(r.body, &a); err != nil || a.ID == "" {
				t.Fatalf("body %.200s: no error id (%v)", r.body, err)
			}
			check := func(where string, details map[string]any) {
				t.Helper()
				for field, sent := range p.fields {
					got, _ := details[field].(string)
					switch {
					case len(got) > limit+len("…"):
						t.Errorf("%s: details.%s holds %d bytes, want at most %d + the marker", where, field, len(got), limit)
					case !strings.HasSuffix(got, "…"):
						t.Errorf("%s: details.%s = %.40q…, want it marked with … as cut", where, field, got)
					case !utf8.ValidString(got):
						t.Errorf("%s: details.%s is not valid UTF-8 after the cut", where, field)
					case !strings.HasPrefix(sent, strings.TrimSuffix(got, "…")) || len(got) < limit-utf8.UTFMax:
						t.Errorf("%s: details.%s = %.40q…, want the first %d bytes of what was sent", where, field, got, limit)
					}
				}
			}

			var ev *keystore.Event
			waitUntil(t, 10*time.Second, "the audit event of error id "+a.ID+" in the stream", func() bool {
				evs, err := st.Events(ctx, keystore.EventFilter{Name: p.event, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				for i := range evs {
					if evs[i].Details["errorId"] == a.ID {
						ev = &evs[i]
						return true
					}
				}
				return false
			})
			check("stream", ev.Details)

			var line string
			waitUntil(t, 10*time.Second, "the audit log line of error id "+a.ID, func() bool {
				for _, l := range strings.Split(gw.Logs(), "\n") {
					if strings.Contains(l, `"logger":"access_keys.audit"`) && strings.Contains(l, a.ID) {
						line = l
						return true
					}
				}
				return false
			})
			var logged struct {
				Details map[string]any `json:"details"`
			}
			if err := json.Unmarshal([]byte(line), &logged); err != nil {
				t.Fatalf("audit log line %.200s: %v", line, err)
			}
			check("log", logged.Details)
			if len(line) > 4*limit {
				t.Errorf("the audit log line holds %d bytes, want well under %d", len(line), 4*limit)
			}
		})
	}
}
