package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pendingMaxAge is how old a pending record (left by a rotation that
// crashed between its steps) must be before the repair removes it.
const pendingMaxAge = time.Hour

// RepairResult counts what one repair fixed.
type RepairResult struct {
	Indexed        int // live records missing from an index, re-added
	Unindexed      int // index entries whose record is gone, removed
	PendingRemoved int // abandoned pending records, deleted
	// LastUsedRemoved counts last-use times of keys that are gone,
	// removed.
	LastUsedRemoved int
	// DueIndexed counts live enabled keys missing from a due index,
	// re-added.
	DueIndexed int
	// DueUnindexed counts keys without a live enabled record removed
	// from the due indexes.
	DueUnindexed int
}

// repairBatch bounds the index entries checked against their records at
// a time.
const repairBatch = 1000

// RepairIndexes makes the cross-slot indexes agree with the key records.
// Indexes are written after the record, so a crash or an outage between
// the two can leave a live key unlisted or out of the due indexes, or a
// listed key without record; a sweep that stopped between a deactivation
// and the removal from the due indexes leaves a disabled member (the next
// sweep removes it too); rotations that never committed leave pending
// records. It scans every key record (on every master of a cluster), then
// every index entry, in batches: what it holds in memory is bounded by a
// batch, whatever the number of keys.
func (s *Store) RepairIndexes(ctx context.Context) (RepairResult, error) {
	var res RepairResult
	var mu sync.Mutex // a cluster's masters are scanned concurrently
	count := func(n *int, d int) {
		mu.Lock()
		*n += d
		mu.Unlock()
	}
	err := s.scanAll(ctx, s.prefix+":key:{*}", func(ctx context.Context, names []string) error {
		return s.repairRecords(ctx, idsOfRecordNames(s, names), &res, count)
	})
	if err != nil {
		return res, err
	}
	if res.Unindexed, err = s.repairListing(ctx); err != nil {
		return res, err
	}
	for shard := range dueShards {
		for _, key := range []string{s.dueExpiryKey(shard), s.dueUnusedKey(shard)} {
			n, err := s.repairDueIndex(ctx, key)
			res.DueUnindexed += n
			if err != nil {
				return res, err
			}
		}
		n, err := s.repairLastUsed(ctx, s.lastUsedKey(shard))
		res.LastUsedRemoved += n
		if err != nil {
			return res, err
		}
	}
	if !s.onDueLayout(ctx) {
		n, err := s.repairLastUsed(ctx, s.legacyLastUsedKey())
		res.LastUsedRemoved += n
		return res, err
	}
	// Uses recorded by instances of the previous version during a rolling
	// upgrade are in the schema-1 hash only.
	if err := s.mergeLegacyLastUsed(ctx); err != nil {
		return res, err
	}
	// An instance of the previous version that outlived the migration
	// window may have written the schema-1 hash again.
	if ttl, err := s.rdb.PTTL(ctx, s.legacyLastUsedKey()).Result(); err == nil && ttl == -1 {
		err = s.rdb.PExpire(ctx, s.legacyLastUsedKey(), legacyLastUsedTTL).Err()
		return res, err
	}
	return res, nil
}

// repairRecords checks one batch of key records: it deletes old pending
// ones and indexes the live ones that some index misses.
func (s *Store) repairRecords(ctx context.Context, ids []string, res *RepairResult, count func(*int, int)) error {
	recs, err := s.records(ctx, ids)
	if err != nil {
		return err
	}
	type check struct {
		k                  *Key
		listed             *redis.FloatCmd
		inOwner            *redis.BoolCmd
		inExpiry, inUnused *redis.FloatCmd
	}
	var checks []check
	var old []string
	pipe := s.rdb.Pipeline()
	for _, k := range recs {
		switch {
		case k.Pending:
			if s.now().Sub(k.ModifiedAt) > pendingMaxAge {
				old = append(old, k.ID)
			}
			continue
		case k.ReplacedBy != "":
			continue
		}
		c := check{k: k, listed: pipe.ZScore(ctx, s.keysIndex(), k.ID), inOwner: pipe.SIsMember(ctx, s.ownerKeysKey(k.OwnerID), k.ID)}
		if liveEnabled(k) {
			shard := shardOf(k.ID)
			c.inExpiry = pipe.ZScore(ctx, s.dueExpiryKey(shard), k.ID)
			c.inUnused = pipe.ZScore(ctx, s.dueUnusedKey(shard), k.ID)
		}
		checks = append(checks, c)
	}
	if len(checks) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	missing := func(c *redis.FloatCmd) bool { return c != nil && errors.Is(c.Err(), redis.Nil) }
	fix := s.rdb.Pipeline()
	var unlisted int
	var undue []*Key
	for _, c := range checks {
		for _, cmd := range []*redis.FloatCmd{c.listed, c.inExpiry, c.inUnused} {
			if cmd != nil && cmd.Err() != nil && !errors.Is(cmd.Err(), redis.Nil) {
				return cmd.Err()
			}
		}
		if c.inOwner.Err() != nil {
			return c.inOwner.Err()
		}
		if missing(c.listed) || !c.inOwner.Val() {
			fix.ZAdd(ctx, s.keysIndex(), redis.Z{Member: c.k.ID})
			fix.SAdd(ctx, s.ownerKeysKey(c.k.OwnerID), c.k.ID)
			unlisted++
		}
		if missing(c.inExpiry) || missing(c.inUnused) {
			undue = append(undue, c.k)
		}
	}
	for _, id := range old {
		fix.Del(ctx, s.keyKey(id))
	}
	if unlisted+len(old) > 0 {
		if _, err := fix.Exec(ctx); err != nil {
			return err
		}
	}
	if err := s.reindexDue(ctx, undue, nil); err != nil {
		return err
	}
	count(&res.Indexed, unlisted)
	count(&res.PendingRemoved, len(old))
	count(&res.DueIndexed, len(undue))
	return nil
}

// repairListing removes the entries of the keys listing whose record is
// gone, pending or rotated out, checking them repairBatch at a time.
func (s *Store) repairListing(ctx context.Context) (int, error) {
	removed := 0
	start := "-"
	for {
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.keysIndex(), Start: start, Stop: "+", ByLex: true, Count: repairBatch}).Result()
		if err != nil || len(ids) == 0 {
			return removed, err
		}
		recs, err := s.existingRecords(ctx, ids)
		if err != nil {
			return removed, err
		}
		var gone []any
		for _, id := range ids {
			if k := recs[id]; k == nil || k.Pending || k.ReplacedBy != "" {
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			n, err := s.rdb.ZRem(ctx, s.keysIndex(), gone...).Result()
			if err != nil {
				return removed, err
			}
			removed += int(n)
		}
		if len(ids) < repairBatch {
			return removed, nil
		}
		start = "(" + ids[len(ids)-1]
	}
}

