package keystore

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// oldKey writes a key the way the previous version did: its record, the
// listing and its owner's set, no due index; and its last use, if any, in
// the one hash.
func oldKey(t *testing.T, f *fixture, issued time.Time, lastUsed time.Time, disabled bool) (*Key, string) {
	t.Helper()
	secret := NewAccessKey()
	k := &Key{ID: NewAccessID(), SecretHash: HashSecret(secret), Label: "old", OwnerID: testUser, OwnerKind: OwnerUser,
		CreatedAt: issued, ModifiedAt: issued, IssuedAt: issued, ActivatedAt: issued, Version: 1, Disabled: disabled}
	if disabled {
		k.DisabledReason = DisabledManual
	}
	b, _ := json.Marshal(k)
	pipe := f.rdb.Pipeline()
	pipe.Set(f.ctx, "ag:key:{"+k.ID+"}", b, 0)
	pipe.ZAdd(f.ctx, "ag:keys", redis.Z{Member: k.ID})
	pipe.SAdd(f.ctx, "ag:owner:{"+testUser+"}:keys", k.ID)
	if !lastUsed.IsZero() {
		pipe.HSet(f.ctx, "ag:lastused", k.ID, strconv.FormatInt(lastUsed.UnixMilli(), 10))
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		t.Fatal(err)
	}
	return k, secret
}

// newOldStore returns a fixture whose Redis holds no schema marker: a
// store of the previous version, with the role and user it needs.
func newOldStore(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	// The fixture migrated the empty store; its lease lasts a minute.
	if err := f.rdb.Del(f.ctx, "ag:schema", "ag:schema:compact", "ag:lock:migrate").Err(); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMigrateFromOneLastUsedHash writes a store as the previous version
// did, then starts this version on it: the first sweep migrates it, keys
// past their deadlines are deactivated, last-use times survive (and keep
// a used key alive), and the marker stops the migration from running
// again.
func TestMigrateFromOneLastUsedHash(t *testing.T) {
	f := newOldStore(t)
	now := f.clock.Now()
	expired, _ := oldKey(t, f, now.Add(-200*day), now.Add(-time.Hour), false)
	used, usedSecret := oldKey(t, f, now.Add(-40*day), now.Add(-day), false)
	unused, _ := oldKey(t, f, now.Add(-40*day), time.Time{}, false)
	disabled, _ := oldKey(t, f, now.Add(-40*day), now.Add(-35*day), true)

	log := &eventLog{}
	st := New(f.rdb, Options{Prefix: "ag", Now: f.clock.Now, OnEvent: log.add})
	// Before the migration, the last use is read from the one hash.
	if _, err := st.Verify(f.ctx, used.ID, usedSecret, VerifyOptions{}); err != nil {
		t.Fatalf("a used key before the migration: %v", err)
	}
	res, err := st.Sweep(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 1 || res.Unused != 1 {
		t.Errorf("first sweep = %+v, want 1 expired and 1 unused", res)
	}
	for id, want := range map[string]string{expired.ID: DisabledExpired, unused.ID: DisabledUnused, used.ID: "", disabled.ID: DisabledManual} {
		k, err := st.Key(f.ctx, id)
		if err != nil || k.DisabledReason != want {
			t.Errorf("key %s: %+v, %v; want disabled reason %q", id, k, err, want)
		}
	}
	if v, _ := f.rdb.Get(f.ctx, "ag:schema").Result(); v != "2" {
		t.Errorf("schema marker = %q, want 2", v)
	}
	if ttl := f.rdb.PTTL(f.ctx, "ag:lastused").Val(); ttl <= 0 || ttl > legacyLastUsedTTL {
		t.Errorf("the old hash's TTL = %v, want it to expire within %v", ttl, legacyLastUsedTTL)
	}
	// The old hash expires; nothing depends on it any more.
	f.rdb.Del(f.ctx, "ag:lastused")
	got, err := st.LastUsed(f.ctx, used.ID, disabled.ID, expired.ID)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]time.Time{used.ID: now.Add(-day), disabled.ID: now.Add(-35 * day), expired.ID: now.Add(-time.Hour)} {
		if !got[id].Equal(want) {
			t.Errorf("last use of %s after the migration = %v, want %v", id, got[id], want)
		}
	}
	other := New(f.rdb, Options{Prefix: "ag", Now: f.clock.Now})
	if _, err := other.Verify(f.ctx, used.ID, usedSecret, VerifyOptions{}); err != nil {
		t.Errorf("a used key after the migration, on another instance: %v", err)
	}
	if m := f.dueMembers(t); len(m) != 1 || m[used.ID] != 2 {
		t.Errorf("due indexes after the migration: %v, want only the used key", m)
	}
	// The used key goes unused 30 days after its last use, through the
	// due index, and the migration never runs again.
	f.clock.Advance(29*day - time.Minute)
	if res, err := st.Sweep(f.ctx); err != nil || res != (SweepResult{}) {
		t.Errorf("sweep before the used key's deadline = %+v, %v", res, err)
	}
	f.clock.Advance(time.Minute)
	if res, err := other.Sweep(f.ctx); err != nil || res.Unused != 1 || res.Scanned != 1 {
		t.Errorf("sweep at the used key's deadline = %+v, %v; want it alone read and deactivated", res, err)
	}
	if f.rdb.Exists(f.ctx, "ag:lastused").Val() != 0 {
		t.Errorf("the old hash came back")
	}
	names := map[string]int{}
	for _, e := range log.all() {
		names[e.EventName]++
	}
	if names[EventKeyExpired] != 1 || names[EventKeyDeactivatedUnused] != 1 {
		t.Errorf("events of the first instance: %v", names)
	}
}

// TestSweepBeforeMigration: while another instance holds the migration's
// lease, a sweep reads every key, so keys still expire.
func TestSweepBeforeMigration(t *testing.T) {
	f := newOldStore(t)
	now := f.clock.Now()
	expired, _ := oldKey(t, f, now.Add(-200*day), time.Time{}, false)
	used, _ := oldKey(t, f, now.Add(-40*day), now.Add(-day), false)
	holder := New(f.rdb, Options{Prefix: "ag"})
	if l, err := holder.TakeLease(f.ctx, "migrate", time.Minute); err != nil || l == nil {
		t.Fatalf("TakeLease = %v, %v", l, err)
	}
	st := New(f.rdb, Options{Prefix: "ag", Now: f.clock.Now})
	res, err := st.Sweep(f.ctx)
	if err != nil || res.Expired != 1 || res.Unused != 0 || res.Scanned != 2 {
		t.Fatalf("sweep before the migration = %+v, %v; want every key read, one expired", res, err)
	}
	if k, _ := st.Key(f.ctx, expired.ID); !k.Disabled {
		t.Error("the expired key is still enabled")
	}
	if k, _ := st.Key(f.ctx, used.ID); k.Disabled {
		t.Error("the used key was deactivated")
	}
	if f.rdb.Exists(f.ctx, "ag:schema").Val() != 0 {
		t.Error("the store was migrated under another instance's lease")
	}
	// Last uses flushed before the migration reach the one hash (read by
	// instances of the previous version) as well as the shards.
	if err := st.RecordLastUsed(f.ctx, map[string]time.Time{used.ID: now}); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.rdb.HGet(f.ctx, "ag:lastused", used.ID).Int64(); v != now.UnixMilli() {
		t.Errorf("old hash holds %d, want %d", v, now.UnixMilli())
	}
}
