package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/accessgate/accessgate/authcache"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// testPrefix is the key prefix of the states built by newTestState.
const testPrefix = "agstate"

// newTestState starts redis-server, lets seed write to it through a store
// and then builds a shared state on it as the app does, with cache_ttl
// ttl (the default if zero). Seeding first keeps the invalidation
// messages of the seeding away from the state.
func newTestState(t *testing.T, ttl time.Duration, seed func(ctx context.Context, st *keystore.Store)) (*state, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	seed(context.Background(), keystore.New(srv.Client(t), keystore.Options{Prefix: testPrefix}))
	cfg := App{
		Redis:         []string{srv.URL()},
		KeyPrefix:     testPrefix,
		CacheTTL:      caddy.Duration(ttl),
		LastUsedFlush: caddy.Duration(time.Hour),
		SweepInterval: caddy.Duration(time.Hour),
	}.withDefaults()
	s, err := newState(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destruct() })
	// The first subscription flushes what was cached before it was up:
	// tests start once it is.
	for end := time.Now().Add(10 * time.Second); !s.subscriptionUp.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the invalidation subscription did not come up within 10s")
		}
	}
	return s, srv
}

// TestForgetOwnersBeforeAuthentications: a credential load that runs while
// an owner or role change is being dropped from the caches must read the
// new owner, never cache an authentication derived from the old one. The
// load runs from the eviction callback of the authentication cache, that
// is, right after the authentications were dropped; with the caches
// dropped in the wrong order, it found the old owner still cached and
// stored its authentication again, for up to cache_ttl.
func TestForgetOwnersBeforeAuthentications(t *testing.T) {
	deactivateOwner := func(t *testing.T, s *state) {
		rdb, key := s.rdb, testPrefix+":owner:{u1}"
		var o keystore.Owner
		raw, err := rdb.Get(context.Background(), key).Bytes()
		if err == nil {
			err = json.Unmarshal(raw, &o)
		}
		if err != nil {
			t.Fatal(err)
		}
		o.IsActive = false
		b, _ := json.Marshal(o)
		if err := rdb.Set(context.Background(), key, b, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	removeCapability := func(t *testing.T, s *state) {
		b, _ := json.Marshal(keystore.Role{ID: "viewer", Name: "viewer", Capabilities: []string{"runLogSearch"}})
		if err := s.rdb.HSet(context.Background(), testPrefix+":roles", "viewer", b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// stale reports whether a verdict still reflects the state before the
	// change.
	ownerActive := func(e *entry, err error) bool { return err == nil }
	canView := func(e *entry, err error) bool { return err == nil && e.ident.HasScope("viewCollectors") }
	tests := []struct {
		name   string
		change func(t *testing.T, s *state) // written without an announcement
		forget func(s *state)
		stale  func(e *entry, err error) bool
	}{
		{"owner message", deactivateOwner, func(s *state) { s.invalidate("owner:u1") }, ownerActive},
		{"owner changed through this instance's API", deactivateOwner, func(s *state) { apiInstance{s}.ForgetOwner("u1") }, ownerActive},
		{"all message", removeCapability, func(s *state) { s.invalidate("all") }, canView},
		{"role changed through this instance's API", removeCapability, func(s *state) { apiInstance{s}.ForgetAll() }, canView},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c cred
			s, _ := newTestState(t, 0, func(ctx context.Context, st *keystore.Store) {
				c = seedViewer(t, ctx, st, 1)[0]
			})
			ctx := context.Background()
			k := s.credKeyOf([]byte(c.id), []byte(c.secret))
			verify := func() (*entry, error) { return s.verify(ctx, k, c.id, c.secret, "192.0.2.1") }

			var armed, fired atomic.Bool
			var during error
			s.auth = authcache.New[credKey, *entry](authcache.Config[credKey]{Size: 100, TTL: time.Hour,
				OnEvict: func(r authcache.EvictReason) {
					if r == authcache.EvictInvalidated && armed.CompareAndSwap(true, false) {
						_, during = verify()
						fired.Store(true)
					}
				}})
			if e, err := verify(); err != nil || !e.ident.HasScope("viewCollectors") {
				t.Fatalf("before the change: %+v, %v", e, err)
			}
			tt.change(t, s)
			armed.Store(true)
			tt.forget(s)
			if !fired.Load() {
				t.Fatal("no authentication was dropped, so no load ran in between")
			}
			t.Logf("load in between: %v", during)
			if e, ok := s.auth.Get(k); ok && tt.stale(e, nil) {
				t.Errorf("an authentication derived from the old owner or role is cached again")
			}
			e, err := verify()
			var ae *keystore.AuthError
			if tt.stale(e, err) || err != nil && !errors.As(err, &ae) {
				t.Errorf("after the change: %+v, %v", e, err)
			}
		})
	}
}

// seedViewer creates the role viewer, its active user u1 and n keys of u1.
func seedViewer(t *testing.T, ctx context.Context, st *keystore.Store, n int) []cred {
	t.Helper()
	if _, err := st.PutRole(ctx, keystore.Role{ID: "viewer", Capabilities: []string{"viewCollectors", "runLogSearch"}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutOwner(ctx, keystore.Owner{ID: "u1", Kind: keystore.OwnerUser, Email: "u1@example.com", RoleIDs: []string{"viewer"}, IsActive: true}, "test"); err != nil {
		t.Fatal(err)
	}
	var out []cred
	for range n {
		k, secret, err := st.CreateKey(ctx, keystore.KeySpec{OwnerID: "u1", Label: "k"}, keystore.Operator{ID: "test", Interface: keystore.InterfaceCLI})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cred{k.ID, secret})
	}
	return out
}

// cred is an Access ID and its Access Key.
type cred struct{ id, secret string }

// TestPoliciesCachedUntilChanged: verifications take the key policies from
// the instance's cache, not from their Redis key, which every instance of
// a fleet would otherwise read on every cache miss; a policy change, which
// announces "all", applies at once all the same.
func TestPoliciesCachedUntilChanged(t *testing.T) {
	var creds []cred
	s, srv := newTestState(t, 1000*time.Hour, func(ctx context.Context, st *keystore.Store) {
		creds = seedViewer(t, ctx, st, 3)
	})
	ctx := context.Background()
	verify := func(c cred) *keystore.Identity {
		t.Helper()
		e, err := s.verify(ctx, s.credKeyOf([]byte(c.id), []byte(c.secret)), c.id, c.secret, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		return e.ident
	}
	created := time.Now()
	if d := verify(creds[0]).Deadline; d.Before(created.Add(29 * 24 * time.Hour)) {
		t.Fatalf("deadline under the default policies: %v, want 30 days after creation", d)
	}
	before := srv.CommandCount(t, "hgetall")
	verify(creds[1])
	if n := srv.CommandCount(t, "hgetall") - before; n != 0 {
		t.Errorf("a verification read a whole hash %d times; the policies should come from the cache", n)
	}

	st := keystore.New(srv.Client(t), keystore.Options{Prefix: testPrefix})
	if _, err := st.SetUnusedDays(ctx, 1, keystore.Operator{ID: "test", Interface: keystore.InterfaceCLI}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the policy change to empty the cache", func() bool { return s.auth.Len() == 0 })
	if d := verify(creds[2]).Deadline; d.After(time.Now().Add(25 * time.Hour)) {
		t.Errorf("deadline after the unused limit became 1 day: %v", d)
	}
}

// waitFor polls cond every 10 ms until it holds, failing the test after a
// generous 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s did not happen within 30s", what)
		}
	}
}
