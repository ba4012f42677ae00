package limits

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Quota leases: an instance takes requests of a quota from the counter in
// Redis in batches, as for rates, but a batch never exceeds a sixteenth
// of what is left of the quota, so that the last requests of a quota go
// one by one wherever they are needed; requests leased and not used
// within quotaIdle go back to the counter.
const (
	quotaIdle     = 2 * time.Second
	quotaMaxBatch = 10_000
	// quotaRecheck bounds how long an exhausted quota is refused without
	// asking Redis (a raised quota or a refund may free requests).
	quotaRecheck = time.Second
)

// quotaBucket is one subject's quota on this instance.
type quotaBucket struct {
	mu sync.Mutex
	id string
	quotaState
}

// quotaState is the part of a quotaBucket that a new period resets.
type quotaState struct {
	lease
	quota Quota
	start time.Time // of the current period
	end   time.Time
	// lastUse drives the idle refund.
	lastUse time.Time
	// left is what the quota had left after the last lease.
	left   int64
	synced bool
	// emptyUntil: the quota was used up; no Redis call before then.
	emptyUntil time.Time
	// owed counts requests admitted while Redis was unreachable; they are
	// added to the counter with the next lease.
	owed int64
}

func (b *quotaBucket) setQuota(q Quota, now time.Time) {
	if b.quota == q && now.Before(b.end) {
		return
	}
	start, end := q.Window(now)
	if b.quota.Period == q.Period && b.start.Equal(start) {
		// The same period with another number: keep what is held.
		b.quota, b.emptyUntil = q, time.Time{}
		return
	}
	b.quotaState = quotaState{quota: q, start: start, end: end}
}

func (l *Limiter) takeQuota(ctx context.Context, b *quotaBucket, q Quota) take {
	id := b.id
	for {
		b.mu.Lock()
		now := l.now()
		b.setQuota(q, now)
		reset := b.end.Sub(now)
		if b.tokens > 0 {
			b.tokens--
			b.lastUse = now
			rem := b.tokens + b.left
			b.mu.Unlock()
			return take{ok: true, limit: q.Requests, remaining: rem, reset: reset}
		}
		if now.Before(b.emptyUntil) {
			b.mu.Unlock()
			return take{limit: q.Requests, reset: reset, retry: reset}
		}
		if l.health.down(now) {
			res := b.localTake(now)
			b.mu.Unlock()
			return res
		}
		if b.awaitFetch(&b.mu) {
			continue
		}
		capacity := q.Requests
		if b.synced {
			capacity = b.left
		}
		want, ch := b.startFetch(now, min(capacity/16, quotaMaxBatch))
		owed, start, end := b.owed, b.start, b.end
		b.mu.Unlock()

		grant, left, err := l.leaseQuota(ctx, id, q, start, end, want, owed)

		b.mu.Lock()
		b.endFetch(ch)
		now = l.now()
		if err != nil {
			l.health.fail(now, err)
			res := b.localTake(now)
			b.mu.Unlock()
			return res
		}
		l.health.ok()
		if !b.start.Equal(start) {
			// The period turned while leasing: those requests belong to
			// the period gone.
			b.mu.Unlock()
			continue
		}
		b.owed -= owed
		b.left, b.synced = left, true
		if grant == 0 {
			b.emptyUntil = now.Add(quotaRecheck)
			if b.end.Before(b.emptyUntil) {
				b.emptyUntil = b.end
			}
			b.mu.Unlock()
			return take{limit: q.Requests, reset: b.end.Sub(now), retry: b.end.Sub(now)}
		}
		b.tokens, b.leasedAt, b.lastUse = grant-1, now, now
		if b.tokens > 0 {
			l.holding(b)
		}
		rem := b.tokens + b.left
		b.mu.Unlock()
		return take{ok: true, limit: q.Requests, remaining: rem, reset: b.end.Sub(now)}
	}
}

// localTake decides alone while Redis is unreachable: what the quota had
// left when this instance last reached Redis (all of it if never) may be
// used, and is owed to the counter.
func (b *quotaBucket) localTake(now time.Time) take {
	left := b.quota.Requests
	if b.synced {
		left = b.left
	}
	reset := b.end.Sub(now)
	if b.owed >= left {
		return take{local: true, limit: b.quota.Requests, reset: reset, retry: min(reset, quotaRecheck)}
	}
	b.owed++
	return take{ok: true, local: true, limit: b.quota.Requests, remaining: left - b.owed, reset: reset}
}

func (b *quotaBucket) refund(tk take) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if tk.local {
		b.owed--
		return
	}
	b.tokens++
}

// leaseQuota takes up to want requests of quota q for subject id from
// Redis, after adding owed.
func (l *Limiter) leaseQuota(ctx context.Context, id string, q Quota, start, end time.Time, want, owed int64) (grant, left int64, err error) {
	ctx, cancel := l.redisContext(ctx)
	defer cancel()
	// The counter outlives its period by a day, for late readers.
	exp := end.Add(24 * time.Hour).Unix()
	vals, err := leaseQuota.Run(ctx, l.rdb, []string{quotaKey(l.prefix, id, q, start)},
		q.Requests, want, strconv.FormatInt(exp, 10), owed).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(vals) != 2 {
		return 0, 0, errShortReply
	}
	return vals[0], vals[1], nil
}

// refundIdle gives back the requests of quota leases unused for
// quotaIdle, or of every lease when all is set (at Close).
func (l *Limiter) refundIdle(ctx context.Context, all bool) {
	now := l.now()
	for _, b := range l.heldQuotas() {
		b.mu.Lock()
		n := b.tokens
		idle := all || now.Sub(b.lastUse) >= quotaIdle
		if n == 0 || !idle || b.fetch != nil {
			b.mu.Unlock()
			if n == 0 {
				l.released(b)
			}
			continue
		}
		b.tokens = 0
		q, start := b.quota, b.start
		b.mu.Unlock()
		l.released(b)
		if !now.Before(start.Add(periodLen(q, start))) {
			continue // the period is over: its counter no longer matters
		}
		cctx, cancel := l.redisContext(ctx)
		err := refundQuota.Run(cctx, l.rdb, []string{quotaKey(l.prefix, b.id, q, start)}, n).Err()
		cancel()
		if err != nil {
			l.health.fail(l.now(), err)
			return
		}
	}
}

func periodLen(q Quota, start time.Time) time.Duration {
	_, end := q.Window(start)
	return end.Sub(start)
}
