package limits

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys. Each holds the state of one limited subject under a hash tag
// of its ID, so that a Redis Cluster spreads subjects over its nodes and
// each script touches one slot.
//
//	<prefix>:rl:{<id>}:<scope>        rate: GCRA theoretical arrival time (µs)
//	<prefix>:quota:{<id>}:<period>    quota: requests counted in one UTC day or month
//	<prefix>:conc:{<id>}              concurrency: requests in flight per instance
//	<prefix>:concl:{<id>}             concurrency: instance leases (score: expiry, ms)
func rateKey(prefix, scope, id string) string { return prefix + ":rl:{" + id + "}:" + scope }

func quotaKey(prefix, id string, q Quota, t time.Time) string {
	start, _ := q.Window(t)
	stamp := start.Format("20060102")
	if q.Period == PeriodMonth {
		stamp = start.Format("200601")
	}
	return prefix + ":quota:{" + id + "}:" + stamp
}

func concKey(prefix, id string) string      { return prefix + ":conc:{" + id + "}" }
func concLeaseKey(prefix, id string) string { return prefix + ":concl:{" + id + "}" }

// QuotaSubject names a subject's quota, for QuotaUsages.
type QuotaSubject struct {
	ID    string
	Quota Quota
}

// QuotaUse is how much of a quota the current period has used, and when
// the period ends.
type QuotaUse struct {
	Used     int64
	ResetsAt time.Time
}

// QuotaUsages reads the use of several quotas in one pipeline (one round
// trip per Redis node), in the order given.
func QuotaUsages(ctx context.Context, rdb redis.Cmdable, prefix string, subs []QuotaSubject, now time.Time) ([]QuotaUse, error) {
	out := make([]QuotaUse, len(subs))
	if len(subs) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(subs))
	pipe := rdb.Pipeline()
	for i, s := range subs {
		cmds[i] = pipe.Get(ctx, quotaKey(prefix, s.ID, s.Quota, now))
		_, out[i].ResetsAt = s.Quota.Window(now)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if out[i].Used, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// QuotaUsage reads how much of quota q the subject id has used in the
// period holding now, and when that period ends (QuotaUsages for one).
func QuotaUsage(ctx context.Context, rdb redis.Cmdable, prefix, id string, q Quota, now time.Time) (used int64, resetsAt time.Time, err error) {
	uses, err := QuotaUsages(ctx, rdb, prefix, []QuotaSubject{{ID: id, Quota: q}}, now)
	if err != nil {
		_, end := q.Window(now)
		return 0, end, err
	}
	return uses[0].Used, uses[0].ResetsAt, nil
}
