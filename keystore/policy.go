package keystore

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Default policy values.
const (
	DefaultLifetimeDays = 180
	DefaultUnusedDays   = 30
	// MaxPolicyDays bounds both policies.
	MaxPolicyDays = 365
)

// day is the unit of both policies.
const day = 24 * time.Hour

// Policies are the two organisation-wide key policies. A policy change is a
// single write: every key's expiry and unused deadline is derived from it.
type Policies struct {
	// LifetimeDays is accessKeysLifetimeInDays; 0 means keys never expire.
	LifetimeDays int
	// LifetimeSetAt is when LifetimeDays last changed (zero if never).
	LifetimeSetAt time.Time
	// UnusedDays is unusedAccessKeysDisableAfterInDays; 0 means never.
	UnusedDays int
	// UnusedSetAt is when UnusedDays last changed (zero if never).
	UnusedSetAt time.Time
}

// parsePolicies reads the policy hash, applying defaults.
func parsePolicies(h map[string]string) Policies {
	p := Policies{LifetimeDays: DefaultLifetimeDays, UnusedDays: DefaultUnusedDays}
	if v, err := strconv.Atoi(h["lifetimeDays"]); err == nil {
		p.LifetimeDays = v
	}
	if v, err := strconv.Atoi(h["unusedDays"]); err == nil {
		p.UnusedDays = v
	}
	if v, err := strconv.ParseInt(h["lifetimeSetAt"], 10, 64); err == nil {
		p.LifetimeSetAt = time.UnixMilli(v).UTC()
	}
	if v, err := strconv.ParseInt(h["unusedSetAt"], 10, 64); err == nil {
		p.UnusedSetAt = time.UnixMilli(v).UTC()
	}
	return p
}

// ExpiresAt returns when k expires under p, or the zero time if never:
// lifetime after the later of its issue (creation or rotation) and the last
// change of the lifetime policy.
func (p Policies) ExpiresAt(k *Key) time.Time {
	if p.LifetimeDays <= 0 {
		return time.Time{}
	}
	base := k.IssuedAt
	if p.LifetimeSetAt.After(base) {
		base = p.LifetimeSetAt
	}
	return base.Add(time.Duration(p.LifetimeDays) * day)
}

// UnusedAt returns when k counts as unused under p, given its last use, or
// the zero time if never: the limit after the latest of its last use, its
// creation or reactivation, and the last change of the unused policy.
func (p Policies) UnusedAt(k *Key, lastUsed time.Time) time.Time {
	if p.UnusedDays <= 0 {
		return time.Time{}
	}
	base := k.ActivatedAt
	for _, t := range []time.Time{lastUsed, p.UnusedSetAt} {
		if t.After(base) {
			base = t
		}
	}
	return base.Add(time.Duration(p.UnusedDays) * day)
}

// Policies reads the current policies.
func (s *Store) Policies(ctx context.Context) (Policies, error) {
	h, err := s.rdb.HGetAll(ctx, s.policyKey()).Result()
	if err != nil {
		return Policies{}, err
	}
	return parsePolicies(h), nil
}

func validPolicyDays(field string, n int) error {
	if n < 0 || n > MaxPolicyDays {
		v := &ValidationError{}
		v.add(field, "policy:invalid_days", field+" must be between 0 and "+strconv.Itoa(MaxPolicyDays)+" days (0 = never)")
		return v
	}
	return nil
}

// SetLifetimeDays changes the expiration policy; every key's expiry moves
// to days after now (or after its issue, if later).
func (s *Store) SetLifetimeDays(ctx context.Context, days int, op Operator) (Policies, error) {
	return s.setPolicy(ctx, "accessKeysLifetimeInDays", "lifetimeDays", "lifetimeSetAt", days, op)
}

// SetUnusedDays changes the unused-key deactivation policy.
func (s *Store) SetUnusedDays(ctx context.Context, days int, op Operator) (Policies, error) {
	return s.setPolicy(ctx, "unusedAccessKeysDisableAfterInDays", "unusedDays", "unusedSetAt", days, op)
}

func (s *Store) setPolicy(ctx context.Context, name, field, setAtField string, days int, op Operator) (Policies, error) {
	if err := validPolicyDays(name, days); err != nil {
		return Policies{}, err
	}
	before, err := s.Policies(ctx)
	if err != nil {
		return Policies{}, err
	}
	current := before.LifetimeDays
	if field == "unusedDays" {
		current = before.UnusedDays
	}
	if current == days {
		// Not a change: every key keeps its expiry.
		return before, nil
	}
	now := s.Now()
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.policyKey(), field, days, setAtField, now.UnixMilli())
		if err := s.announce(ctx, p, invalidateAll); err != nil {
			return err
		}
		return nil
	}); err != nil {
		return Policies{}, err
	}
	after, err := s.Policies(ctx)
	if err != nil {
		return Policies{}, err
	}
	from, to := policyView(before), policyView(after)
	s.emit(ctx, Event{EventName: EventPolicyUpdated, Operator: op, From: from, To: to})
	return after, nil
}

func policyView(p Policies) map[string]int {
	return map[string]int{"accessKeysLifetimeInDays": p.LifetimeDays, "unusedAccessKeysDisableAfterInDays": p.UnusedDays}
}
