package keystore

import (
	"context"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/redistest"
)

// TestLastUsedOfGoneKeys flushes last-use times of keys that were deleted
// or rotated out after the uses were gathered: the hash of last-use times
// must not get their fields back, and a field left by a flush that raced
// the deletion is removed by the index repair.
func TestLastUsedOfGoneKeys(t *testing.T) {
	f := newFixture(t)
	live, _ := f.createKey(t, KeySpec{})
	deleted, _ := f.createKey(t, KeySpec{})
	rotated, _ := f.createKey(t, KeySpec{})
	used := f.clock.Now()
	uses := map[string]time.Time{live.ID: used, deleted.ID: used, rotated.ID: used}
	if err := f.store.RecordLastUsed(f.ctx, uses); err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteKey(f.ctx, deleted.ID, testOp); err != nil {
		t.Fatal(err)
	}
	successor, _, err := f.store.RotateKey(f.ctx, rotated.ID, testOp)
	if err != nil {
		t.Fatal(err)
	}
	// Uses gathered before the deletion and the rotation, flushed after.
	uses = map[string]time.Time{live.ID: used.Add(time.Second), deleted.ID: used.Add(time.Second), rotated.ID: used.Add(time.Second)}
	if err := f.store.RecordLastUsed(f.ctx, uses); err != nil {
		t.Fatal(err)
	}
	fields := f.lastUsedFields(t)
	if len(fields) != 1 || fields[0] != live.ID {
		t.Errorf("last-use fields after the flush: %v, want only the live key %s (deleted %s, rotated %s)", fields, live.ID, deleted.ID, rotated.ID)
	}
	got, err := f.store.LastUsed(f.ctx, live.ID)
	if err != nil || !got[live.ID].Equal(used.Add(time.Second)) {
		t.Errorf("last use of the live key = %v, %v; want %v", got[live.ID], err, used.Add(time.Second))
	}

	// A flush that checked the key just before its deletion.
	if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{successor.ID: used}); err != nil {
		t.Fatal(err)
	}
	gone := NewAccessID()
	f.rdb.HSet(f.ctx, f.store.lastUsedKey(shardOf(gone)), gone, used.UnixMilli())
	f.rdb.HSet(f.ctx, f.store.lastUsedKey(shardOf(deleted.ID)), deleted.ID, used.UnixMilli())
	res, err := f.store.RepairIndexes(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.LastUsedRemoved != 2 {
		t.Errorf("repair removed %d last-use times, want 2: %+v", res.LastUsedRemoved, res)
	}
	fields = f.lastUsedFields(t)
	want := map[string]bool{live.ID: true, successor.ID: true}
	if len(fields) != len(want) || !want[fields[0]] || !want[fields[1]] {
		t.Errorf("last-use fields after the repair: %v, want %v", fields, want)
	}
}

// lastUsedFields returns the Access IDs of every shard's last-use hash.
func (f *fixture) lastUsedFields(t testing.TB) []string {
	t.Helper()
	var out []string
	for shard := range dueShards {
		ids, err := f.rdb.HKeys(f.ctx, f.store.lastUsedKey(shard)).Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids...)
	}
	return out
}

