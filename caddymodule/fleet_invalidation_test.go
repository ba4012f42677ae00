package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// TestFleetSilentSubscription puts a proxy between a gateway and Redis and
// makes it go silent without closing anything, as a firewall or NAT that
// forgets a long-lived connection does. The gateway's subscription then
// receives nothing while its writes still succeed. The gateway must notice
// (within 30 s by the contract) and, once Redis can be reached again,
// subscribe anew and flush its cache: a key deactivated during the silence
// is refused long before cache_ttl (15m) ends its entry, and later changes
// propagate again.
func TestFleetSilentSubscription(t *testing.T) {
	rs := redistest.Start(t)
	px := redistest.StartProxy(t, rs.Addr)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{px.URL()}, prefix: "fleetsilent"}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	ctx := context.Background()
	c := st.viewerKey(t)
	wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
	assertCached(t, rs, client, gw.collectors(), &c, nil)

	px.Silence()
	disabled := true
	if _, err := st.UpdateKey(ctx, c.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
		t.Fatal(err)
	}
	// The message is lost: the gateway keeps serving its cached entry, as
	// through any outage.
	wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
	const lost = "invalidation subscription lost"
	took := waitUntil(t, 2*time.Minute, "the gateway noticing that its subscription went silent", func() bool {
		return strings.Contains(gw.Logs(), lost)
	})
	t.Logf("silence noticed %v after it started", took.Round(time.Millisecond))

	px.Resume()
	// Connections the gateway had pooled before the silence stay silent
	// too, so a verification may answer 503 until they are dropped.
	refused := func(c cred) func() bool {
		return func() bool {
			r := mustSend(t, client, http.MethodGet, gw.collectors(), &c, nil)
			if r.status != http.StatusOK && r.status != http.StatusUnauthorized && r.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d; body %s", r.status, r.body)
			}
			return r.status == http.StatusUnauthorized
		}
	}
	waitUntil(t, time.Minute, "the key deactivated during the silence refused", refused(c))
	if !strings.Contains(gw.Logs(), "invalidation subscription re-established") {
		t.Errorf("the gateway log does not report the flush on subscribing again")
	}

	// Invalidations arrive again.
	c2 := st.key(t, keystore.KeySpec{OwnerID: "u1", Label: "after the silence"})
	waitUntil(t, time.Minute, "a new key working through the gateway", func() bool {
		return mustSend(t, client, http.MethodGet, gw.collectors(), &c2, nil).status == http.StatusOK
	})
	assertCached(t, rs, client, gw.collectors(), &c2, nil)
	if _, err := st.UpdateKey(ctx, c2.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pollStatus(t, client, gw.collectors(), &c2, nil, http.StatusOK, http.StatusUnauthorized, start, propagationTimeout)
}

// TestFleetOwnerNodeHangs pauses the Redis Cluster node that holds a key's
// owner, and only that one: the key's record, the policies and the last
// uses live on other nodes. A request with that key (its owner not cached)
// must get 503 within the verification's budget, not wait for the node.
// The gateway's Redis I/O timeout is raised to a minute, so that only the
// verification's own deadline can end the wait early.
func TestFleetOwnerNodeHangs(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	var urls []string
	for _, n := range cl.Nodes() {
		urls = append(urls, n.URL())
	}
	urls[0] += "?read_timeout=60s&write_timeout=60s"
	o := fleetOptions{redis: urls, prefix: "fleetowner"}
	cc := cl.Client(t)
	st := newFleetStore(cc, o.prefix)
	ctx := context.Background()
	nodeOf := func(key string) string {
		t.Helper()
		c, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return c.Options().Addr
	}
	busy := map[string]bool{nodeOf(o.prefix + ":policy"): true, nodeOf(o.prefix + ":lastused"): true}
	owner := ""
	for i := 0; owner == ""; i++ {
		if id := "owner" + string(rune('a'+i%26)) + strings.Repeat("x", i/26); !busy[nodeOf(o.prefix+":owner:{"+id+"}")] {
			owner = id
		}
	}
	ownerNode := nodeOf(o.prefix + ":owner:{" + owner + "}")
	st.role(t, "viewer", "viewCollectors")
	st.user(t, owner, "viewer")
	var c cred
	for c.id == "" || nodeOf(o.prefix+":key:{"+c.id+"}") == ownerNode {
		c = st.key(t, keystore.KeySpec{OwnerID: owner})
	}
	// A key of another owner, to show the gateway working before the pause
	// without caching the owner under test.
	st.user(t, "other", "viewer")
	other := st.key(t, keystore.KeySpec{OwnerID: "other"})

	up := gatewaytest.Upstream(t)
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	client.Timeout = 30 * time.Second
	wantStatus(t, client, gw.collectors(), &other, nil, http.StatusOK)

	node := redis.NewClient(&redis.Options{Addr: ownerNode})
	t.Cleanup(func() { _ = node.Close() })
	if err := node.Do(ctx, "CLIENT", "PAUSE", "120000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := send(client, http.MethodGet, gw.collectors(), &c, nil)
	if err != nil {
		t.Fatalf("no answer while the owner's node hangs: %v", err)
	}
	if r.status != http.StatusServiceUnavailable || !isBodyA(r.body, r.status, "service.unavailable") {
		t.Fatalf("while the owner's node hangs: status %d, body %s; want 503", r.status, r.body)
	}
	t.Logf("503 after %v while only the owner's node hangs", time.Since(start).Round(time.Millisecond))
}
