package limits

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Leases of rate tokens. An instance takes tokens from the fleet-wide
// bucket in Redis in batches (see lease.startFetch) and spends them
// locally; a batch never exceeds a tenth of a second of the rate or an
// eighth of the burst, so that tokens leased but unspent (at most one
// batch per instance, dropped after leaseTTL) cost little accuracy.
const (
	leaseTTL  = time.Second
	leaseFast = 500 * time.Millisecond
	leaseSlow = time.Second
)

// rateBucket is one subject's rate limit on this instance.
type rateBucket struct {
	mu sync.Mutex
	rateState
}

// rateState is what a rateBucket's mutex guards.
type rateState struct {
	lease
	rate     Rate // normalised
	leaseEnd time.Time
	// denyUntil: the fleet bucket was empty; no Redis call before then.
	denyUntil time.Time
	// left is what the fleet bucket held after the last lease, at leftAt.
	left   int64
	leftAt time.Time
	// local decides alone while Redis cannot be reached.
	local localGCRA
}

// take is the outcome of taking one unit of a limit.
type take struct {
	ok bool
	// local: decided by this instance alone (Redis unreachable).
	local     bool
	limit     int64
	remaining int64
	reset     time.Duration
	retry     time.Duration
}

func (b *rateBucket) setRate(r Rate) {
	if b.rate == r {
		return
	}
	b.rateState = rateState{rate: r}
}

// batchCap is the largest lease for rate r.
func batchCap(r Rate) int64 {
	perTenth := r.Requests / (r.PeriodSeconds * 10)
	return max(1, min(r.Burst/8, perTenth))
}

func (l *Limiter) takeRate(ctx context.Context, b *rateBucket, scope, id string, r Rate) take {
	r = r.Normalized()
	for {
		b.mu.Lock()
		b.setRate(r)
		now := l.now()
		if b.tokens > 0 && now.Before(b.leaseEnd) {
			b.tokens--
			res := b.granted(now)
			b.mu.Unlock()
			return res
		}
		if now.Before(b.denyUntil) {
			wait := b.denyUntil.Sub(now)
			b.mu.Unlock()
			return take{limit: r.Burst, reset: b.fullIn(0), retry: wait}
		}
		if l.health.down(now) {
			res := b.localTake(now)
			b.mu.Unlock()
			return res
		}
		if b.awaitFetch(&b.mu) {
			continue
		}
		want, ch := b.startFetch(now, batchCap(r))
		b.mu.Unlock()

		grant, left, wait, err := l.leaseRate(ctx, scope, id, r, want)

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
		if grant == 0 {
			b.tokens, b.denyUntil = 0, now.Add(wait)
			b.left, b.leftAt = 0, now
			b.mu.Unlock()
			return take{limit: r.Burst, reset: b.fullIn(0), retry: max(wait, time.Millisecond)}
		}
		b.tokens, b.leaseEnd, b.leasedAt = grant-1, now.Add(leaseTTL), now
		b.left, b.leftAt = left, now
		res := b.granted(now)
		b.mu.Unlock()
		return res
	}
}

// granted describes an admitted request: the headers' limit, an
// estimate of what remains fleet-wide, and when the bucket is full.
func (b *rateBucket) granted(now time.Time) take {
	r := b.rate
	refill := int64(now.Sub(b.leftAt).Seconds() * float64(r.Requests) / float64(r.PeriodSeconds))
	rem := min(b.tokens+b.left+refill, r.Burst)
	return take{ok: true, limit: r.Burst, remaining: rem, reset: b.fullIn(rem)}
}

// fullIn is how long a bucket holding rem tokens takes to fill up.
func (b *rateBucket) fullIn(rem int64) time.Duration {
	r := b.rate
	return time.Duration(float64(r.Burst-rem) * float64(r.Period()) / float64(r.Requests))
}

// refund gives back a token taken by take when a later limit refused
// the request.
func (b *rateBucket) refund(tk take, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if tk.local {
		b.local.refund(b.rate)
		return
	}
	if now.Before(b.leaseEnd) {
		b.tokens++
	}
}

func (b *rateBucket) localTake(now time.Time) take {
	ok, rem, retry := b.local.take(b.rate, now)
	return take{ok: ok, local: true, limit: b.rate.Burst, remaining: rem, reset: b.fullIn(rem), retry: retry}
}

// leaseRate takes up to want tokens of rate r for the subject from Redis.
func (l *Limiter) leaseRate(ctx context.Context, scope, id string, r Rate, want int64) (grant, left int64, wait time.Duration, err error) {
	ctx, cancel := l.redisContext(ctx)
	defer cancel()
	t := float64(r.PeriodSeconds) * 1e6 / float64(r.Requests)
	vals, err := leaseRate.Run(ctx, l.rdb, []string{rateKey(l.prefix, scope, id)},
		strconv.FormatFloat(t, 'f', -1, 64), strconv.FormatFloat(t*float64(r.Burst), 'f', -1, 64), want, 0).Int64Slice()
	if err != nil {
		return 0, 0, 0, err
	}
	if len(vals) != 3 {
		return 0, 0, 0, errShortReply
	}
	return vals[0], vals[1], time.Duration(vals[2]) * time.Microsecond, nil
}

// localGCRA is a generic cell rate algorithm bucket of one instance.
type localGCRA struct{ tat time.Time }

func (g *localGCRA) take(r Rate, now time.Time) (ok bool, remaining int64, retry time.Duration) {
	t := r.Period() / time.Duration(r.Requests)
	if t <= 0 {
		t = 1
	}
	tau := t * time.Duration(r.Burst)
	tat := g.tat
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(t)
	if next.Sub(now) > tau {
		return false, 0, next.Sub(now) - tau
	}
	g.tat = next
	return true, int64((tau - next.Sub(now)) / t), 0
}

func (g *localGCRA) refund(r Rate) {
	g.tat = g.tat.Add(-r.Period() / time.Duration(r.Requests))
}
