package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// TestFleetFlushOnReconnect kills Redis under a gateway that caches a key
// and brings it back empty. No invalidation message can have been sent,
// yet the key is gone: the gateway must notice that its subscription was
// lost, flush its cache when it is back, and refuse the key long before
// cache_ttl (15m) would have ended the entry.
func TestFleetFlushOnReconnect(t *testing.T) {
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetflush"}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	c := st.viewerKey(t)
	wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
	assertCached(t, rs, client, gw.collectors(), &c, nil)

	rs.Stop(t)
	wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK) // from the cache
	rs.Restart(t)                                                  // empty: the key is gone
	back := time.Now()
	took := pollStatus(t, client, gw.collectors(), &c, nil, http.StatusOK, http.StatusUnauthorized, back, 5*time.Second)
	t.Logf("key refused %v after Redis came back empty (cache_ttl 15m)", took.Round(100*time.Microsecond))
	if !strings.Contains(gw.Logs(), "authentication cache flushed") {
		t.Errorf("the gateway log does not report the flush")
	}
}

// Phases of TestFleetRedisOutageUnderLoad.
const (
	phaseUp int32 = iota
	phaseDown
	phaseRestarting
	phaseBack
)

// outageResult is one request of the load loop.
type outageResult struct {
	key        int // index in the keys of the test; the first two are cached
	start, end int32
	status     int
	code       string
	err        error
	took       time.Duration
}

// TestFleetRedisOutageUnderLoad kills Redis in the middle of a load loop
// and restarts it with its data (append-only file, fsync always). Two keys
// are cached before the outage and must never fail. Twelve keys, each the
// key of one client, are first used while Redis is down: they must get 503
// (body A, service.unavailable), never 401, and work again soon after
// Redis is back. Twelve clients rather than two, because each distinct
// credential makes its own Redis lookup, so the outage is felt as a real
// one with many clients would be.
func TestFleetRedisOutageUnderLoad(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetoutage"}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	st.viewer(t)
	const cachedKeys, cachedWorkers, uncachedWorkers = 2, 4, 12
	keys := make([]cred, cachedKeys+uncachedWorkers)
	for i := range keys {
		keys[i] = st.key(t, keystore.KeySpec{OwnerID: "u1", Label: fmt.Sprintf("key %d", i)})
	}
	for i := range cachedKeys {
		wantStatus(t, client, gw.collectors(), &keys[i], nil, http.StatusOK)
		assertCached(t, rs, client, gw.collectors(), &keys[i], nil)
	}

	var (
		phase atomic.Int32
		stop  atomic.Bool
		mu    sync.Mutex
		// results of every request, and counts by key kind (0 cached, 1
		// uncached) and the phase a request ended in.
		results []outageResult
		done    [2][4]atomic.Int64
		wg      sync.WaitGroup
	)
	for w := range cachedWorkers + uncachedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind := 0
			if w >= cachedWorkers {
				kind = 1
			}
			for i := w; !stop.Load(); i++ {
				start := phase.Load()
				k := i % cachedKeys
				if kind == 1 {
					if start == phaseUp {
						time.Sleep(time.Millisecond) // unused until Redis is down
						continue
					}
					k = cachedKeys + w - cachedWorkers
				}
				t0 := time.Now()
				r, err := send(client, http.MethodGet, gw.collectors(), &keys[k], nil)
				res := outageResult{key: k, start: start, end: phase.Load(), status: r.status, err: err, took: time.Since(t0)}
				if err == nil && r.status != http.StatusOK {
					res.code = r.code()
					if r.status == http.StatusServiceUnavailable && !isBodyA(r.body, r.status, "service.unavailable") {
						res.code = "not body A: " + string(r.body)
					}
				}
				done[kind][res.end].Add(1)
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		}()
	}
	stopLoad := func() {
		if !stop.Swap(true) {
			wg.Wait()
		}
	}
	t.Cleanup(stopLoad)
	enough := func(p int32, cached, uncached int64) func() bool {
		return func() bool { return done[0][p].Load() >= cached && done[1][p].Load() >= uncached }
	}

	waitUntil(t, 10*time.Second, "load before the outage", enough(phaseUp, 400, 0))
	rs.Stop(t)
	phase.Store(phaseDown)
	downAt := time.Now()
	waitUntil(t, 15*time.Second, "load during the outage", enough(phaseDown, 200, 3*uncachedWorkers))
	phase.Store(phaseRestarting)
	rs.Restart(t)
	phase.Store(phaseBack)
	backAt := time.Now()
	t.Logf("Redis down for %v", backAt.Sub(downAt).Round(time.Millisecond))

	// Every uncached key must answer 200 to a request started after Redis
	// was back.
	recovered := func() bool {
		mu.Lock()
		defer mu.Unlock()
		ok := map[int]bool{}
		for _, r := range results {
			if r.key >= cachedKeys && r.start == phaseBack && r.status == http.StatusOK {
				ok[r.key] = true
			}
		}
		return len(ok) == uncachedWorkers
	}
	took := waitUntil(t, 5*time.Second, "recovery of the uncached keys", recovered)
	t.Logf("every uncached key answers 200 %v after Redis came back", took.Round(time.Millisecond))
	waitUntil(t, 10*time.Second, "load after the outage", enough(phaseBack, 400, 100))
	stopLoad()

	mu.Lock()
	defer mu.Unlock()
	var cachedFail, uncachedBad int
	var slowest503, slowestCached time.Duration
	counts := map[string]int{}
	for _, r := range results {
		label := "cached"
		if r.key >= cachedKeys {
			label = "uncached"
		}
		if r.err != nil {
			counts[label+" transport error"]++
		} else {
			counts[fmt.Sprintf("%s %d", label, r.status)]++
		}
		if r.key < cachedKeys {
			slowestCached = max(slowestCached, r.took)
			if r.err != nil || r.status != http.StatusOK {
				if cachedFail++; cachedFail <= 5 {
					t.Errorf("cached key %d in phase %d→%d: status %d code %q err %v", r.key, r.start, r.end, r.status, r.code, r.err)
				}
			}
			continue
		}
		bad := r.err != nil
		switch r.status {
		case http.StatusOK:
			// Only once Redis is back (a request may start just before).
			bad = bad || r.end < phaseRestarting
		case http.StatusServiceUnavailable:
			bad = bad || r.code != "service.unavailable"
			slowest503 = max(slowest503, r.took)
		default:
			bad = true
		}
		if bad {
			if uncachedBad++; uncachedBad <= 5 {
				t.Errorf("uncached key %d in phase %d→%d: status %d code %q err %v", r.key, r.start, r.end, r.status, r.code, r.err)
			}
		}
	}
	t.Logf("%d requests: %v; slowest 503 %v, slowest cached %v", len(results), counts,
		slowest503.Round(time.Millisecond), slowestCached.Round(time.Millisecond))
	if cachedFail > 0 || uncachedBad > 0 {
		t.Errorf("%d failed requests for cached keys, %d wrong answers for uncached keys", cachedFail, uncachedBad)
	}
	if counts["uncached 503"] < uncachedWorkers {
		t.Errorf("only %d uncached requests were answered 503 during the outage; the test proved little", counts["uncached 503"])
	}
}
