package keystore

import (
	"testing"
	"time"
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
