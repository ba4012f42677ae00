package keystore

import (
	"context"
	"slices"
	"strings"
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
}

// RepairIndexes makes the cross-slot indexes agree with the key records.
// Indexes are written after the record, so a crash or an outage between
// the two can leave a live key unlisted, or a listed key without record;
// rotations that never committed leave pending records. It scans every
// key record (on every master of a cluster).
func (s *Store) RepairIndexes(ctx context.Context) (RepairResult, error) {
	var res RepairResult
	var mu sync.Mutex // a cluster's masters are scanned concurrently
	seen := make(map[string]bool)
	pattern := s.prefix + ":key:{*}"
	err := s.scanAll(ctx, pattern, func(ctx context.Context, names []string) error {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(names))
		for i, n := range names {
			cmds[i] = pipe.Get(ctx, n)
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
		for i, c := range cmds {
			raw, err := c.Bytes()
			if err != nil {
				continue
			}
			var k Key
			if decodeKey(raw, &k) != nil || !strings.HasSuffix(names[i], "{"+k.ID+"}") {
				continue
			}
			switch {
			case k.Pending:
				if s.now().Sub(k.ModifiedAt) > pendingMaxAge {
					if err := s.rdb.Del(ctx, names[i]).Err(); err != nil {
						return err
					}
					mu.Lock()
					res.PendingRemoved++
					mu.Unlock()
				}
				continue
			case k.ReplacedBy != "":
				continue
			}
			mu.Lock()
			seen[k.ID] = true
			mu.Unlock()
			_, zerr := s.rdb.ZScore(ctx, s.keysIndex(), k.ID).Result()
			if zerr != nil && zerr != redis.Nil {
				return zerr
			}
			inOwner, err := s.rdb.SIsMember(ctx, s.ownerKeysKey(k.OwnerID), k.ID).Result()
			if err != nil {
				return err
			}
			if zerr == redis.Nil || !inOwner {
				if err := s.indexKey(ctx, &k); err != nil {
					return err
				}
				mu.Lock()
				res.Indexed++
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	// Index entries without a live record.
	start := "-"
	for {
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.keysIndex(), Start: start, Stop: "+", ByLex: true, Count: 1000}).Result()
		if err != nil {
			return res, err
		}
		for _, id := range ids {
			if seen[id] {
				continue
			}
			k, err := s.rawKey(ctx, id)
			if err == nil && !k.Pending && k.ReplacedBy == "" {
				continue // created during the scan
			}
			if err != nil && !isNotFound(err) {
				return res, err
			}
			if err := s.rdb.ZRem(ctx, s.keysIndex(), id).Err(); err != nil {
				return res, err
			}
			res.Unindexed++
		}
		if len(ids) < 1000 {
			break
		}
		start = "(" + ids[len(ids)-1]
	}
	n, err := s.repairLastUsed(ctx, seen)
	res.LastUsedRemoved = n
	return res, err
}

// repairLastUsed removes the last-use times of keys that are neither live
// (in seen) nor listed in the keys index: times a flush wrote while the
// key was being deleted or rotated out.
func (s *Store) repairLastUsed(ctx context.Context, seen map[string]bool) (int, error) {
	removed := 0
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.lastUsedKey(), cursor, "", 1000).Result()
		if err != nil {
			return removed, err
		}
		var unseen []string
		for i := 0; i+1 < len(kv); i += 2 {
			if !seen[kv[i]] {
				unseen = append(unseen, kv[i])
			}
		}
		if len(unseen) > 0 {
			listed, err := s.listed(ctx, unseen)
			if err != nil {
				return removed, err
			}
			live := make(map[string]bool, len(listed))
			for _, id := range listed {
				live[id] = true
			}
			gone := slices.DeleteFunc(unseen, func(id string) bool { return live[id] })
			if len(gone) > 0 {
				n, err := s.rdb.HDel(ctx, s.lastUsedKey(), gone...).Result()
				if err != nil {
					return removed, err
				}
				removed += int(n)
			}
		}
		if next == 0 {
			return removed, nil
		}
		cursor = next
	}
}

func isNotFound(err error) bool {
	_, ok := err.(*NotFoundError)
	return ok
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
