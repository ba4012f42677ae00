package caddymodule_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// TestFleetCluster runs the core gateway checks on a three-node Redis
// Cluster, named to Caddy by the URLs of all its nodes.
func TestFleetCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	var urls []string
	for _, n := range cl.Nodes() {
		urls = append(urls, n.URL())
	}
	o := fleetOptions{redis: urls, prefix: "fleetcluster", extra: fastLoops}
	coreChecks(t, o, newFleetStore(cl.Client(t), o.prefix))
}

// fastLoops makes the last-used flush and the sweeper run often, so that
// their Redis commands run on the topology under test.
const fastLoops = "last_used_flush 200ms\n\t\tsweep_interval 300ms"

// TestFleetSentinel runs the core gateway checks on a master and replica
// watched by Sentinel, named to Caddy by the master name and the
// sentinel's address.
func TestFleetSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	o := fleetOptions{sentinel: s.MasterName() + " " + strings.Join(s.SentinelAddrs(), " "), prefix: "fleetsentinel", extra: fastLoops}
	st := newFleetStore(s.FailoverClient(t), o.prefix)
	gw, client := coreChecks(t, o, st)

	t.Run("failover", func(t *testing.T) {
		ctx := context.Background()
		const resubscribed = "invalidation subscription re-established"
		flushes := strings.Count(gw.Logs(), resubscribed)
		old := s.MasterAddr(t)
		s.Master().Stop(t)
		took := waitUntil(t, 15*time.Second, "promotion of the replica", func() bool { return s.MasterAddr(t) != old })
		t.Logf("replica promoted %v after the master died", took.Round(time.Millisecond))
		took = waitUntil(t, 10*time.Second, "the gateway subscribing on the new master", func() bool {
			return strings.Count(gw.Logs(), resubscribed) > flushes
		})
		t.Logf("the gateway subscribed again (and flushed its cache) %v after the promotion was seen", took.Round(time.Millisecond))
		var c cred
		waitUntil(t, 10*time.Second, "a key created on the new master", func() bool {
			k, secret, err := st.CreateKey(ctx, keystore.KeySpec{OwnerID: "alice", Label: "after failover"}, testOp)
			c = cred{}
			if err == nil {
				c = cred{k.ID, secret}
			}
			return err == nil
		})
		waitUntil(t, 10*time.Second, "the gateway taking the new key", func() bool {
			r := mustSend(t, client, http.MethodGet, gw.collectors(), &c, nil)
			return r.status == http.StatusOK
		})
		// Messages from the new master reach the gateway.
		start := time.Now()
		disabled := true
		if _, err := st.UpdateKey(ctx, c.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
		committed := time.Since(start)
		took = pollStatus(t, client, gw.collectors(), &c, nil, http.StatusOK, http.StatusUnauthorized, start, propagationTimeout)
		t.Logf("after the failover, a deactivated key is refused %v after the change started (store call took %v)",
			took.Round(100*time.Microsecond), committed.Round(100*time.Microsecond))
	})
}

