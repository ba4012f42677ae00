package keystore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeyDeadline(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	grace := t0.Add(5 * time.Minute)
	pol := Policies{LifetimeDays: 180, UnusedDays: 30}
	tests := []struct {
		name       string
		k          Key
		pol        Policies
		lastUsed   time.Time
		now        time.Time
		want       time.Time
		wantReason Reason
	}{
		{"fresh: unused first", Key{IssuedAt: t0, ActivatedAt: t0}, pol, time.Time{}, t0, t0.Add(30 * day), ""},
		{"used: expiry first", Key{IssuedAt: t0, ActivatedAt: t0}, pol, t0.Add(170 * day), t0.Add(170 * day), t0.Add(180 * day), ""},
		{"never", Key{IssuedAt: t0, ActivatedAt: t0}, Policies{}, time.Time{}, t0.Add(1000 * day), time.Time{}, ""},
		{"expired", Key{IssuedAt: t0, ActivatedAt: t0}, pol, t0.Add(179 * day), t0.Add(180 * day), time.Time{}, ReasonExpired},
		{"unused", Key{IssuedAt: t0, ActivatedAt: t0}, pol, time.Time{}, t0.Add(30 * day), time.Time{}, ReasonUnused},
		{"marked expired", Key{IssuedAt: t0, ActivatedAt: t0, Disabled: true, DisabledReason: DisabledExpired}, pol, time.Time{}, t0, time.Time{}, ReasonExpired},
		{"marked unused", Key{IssuedAt: t0, ActivatedAt: t0, Disabled: true, DisabledReason: DisabledUnused}, pol, time.Time{}, t0, time.Time{}, ReasonUnused},
		{"deactivated", Key{IssuedAt: t0, ActivatedAt: t0, Disabled: true, DisabledReason: DisabledManual}, pol, time.Time{}, t0, time.Time{}, ReasonDisabled},
		{"in grace", Key{IssuedAt: t0, ActivatedAt: t0, ReplacedBy: "su000000000001", GraceUntil: grace}, pol, time.Time{}, t0, grace, ""},
		{"grace over", Key{IssuedAt: t0, ActivatedAt: t0, ReplacedBy: "su000000000001", GraceUntil: grace}, pol, time.Time{}, grace, time.Time{}, ReasonRotated},
		// A key rotated out a minute before it expires must not outlive its expiry.
		{"in grace, expiry first", Key{IssuedAt: t0.Add(-180*day + time.Minute), ActivatedAt: t0, ReplacedBy: "su000000000001", GraceUntil: grace}, pol, t0, t0, t0.Add(time.Minute), ""},
		// A key rotated out after it expired must not work again.
		{"in grace, already expired", Key{IssuedAt: t0.Add(-181 * day), ActivatedAt: t0, ReplacedBy: "su000000000001", GraceUntil: grace}, pol, t0, t0, time.Time{}, ReasonExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := keyDeadline(&tt.k, tt.pol, tt.lastUsed, tt.now)
			if reason != tt.wantReason || !got.Equal(tt.want) {
				t.Fatalf("keyDeadline = %v, %q; want %v, %q", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestVerifySucceedsWithEffectiveScopes(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		scopes []string
		want   []string
	}{
		{"default scope", nil, testCaps},
		{"intersection", []string{"viewCollectors", "manageAccessKeys"}, []string{"viewCollectors"}},
		{"disjoint", []string{"manageOrgSettings"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, secret := f.createKey(t, KeySpec{Label: tt.name, Scopes: tt.scopes, CORSHeaders: []string{"https://App.example.com:443/"}})
			id, err := f.verify(k.ID, secret)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if strings.Join(id.Scopes, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Scopes = %q, want %q", id.Scopes, tt.want)
			}
			if id.AccessID != k.ID || id.OwnerID != testUser || id.OwnerKind != OwnerUser || id.Email != testEmail || id.Label != tt.name {
				t.Errorf("identity = %+v", id)
			}
			if strings.Join(id.Allowlist, " ") != "https://app.example.com" {
				t.Errorf("Allowlist = %q", id.Allowlist)
			}
			for _, s := range tt.want {
				if !id.HasScope(s) {
					t.Errorf("HasScope(%q) = false", s)
				}
			}
			if id.HasScope("manageAccessKeys") {
				t.Error("HasScope(manageAccessKeys) = true for a capability the owner lacks")
			}
		})
	}
}

func TestVerifyFailureReasons(t *testing.T) {
	tests := []struct {
		name string
		// act prepares the failure and returns the credential to present.
		act  func(t *testing.T, f *fixture, k *Key, secret string) (string, string)
		want Reason
	}{
		{"malformed: bad checksum", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			c := byte('A')
			if s[10] == c {
				c = 'B'
			}
			return k.ID, s[:10] + string(c) + s[11:]
		}, ReasonMalformed},
		{"malformed: bad access id", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			return "xx" + k.ID[2:], s
		}, ReasonMalformed},
		{"malformed: empty", func(t *testing.T, f *fixture, k *Key, s string) (string, string) { return "", "" }, ReasonMalformed},
		{"unknown", func(t *testing.T, f *fixture, k *Key, s string) (string, string) { return NewAccessID(), s }, ReasonUnknown},
		{"wrong secret", func(t *testing.T, f *fixture, k *Key, s string) (string, string) { return k.ID, NewAccessKey() }, ReasonWrongSecret},
		{"disabled", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp); err != nil {
				t.Fatal(err)
			}
			return k.ID, s
		}, ReasonDisabled},
		{"expired after 180 days", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			f.clock.Advance(180 * day)
			return k.ID, s
		}, ReasonExpired},
		{"expired after 180 days although used daily", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			for range 180 {
				f.clock.Advance(day)
				if err := f.rdb.HSet(f.ctx, f.store.lastUsedKey(shardOf(k.ID)), k.ID, f.clock.Now().UnixMilli()).Err(); err != nil {
					t.Fatal(err)
				}
			}
			return k.ID, s
		}, ReasonExpired},
		{"unused after 30 days", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			f.clock.Advance(30 * day)
			return k.ID, s
		}, ReasonUnused},
		{"owner inactive", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			f.putUser(t, testUser, false)
			return k.ID, s
		}, ReasonOwnerInactive},
		{"owner deleted", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			if err := f.rdb.Del(f.ctx, f.store.ownerKey(testUser)).Err(); err != nil {
				t.Fatal(err)
			}
			return k.ID, s
		}, ReasonOwnerInactive},
		{"rotated after grace", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(5 * time.Minute)
			return k.ID, s
		}, ReasonRotated},
		{"deleted", func(t *testing.T, f *fixture, k *Key, s string) (string, string) {
			if err := f.store.DeleteKey(f.ctx, k.ID, testOp); err != nil {
				t.Fatal(err)
			}
			return k.ID, s
		}, ReasonUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			k, secret := f.createKey(t, KeySpec{})
			if _, err := f.verify(k.ID, secret); err != nil {
				t.Fatalf("Verify before: %v", err)
			}
			id, s := tt.act(t, f, k, secret)
			got, err := f.verify(id, s)
			if err == nil {
				t.Fatalf("Verify succeeded: %+v", got)
			}
			if r := reasonOf(t, err); r != tt.want {
				t.Fatalf("Reason = %q, want %q", r, tt.want)
			}
			var ae *AuthError
			errors.As(err, &ae)
			if ae.AccessID != id {
				t.Errorf("AuthError.AccessID = %q, want %q", ae.AccessID, id)
			}
		})
	}
}