// repairDueIndex removes from one shard of a due index the members
// without a live enabled record.
func (s *Store) repairDueIndex(ctx context.Context, key string) (int, error) {
	scan := func(cursor uint64) ([]string, uint64, error) {
		return s.rdb.ZScan(ctx, key, cursor, "", repairBatch).Result()
	}
	return s.repairMembers(ctx, scan, func(ids []string, recs map[string]*Key) (int, error) {
		return s.dropDue(ctx, slices.DeleteFunc(ids, func(id string) bool { return liveEnabled(recs[id]) }))
	})
}

// repairLastUsed removes from one last-use hash the times of keys that
// are gone (deleted, rotated out): times a flush wrote while the key was
// being deleted or rotated out.
func (s *Store) repairLastUsed(ctx context.Context, key string) (int, error) {
	scan := func(cursor uint64) ([]string, uint64, error) {
		return s.rdb.HScan(ctx, key, cursor, "", repairBatch).Result()
	}
	return s.repairMembers(ctx, scan, func(ids []string, recs map[string]*Key) (int, error) {
		gone := slices.DeleteFunc(ids, func(id string) bool {
			k := recs[id]
			return k != nil && !k.Pending && k.ReplacedBy == ""
		})
		if len(gone) == 0 {
			return 0, nil
		}
		n, err := s.rdb.HDel(ctx, key, gone...).Result()
		return int(n), err
	})
}

// repairMembers scans a sorted set or hash of Access IDs (scan returns
// member/value pairs and the next cursor), reads the records of each
// batch and lets fix remove what must go; it returns how many fix
// removed.
func (s *Store) repairMembers(ctx context.Context, scan func(uint64) ([]string, uint64, error), fix func([]string, map[string]*Key) (int, error)) (int, error) {
	removed := 0
	var cursor uint64
	for {
		kv, next, err := scan(cursor)
		if err != nil {
			return removed, err
		}
		ids := make([]string, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			ids = append(ids, kv[i])
		}
		recs, err := s.existingRecords(ctx, ids)
		if err != nil {
			return removed, err
		}
		n, err := fix(ids, recs)
		removed += n
		if err != nil || next == 0 {
			return removed, err
		}
		cursor = next
	}
}

// existingRecords is records for the repair, which removes the index
// entries of keys without a record: a record that is there but cannot be
// read is an error, not a key gone, and its entries stay.
func (s *Store) existingRecords(ctx context.Context, ids []string) (map[string]*Key, error) {
	recs, err := s.records(ctx, ids)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if recs[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return recs, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(missing))
	for i, id := range missing {
		cmds[i] = pipe.Exists(ctx, s.keyKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for i, c := range cmds {
		if c.Val() != 0 {
			return nil, fmt.Errorf("the record of key %s cannot be read; its index entries are kept", missing[i])
		}
	}
	return recs, nil
}

// scanAll runs fn on batches of key names matching pattern, on every
// master when the client is a cluster client.
func (s *Store) scanAll(ctx context.Context, pattern string, fn func(context.Context, []string) error) error {
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			names, next, err := c.Scan(ctx, cursor, pattern, 500).Result()
			if err != nil {
				return err
			}
			if len(names) > 0 {
				if err := fn(ctx, names); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.rdb)
}