// coreChecks creates a role, a user and keys through st, and checks
// through a gateway configured by o: success with identity headers, a
// wrong key, deactivation seen at once through pub/sub, rotation, and
// listing. The gateway log must hold no Redis error. It returns the
// gateway and the client for further checks.
func coreChecks(t *testing.T, o fleetOptions, st fleetStore) (*fleetGateway, *http.Client) {
	t.Helper()
	ctx := context.Background()
	up := gatewaytest.Upstream(t)
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)

	st.role(t, "viewer", "viewCollectors", "runLogSearch")
	st.user(t, "alice", "viewer")
	c := st.key(t, keystore.KeySpec{OwnerID: "alice"})

	t.Run("success with identity headers", func(t *testing.T) {
		r := wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
		var echo gatewaytest.Echo
		if err := json.Unmarshal(r.body, &echo); err != nil {
			t.Fatalf("not an upstream echo: %s", r.body)
		}
		want := map[string]string{"X-Access-Id": c.id, "X-Access-Owner": "alice", "X-Access-Scopes": "runLogSearch viewCollectors"}
		for k, v := range want {
			if got := echo.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("upstream %s = %q, want %q", k, got, v)
			}
		}
		if echo.Header.Get("Authorization") != "" {
			t.Errorf("Authorization reached the upstream")
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		wrong := cred{c.id, keystore.NewAccessKey()}
		r := wantStatus(t, client, gw.collectors(), &wrong, nil, http.StatusUnauthorized)
		if !isBodyA(r.body, http.StatusUnauthorized, "unauthorized") || r.header.Get("WWW-Authenticate") != `Basic realm="Fleet"` {
			t.Errorf("401 answer: %v %s", r.header, r.body)
		}
	})

	t.Run("deactivate", func(t *testing.T) {
		d := st.key(t, keystore.KeySpec{OwnerID: "alice", Label: "to deactivate"})
		wantStatus(t, client, gw.collectors(), &d, nil, http.StatusOK)
		wantStatus(t, client, gw.collectors(), &d, nil, http.StatusOK)
		start := time.Now()
		disabled := true
		if _, err := st.UpdateKey(ctx, d.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
		took := pollStatus(t, client, gw.collectors(), &d, nil, http.StatusOK, http.StatusUnauthorized, start, propagationTimeout)
		t.Logf("deactivated key refused %v after the change started (cache_ttl 15m)", took.Round(100*time.Microsecond))
		if err := st.DeleteKey(ctx, d.id, testOp); err != nil {
			t.Fatal(err)
		}
	})

	var rotated cred
	t.Run("rotate", func(t *testing.T) {
		start := time.Now()
		nk, secret, err := st.RotateKey(ctx, c.id, testOp)
		if err != nil {
			t.Fatal(err)
		}
		rotated = cred{nk.ID, secret}
		wantStatus(t, client, gw.collectors(), &rotated, nil, http.StatusOK)
		// The old key works until its grace (2s) ends, then no more; the
		// grace starts during RotateKey, after start. (That it works in
		// its grace is checked with a long grace by TestFleetPropagation.)
		took := pollStatus(t, client, gw.collectors(), &c, nil, http.StatusOK, http.StatusUnauthorized, start, 2*time.Second+propagationTimeout)
		if took < 2*time.Second {
			t.Fatalf("old key refused %v after the rotation, before the 2s grace ended", took)
		}
		t.Logf("old key refused %v after the rotation started (grace 2s)", took.Round(100*time.Microsecond))
		wantStatus(t, client, gw.collectors(), &rotated, nil, http.StatusOK)
	})

	t.Run("list keys", func(t *testing.T) {
		if rotated.id == "" {
			t.Skip("rotation failed")
		}
		page, err := st.ListKeys(ctx, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range page.Keys {
			ids = append(ids, k.ID)
		}
		if !slices.Equal(ids, []string{rotated.id}) {
			t.Errorf("ListKeys = %v, want only the rotated key %s", ids, rotated.id)
		}
		mine, err := st.KeysOfOwner(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) != 1 || mine[0].ID != rotated.id {
			t.Errorf("KeysOfOwner = %v, want the rotated key", mine)
		}
	})

	t.Run("last use recorded", func(t *testing.T) {
		if rotated.id == "" {
			t.Skip("rotation failed")
		}
		waitUntil(t, 5*time.Second, "the last use of the rotated key in Redis", func() bool {
			used, err := st.LastUsed(ctx, rotated.id)
			return err == nil && !used[rotated.id].IsZero()
		})
	})

	t.Run("no Redis errors in the log", func(t *testing.T) {
		for _, line := range strings.Split(gw.Logs(), "\n") {
			if strings.Contains(line, "CROSSSLOT") || strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "access_keys") {
				t.Errorf("gateway log: %s", line)
			}
		}
	})
	return gw, client
}
