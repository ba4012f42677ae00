package keystore

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// dueMembers returns, for every member of the due indexes, how many of
// the two indexes hold it.
func (f *fixture) dueMembers(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for shard := range dueShards {
		for _, key := range []string{f.store.dueExpiryKey(shard), f.store.dueUnusedKey(shard)} {
			ids, err := f.rdb.ZRange(f.ctx, key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if shardOf(id) != shard {
					t.Errorf("%s holds %s of shard %d", key, id, shardOf(id))
				}
				out[id]++
			}
		}
	}
	return out
}

// sweepTwice runs two stores' sweeps at once, as two instances would, and
// returns the sweep events they wrote.
func (f *fixture) sweepTwice(t testing.TB) []Event {
	t.Helper()
	var log eventLog
	var wg sync.WaitGroup
	for range 2 {
		st := New(f.rdb, Options{Prefix: "ag", Now: f.clock.Now, OnEvent: log.add})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.Sweep(f.ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	return log.all()
}

func (f *fixture) disable(t testing.TB, id string, disabled bool) {
	t.Helper()
	if _, err := f.store.UpdateKey(f.ctx, id, KeyUpdate{Disabled: &disabled}, testOp); err != nil {
		t.Fatalf("UpdateKey(disabled=%v): %v", disabled, err)
	}
}

// TestSweepDeactivatesExactlyTheDueKeys: for each kind of key, two
// instances sweeping at once deactivate it when, and only when, its
// deadline has passed, with exactly one event; afterwards the due indexes
// hold exactly the enabled live keys.
func TestSweepDeactivatesExactlyTheDueKeys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime int
		unused   int
		// setup makes the key under test and moves the clock; it may
		// sweep on the way to show that nothing is due yet.
		setup  func(t *testing.T, f *fixture) string
		reason string // DisabledExpired, DisabledUnused, or "" for no event
	}{
		{"expired", 180, 0, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(180*day - time.Millisecond)
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("a millisecond before its expiry: %d events", len(ev))
			}
			f.clock.Advance(time.Millisecond)
			return k.ID
		}, DisabledExpired},
		{"expired and unused counts as expired", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(181 * day)
			return k.ID
		}, DisabledExpired},
		{"unused", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(31 * day)
			return k.ID
		}, DisabledUnused},
		{"used recently", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(20 * day)
			if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(29 * day)
			return k.ID
		}, ""},
		{"unused since its last use", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(20 * day)
			if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(29 * day)
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("29 days after its last use: %d events", len(ev))
			}
			f.clock.Advance(day)
			return k.ID
		}, DisabledUnused},
		{"lifetime lowered later", 180, 0, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(100 * day)
			if _, err := f.store.SetLifetimeDays(f.ctx, 30, testOp); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(29 * day)
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("29 days after the policy change: %d events", len(ev))
			}
			f.clock.Advance(day)
			return k.ID
		}, DisabledExpired},
		{"lifetime raised later", 30, 0, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(20 * day)
			if _, err := f.store.SetLifetimeDays(f.ctx, 180, testOp); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(150 * day)
			return k.ID
		}, ""},
		{"unused limit set later", 180, 0, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(100 * day)
			if _, err := f.store.SetUnusedDays(f.ctx, 30, testOp); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(29 * day)
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("29 days after the policy change: %d events", len(ev))
			}
			f.clock.Advance(day)
			return k.ID
		}, DisabledUnused},
		{"reactivated", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(20 * day)
			f.disable(t, k.ID, true)
			f.disable(t, k.ID, false)
			f.clock.Advance(29 * day)
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("29 days after the reactivation: %d events", len(ev))
			}
			f.clock.Advance(day)
			return k.ID
		}, DisabledUnused},
		{"reactivated after the sweep dropped it", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.disable(t, k.ID, true)
			f.clock.Advance(31 * day)
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("a disabled key past its deadline: %d events", len(ev))
			}
			if n := f.dueMembers(t)[k.ID]; n != 0 {
				t.Errorf("the disabled key past its deadline is in %d due indexes, want 0", n)
			}
			f.disable(t, k.ID, false)
			f.clock.Advance(30 * day)
			return k.ID
		}, DisabledUnused},
		{"rotated", 180, 0, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.clock.Advance(100 * day)
			nk, _, err := f.store.RotateKey(f.ctx, k.ID, testOp)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(100 * day) // the old key would be 200 days old
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("100 days after the rotation: %d events (%v)", len(ev), ev)
			}
			f.clock.Advance(80 * day)
			return nk.ID
		}, DisabledExpired},
		{"disabled", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			f.disable(t, k.ID, true)
			f.clock.Advance(181 * day)
			return k.ID
		}, ""},
		{"deleted", 180, 30, func(t *testing.T, f *fixture) string {
			k, _ := f.createKey(t, KeySpec{})
			if err := f.store.DeleteKey(f.ctx, k.ID, testOp); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(181 * day)
			return k.ID
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.setPolicies(t, tc.lifetime, tc.unused)
			id := tc.setup(t, f)
			// A bystander that is not due.
			other, _ := f.createKey(t, KeySpec{})
			if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{other.ID: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			f.disable(t, other.ID, true)
			f.disable(t, other.ID, false)
			before, _ := f.store.KeyOrRetired(f.ctx, id)

			events := f.sweepTwice(t)
			var want []string
			switch tc.reason {
			case DisabledExpired:
				want = []string{EventKeyExpired}
			case DisabledUnused:
				want = []string{EventKeyDeactivatedUnused}
			}
			if len(events) != len(want) || len(want) == 1 && (events[0].EventName != want[0] || events[0].AccessKey.AccessID != id) {
				t.Fatalf("sweep events %+v, want %v for %s", events, want, id)
			}
			after, err := f.store.KeyOrRetired(f.ctx, id)
			switch {
			case tc.reason != "":
				if err != nil || !after.Disabled || after.DisabledReason != tc.reason {
					t.Errorf("key after the sweep: %+v, %v; want disabled, %s", after, err, tc.reason)
				}
			case before != nil && after != nil && (before.Disabled != after.Disabled || before.Version != after.Version):
				t.Errorf("the sweep changed a key that was not due: %+v -> %+v", before, after)
			}
			// A second sweep finds nothing to do.
			if ev := f.sweepTwice(t); len(ev) != 0 {
				t.Errorf("second sweep wrote %v", ev)
			}
			members := f.dueMembers(t)
			if members[other.ID] != 2 {
				t.Errorf("the bystander is in %d due indexes, want 2", members[other.ID])
			}
			if tc.reason != "" || tc.name == "deleted" || tc.name == "disabled" {
				if n := members[id]; n != 0 {
					t.Errorf("the key is still in %d due indexes", n)
				}
			}
		})
	}
}

