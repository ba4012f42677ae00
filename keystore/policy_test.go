package keystore

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestExpiresAt(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	k := &Key{IssuedAt: t0, ActivatedAt: t0}
	tests := []struct {
		name string
		pol  Policies
		want time.Time
	}{
		{"default lifetime from issue", Policies{LifetimeDays: 180}, t0.Add(180 * day)},
		{"zero means never", Policies{LifetimeDays: 0}, time.Time{}},
		{"zero means never even after a change", Policies{LifetimeDays: 0, LifetimeSetAt: t0.Add(day)}, time.Time{}},
		{"policy changed before issue", Policies{LifetimeDays: 10, LifetimeSetAt: t0.Add(-day)}, t0.Add(10 * day)},
		{"policy change resets expiry", Policies{LifetimeDays: 10, LifetimeSetAt: t0.Add(50 * day)}, t0.Add(60 * day)},
		{"policy changed at issue", Policies{LifetimeDays: 365, LifetimeSetAt: t0}, t0.Add(365 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pol.ExpiresAt(k); !got.Equal(tt.want) {
				t.Fatalf("ExpiresAt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnusedAt(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	k := &Key{IssuedAt: t0.Add(-100 * day), ActivatedAt: t0}
	tests := []struct {
		name     string
		pol      Policies
		lastUsed time.Time
		want     time.Time
	}{
		{"never used: from activation", Policies{UnusedDays: 30}, time.Time{}, t0.Add(30 * day)},
		{"used after activation", Policies{UnusedDays: 30}, t0.Add(5 * day), t0.Add(35 * day)},
		{"used before reactivation", Policies{UnusedDays: 30}, t0.Add(-5 * day), t0.Add(30 * day)},
		{"policy change resets the clock", Policies{UnusedDays: 30, UnusedSetAt: t0.Add(40 * day)}, t0.Add(5 * day), t0.Add(70 * day)},
		{"older policy change is ignored", Policies{UnusedDays: 7, UnusedSetAt: t0.Add(-day)}, time.Time{}, t0.Add(7 * day)},
		{"zero means never", Policies{UnusedDays: 0}, t0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pol.UnusedAt(k, tt.lastUsed); !got.Equal(tt.want) {
				t.Fatalf("UnusedAt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParsePolicies(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)
	tests := []struct {
		name string
		h    map[string]string
		want Policies
	}{
		{"defaults", nil, Policies{LifetimeDays: 180, UnusedDays: 30}},
		{"zero is kept", map[string]string{"lifetimeDays": "0", "unusedDays": "0"}, Policies{}},
		{"set", map[string]string{"lifetimeDays": "365", "lifetimeSetAt": "1735787045006", "unusedDays": "7", "unusedSetAt": "1735787045006"},
			Policies{LifetimeDays: 365, LifetimeSetAt: at, UnusedDays: 7, UnusedSetAt: at}},
		{"garbage falls back", map[string]string{"lifetimeDays": "x", "unusedDays": ""}, Policies{LifetimeDays: 180, UnusedDays: 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parsePolicies(tt.h); got != tt.want {
				t.Fatalf("parsePolicies = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPoliciesDefaults(t *testing.T) {
	f := newFixture(t)
	p, err := f.store.Policies(f.ctx)
	if err != nil || p.LifetimeDays != 180 || p.UnusedDays != 30 || !p.LifetimeSetAt.IsZero() {
		t.Fatalf("Policies = %+v, %v", p, err)
	}
}

// TestSetLifetimeDaysMovesEveryExpiry: one HSET moves the expiry of every
// key, and no key record is rewritten.
func TestSetLifetimeDaysMovesEveryExpiry(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.SetUnusedDays(f.ctx, 0, testOp); err != nil {
		t.Fatal(err)
	}
	var keys []*Key
	secrets := map[string]string{}
	for range 5 {
		k, s := f.createKey(t, KeySpec{})
		keys = append(keys, k)
		secrets[k.ID] = s
		f.clock.Advance(30 * day)
	}
	records := map[string]string{}
	for _, k := range keys {
		records[k.ID] = f.rawRecord(t, k.ID)
	}
	hsets := f.srv.CommandCount(t, "hset")
	setAt := f.clock.Now()
	p, err := f.store.SetLifetimeDays(f.ctx, 365, testOp)
	if err != nil {
		t.Fatalf("SetLifetimeDays: %v", err)
	}
	if got := f.srv.CommandCount(t, "hset") - hsets; got != 1 {
		t.Errorf("%d HSETs, want 1", got)
	}
	if p.LifetimeDays != 365 || !p.LifetimeSetAt.Equal(setAt) {
		t.Errorf("Policies = %+v", p)
	}
	for _, k := range keys {
		if got := f.rawRecord(t, k.ID); got != records[k.ID] {
			t.Errorf("record of %s rewritten", k.ID)
		}
		if got := p.ExpiresAt(k); !got.Equal(setAt.Add(365 * day)) {
			t.Errorf("%s expires %v, want %v", k.ID, got, setAt.Add(365*day))
		}
	}
	// The oldest key was 150 days old: it now works until 365 days after
	// the change, and not a millisecond longer.
	f.clock.Set(setAt.Add(365*day - time.Millisecond))
	for _, k := range keys {
		id, err := f.verify(k.ID, secrets[k.ID])
		if err != nil {
			t.Fatalf("Verify %s before the new expiry: %v", k.ID, err)
		}
		if !id.Deadline.Equal(setAt.Add(365 * day)) {
			t.Errorf("Deadline %v", id.Deadline)
		}
	}
	f.clock.Advance(time.Millisecond)
	for _, k := range keys {
		if _, err := f.verify(k.ID, secrets[k.ID]); err == nil || reasonOf(t, err) != ReasonExpired {
			t.Errorf("Verify %s at the new expiry: %v, want expired", k.ID, err)
		}
	}
}

func TestSetPolicyValidation(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		set  func(int) (Policies, error)
		days int
		ok   bool
	}{
		{"lifetime -1", func(d int) (Policies, error) { return f.store.SetLifetimeDays(f.ctx, d, testOp) }, -1, false},
		{"lifetime 366", func(d int) (Policies, error) { return f.store.SetLifetimeDays(f.ctx, d, testOp) }, 366, false},
		{"unused -1", func(d int) (Policies, error) { return f.store.SetUnusedDays(f.ctx, d, testOp) }, -1, false},
		{"unused 366", func(d int) (Policies, error) { return f.store.SetUnusedDays(f.ctx, d, testOp) }, 366, false},
		{"lifetime 0", func(d int) (Policies, error) { return f.store.SetLifetimeDays(f.ctx, d, testOp) }, 0, true},
		{"lifetime 365", func(d int) (Policies, error) { return f.store.SetLifetimeDays(f.ctx, d, testOp) }, 365, true},
		{"unused 1", func(d int) (Policies, error) { return f.store.SetUnusedDays(f.ctx, d, testOp) }, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dumpDB(t, f.rdb)
			n := len(f.log.all())
			_, err := tt.set(tt.days)
			if tt.ok {
				if err != nil {
					t.Fatalf("rejected %d: %v", tt.days, err)
				}
				if names := f.log.names()[n:]; len(names) != 1 || names[0] != EventPolicyUpdated {
					t.Errorf("events %q", names)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Problems[0].Code != "policy:invalid_days" {
				t.Fatalf("accepted %d: %v", tt.days, err)
			}
			if fmt.Sprint(dumpDB(t, f.rdb)) != fmt.Sprint(before) || len(f.log.all()) != n {
				t.Error("a rejected policy changed Redis or wrote an event")
			}
		})
	}
}