// TestLastUsedOnCluster flushes last uses on a 3-master Redis Cluster:
// the shards of last-use times spread over the masters, times never move
// back, a deleted key gets none back, and a sweep across the masters
// deactivates exactly the unused keys.
func TestLastUsedOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	cc := cl.Client(t)
	ctx := context.Background()
	clock := newFakeClock(time.Now())
	log := &eventLog{}
	st := New(cc, Options{Prefix: "agc", Now: clock.Now, OnEvent: log.add})
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutRole(ctx, Role{ID: testRole, Capabilities: testCaps}, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutOwner(ctx, Owner{ID: testUser, Kind: OwnerUser, Email: testEmail, RoleIDs: []string{testRole}, IsActive: true}, "admin"); err != nil {
		t.Fatal(err)
	}
	var keys []*Key
	for range 60 {
		k, _, err := st.CreateKey(ctx, KeySpec{Label: "c", OwnerID: testUser}, testOp)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	clock.Advance(20 * day)
	used := clock.Now()
	uses := map[string]time.Time{}
	for _, k := range keys[:40] {
		uses[k.ID] = used
	}
	if err := st.RecordLastUsed(ctx, uses); err != nil {
		t.Fatal(err)
	}
	// Older times flushed later never win; a deleted key gets none.
	gone := keys[39]
	if err := st.DeleteKey(ctx, gone.ID, testOp); err != nil {
		t.Fatal(err)
	}
	older := map[string]time.Time{}
	for id := range uses {
		older[id] = used.Add(-time.Hour)
	}
	if err := st.RecordLastUsed(ctx, older); err != nil {
		t.Fatal(err)
	}
	got, err := st.LastUsed(ctx, idsOf(keys)...)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		want := time.Time{}
		if i < 39 {
			want = used
		}
		if !got[k.ID].Equal(want) {
			t.Errorf("last use of key %d = %v, want %v", i, got[k.ID], want)
		}
	}
	masters := map[string]int{}
	for shard := range dueShards {
		if n, err := cc.HLen(ctx, st.lastUsedKey(shard)).Result(); err != nil || n == 0 {
			continue
		}
		c, err := cc.MasterForKey(ctx, st.lastUsedKey(shard))
		if err != nil {
			t.Fatal(err)
		}
		masters[c.Options().Addr]++
	}
	t.Logf("shards holding last uses, by master: %v", masters)
	if len(masters) < 2 {
		t.Errorf("last uses on %d master(s), want them spread over several", len(masters))
	}

	clock.Advance(11 * day) // keys never used: 31 days since creation
	res, err := st.Sweep(ctx)
	if err != nil || res.Unused != 20 || res.Expired != 0 {
		t.Fatalf("sweep = %+v, %v; want the 20 keys never used deactivated", res, err)
	}
	for i, k := range keys[:39] {
		if got, _ := st.Key(ctx, k.ID); got.Disabled {
			t.Errorf("used key %d was deactivated", i)
		}
	}
	if rep, err := st.RepairIndexes(ctx); err != nil || rep != (RepairResult{}) {
		t.Errorf("repair on the cluster = %+v, %v; want nothing to repair", rep, err)
	}

	// The migration on a cluster: a key as the previous version left it
	// (no due entries, its last use in the one hash).
	old := keys[0]
	sh := shardOf(old.ID)
	oldUse := clock.Now()
	for _, err := range []error{
		cc.Del(ctx, "agc:schema").Err(),
		cc.Del(ctx, "agc:lock:migrate").Err(),
		cc.ZRem(ctx, st.dueExpiryKey(sh), old.ID).Err(),
		cc.ZRem(ctx, st.dueUnusedKey(sh), old.ID).Err(),
		cc.HSet(ctx, "agc:lastused", old.ID, oldUse.UnixMilli()).Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	upgraded := New(cc, Options{Prefix: "agc", Now: clock.Now})
	if err := upgraded.Migrate(ctx); err != nil {
		t.Fatalf("Migrate on the cluster: %v", err)
	}
	if got, _ := upgraded.LastUsed(ctx, old.ID); !got[old.ID].Equal(oldUse) {
		t.Errorf("last use after the migration on the cluster = %v, want %v", got[old.ID], oldUse)
	}
	if score, err := cc.ZScore(ctx, st.dueUnusedKey(sh), old.ID).Result(); err != nil || int64(score) != oldUse.UnixMilli() {
		t.Errorf("unused score after the migration = %v, %v; want %d", score, err, oldUse.UnixMilli())
	}
}

// TestLastUseOfADeactivatedKey: a use flushed just after the key was
// deactivated by hand is recorded (the key stays in the unused index
// until the sweep or the repair); once the sweep has dropped the key, a
// late use is not.
func TestLastUseOfADeactivatedKey(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{})
	used := f.clock.Now()
	f.disable(t, k.ID, true)
	if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: used}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.LastUsed(f.ctx, k.ID); !got[k.ID].Equal(used) {
		t.Errorf("last use flushed after the deactivation = %v, want %v", got[k.ID], used)
	}
	f.clock.Advance(31 * day)
	if _, err := f.store.Sweep(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.LastUsed(f.ctx, k.ID); !got[k.ID].Equal(used) {
		t.Errorf("last use after the sweep dropped the key = %v, want it kept at %v", got[k.ID], used)
	}
}