// seedKeys writes n enabled keys issued and activated at at, with their
// indexes, straight to Redis (fast); it returns their Access IDs.
func (f *fixture) seedKeys(t testing.TB, n int, at time.Time) []string {
	t.Helper()
	var ids []string
	for start := 0; start < n; start += 1000 {
		pipe := f.rdb.Pipeline()
		for range min(1000, n-start) {
			k := &Key{ID: NewAccessID(), SecretHash: HashSecret(NewAccessKey()), Label: "seeded", OwnerID: testUser, OwnerKind: OwnerUser,
				CreatedAt: at, ModifiedAt: at, IssuedAt: at, ActivatedAt: at, Version: 1}
			b, _ := json.Marshal(k)
			pipe.Set(f.ctx, f.store.keyKey(k.ID), b, 0)
			pipe.ZAdd(f.ctx, f.store.keysIndex(), redis.Z{Member: k.ID})
			pipe.SAdd(f.ctx, f.store.ownerKeysKey(k.OwnerID), k.ID)
			f.store.queueIndexDue(f.ctx, pipe, k, 0)
			ids = append(ids, k.ID)
		}
		if _, err := pipe.Exec(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// cmdCounter is a go-redis hook that counts the commands a client sends,
// one per command of a pipeline.
type cmdCounter struct{ n atomic.Int64 }

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestSweepCostDoesNotGrowWithKeys counts the Redis commands of a sweep
// that finds nothing due, at 1,000 and at 20,000 keys: the same number.
func TestSweepCostDoesNotGrowWithKeys(t *testing.T) {
	f := newFixture(t)
	var counter cmdCounter
	rdb := f.srv.Client(t)
	rdb.AddHook(&counter)
	st := New(rdb, Options{Prefix: "ag", Now: f.clock.Now})
	if err := st.Migrate(f.ctx); err != nil {
		t.Fatal(err)
	}
	cost := func() int64 {
		t.Helper()
		before := counter.n.Load()
		res, err := st.Sweep(f.ctx)
		if err != nil || res != (SweepResult{}) {
			t.Fatalf("sweep = %+v, %v; want nothing due", res, err)
		}
		return counter.n.Load() - before
	}
	f.clock.Advance(200 * day) // the policies were set long ago
	f.seedKeys(t, 1000, f.clock.Now())
	f.clock.Advance(10 * day)
	cost() // the client dials its connections
	small := cost()
	f.seedKeys(t, 19000, f.clock.Now())
	large := cost()
	t.Logf("commands per sweep with nothing due: %d at 1,000 keys, %d at 20,000 keys", small, large)
	if small != large {
		t.Errorf("a sweep with nothing due costs %d commands at 1,000 keys and %d at 20,000", small, large)
	}
	if want := int64(1 + 2*dueShards); large != want {
		t.Errorf("a sweep with nothing due costs %d commands, want %d (policies, one range per shard and index)", large, want)
	}
}

// TestSweepPagesThroughLargeDueSets: more due keys in a shard than one
// page holds are all deactivated in one sweep.
func TestSweepPagesThroughLargeDueSets(t *testing.T) {
	f := newFixture(t)
	defer func(n int) { dueBatch = n }(dueBatch)
	dueBatch = 3
	f.setPolicies(t, 180, 0)
	ids := f.seedKeys(t, 400, f.clock.Now()) // about 6 per shard
	f.clock.Advance(181 * day)
	res, err := f.store.Sweep(f.ctx)
	if err != nil || res.Expired != len(ids) {
		t.Fatalf("sweep = %+v, %v; want %d expired", res, err, len(ids))
	}
	if m := f.dueMembers(t); len(m) != 0 {
		t.Errorf("%d keys left in the due indexes", len(m))
	}
}

// TestSweepAfterACrash: an instance that died between a deactivation and
// the removal from the due indexes, or between writing a record and
// indexing it, leaves work that the next sweep or repair finishes, with
// one event per key.
func TestSweepAfterACrash(t *testing.T) {
	f := newFixture(t)
	f.setPolicies(t, 180, 0)
	half, _ := f.createKey(t, KeySpec{})
	// A record written, its indexes not.
	lost := &Key{ID: NewAccessID(), SecretHash: HashSecret(NewAccessKey()), Label: "lost", OwnerID: testUser, OwnerKind: OwnerUser,
		CreatedAt: f.clock.Now(), ModifiedAt: f.clock.Now(), IssuedAt: f.clock.Now(), ActivatedAt: f.clock.Now(), Version: 1}
	b, _ := json.Marshal(lost)
	f.rdb.Set(f.ctx, f.store.keyKey(lost.ID), b, 0)
	f.clock.Advance(181 * day)

	// The deactivation committed, the removal from the indexes not.
	if done, err := f.store.deactivateBySweep(f.ctx, half.ID, ReasonExpired); err != nil || !done {
		t.Fatalf("deactivateBySweep = %v, %v", done, err)
	}
	if n := f.dueMembers(t)[half.ID]; n != 2 {
		t.Fatalf("the half-swept key is in %d due indexes, want 2", n)
	}
	res, err := f.store.Sweep(f.ctx)
	if err != nil || res.Expired != 0 {
		t.Fatalf("sweep = %+v, %v; want no new deactivation", res, err)
	}
	if n := f.dueMembers(t)[half.ID]; n != 0 {
		t.Errorf("the half-swept key is still in %d due indexes", n)
	}
	rep, err := f.store.RepairIndexes(f.ctx)
	if err != nil || rep.DueIndexed != 1 || rep.Indexed != 1 {
		t.Fatalf("repair = %+v, %v; want the lost key indexed", rep, err)
	}
	res, err = f.store.Sweep(f.ctx)
	if err != nil || res.Expired != 1 {
		t.Fatalf("sweep after the repair = %+v, %v; want the lost key expired", res, err)
	}
	perKey := map[string]int{}
	for _, e := range f.log.all() {
		if e.EventName == EventKeyExpired {
			perKey[e.AccessKey.AccessID]++
		}
	}
	if len(perKey) != 2 || perKey[half.ID] != 1 || perKey[lost.ID] != 1 {
		t.Errorf("expiry events per key: %v, want one for %s and one for %s", perKey, half.ID, lost.ID)
	}
}

// TestRepairDueIndexes: members without a live enabled record leave the
// due indexes, live enabled keys missing from them come back, and the
// last-use times of gone keys go.
func TestRepairDueIndexes(t *testing.T) {
	f := newFixture(t)
	healthy, _ := f.createKey(t, KeySpec{})
	missing, _ := f.createKey(t, KeySpec{})
	disabled, _ := f.createKey(t, KeySpec{})
	f.disable(t, disabled.ID, true)
	ghost := NewAccessID()
	sh := shardOf(missing.ID)
	f.rdb.ZRem(f.ctx, f.store.dueUnusedKey(sh), missing.ID)
	f.rdb.ZAdd(f.ctx, f.store.dueExpiryKey(shardOf(ghost)), redis.Z{Member: ghost, Score: 1})
	f.rdb.HSet(f.ctx, f.store.lastUsedKey(shardOf(ghost)), ghost, 1)
	res, err := f.store.RepairIndexes(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (RepairResult{DueIndexed: 1, DueUnindexed: 2, LastUsedRemoved: 1}) {
		t.Errorf("repair = %+v, want 1 due-indexed, 2 due-unindexed (the disabled key and the ghost), 1 last use removed", res)
	}
	m := f.dueMembers(t)
	if m[healthy.ID] != 2 || m[missing.ID] != 2 || m[disabled.ID] != 0 || m[ghost] != 0 || len(m) != 2 {
		t.Errorf("due members after the repair: %v", m)
	}
}
