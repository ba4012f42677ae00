package keystore

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// TestUpgradeWindow migrates a store of the previous version and checks
// what this version writes while instances of that version may still
// run: records they can decode (the full layout, read with
// encoding/json as they do) and last uses in the schema-1 hash too; and,
// once the window has passed, the compact layout. A store migrated empty
// writes the compact layout at once.
func TestUpgradeWindow(t *testing.T) {
	f := newOldStore(t)
	now := f.clock.Now()
	old, _ := oldKey(t, f, now.Add(-day), time.Time{}, false)
	st := New(f.rdb, Options{Prefix: "ag", Now: f.clock.Now})
	if err := st.Migrate(f.ctx); err != nil {
		t.Fatal(err)
	}
	if at, err := f.rdb.Get(f.ctx, "ag:schema:compact").Int64(); err != nil || at != now.Add(upgradeWindow).UnixMilli() {
		t.Fatalf("compact marker = %d, %v; want the migration time plus %v", at, err, upgradeWindow)
	}

	// What an instance of the previous version reads of a record.
	oldRead := func(id string) Key {
		t.Helper()
		raw, err := f.rdb.Get(f.ctx, "ag:key:{"+id+"}").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var k Key
		if err := json.Unmarshal(raw, &k); err != nil {
			t.Fatalf("the previous version cannot decode %s: %v", raw, err)
		}
		return k
	}
	k, _, err := st.CreateKey(f.ctx, KeySpec{Label: "new", OwnerID: testUser}, testOp)
	if err != nil {
		t.Fatal(err)
	}
	if got := oldRead(k.ID); got.ID != k.ID || got.SecretHash != k.SecretHash || !got.IssuedAt.Equal(k.IssuedAt) {
		t.Errorf("during the window the previous version reads %+v, want the key %s", got, k.ID)
	}
	if _, err := st.UpdateKey(f.ctx, old.ID, KeyUpdate{Label: new("renamed")}, testOp); err != nil {
		t.Fatal(err)
	}
	if got := oldRead(old.ID); got.ID != old.ID || got.Label != "renamed" {
		t.Errorf("an updated key during the window reads %+v in the previous version", got)
	}
	used := now.Add(-time.Minute).Truncate(time.Millisecond)
	if err := st.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: used}); err != nil {
		t.Fatal(err)
	}
	if ms, _ := f.rdb.HGet(f.ctx, "ag:lastused", k.ID).Int64(); ms != used.UnixMilli() {
		t.Errorf("last use in the schema-1 hash during the window = %d, want %d", ms, used.UnixMilli())
	}

	// A use an instance of the previous version recorded in its hash
	// only reaches the shards at the next repair.
	later := now.Truncate(time.Millisecond)
	f.rdb.HSet(f.ctx, "ag:lastused", k.ID, strconv.FormatInt(later.UnixMilli(), 10))
	if _, err := st.RepairIndexes(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := st.LastUsed(f.ctx, k.ID); err != nil || !got[k.ID].Equal(later) {
		t.Errorf("last use after the repair = %v, %v; want %v from the schema-1 hash", got[k.ID], err, later)
	}

	// After the window: the compact layout, and the schema-1 hash left alone.
	f.clock.Advance(upgradeWindow)
	st.compactChecked.Store(0)
	if _, err := st.UpdateKey(f.ctx, k.ID, KeyUpdate{Label: new("compact")}, testOp); err != nil {
		t.Fatal(err)
	}
	if raw := f.rdb.Get(f.ctx, "ag:key:{"+k.ID+"}").Val(); !isCompact(raw) {
		t.Errorf("after the window the record is %s, want the compact layout", raw)
	}
	f.rdb.Del(f.ctx, "ag:lastused")
	if err := st.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if f.rdb.Exists(f.ctx, "ag:lastused").Val() != 0 {
		t.Error("after the window a last use went to the schema-1 hash")
	}

	// A store migrated empty has no instance of the previous version to
	// wait for.
	fresh := newFixture(t)
	fk, _ := fresh.createKey(t, KeySpec{Label: "fresh", OwnerID: testUser})
	if raw := fresh.rdb.Get(fresh.ctx, "ag:key:{"+fk.ID+"}").Val(); !isCompact(raw) {
		t.Errorf("a store migrated empty wrote %s, want the compact layout", raw)
	}
}