// TestVerifyMalformedMakesNoRedisCall checks that a bad checksum is
// rejected before any I/O.
func TestVerifyMalformedMakesNoRedisCall(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{})
	bad := secret[:63] + string(base62[(base62Index[secret[63]]+1)%62])
	before := f.srv.CommandCount(t, "get")
	if _, err := f.verify(k.ID, bad); reasonOf(t, err) != ReasonMalformed {
		t.Fatalf("Reason = %v", err)
	}
	if after := f.srv.CommandCount(t, "get"); after != before {
		t.Errorf("GET calls went from %d to %d for a malformed key", before, after)
	}
}

func TestVerifyDeadline(t *testing.T) {
	tests := []struct {
		name     string
		lifetime int
		unused   int
		used     time.Duration // last use, after creation; 0: never
		rotate   bool
		// want is the deadline as an offset from the verification time.
		want func(created, now time.Time) time.Time
	}{
		{"unused first", 180, 30, 0, false, func(c, n time.Time) time.Time { return c.Add(30 * day) }},
		{"expiry first", 20, 30, 0, false, func(c, n time.Time) time.Time { return c.Add(20 * day) }},
		{"recent use moves the unused limit", 180, 30, 10 * day, false, func(c, n time.Time) time.Time { return c.Add(40 * day) }},
		{"never", 0, 0, 0, false, func(c, n time.Time) time.Time { return time.Time{} }},
		{"grace end first", 180, 30, 0, true, func(c, n time.Time) time.Time { return n.Add(5 * time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setPolicies(t, tt.lifetime, tt.unused)
			created := f.clock.Now()
			k, secret := f.createKey(t, KeySpec{})
			if tt.used > 0 {
				f.clock.Advance(tt.used)
				if err := f.rdb.HSet(f.ctx, f.store.lastUsedKey(shardOf(k.ID)), k.ID, f.clock.Now().UnixMilli()).Err(); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(time.Hour)
			now := f.clock.Now()
			if tt.rotate {
				if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); err != nil {
					t.Fatal(err)
				}
			}
			id, err := f.verify(k.ID, secret)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if want := tt.want(created, now); !id.Deadline.Equal(want) {
				t.Fatalf("Deadline = %v, want %v", id.Deadline, want)
			}
		})
	}
}

// TestVerifyDeadlineUsesUnflushedLastUse checks VerifyOptions.LastUsed.
func TestVerifyDeadlineUsesUnflushedLastUse(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{})
	f.clock.Advance(29 * day)
	recent := f.clock.Now()
	f.clock.Advance(2 * day)
	if _, err := f.verify(k.ID, secret); reasonOf(t, err) != ReasonUnused {
		t.Fatalf("without the recent use: %v", err)
	}
	id, err := f.store.Verify(f.ctx, k.ID, secret, VerifyOptions{LastUsed: func(string) time.Time { return recent }})
	if err != nil {
		t.Fatalf("Verify with a recent use: %v", err)
	}
	if want := recent.Add(30 * day); !id.Deadline.Equal(want) {
		t.Errorf("Deadline = %v, want %v", id.Deadline, want)
	}
}

