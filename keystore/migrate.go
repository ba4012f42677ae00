package keystore

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// schemaDue is the schema of stores that keep the due indexes and
// sharded last-use times; P:schema holds it once the migration from
// schema 1 (no due indexes, one last-use hash) is done.
const schemaDue = 2

// schemaRecheck is how often a store that found no schema marker reads it
// again, so that it learns of another instance's migration.
const schemaRecheck = 5 * time.Second

// legacyLastUsedTTL is how long the schema-1 last-use hash survives the
// migration. Instances of the previous version, still running during a
// rolling upgrade, read and write it: deleting it at once would make them
// judge every key unused since its activation. This version writes it
// too meanwhile, and the repair merges it into the shards (upgrade.go).
const legacyLastUsedTTL = 24 * time.Hour

// migrateLeaseTTL is the lease of the migration (extended while it runs).
const migrateLeaseTTL = time.Minute

// onDueLayout reports whether the store is known to hold schema 2. Until
// it is, it reads the marker at most every schemaRecheck (after a failed
// read, at the next call): schema 1 keeps last uses in the one legacy
// hash, which every instance of either version then reads and writes.
func (s *Store) onDueLayout(ctx context.Context) bool {
	if s.dueLayout.Load() {
		return true
	}
	now := time.Now().UnixNano()
	last := s.schemaChecked.Load()
	if now-last < int64(schemaRecheck) || !s.schemaChecked.CompareAndSwap(last, now) {
		return false
	}
	return s.readSchema(ctx)
}

// readSchema reads the schema marker now, and reports whether it says
// schema 2.
func (s *Store) readSchema(ctx context.Context) bool {
	v, err := s.rdb.Get(ctx, s.schemaKey()).Int()
	switch {
	case err == nil && v >= schemaDue:
		s.dueLayout.Store(true)
	case err != nil && !errors.Is(err, redis.Nil):
		s.schemaChecked.Store(0)
	}
	return s.dueLayout.Load()
}

// Migrate brings a store written by the previous version (schema 1) to
// schema 2: it builds the due indexes from the key records, copies the
// last-use times into their shards, writes the schema marker and leaves
// the legacy hash to expire after legacyLastUsedTTL. One instance at a
// time does it, under a lease; Migrate returns at once when the store is
// migrated already or another instance is migrating it (then the sweep
// keeps scanning every key until the marker is written). It is safe to
// run on a new, empty store: it writes the marker.
func (s *Store) Migrate(ctx context.Context) error {
	if s.readSchema(ctx) {
		return nil
	}
	var jobErr error
	_, err := s.WithLease(ctx, "migrate", migrateLeaseTTL, func(ctx context.Context) {
		if s.readSchema(ctx) {
			return
		}
		jobErr = s.migrate(ctx)
	})
	return errors.Join(err, jobErr)
}

func (s *Store) migrate(ctx context.Context) error {
	var held atomic.Bool // the store holds records: old instances may run
	err := s.scanAll(ctx, s.prefix+":key:{*}", func(ctx context.Context, names []string) error {
		ids := idsOfRecordNames(s, names)
		if len(ids) > 0 {
			held.Store(true)
		}
		recs, err := s.records(ctx, ids)
		if err != nil {
			return err
		}
		legacy, err := s.legacyLastUsed(ctx, ids)
		if err != nil {
			return err
		}
		pipe := s.rdb.Pipeline()
		uses := make(map[string]int64)
		for id, k := range recs {
			if k.Pending || k.ReplacedBy != "" {
				continue
			}
			if !k.Disabled {
				s.queueIndexDue(ctx, pipe, k, legacy[id])
			}
			if ms := legacy[id]; ms > 0 {
				uses[id] = ms
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		return s.recordShards(ctx, uses, false)
	})
	if err != nil {
		return err
	}
	compactAt := s.now()
	if held.Load() {
		compactAt = compactAt.Add(upgradeWindow)
	}
	if err := s.setCompactAfter(ctx, compactAt); err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.schemaKey(), schemaDue, 0).Err(); err != nil {
		return err
	}
	s.dueLayout.Store(true)
	// Should this fail, the repair sets the TTL.
	return s.rdb.PExpire(ctx, s.legacyLastUsedKey(), legacyLastUsedTTL).Err()
}

// idsOfRecordNames returns the Access IDs of key record names.
func idsOfRecordNames(s *Store, names []string) []string {
	pre := len(s.prefix + ":key:{")
	ids := make([]string, 0, len(names))
	for _, n := range names {
		if len(n) > pre+1 && n[len(n)-1] == '}' {
			ids = append(ids, n[pre:len(n)-1])
		}
	}
	return ids
}

// legacyLastUsed reads the schema-1 last uses of ids, in milliseconds.
func (s *Store) legacyLastUsed(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.legacyLastUsedKey(), ids...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			if ms, err := strconv.ParseInt(str, 10, 64); err == nil {
				out[ids[i]] = ms
			}
		}
	}
	return out, nil
}
