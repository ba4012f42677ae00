package keystore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SweepResult counts what one sweep recorded.
type SweepResult struct {
	Expired int
	Unused  int
	// Scanned counts the key records the sweep read: the due ones, or,
	// before the store is migrated (migrate.go), every one.
	Scanned int
}

// maxSweepRounds bounds the pages of due members one sweep reads from a
// shard; what is left waits for the next sweep.
const maxSweepRounds = 10000

// Sweep records as deactivated every key that crossed its expiry or unused
// limit. Keys are refused at the moment they cross the line whether or not
// a sweep ran; the sweep makes it visible (disabled, with a reason) and
// writes AccessKeyExpired or AccessKeyDeactivatedUnused exactly once per
// key, even when several instances sweep at the same time: each change is
// a WATCH/MULTI transaction and only the instance whose transaction
// commits writes the event.
//
// It reads only the keys that are due, through the due indexes (due.go):
// with nothing due it costs the same few commands whatever the number of
// keys. On a store of the previous schema it first tries to migrate it
// (Migrate); while another instance is migrating it, it reads every key.
func (s *Store) Sweep(ctx context.Context) (SweepResult, error) {
	var merr error
	if !s.dueLayout.Load() {
		merr = s.Migrate(ctx)
	}
	pol, err := s.Policies(ctx)
	if err != nil {
		return SweepResult{}, errors.Join(merr, err)
	}
	if pol.LifetimeDays <= 0 && pol.UnusedDays <= 0 {
		return SweepResult{}, merr
	}
	if !s.dueLayout.Load() {
		res, err := s.sweepAll(ctx, pol)
		return res, errors.Join(merr, err)
	}
	return s.sweepDue(ctx, pol)
}

// dueRange is one shard of one due index (expiry when unused is false).
type dueRange struct {
	shard  int
	unused bool
}

// sweepDue deals with the members of the due indexes whose deadline has
// passed, dueBatch per shard and index at a time, all shards in one
// pipeline. A shard whose page was full is read again, with the policies
// read again, until none is.
func (s *Store) sweepDue(ctx context.Context, pol Policies) (SweepResult, error) {
	var res SweepResult
	ranges := make([]dueRange, 0, 2*dueShards)
	for shard := range dueShards {
		ranges = append(ranges, dueRange{shard, false}, dueRange{shard, true})
	}
	for round := 0; len(ranges) > 0 && round < maxSweepRounds; round++ {
		if round > 0 {
			var err error
			if pol, err = s.Policies(ctx); err != nil {
				return res, err
			}
		}
		now := s.now()
		expiryCut, expiryDue := dueCutoff(pol.LifetimeDays, pol.LifetimeSetAt, now)
		unusedCut, unusedDue := dueCutoff(pol.UnusedDays, pol.UnusedSetAt, now)
		pipe := s.rdb.Pipeline()
		var asked []dueRange
		var cmds []*redis.StringSliceCmd
		for _, r := range ranges {
			key, cut, due := s.dueExpiryKey(r.shard), expiryCut, expiryDue
			if r.unused {
				key, cut, due = s.dueUnusedKey(r.shard), unusedCut, unusedDue
			}
			if !due {
				continue
			}
			asked = append(asked, r)
			cmds = append(cmds, pipe.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: "-inf", Stop: cut, ByScore: true, Count: int64(dueBatch)}))
		}
		if len(cmds) == 0 {
			break
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return res, err
		}
		var full []dueRange
		seen := make(map[string]bool)
		var ids []string
		for i, c := range cmds {
			members := c.Val()
			if len(members) == dueBatch {
				full = append(full, asked[i])
			}
			for _, id := range members {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		for start := 0; start < len(ids); start += dueBatch {
			if err := s.settleDue(ctx, ids[start:min(start+dueBatch, len(ids))], pol, &res); err != nil {
				return res, err
			}
		}
		ranges = full
	}
	return res, nil
}