// TestRotatedKeyNeverOutlivesItsExpiry: a key rotated out shortly before
// (or after) it expires must not authenticate past its expiry because of
// the rotation grace.
func TestRotatedKeyNeverOutlivesItsExpiry(t *testing.T) {
	tests := []struct {
		name         string
		beforeRotate time.Duration // time from creation to rotation
		verifyAt     time.Duration // time from rotation to verification
		wantReason   Reason        // "" means success
	}{
		{"rotated a minute before expiry, verified within it", 180*day - time.Minute, 30 * time.Second, ""},
		{"rotated a minute before expiry, verified after it", 180*day - time.Minute, 2 * time.Minute, ReasonExpired},
		{"rotated after expiry", 180*day + time.Minute, time.Second, ReasonExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setPolicies(t, 180, 0)
			created := f.clock.Now()
			k, secret := f.createKey(t, KeySpec{})
			f.clock.Advance(tt.beforeRotate)
			if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); err != nil {
				t.Fatalf("RotateKey: %v", err)
			}
			f.clock.Advance(tt.verifyAt)
			id, err := f.verify(k.ID, secret)
			if tt.wantReason != "" {
				if err == nil {
					t.Fatalf("old key still authenticates at %v past its expiry (deadline %v)", f.clock.Now().Sub(created.Add(180*day)), id.Deadline)
				}
				if r := reasonOf(t, err); r != tt.wantReason {
					t.Fatalf("Reason = %q, want %q", r, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if want := created.Add(180 * day); !id.Deadline.Equal(want) {
				t.Errorf("Deadline = %v, want the expiry %v", id.Deadline, want)
			}
		})
	}
}
