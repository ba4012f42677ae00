package keystore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRepairIndexes: records missing from the indexes are re-indexed, index
// entries without a record are removed, and abandoned pending records are
// deleted once old, while healthy keys are left alone.
func TestRepairIndexes(t *testing.T) {
	f := newFixture(t)
	healthy, _ := f.createKey(t, KeySpec{})
	unlisted, _ := f.createKey(t, KeySpec{})
	ghost, _ := f.createKey(t, KeySpec{})
	// A crash between record and index writes.
	f.rdb.ZRem(f.ctx, f.store.keysIndex(), unlisted.ID)
	f.rdb.SRem(f.ctx, f.store.ownerKeysKey(testUser), unlisted.ID)
	// A record lost with its index entry still there.
	f.rdb.Del(f.ctx, f.store.keyKey(ghost.ID))
	// A rotation that stopped after writing its pending record.
	pending := Key{ID: NewAccessID(), SecretHash: HashSecret(NewAccessKey()), Label: "p", OwnerID: testUser, OwnerKind: OwnerUser,
		Pending: true, ModifiedAt: f.clock.Now(), Version: 1}
	b, _ := json.Marshal(pending)
	f.rdb.Set(f.ctx, f.store.keyKey(pending.ID), b, 0)

	res, err := f.store.RepairIndexes(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (RepairResult{Indexed: 1, Unindexed: 1, DueUnindexed: 1}) {
		t.Errorf("first repair = %+v, want 1 indexed, 1 unindexed (also from the due indexes), pending kept while young", res)
	}
	page, err := f.store.ListKeys(f.ctx, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, k := range page.Keys {
		got[k.ID] = true
	}
	if !got[healthy.ID] || !got[unlisted.ID] || got[ghost.ID] || len(got) != 2 {
		t.Errorf("listed %v, want the healthy and the re-indexed key only", got)
	}
	if n, _ := f.rdb.ZCard(f.ctx, f.store.keysIndex()).Result(); n != 2 {
		t.Errorf("index holds %d entries, want 2", n)
	}
	owned, _ := f.store.KeysOfOwner(f.ctx, testUser)
	if len(owned) != 2 {
		t.Errorf("owner index lists %d keys, want 2", len(owned))
	}

	f.clock.Advance(pendingMaxAge + time.Minute)
	res, err = f.store.RepairIndexes(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (RepairResult{PendingRemoved: 1}) {
		t.Errorf("second repair = %+v, want the old pending record removed", res)
	}
	if n, _ := f.rdb.Exists(f.ctx, f.store.keyKey(pending.ID)).Result(); n != 0 {
		t.Errorf("abandoned pending record still stored")
	}
}

// TestRepairKeepsUnreadableRecords: a record that is there but cannot be
// decoded is not taken for a key gone; the repair says so and leaves its
// index entries.
func TestRepairKeepsUnreadableRecords(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{})
	f.rdb.Set(f.ctx, f.store.keyKey(k.ID), `{"v":2,"i":`, 0)
	if _, err := f.store.RepairIndexes(f.ctx); err == nil || !strings.Contains(err.Error(), k.ID) {
		t.Fatalf("repair with an unreadable record: %v, want an error naming %s", err, k.ID)
	}
	if _, err := f.rdb.ZScore(f.ctx, f.store.keysIndex(), k.ID).Result(); err != nil {
		t.Errorf("the unreadable key left the listing: %v", err)
	}
	if m := f.dueMembers(t); m[k.ID] != 2 {
		t.Errorf("the unreadable key's due entries: %v, want both kept", m)
	}
}
