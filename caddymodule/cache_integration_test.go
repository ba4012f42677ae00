package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/keystore"
)

// cacheTTL is the cache_ttl of the cache tests: short, so that expiry can be
// watched; the bounds below allow generous slack for a loaded machine.
const cacheTTL = 2 * time.Second

// TestCache checks the authentication cache of a real Caddy against a real
// redis-server.
func TestCache(t *testing.T) {
	f := newFixture(t, fixtureOptions{cacheTTL: cacheTTL.String()})
	ctx := context.Background()
	collectors := f.base + "/api/v1/collectors"

	t.Run("deactivated key stops working within cache_ttl", func(t *testing.T) {
		c := f.key(t, keystore.KeySpec{})
		if got := status(t, http.MethodGet, collectors, &c); got != http.StatusOK {
			t.Fatalf("status = %d before deactivation", got)
		}
		disabled := true
		if _, err := f.store.UpdateKey(ctx, c.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
		took := eventually(t, cacheTTL+3*time.Second, "refusal of the deactivated key", func() bool {
			return status(t, http.MethodGet, collectors, &c) == http.StatusUnauthorized
		})
		t.Logf("deactivated key refused after %v (cache_ttl %v)", took, cacheTTL)
	})

	t.Run("changed secret never matches an old cache entry", func(t *testing.T) {
		c := f.key(t, keystore.KeySpec{})
		if got := status(t, http.MethodGet, collectors, &c); got != http.StatusOK {
			t.Fatalf("status = %d", got)
		}
		// A different, well-formed key for the cached ID is verified, not
		// served from the entry of the right one.
		other := cred{c.id, keystore.NewAccessKey()}
		assert401(t, request(t, http.MethodGet, collectors, &other, nil))
		// The stored secret changes: the new one works at once, the old one
		// stops with its cache entry.
		setSecret(t, f, c.id, other.secret)
		if got := status(t, http.MethodGet, collectors, &other); got != http.StatusOK {
			t.Fatalf("new secret: status = %d", got)
		}
		eventually(t, cacheTTL+3*time.Second, "refusal of the old secret", func() bool {
			return status(t, http.MethodGet, collectors, &c) == http.StatusUnauthorized
		})
	})

	t.Run("effective scopes follow the owner's role", func(t *testing.T) {
		f.user(t, "roleuser")
		c := f.key(t, keystore.KeySpec{OwnerID: "roleuser"})
		echo := gatewaytest.DecodeEcho(t, request(t, http.MethodGet, collectors, &c, nil))
		if got := echo.Header.Get("X-Access-Scopes"); got != "createAccessKeys runLogSearch viewCollectors" {
			t.Fatalf("scopes = %q", got)
		}
		if _, err := f.store.PutRole(ctx, keystore.Role{ID: "viewer", Capabilities: []string{"runLogSearch", "createAccessKeys"}}, "test"); err != nil {
			t.Fatal(err)
		}
		eventually(t, cacheTTL+3*time.Second, "403 once viewCollectors left the role", func() bool {
			return status(t, http.MethodGet, collectors, &c) == http.StatusForbidden
		})
		echo = gatewaytest.DecodeEcho(t, request(t, http.MethodGet, f.base+"/api/v1/search/x", &c, nil))
		if got := echo.Header.Get("X-Access-Scopes"); got != "createAccessKeys runLogSearch" {
			t.Errorf("scopes after the role change = %q", got)
		}
		if _, err := f.store.PutRole(ctx, keystore.Role{ID: "viewer", Capabilities: []string{"viewCollectors", "runLogSearch", "createAccessKeys"}}, "test"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cached authentication survives a Redis restart and expires at cache_ttl", func(t *testing.T) {
		c := f.key(t, keystore.KeySpec{})
		if got := status(t, http.MethodGet, collectors, &c); got != http.StatusOK {
			t.Fatalf("status = %d", got)
		}
		f.redis.Stop(t)
		if got := status(t, http.MethodGet, collectors, &c); got != http.StatusOK {
			t.Fatalf("with Redis down: status = %d, want 200 from the cache", got)
		}
		f.redis.Restart(t) // empty: the key is gone from Redis
		if got := status(t, http.MethodGet, collectors, &c); got != http.StatusOK {
			t.Fatalf("after the restart: status = %d, want 200 from the cache", got)
		}
		took := eventually(t, cacheTTL+3*time.Second, "expiry of the cached entry", func() bool {
			return status(t, http.MethodGet, collectors, &c) == http.StatusUnauthorized
		})
		t.Logf("cached entry ended %v after the restart (cache_ttl %v)", took, cacheTTL)
	})
}

// setSecret replaces the stored hash of a key, as if its secret changed.
func setSecret(t *testing.T, f *fixture, id, secret string) {
	t.Helper()
	rdb := f.redis.Client(t)
	ctx := context.Background()
	rkey := f.prefix + ":key:{" + id + "}"
	var k keystore.Key
	raw, err := rdb.Get(ctx, rkey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.DecodeKey(raw, &k); err != nil {
		t.Fatal(err)
	}
	k.SecretHash = keystore.HashSecret(secret)
	b := keystore.EncodeKey(&k)
	if err := rdb.Set(ctx, rkey, b, 0).Err(); err != nil {
		t.Fatal(err)
	}
}
