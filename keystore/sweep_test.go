package keystore

import (
	"sync"
	"testing"
	"time"
)

// TestSweepExactlyOnceAcrossInstances runs several stores (as several
// gateway instances would) sweeping at once: every expired or unused key is
// recorded as deactivated once, with one event each.
func TestSweepExactlyOnceAcrossInstances(t *testing.T) {
	f := newFixture(t)
	var expired, unused, fresh []*Key
	for range 10 {
		k, _ := f.createKey(t, KeySpec{})
		expired = append(expired, k)
	}
	f.clock.Advance(150 * day)
	for range 10 {
		k, _ := f.createKey(t, KeySpec{})
		unused = append(unused, k)
	}
	// The second batch is used now and then (its last use is recent), the
	// third is fresh.
	f.clock.Advance(5 * day)
	for range 5 {
		k, _ := f.createKey(t, KeySpec{})
		fresh = append(fresh, k)
	}
	f.clock.Advance(26 * day) // batch one is 181 days old; batch two 31 days unused
	uses := map[string]time.Time{}
	for _, k := range fresh {
		uses[k.ID] = f.clock.Now()
	}
	if err := f.store.RecordLastUsed(f.ctx, uses); err != nil {
		t.Fatal(err)
	}

	const instances = 4
	logs := make([]*eventLog, instances)
	var wg sync.WaitGroup
	results := make([]SweepResult, instances)
	for i := range instances {
		logs[i] = &eventLog{}
		st := New(f.rdb, Options{Prefix: "ag", Now: f.clock.Now, OnEvent: logs[i].add})
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := st.Sweep(f.ctx)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()

	counts := map[string]int{}
	perKey := map[string]int{}
	for _, l := range logs {
		for _, e := range l.all() {
			counts[e.EventName]++
			perKey[e.AccessKey.AccessID]++
		}
	}
	if counts[EventKeyExpired] != len(expired) || counts[EventKeyDeactivatedUnused] != len(unused) {
		t.Errorf("events = %v, want %d expired and %d unused", counts, len(expired), len(unused))
	}
	for id, n := range perKey {
		if n != 1 {
			t.Errorf("key %s has %d sweep events", id, n)
		}
	}
	var total SweepResult
	for _, r := range results {
		total.Expired += r.Expired
		total.Unused += r.Unused
	}
	if total.Expired != len(expired) || total.Unused != len(unused) {
		t.Errorf("results add up to %+v", total)
	}
	for _, tc := range []struct {
		keys   []*Key
		reason string
	}{{expired, DisabledExpired}, {unused, DisabledUnused}} {
		for _, k := range tc.keys {
			got, err := f.store.Key(f.ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Disabled || got.DisabledReason != tc.reason {
				t.Errorf("key %s: disabled=%v reason=%q, want %q", k.ID, got.Disabled, got.DisabledReason, tc.reason)
			}
		}
	}
	for _, k := range fresh {
		if got, _ := f.store.Key(f.ctx, k.ID); got.Disabled {
			t.Errorf("fresh key %s was deactivated", k.ID)
		}
	}
	// A second sweep finds nothing more to do.
	if res, err := f.store.Sweep(f.ctx); err != nil || res.Expired+res.Unused != 0 {
		t.Errorf("second sweep = %+v, %v", res, err)
	}
}

// TestLastUsedNeverMovesBackwards: flushes from instances in any order keep
// the latest time.
func TestLastUsedNeverMovesBackwards(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{})
	now := f.clock.Now()
	for _, ts := range []time.Time{now, now.Add(-time.Hour), now.Add(-time.Minute)} {
		if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: ts}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.store.LastUsed(f.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got[k.ID].Equal(now) {
		t.Errorf("last used = %v, want %v", got[k.ID], now)
	}
	later := now.Add(time.Second)
	if err := f.store.RecordLastUsed(f.ctx, map[string]time.Time{k.ID: later}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.LastUsed(f.ctx, k.ID); !got[k.ID].Equal(later) {
		t.Errorf("last used = %v, want %v", got[k.ID], later)
	}
}

// TestPolicyChangeResetsExpiry: lowering the lifetime counts from the change,
// not from creation, and a rotation restarts the clock.
func TestPolicyChangeResetsExpiry(t *testing.T) {
	f := newFixture(t)
	f.setPolicies(t, 180, 0)
	k, secret := f.createKey(t, KeySpec{})
	other, otherSecret := f.createKey(t, KeySpec{})
	f.clock.Advance(100 * day)
	if _, err := f.store.SetLifetimeDays(f.ctx, 30, testOp); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(29 * day)
	if _, err := f.verify(k.ID, secret); err != nil {
		t.Fatalf("29 days after the change: %v", err)
	}
	nk, nsecret, err := f.store.RotateKey(f.ctx, k.ID, testOp)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * day)
	if _, err := f.verify(nk.ID, nsecret); err != nil {
		t.Fatalf("rotated key 2 days later: %v", err)
	}
	if _, err := f.verify(other.ID, otherSecret); reasonOf(t, err) != ReasonExpired {
		t.Fatalf("unrotated key 31 days after the change: want expired, got %v", err)
	}
	f.clock.Advance(29 * day)
	if _, err := f.verify(nk.ID, nsecret); reasonOf(t, err) != ReasonExpired {
		t.Fatalf("rotated key 31 days after rotation: want expired, got %v", err)
	}
}
