package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// Series of the admin /metrics endpoint checked by TestFleetMetrics.
const (
	mCacheHit      = `accessgate_authentications_total{outcome="cache_hit"}`
	mVerified      = `accessgate_authentications_total{outcome="verified"}`
	mRejected      = `accessgate_authentications_total{outcome="rejected"}`
	mForbidden     = `accessgate_authentications_total{outcome="forbidden"}`
	mCacheHits     = `accessgate_cache_hits_total`
	mCacheMisses   = `accessgate_cache_misses_total`
	mEvictions     = `accessgate_cache_evictions_total`
	mExpirations   = `accessgate_cache_expirations_total`
	mInvalidations = `accessgate_cache_invalidations_total`
	mRedisCount    = `accessgate_redis_command_duration_seconds_count`
)

// TestFleetMetrics reads the gateway's admin /metrics and checks that the
// accessgate series exist and move with the requests made.
func TestFleetMetrics(t *testing.T) {
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	extra := gatewaytest.FreePort(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetmetrics",
		sites: fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"one\"\n}\n", extra)}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	ctx := context.Background()
	st.role(t, "viewer", "runLogSearch")
	st.user(t, "u1", "viewer")
	c := st.key(t, keystore.KeySpec{OwnerID: "u1"})

	series := []string{mCacheHit, mVerified, mRejected, mForbidden, mCacheHits, mCacheMisses, mEvictions, mExpirations, mInvalidations, mRedisCount}
	snapshot := func() map[string]float64 {
		t.Helper()
		text := metricsText(t, gw)
		m := map[string]float64{}
		for _, s := range series {
			v, ok := metricValue(text, s)
			if !ok {
				var ours []string
				for _, l := range strings.Split(text, "\n") {
					if strings.HasPrefix(l, "accessgate_") {
						ours = append(ours, l)
					}
				}
				t.Fatalf("admin /metrics lacks %s; its accessgate series:\n%s", s, strings.Join(ours, "\n"))
			}
			m[s] = v
		}
		if !strings.Contains(text, `accessgate_redis_command_duration_seconds_bucket{le="0.001"}`) {
			t.Errorf("admin /metrics lacks the buckets of accessgate_redis_command_duration_seconds")
		}
		return m
	}
	// moved checks the change of each series between two snapshots.
	moved := func(what string, before, after map[string]float64, want map[string]float64, atLeast ...string) {
		t.Helper()
		for s, d := range want {
			if got := after[s] - before[s]; got != d {
				t.Errorf("%s: %s moved by %v, want %v", what, s, got, d)
			}
		}
		for _, s := range atLeast {
			if after[s] <= before[s] {
				t.Errorf("%s: %s did not move (%v)", what, s, after[s])
			}
		}
	}
	search := c
	searchURL := gw.Base + "/api/v1/search/jobs"

	m0 := snapshot()
	wantStatus(t, client, searchURL, &search, nil, http.StatusOK)
	m1 := snapshot()
	moved("first use", m0, m1, map[string]float64{mVerified: 1, mCacheHit: 0, mCacheHits: 0, mCacheMisses: 1, mRejected: 0}, mRedisCount)

	for range 5 {
		wantStatus(t, client, searchURL, &search, nil, http.StatusOK)
	}
	m2 := snapshot()
	moved("five cached uses", m1, m2, map[string]float64{mVerified: 0, mCacheHit: 5, mCacheHits: 5, mCacheMisses: 0, mRedisCount: 0})

	wantStatus(t, client, gw.collectors(), &search, nil, http.StatusForbidden)
	wrong := cred{c.id, keystore.NewAccessKey()}
	wantStatus(t, client, searchURL, &wrong, nil, http.StatusUnauthorized)
	m3 := snapshot()
	moved("a forbidden route and a wrong key", m2, m3, map[string]float64{mForbidden: 1, mRejected: 1, mCacheHit: 1, mCacheMisses: 1, mVerified: 0}, mRedisCount)

	disabled := true
	if _, err := st.UpdateKey(ctx, c.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
		t.Fatal(err)
	}
	var m4 map[string]float64
	waitUntil(t, propagationTimeout, "the invalidation counted", func() bool {
		m4 = snapshot()
		return m4[mInvalidations] > m3[mInvalidations]
	})
	moved("deactivation", m3, m4, map[string]float64{mInvalidations: 1})
	wantStatus(t, client, searchURL, &search, nil, http.StatusUnauthorized)
	m5 := snapshot()
	moved("the deactivated key", m4, m5, map[string]float64{mRejected: 1, mVerified: 0, mCacheHit: 0, mCacheMisses: 1})

	// A rotated-out key is cached until its grace (2s) ends; its entry
	// then expires, which is not an eviction for room. The key is cached
	// before the rotation, so that the rotation's invalidation can be
	// seen to land before the old key is cached again.
	var m5b map[string]float64
	var old cred
	for attempt := 1; ; attempt++ {
		old = st.key(t, keystore.KeySpec{OwnerID: "u1"})
		wantStatus(t, client, searchURL, &old, nil, http.StatusOK)
		before := snapshot()
		if _, _, err := st.RotateKey(ctx, old.id, testOp); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, propagationTimeout, "the rotation's invalidation", func() bool {
			return snapshot()[mInvalidations] > before[mInvalidations]
		})
		if mustSend(t, client, http.MethodGet, searchURL, &old, nil).status == http.StatusOK {
			m5b = snapshot()
			break
		}
		if attempt == 5 {
			t.Fatal("the grace of the old key always ended before it could be used")
		}
	}
	waitUntil(t, propagationTimeout, "the end of the old key's grace", func() bool {
		return mustSend(t, client, http.MethodGet, searchURL, &old, nil).status == http.StatusUnauthorized
	})
	m5c := snapshot()
	moved("the end of a grace", m5b, m5c, map[string]float64{mEvictions: 0}, mExpirations)

	// The state, and so the counters, survive a reload that leaves the
	// access_keys settings alone.
	o.sites = fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"two\"\n}\n", extra)
	gw.Reload(t, gw.caddyfile(o))
	m6 := snapshot()
	for _, s := range series {
		if m6[s] < m5c[s] {
			t.Errorf("after a reload %s went back from %v to %v", s, m5c[s], m6[s])
		}
	}
	t.Logf("after the checks: %v", m6)
}