// dueCutoff returns the highest score that is due at now in an index
// under a policy of days set at setAt, and false when nothing can be due:
// the policy is off, or its change plus its limit is still ahead (every
// deadline is at least that late).
func dueCutoff(days int, setAt, now time.Time) (string, bool) {
	life := time.Duration(days) * day
	if days <= 0 || setAt.Add(life).After(now) {
		return "", false
	}
	return strconv.FormatInt(now.UnixMilli()-life.Milliseconds(), 10), true
}

// settleDue deals with due members of the indexes: a live enabled key
// whose deadline has passed is deactivated, then leaves the indexes, as
// does a member whose record is gone, disabled, pending or rotated out; a
// member whose score was behind its record (a reactivation or a last use
// not yet indexed) is scored again.
func (s *Store) settleDue(ctx context.Context, ids []string, pol Policies, res *SweepResult) error {
	recs, err := s.records(ctx, ids)
	if err != nil {
		return err
	}
	// The schema-1 hash too: during a rolling upgrade, instances of the
	// previous version record uses only there.
	used, err := s.lastUsedMs(ctx, ids, true)
	if err != nil {
		return err
	}
	res.Scanned += len(recs)
	var drop, undone []string
	var rescore []*Key
	for _, id := range ids {
		k := recs[id]
		if !liveEnabled(k) {
			drop = append(drop, id)
			continue
		}
		_, reason := keyDeadline(k, pol, msTime(used[id]), s.now())
		if reason != ReasonExpired && reason != ReasonUnused {
			rescore = append(rescore, k)
			continue
		}
		done, err := s.deactivateBySweep(ctx, id, reason)
		switch {
		case err != nil:
			return err
		case !done:
			undone = append(undone, id)
			continue
		case reason == ReasonExpired:
			res.Expired++
		default:
			res.Unused++
		}
		drop = append(drop, id)
	}
	// A key this sweep did not deactivate changed meanwhile: deactivated
	// or deleted by someone else (it leaves the indexes), or used (it
	// stays, scored again, so that a last use flushed now still finds it).
	again, err := s.records(ctx, undone)
	if err != nil {
		return err
	}
	for _, id := range undone {
		if k := again[id]; liveEnabled(k) {
			rescore = append(rescore, k)
		} else {
			drop = append(drop, id)
		}
	}
	if _, err := s.dropDue(ctx, drop); err != nil {
		return err
	}
	if len(rescore) == 0 {
		return nil
	}
	stored, err := s.lastUsedMs(ctx, idsOf(rescore), false)
	if err != nil {
		return err
	}
	behind := make(map[string]int64)
	for _, k := range rescore {
		if used[k.ID] > stored[k.ID] {
			behind[k.ID] = used[k.ID]
		}
	}
	if err := s.recordShards(ctx, behind, true); err != nil {
		return err
	}
	return s.reindexDue(ctx, rescore, used)
}

func idsOf(keys []*Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// sweepAll is the sweep of a store not yet migrated: it reads every key.
func (s *Store) sweepAll(ctx context.Context, pol Policies) (SweepResult, error) {
	var res SweepResult
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
		used, err := s.lastUsedMs(ctx, ids, true)
		if err != nil {
			return res, err
		}
		now := s.now()
		for _, k := range keys {
			res.Scanned++
			if k.Disabled {
				continue
			}
			_, reason := keyDeadline(k, pol, msTime(used[k.ID]), now)
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
		used, err := s.lastUsedMs(ctx, []string{id}, true)
		if err != nil {
			return err
		}
		if k.Disabled {
			return nil
		}
		if _, r := keyDeadline(k, pol, msTime(used[id]), s.now()); r != reason {
			return nil
		}
		now := s.Now()
		k.Disabled, k.ModifiedAt, k.ModifiedBy = true, now, "system"
		k.DisabledReason = DisabledExpired
		if reason == ReasonUnused {
			k.DisabledReason = DisabledUnused
		}
		k.Version++
		b := s.encode(ctx, k)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keyKey(id), b, redis.KeepTTL)
			if err := s.announce(ctx, p, invalidateKeyPrefix+id); err != nil {
				return err
			}
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
