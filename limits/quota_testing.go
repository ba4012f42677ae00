package limits

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// AddQuotaUse counts n requests of subject id against quota q in the
// period holding now, where QuotaUsage reads them, and returns the new
// count. It is for tools and tests that need a quota partly used without
// sending the requests; the gateway counts its requests itself.
func AddQuotaUse(ctx context.Context, rdb redis.Cmdable, prefix, id string, q Quota, now time.Time, n int64) (int64, error) {
	key := quotaKey(prefix, id, q, now)
	_, end := q.Window(now)
	var incr *redis.IntCmd
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.IncrBy(ctx, key, n)
		// The counter expires an hour after its period ends.
		p.ExpireAt(ctx, key, end.Add(time.Hour))
		return nil
	})
	if err != nil {
		return 0, err
	}
	return incr.Val(), nil
}
