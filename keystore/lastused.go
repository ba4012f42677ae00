package keystore

import (
	"context"
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
// moves backwards, whatever order instances flush in. Keys that no longer
// exist are skipped by the caller's next read (the hash entry is removed
// when a key is deleted).
func (s *Store) RecordLastUsed(ctx context.Context, uses map[string]time.Time) error {
	args := make([]any, 0, 2*min(len(uses), lastUsedBatch))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		err := maxLastUsed.Run(ctx, s.rdb, []string{s.lastUsedKey()}, args...).Err()
		args = args[:0]
		return err
	}
	for id, t := range uses {
		args = append(args, id, strconv.FormatInt(t.UnixMilli(), 10))
		if len(args) == 2*lastUsedBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
