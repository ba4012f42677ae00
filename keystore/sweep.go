package keystore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// SweepResult counts what one sweep recorded.
type SweepResult struct {
	Expired int
	Unused  int
	Scanned int
}

// Sweep records as deactivated every key that crossed its expiry or unused
// limit. Keys are refused at the moment they cross the line whether or not
// a sweep ran; the sweep makes it visible (disabled, with a reason) and
// writes AccessKeyExpired or AccessKeyDeactivatedUnused exactly once per
// key, even when several instances sweep at the same time: each change is
// a WATCH/MULTI transaction and only the instance whose transaction
// commits writes the event.
func (s *Store) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	pol, err := s.Policies(ctx)
	if err != nil {
		return res, err
	}
	if pol.LifetimeDays <= 0 && pol.UnusedDays <= 0 {
		return res, nil
	}
	start := "-"
	for {
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.keysIndex(), Start: start, Stop: "+", ByLex: true, Count: 1000}).Result()
		if err != nil || len(ids) == 0 {
			return res, err
		}
		keys, err := s.keysByID(ctx, ids)
		if err != nil {
			return res, err
		}
		used, err := s.LastUsed(ctx, ids...)
		if err != nil {
			return res, err
		}
		now := s.now()
		for _, k := range keys {
			res.Scanned++
			if k.Disabled {
				continue
			}
			_, reason := keyDeadline(k, pol, used[k.ID], now)
			if reason != ReasonExpired && reason != ReasonUnused {
				continue
			}
			done, err := s.deactivateBySweep(ctx, k.ID, reason)
			if err != nil {
				return res, err
			}
			switch {
			case !done:
			case reason == ReasonExpired:
				res.Expired++
			default:
				res.Unused++
			}
		}
		start = "(" + ids[len(ids)-1]
	}
}

// deactivateBySweep marks one key deactivated for reason, if it still
// qualifies, and reports whether this call made the change.
func (s *Store) deactivateBySweep(ctx context.Context, id string, reason Reason) (bool, error) {
	var changed Key
	done := false
	err := s.update(ctx, s.keyKey(id), func(tx *redis.Tx) error {
		done = false
		k, err := s.txKey(ctx, tx, id)
		if err != nil {
			return err
		}
		pol, err := s.Policies(ctx)
		if err != nil {
			return err
		}
		used, err := s.LastUsed(ctx, id)
		if err != nil {
			return err
		}
		if k.Disabled {
			return nil
		}
		if _, r := keyDeadline(k, pol, used[id], s.now()); r != reason {
			return nil
		}
		now := s.Now()
		k.Disabled, k.ModifiedAt, k.ModifiedBy = true, now, "system"
		k.DisabledReason = DisabledExpired
		if reason == ReasonUnused {
			k.DisabledReason = DisabledUnused
		}
		k.Version++
		b := encodeKey(k)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keyKey(id), b, redis.KeepTTL)
			s.announce(ctx, p, invalidateKeyPrefix+id)
			return nil
		})
		changed, done = *k, err == nil
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || !done {
		return false, err
	}
	name := EventKeyExpired
	if reason == ReasonUnused {
		name = EventKeyDeactivatedUnused
	}
	s.emit(ctx, Event{
		EventName: name,
		Operator:  Operator{ID: "system", Interface: InterfaceInternal},
		AccessKey: keyRef(&changed),
		Reason:    string(reason),
		From:      map[string]bool{"enabled": true},
		To:        map[string]bool{"enabled": false},
	})
	return true, nil
}
