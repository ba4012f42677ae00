package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t.UTC().Truncate(time.Millisecond)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// eventLog records the events handed to Options.OnEvent.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

func (l *eventLog) names() []string {
	var out []string
	for _, e := range l.all() {
		out = append(out, e.EventName)
	}
	return out
}

// fixture is a Store on a private redis-server with a fake clock, a role
// and an active user.
type fixture struct {
	srv   *redistest.Server
	rdb   *redis.Client
	store *Store
	clock *fakeClock
	log   *eventLog
	ctx   context.Context
}

const (
	testRole  = "analyst"
	testUser  = "U0001"
	testEmail = "ada@example.com"
)

var (
	testCaps = []string{"manageCollectors", "runLogSearch", "viewCollectors"}
	testOp   = Operator{ID: "admin", Interface: InterfaceAPI}
)

// newFixture starts redis and a store whose clock starts at the current
// wall-clock time, so that absolute Redis expiries written by the store
// behave as they do in production.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	f := &fixture{srv: srv, rdb: rdb, clock: newFakeClock(time.Now()), log: &eventLog{}, ctx: context.Background()}
	f.store = New(rdb, Options{Prefix: "ag", Now: f.clock.Now, RotationGrace: 5 * time.Minute, OnEvent: f.log.add})
	if err := f.store.Migrate(f.ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := f.store.PutRole(f.ctx, Role{ID: testRole, Capabilities: testCaps}, "admin"); err != nil {
		t.Fatalf("PutRole: %v", err)
	}
	f.putUser(t, testUser, true)
	return f
}

func (f *fixture) putUser(t testing.TB, id string, active bool) {
	t.Helper()
	if _, err := f.store.PutOwner(f.ctx, Owner{ID: id, Kind: OwnerUser, Email: testEmail, RoleIDs: []string{testRole}, IsActive: active}, "admin"); err != nil {
		t.Fatalf("PutOwner(%s): %v", id, err)
	}
}

func (f *fixture) createKey(t testing.TB, spec KeySpec) (*Key, string) {
	t.Helper()
	if spec.Label == "" {
		spec.Label = "test key"
	}
	if spec.OwnerID == "" {
		spec.OwnerID = testUser
	}
	k, secret, err := f.store.CreateKey(f.ctx, spec, testOp)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k, secret
}

func (f *fixture) verify(id, secret string) (*Identity, error) {
	return f.store.Verify(f.ctx, id, secret, VerifyOptions{})
}

func (f *fixture) rawRecord(t testing.TB, id string) string {
	t.Helper()
	v, err := f.rdb.Get(f.ctx, f.store.keyKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("GET record: %v", err)
	}
	return v
}

func (f *fixture) setPolicies(t testing.TB, lifetime, unused int) {
	t.Helper()
	if _, err := f.store.SetLifetimeDays(f.ctx, lifetime, testOp); err != nil {
		t.Fatalf("SetLifetimeDays(%d): %v", lifetime, err)
	}
	if _, err := f.store.SetUnusedDays(f.ctx, unused, testOp); err != nil {
		t.Fatalf("SetUnusedDays(%d): %v", unused, err)
	}
}

// reasonOf returns the Reason of an *AuthError, failing on other errors.
func reasonOf(t testing.TB, err error) Reason {
	t.Helper()
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("want *AuthError, got %T %v", err, err)
	}
	return ae.Reason
}

// dumpDB returns every key of the database with its type and a rendering
// of its whole value.
func dumpDB(t testing.TB, rdb *redis.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", key, err)
		}
		var val string
		switch typ {
		case "string":
			val, err = rdb.Get(ctx, key).Result()
		case "hash":
			var h map[string]string
			h, err = rdb.HGetAll(ctx, key).Result()
			val = renderSorted(h)
		case "set":
			var m []string
			m, err = rdb.SMembers(ctx, key).Result()
			sort.Strings(m)
			val = strings.Join(m, "\n")
		case "zset":
			var m []redis.Z
			m, err = rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
			val = fmt.Sprint(m)
		case "list":
			var m []string
			m, err = rdb.LRange(ctx, key, 0, -1).Result()
			val = strings.Join(m, "\n")
		case "stream":
			var m []redis.XMessage
			m, err = rdb.XRange(ctx, key, "-", "+").Result()
			var b strings.Builder
			for _, x := range m {
				b.WriteString(x.ID)
				b.WriteString(renderSorted(x.Values))
				b.WriteByte('\n')
			}
			val = b.String()
		case "none":
			continue
		default:
			t.Fatalf("unexpected type %s of %s", typ, key)
		}
		if err != nil {
			t.Fatalf("reading %s %s: %v", typ, key, err)
		}
		out[key] = typ + ":" + val
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return out
}

func renderSorted[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v;", k, m[k])
	}
	return b.String()
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }
