package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
	"github.com/accessgate/accessgate/usage"
)

// statusUpstream answers the status named by the last path segment
// (/api/v1/collectors/302 answers 302), and 200 otherwise.
func statusUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
		if err != nil || code < 200 || code > 599 {
			code = http.StatusOK
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d\n", code)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// usageClient is a client that does not follow redirects.
func usageClient(t *testing.T) *http.Client {
	c := fleetClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// usageEnv is a redis-server, the store of the test's prefix and the
// upstream of the usage tests.
type usageEnv struct {
	redis    *redistest.Server
	st       fleetStore
	usage    *usage.Store
	upstream *httptest.Server
	prefix   string
	start    time.Time
}

func newUsageEnv(t *testing.T, redisArgs ...string) *usageEnv {
	t.Helper()
	e := &usageEnv{redis: redistest.Start(t, redisArgs...), upstream: statusUpstream(t), prefix: "agusage", start: time.Now()}
	rdb := e.redis.Client(t)
	e.st = newFleetStore(rdb, e.prefix)
	e.usage = usage.NewStore(rdb, e.prefix)
	e.st.viewer(t)
	return e
}

// gateway starts a gateway writing usage counts every flush.
func (e *usageEnv) gateway(t *testing.T, flush string) *fleetGateway {
	t.Helper()
	return startFleetGateway(t, e.upstream, fleetOptions{
		redis: []string{e.redis.URL()}, prefix: e.prefix, extra: "usage_flush " + flush,
	})
}

// bucketTotals is the sum of the buckets of `caddy access-keys usage
// --json`, by the JSON names of CONTRACT §9.
type bucketTotals struct {
	Requests, Allowed, Unauthorized, Forbidden, RateLimited int64
	Status2xx, Status3xx, Status4xx, Status5xx              int64
}

func jsonCounts(c usage.Counts) bucketTotals {
	return bucketTotals{c.Requests(), c.Allowed(), c[usage.Unauthorized], c[usage.Forbidden], c[usage.RateLimited],
		c[usage.Status2xx], c[usage.Status3xx], c[usage.Status4xx], c[usage.Status5xx]}
}

// cliUsage runs the built binary's `access-keys usage ID --json` on the
// test's Redis and sums its minute buckets.
func (e *usageEnv) cliUsage(t *testing.T, id string) bucketTotals {
	t.Helper()
	out, err := exec.Command(gatewaytest.Binary(t), "access-keys", "usage", id, "--redis", e.redis.URL(), "--prefix", e.prefix,
		"--since", "30m", "--granularity", "minute", "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy access-keys usage %s: %v\n%s", id, err, out)
	}
	var res struct {
		Data []struct {
			Requests, Allowed, Unauthorized, Forbidden, RateLimited int64
			Status2xx, Status3xx, Status4xx, Status5xx              int64
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("caddy access-keys usage %s --json: %v\n%s", id, err, out)
	}
	var sum bucketTotals
	for _, b := range res.Data {
		sum.Requests += b.Requests
		sum.Allowed += b.Allowed
		sum.Unauthorized += b.Unauthorized
		sum.Forbidden += b.Forbidden
		sum.RateLimited += b.RateLimited
		sum.Status2xx += b.Status2xx
		sum.Status3xx += b.Status3xx
		sum.Status4xx += b.Status4xx
		sum.Status5xx += b.Status5xx
	}
	return sum
}

// counts sums the minute buckets of key id since the test started (id ""
// for the organisation's totals).
func (e *usageEnv) counts(t *testing.T, id string) usage.Counts {
	t.Helper()
	ctx := context.Background()
	from, to := e.start.Add(-time.Minute), time.Now().Add(time.Minute)
	var bs []usage.Bucket
	var err error
	if id == "" {
		bs, err = e.usage.Org(ctx, from, to, usage.Minute)
	} else {
		bs, err = e.usage.Key(ctx, id, from, to, usage.Minute)
	}
	if err != nil {
		t.Fatalf("reading the usage of %q: %v", id, err)
	}
	var sum usage.Counts
	for _, b := range bs {
		for o := range sum {
			sum[o] += b.Counts[o]
		}
	}
	return sum
}

// waitCounts polls the usage of each key (and of the organisation, under
// "") until it equals want, failing the test after timeout with what was
// counted.
func (e *usageEnv) waitCounts(t *testing.T, timeout time.Duration, want map[string]usage.Counts) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := map[string]usage.Counts{}
		same := true
		for id, w := range want {
			got[id] = e.counts(t, id)
			same = same && got[id] == w
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			for id, w := range want {
				if got[id] != w {
					t.Errorf("usage of %q = %v, want %v", id, got[id], w)
				}
			}
			t.FailNow()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// counts builds usage.Counts from outcome/count pairs.
func counts(pairs ...any) usage.Counts {
	var c usage.Counts
	for i := 0; i < len(pairs); i += 2 {
		c[pairs[i].(usage.Outcome)] += int64(pairs[i+1].(int))
	}
	return c
}

// plus returns the sum of cs.
func plus(cs ...usage.Counts) usage.Counts {
	var out usage.Counts
	for _, c := range cs {
		for o := range out {
			out[o] += c[o]
		}
	}
	return out
}

// sendN makes n GETs of url with c and fails the test unless each answers
// want.
func sendN(t *testing.T, client *http.Client, n int, url string, c *cred, hdr map[string]string, want int) {
	t.Helper()
	for range n {
		if r := mustSend(t, client, http.MethodGet, url, c, hdr); r.status != want {
			t.Fatalf("GET %s: status %d, want %d; body %s", url, r.status, want, r.body)
		}
	}
}

// TestUsageCountsTrafficMix sends a known mix of allowed and refused
// requests and reads exactly those counts back per key, and the same
// totals for the organisation: requests with unknown Access IDs or
// malformed credentials are not counted anywhere.
func TestUsageCountsTrafficMix(t *testing.T) {
	e := newUsageEnv(t)
	g := e.gateway(t, "1s")
	client := usageClient(t)
	ctx := context.Background()

	a := e.st.key(t, keystore.KeySpec{OwnerID: "u1", CORSHeaders: []string{"https://app.example.com"}})
	off := e.st.key(t, keystore.KeySpec{OwnerID: "u1"})
	if _, err := e.st.UpdateKey(ctx, off.id, keystore.KeyUpdate{Disabled: new(true)}, testOp); err != nil {
		t.Fatal(err)
	}
	limited := e.st.key(t, keystore.KeySpec{OwnerID: "u1", Limits: keystore.KeyLimits{
		RateLimit: &limits.Rate{Requests: 1, PeriodSeconds: 3600, Burst: 1},
	}})

	col := g.collectors() + "/"
	sendN(t, client, 7, col+"200", &a, nil, http.StatusOK)
	sendN(t, client, 2, col+"302", &a, nil, http.StatusFound)
	sendN(t, client, 3, col+"404", &a, nil, http.StatusNotFound)
	sendN(t, client, 4, col+"503", &a, nil, http.StatusServiceUnavailable)
	wrong := cred{a.id, keystore.NewAccessKey()}
	sendN(t, client, 2, col+"200", &wrong, nil, http.StatusUnauthorized)
	sendN(t, client, 3, g.Base+"/api/v1/search/jobs", &a, nil, http.StatusForbidden)
	sendN(t, client, 1, col+"200", &a, map[string]string{"Origin": "https://evil.example.com"}, http.StatusForbidden)
	sendN(t, client, 1, col+"200", &off, nil, http.StatusUnauthorized)
	sendN(t, client, 1, col+"200", &limited, nil, http.StatusOK)
	sendN(t, client, 2, col+"200", &limited, nil, http.StatusTooManyRequests)

	// A key that fails its checksum names an existing Access ID: counted
	// once a flush has checked that the ID exists.
	sendN(t, client, 2, col+"200", &cred{a.id, "not-a-key"}, nil, http.StatusUnauthorized)
	sendN(t, client, 1, col+"200", &cred{a.id, strings.Repeat("x", keystore.AccessKeyLen)}, nil, http.StatusUnauthorized)

	// Not counted: unknown Access IDs (with valid secrets or not), IDs of
	// the wrong shape, no credentials.
	for range 3 {
		unknown := cred{keystore.NewAccessID(), keystore.NewAccessKey()}
		sendN(t, client, 1, col+"200", &unknown, nil, http.StatusUnauthorized)
		forged := cred{keystore.NewAccessID(), "not-a-key"}
		sendN(t, client, 1, col+"200", &forged, nil, http.StatusUnauthorized)
	}
	sendN(t, client, 1, col+"200", &cred{"not-an-id", keystore.NewAccessKey()}, nil, http.StatusUnauthorized)
	sendN(t, client, 1, col+"200", nil, nil, http.StatusUnauthorized)

	wantA := counts(usage.Status2xx, 7, usage.Status3xx, 2, usage.Status4xx, 3, usage.Status5xx, 4,
		usage.Unauthorized, 5, usage.Forbidden, 4)
	wantOff := counts(usage.Unauthorized, 1)
	wantLimited := counts(usage.Status2xx, 1, usage.RateLimited, 2)
	want := map[string]usage.Counts{a.id: wantA, off.id: wantOff, limited.id: wantLimited, "": plus(wantA, wantOff, wantLimited)}
	e.waitCounts(t, 10*time.Second, want)
	if a := wantA; a.Requests() != 25 || a.Allowed() != 16 {
		t.Fatalf("expected counts of the mix are wrong: %v", a)
	}
	// The command line shows the same counts.
	for id, w := range map[string]usage.Counts{a.id: wantA, off.id: wantOff, limited.id: wantLimited} {
		if got, want := e.cliUsage(t, id), jsonCounts(w); got != want {
			t.Errorf("caddy access-keys usage %s --json: %+v, want %+v", id, got, want)
		}
	}

	// Written once: more flushes add nothing.
	time.Sleep(2500 * time.Millisecond)
	e.waitCounts(t, 0, want)
	if v, ok := metricValue(metricsText(t, g), "accessgate_usage_counts_dropped_total"); !ok || v != 0 {
		t.Errorf("accessgate_usage_counts_dropped_total = %v (present %v), want 0", v, ok)
	}
}

// TestUsageTwoGatewaysAddUp counts one key's requests made through two
// gateways sharing the Redis: the stored counts are their sum.
func TestUsageTwoGatewaysAddUp(t *testing.T) {
	e := newUsageEnv(t)
	g1, g2 := e.gateway(t, "1s"), e.gateway(t, "1s")
	client := usageClient(t)
	k := e.st.key(t, keystore.KeySpec{OwnerID: "u1"})

	sendN(t, client, 5, g1.collectors()+"/200", &k, nil, http.StatusOK)
	sendN(t, client, 1, g1.collectors()+"/503", &k, nil, http.StatusServiceUnavailable)
	sendN(t, client, 2, g2.collectors()+"/200", &k, nil, http.StatusOK)
	sendN(t, client, 3, g2.collectors()+"/404", &k, nil, http.StatusNotFound)
	sendN(t, client, 2, g2.Base+"/api/v1/search/x", &k, nil, http.StatusForbidden)

	want := counts(usage.Status2xx, 7, usage.Status4xx, 3, usage.Status5xx, 1, usage.Forbidden, 2)
	e.waitCounts(t, 10*time.Second, map[string]usage.Counts{k.id: want, "": want})
}

// TestUsageOffSite sends a key's requests through a site whose handler
// has `usage off` and through the counted one: only the latter's are
// counted, while the former still authenticates and refuses as usual.
func TestUsageOffSite(t *testing.T) {
	e := newUsageEnv(t)
	port := gatewaytest.FreePort(t)
	g := startFleetGateway(t, e.upstream, fleetOptions{
		redis: []string{e.redis.URL()}, prefix: e.prefix, extra: "usage_flush 1s",
		sites: fmt.Sprintf(`http://127.0.0.1:%d {
	access_keys {
		usage off
		scope viewCollectors GET /api/v1/collectors /api/v1/collectors/*
	}
	reverse_proxy %s
}
`, port, e.upstream.URL),
	})
	client := usageClient(t)
	k := e.st.key(t, keystore.KeySpec{OwnerID: "u1"})
	wrong := cred{k.id, keystore.NewAccessKey()}

	offCol := fmt.Sprintf("http://127.0.0.1:%d/api/v1/collectors/", port)
	sendN(t, client, 3, offCol+"200", &k, nil, http.StatusOK)
	sendN(t, client, 1, offCol+"503", &k, nil, http.StatusServiceUnavailable)
	sendN(t, client, 2, offCol+"200", &wrong, nil, http.StatusUnauthorized)
	sendN(t, client, 1, fmt.Sprintf("http://127.0.0.1:%d/api/v1/search/x", port), &k, nil, http.StatusForbidden)

	sendN(t, client, 2, g.collectors()+"/200", &k, nil, http.StatusOK)
	sendN(t, client, 1, g.collectors()+"/200", &wrong, nil, http.StatusUnauthorized)
	want := counts(usage.Status2xx, 2, usage.Unauthorized, 1)
	e.waitCounts(t, 10*time.Second, map[string]usage.Counts{k.id: want, "": want})
	// Two more flushes add nothing from the site with usage off.
	time.Sleep(2500 * time.Millisecond)
	e.waitCounts(t, 0, map[string]usage.Counts{k.id: want, "": want})
}

// TestUsageFlushedOnStop stops a gateway whose counts would be written
// only an hour later: a clean shutdown writes what it holds.
func TestUsageFlushedOnStop(t *testing.T) {
	e := newUsageEnv(t)
	g := e.gateway(t, "1h")
	client := usageClient(t)
	k := e.st.key(t, keystore.KeySpec{OwnerID: "u1"})

	sendN(t, client, 4, g.collectors()+"/200", &k, nil, http.StatusOK)
	sendN(t, client, 1, g.collectors()+"/404", &k, nil, http.StatusNotFound)
	sendN(t, client, 2, g.Base+"/api/v1/search/x", &k, nil, http.StatusForbidden)
	client.CloseIdleConnections()

	wakeWhile(e.st, 2*time.Second, func() { g.Stop(t) })
	if g.Running() {
		t.Fatal("the gateway is still running after Stop")
	}
	want := counts(usage.Status2xx, 4, usage.Status4xx, 1, usage.Forbidden, 2)
	e.waitCounts(t, 0, map[string]usage.Counts{k.id: want, "": want})
}

// TestUsageSurvivesRedisOutage counts requests answered from the cache
// while Redis is down: the failed writes keep the counts in memory, and
// once Redis is back they are all written, none twice.
func TestUsageSurvivesRedisOutage(t *testing.T) {
	e := newUsageEnv(t, "--appendonly", "yes", "--appendfsync", "always")
	g := e.gateway(t, "1s")
	client := usageClient(t)
	k := e.st.key(t, keystore.KeySpec{OwnerID: "u1"})

	// The first request verifies the key against Redis; once its count is
	// written, the invalidation messages of the set-up (which may drop an
	// entry cached before they land) are long delivered, and the next
	// request leaves the credential cached for the outage.
	sendN(t, client, 2, g.collectors()+"/200", &k, nil, http.StatusOK)
	e.waitCounts(t, 10*time.Second, map[string]usage.Counts{k.id: counts(usage.Status2xx, 2)})
	sendN(t, client, 1, g.collectors()+"/200", &k, nil, http.StatusOK)
	first := counts(usage.Status2xx, 3)
	e.waitCounts(t, 10*time.Second, map[string]usage.Counts{k.id: first})

	e.redis.Stop(t)
	sendN(t, client, 3, g.collectors()+"/200", &k, nil, http.StatusOK)
	sendN(t, client, 1, g.collectors()+"/404", &k, nil, http.StatusNotFound)
	sendN(t, client, 2, g.Base+"/api/v1/search/x", &k, nil, http.StatusForbidden)
	waitUntil(t, 10*time.Second, "a failed write of the usage counts", func() bool {
		return strings.Contains(g.Logs(), "usage counts could not be written")
	})
	e.redis.Restart(t)

	want := plus(first, counts(usage.Status2xx, 3, usage.Status4xx, 1, usage.Forbidden, 2))
	e.waitCounts(t, 10*time.Second, map[string]usage.Counts{k.id: want})
	time.Sleep(2500 * time.Millisecond)
	e.waitCounts(t, 0, map[string]usage.Counts{k.id: want})
}
