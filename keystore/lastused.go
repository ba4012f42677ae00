package keystore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxLastUsed moves last-used times forward only: for each (field, ms)
// pair it sets the field unless it already holds a later time.
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

// RecordLastUsed writes last-use times gathered in memory. A time never
// moves backwards, whatever order instances flush in. Only keys still
// listed get a time: a key deleted or rotated out since its use had its
// time removed with its index entries, and must not get it back. A flush
// that checked a key just before its removal can still leave a time
// behind; RepairIndexes removes it.
func (s *Store) RecordLastUsed(ctx context.Context, uses map[string]time.Time) error {
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
			args = append(args, id, strconv.FormatInt(uses[id].UnixMilli(), 10))
		}
		if len(args) == 0 {
			continue
		}
		if err := maxLastUsed.Run(ctx, s.rdb, []string{s.lastUsedKey()}, args...).Err(); err != nil {
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
