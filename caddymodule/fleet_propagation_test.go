package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// propagationTimeout is how long a test waits for a change to reach a
// gateway. It is generous, for loaded machines and the race detector, and
// far below the caches' 15 minutes, so that only the invalidation message
// can explain a refusal; the time a change actually took is logged (the
// contract asks for 1 s).
const propagationTimeout = 30 * time.Second

// TestFleetPropagation runs two gateways on one Redis and changes keys,
// owners and roles through a store of their own (as the management API of
// gateway 1 would): both gateways must refuse the cached credential once
// the invalidation reaches them, long before their caches would.
func TestFleetPropagation(t *testing.T) {
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetprop", grace: "2s"}
	gw1 := startFleetGateway(t, up, o)
	gw2 := startFleetGateway(t, up, o)
	client := fleetClient(t)
	ctx := context.Background()
	st := newFleetStore(rs.Client(t), o.prefix)
	st.role(t, "viewer", "viewCollectors", "runLogSearch")

	// warm uses c through both gateways and proves it cached on each.
	warm := func(t *testing.T, c cred, hdr map[string]string) {
		t.Helper()
		for _, g := range []*fleetGateway{gw1, gw2} {
			wantStatus(t, client, g.collectors(), &c, hdr, http.StatusOK)
			assertCached(t, rs, client, g.collectors(), &c, hdr)
		}
	}
	// refused waits for each gateway to refuse c after change, failing on
	// any answer but 200 (the cached entry) and want meanwhile.
	refused := func(t *testing.T, what string, c cred, hdr map[string]string, want int, change func()) {
		t.Helper()
		start := time.Now()
		change()
		committed := time.Since(start)
		for i, g := range []*fleetGateway{gw2, gw1} {
			took := pollStatus(t, client, g.collectors(), &c, hdr, http.StatusOK, want, start, propagationTimeout)
			t.Logf("%s: gateway %d answers %d %v after the change started (store call took %v)",
				what, 2-i, want, took.Round(100*time.Microsecond), committed.Round(100*time.Microsecond))
		}
	}

	t.Run("deactivate", func(t *testing.T) {
		st.user(t, "deact", "viewer")
		c := st.key(t, keystore.KeySpec{OwnerID: "deact"})
		warm(t, c, nil)
		refused(t, "deactivate", c, nil, http.StatusUnauthorized, func() {
			disabled := true
			if _, err := st.UpdateKey(ctx, c.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("delete", func(t *testing.T) {
		st.user(t, "del", "viewer")
		c := st.key(t, keystore.KeySpec{OwnerID: "del"})
		warm(t, c, nil)
		refused(t, "delete", c, nil, http.StatusUnauthorized, func() {
			if err := st.DeleteKey(ctx, c.id, testOp); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("rotate", func(t *testing.T) {
		st.user(t, "rot", "viewer")
		// In its grace the old key keeps working on every gateway, next to
		// the new one. The grace is long enough that no slowness of the
		// test can end it first.
		long := fleetStore{keystore.New(rs.Client(t), keystore.Options{Prefix: o.prefix, RotationGrace: 10 * time.Minute})}
		old := st.key(t, keystore.KeySpec{OwnerID: "rot"})
		warm(t, old, nil)
		nk, secret, err := long.RotateKey(ctx, old.id, testOp)
		if err != nil {
			t.Fatal(err)
		}
		fresh := cred{nk.ID, secret}
		for _, g := range []*fleetGateway{gw1, gw2} {
			wantStatus(t, client, g.collectors(), &fresh, nil, http.StatusOK)
			wantStatus(t, client, g.collectors(), &old, nil, http.StatusOK)
		}

		// When the grace (2s) ends, neither gateway takes the old key, and
		// not before: the grace starts during RotateKey, after start. The
		// poll fails on anything but 200 or 401.
		old = st.key(t, keystore.KeySpec{OwnerID: "rot"})
		warm(t, old, nil)
		start := time.Now()
		nk, secret, err = st.RotateKey(ctx, old.id, testOp)
		if err != nil {
			t.Fatal(err)
		}
		fresh = cred{nk.ID, secret}
		for i, g := range []*fleetGateway{gw2, gw1} {
			took := pollStatus(t, client, g.collectors(), &old, nil, http.StatusOK, http.StatusUnauthorized, start, 2*time.Second+propagationTimeout)
			if took < 2*time.Second {
				t.Fatalf("gateway %d refused the old key %v after the rotation, before the 2s grace ended", 2-i, took)
			}
			t.Logf("rotate: old key refused by gateway %d %v after the rotation started (grace 2s)", 2-i, took.Round(100*time.Microsecond))
			wantStatus(t, client, g.collectors(), &fresh, nil, http.StatusOK)
		}
	})

	t.Run("scope change", func(t *testing.T) {
		st.user(t, "scoped", "viewer")
		c := st.key(t, keystore.KeySpec{OwnerID: "scoped"})
		warm(t, c, nil)
		refused(t, "scope change", c, nil, http.StatusForbidden, func() {
			scopes := []string{"runLogSearch"}
			if _, err := st.UpdateKey(ctx, c.id, keystore.KeyUpdate{Scopes: &scopes}, testOp); err != nil {
				t.Fatal(err)
			}
		})
		wantStatus(t, client, gw2.Base+"/api/v1/search/jobs", &c, nil, http.StatusOK)
	})

	t.Run("allowlist change", func(t *testing.T) {
		st.user(t, "cors", "viewer")
		c := st.key(t, keystore.KeySpec{OwnerID: "cors", CORSHeaders: []string{"https://app.example.com"}})
		hdr := map[string]string{"Origin": "https://app.example.com"}
		warm(t, c, hdr)
		refused(t, "allowlist change", c, hdr, http.StatusForbidden, func() {
			origins := []string{"https://other.example.com"}
			if _, err := st.UpdateKey(ctx, c.id, keystore.KeyUpdate{CORSHeaders: &origins}, testOp); err != nil {
				t.Fatal(err)
			}
		})
		r := wantStatus(t, client, gw2.collectors(), &c, hdr, http.StatusForbidden)
		if !isBodyA(r.body, http.StatusForbidden, "forbidden") {
			t.Errorf("origin refusal body: %s", r.body)
		}
		wantStatus(t, client, gw2.collectors(), &c, map[string]string{"Origin": "https://other.example.com"}, http.StatusOK)
	})

	t.Run("owner deactivation", func(t *testing.T) {
		st.user(t, "leaver", "viewer")
		c := st.key(t, keystore.KeySpec{OwnerID: "leaver"})
		warm(t, c, nil)
		refused(t, "owner deactivation", c, nil, http.StatusUnauthorized, func() {
			ow, err := st.Owner(ctx, "leaver")
			if err != nil {
				t.Fatal(err)
			}
			ow.IsActive = false
			if _, err := st.PutOwner(ctx, *ow, "test"); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("role capability removal", func(t *testing.T) {
		st.role(t, "collector", "viewCollectors", "runLogSearch")
		st.user(t, "roled", "collector")
		c := st.key(t, keystore.KeySpec{OwnerID: "roled"})
		warm(t, c, nil)
		refused(t, "role capability removal", c, nil, http.StatusForbidden, func() {
			st.role(t, "collector", "runLogSearch")
		})
		wantStatus(t, client, gw2.Base+"/api/v1/search/jobs", &c, nil, http.StatusOK)
	})
}
