package keystore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxLastUsed moves schema-1 last-used times forward only: for each
// (field, ms) pair it sets the field unless it already holds a later
// time.
var maxLastUsed = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
	local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
	local new = tonumber(ARGV[i + 1])
	if new > cur then
		redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
		n = n + 1
	end
end
return n
`)

// lastUsedBatch bounds the pairs sent in one script call.
const lastUsedBatch = 500

// RecordLastUsed writes last-use times gathered in memory: one script per
// shard (due.go), all in one pipeline. A time never moves backwards,
// whatever order instances flush in, and it raises the key's score in the
// unused index with it, atomically. Only keys in the unused index get a
// time, checked in the script: a key deleted or rotated out since its use
// left the index with its time and does not get it back.
//
// A key deactivated by hand stays in the index until the sweep finds its
// deadline passed or the repair runs, so the uses it had just before its
// deactivation, flushed a moment later, are still recorded. A key the
// sweep deactivated has left the index; a use flushed after that (one
// that came in the last flush interval before the deadline, as seen by
// another instance) is dropped, which changes nothing the key may do:
// reactivating it restarts its unused clock anyway.
//
// Until the store is migrated to schema 2, the times also go to the one
// hash that instances of the previous version read.
func (s *Store) RecordLastUsed(ctx context.Context, uses map[string]time.Time) error {
	ms := make(map[string]int64, len(uses))
	for id, t := range uses {
		ms[id] = t.UnixMilli()
	}
	if s.inUpgrade(ctx) {
		if err := s.recordLegacyLastUsed(ctx, ms); err != nil {
			return err
		}
	}
	return s.recordShards(ctx, ms, true)
}

// recordLegacyLastUsed writes last uses into the schema-1 hash, for keys
// still listed.
func (s *Store) recordLegacyLastUsed(ctx context.Context, uses map[string]int64) error {
	ids := make([]string, 0, len(uses))
	for id := range uses {
		ids = append(ids, id)
	}
	args := make([]any, 0, 2*min(len(uses), lastUsedBatch))
	for chunk := range slices.Chunk(ids, lastUsedBatch) {
		listed, err := s.listed(ctx, chunk)
		if err != nil {
			return err
		}
		args = args[:0]
		for _, id := range listed {
			args = append(args, id, strconv.FormatInt(uses[id], 10))
		}
		if len(args) == 0 {
			continue
		}
		if err := maxLastUsed.Run(ctx, s.rdb, []string{s.legacyLastUsedKey()}, args...).Err(); err != nil {
			return err
		}
	}
	return nil
}

// listed returns those of ids that the keys index lists, in one round
// trip.
func (s *Store) listed(ctx context.Context, ids []string) ([]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.FloatCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.ZScore(ctx, s.keysIndex(), id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := ids[:0:0]
	for i, c := range cmds {
		if c.Err() == nil {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

// LastUsed returns the stored last-use times of the given keys: one HMGET
// per shard, in one pipeline (and the schema-1 hash until the store is
// migrated).
func (s *Store) LastUsed(ctx context.Context, ids ...string) (map[string]time.Time, error) {
	ms, err := s.lastUsedMs(ctx, ids, !s.onDueLayout(ctx))
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(ms))
	for id, v := range ms {
		out[id] = msTime(v)
	}
	return out, nil
}

// lastUsedField names the hash and field of one key's stored last use,
// for Verify: in the key's shard, or in the schema-1 hash until the store
// is migrated (the hash every instance then writes).
func (s *Store) lastUsedField(ctx context.Context, id string) (hash, field string) {
	if s.onDueLayout(ctx) {
		return s.lastUsedKey(shardOf(id)), id
	}
	return s.legacyLastUsedKey(), id
}
