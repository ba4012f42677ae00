package caddymodule

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accessgate/accessgate/keystore"
)

// auditQueue writes the audit events of rejected requests off the request
// path. A token bucket bounds how many are written per second, so a flood
// of bad requests cannot flood the log or the stream; what it drops is
// counted and reported in a summary event. Each event is stamped (ID and
// time) when it is queued and logged once when it is first written; a
// write that failed is retried with the same event, which the stream
// takes once.
type auditQueue struct {
	store *keystore.Store
	log   func(keystore.Event)
	ch    chan keystore.Event

	mu     sync.Mutex
	tokens float64
	last   time.Time
	rate   float64 // tokens per second
	burst  float64

	suppressed atomic.Int64

	// retry holds logged events whose write failed (Redis unreachable),
	// oldest first, up to maxRetry; only the run goroutine touches it.
	retry []keystore.Event
	lost  atomic.Int64
}

// maxRetry bounds the events kept in memory while Redis is unreachable.
const maxRetry = 10000

// newAuditQueue returns a queue writing to store and handing each event
// to log once.
func newAuditQueue(store *keystore.Store, log func(keystore.Event), size int, perSecond, burst float64) *auditQueue {
	return &auditQueue{store: store, log: log, ch: make(chan keystore.Event, size), rate: perSecond, burst: burst, tokens: burst}
}

// allow takes a token from the bucket.
func (q *auditQueue) allow(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.last.IsZero() {
		q.tokens += now.Sub(q.last).Seconds() * q.rate
		if q.tokens > q.burst {
			q.tokens = q.burst
		}
	}
	q.last = now
	if q.tokens < 1 {
		return false
	}
	q.tokens--
	return true
}

// reject queues the event of a rejected request without ever blocking,
// stamped with the time of the rejection.
func (q *auditQueue) reject(e keystore.Event) {
	if !q.allow(time.Now()) {
		q.suppressed.Add(1)
		return
	}
	q.store.Stamp(&e)
	select {
	case q.ch <- e:
	default:
		q.suppressed.Add(1)
	}
}

// run writes queued events until ctx ends, then drains what is queued.
func (q *auditQueue) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case e := <-q.ch:
			q.write(ctx, e)
		case <-t.C:
			q.flushRetry(ctx)
			q.summarise(ctx)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for {
				select {
				case e := <-q.ch:
					q.write(drain, e)
				default:
					q.flushRetry(drain)
					q.summarise(drain)
					return
				}
			}
		}
	}
}

// write logs e and appends it to the audit stream, keeping it for a later
// try if Redis refuses it (events keep their order).
func (q *auditQueue) write(ctx context.Context, e keystore.Event) {
	q.store.Stamp(&e)
	if q.log != nil {
		q.log(e)
	}
	if len(q.retry) > 0 {
		q.keep(e)
		return
	}
	if err := q.writeOne(ctx, e); err != nil {
		q.keep(e)
	}
}

// auditWriteTimeout bounds one write, so that a hung Redis delays the
// queue rather than stopping it.
const auditWriteTimeout = 5 * time.Second

func (q *auditQueue) writeOne(ctx context.Context, e keystore.Event) error {
	ctx, cancel := context.WithTimeout(ctx, auditWriteTimeout)
	defer cancel()
	return q.store.WriteEvent(ctx, e)
}

func (q *auditQueue) keep(e keystore.Event) {
	if len(q.retry) >= maxRetry {
		q.lost.Add(1)
		return
	}
	q.retry = append(q.retry, e)
}

// flushRetry writes the kept events in order until one fails.
func (q *auditQueue) flushRetry(ctx context.Context) {
	for len(q.retry) > 0 {
		if err := q.writeOne(ctx, q.retry[0]); err != nil {
			return
		}
		q.retry[0] = keystore.Event{}
		q.retry = q.retry[1:]
	}
	q.retry = nil
}

// summarise reports how many rejection events were dropped since the last
// summary.
func (q *auditQueue) summarise(ctx context.Context) {
	n := q.suppressed.Swap(0)
	if lost := q.lost.Swap(0); lost > 0 {
		n += lost
	}
	if n == 0 {
		return
	}
	q.write(ctx, keystore.Event{
		EventName: keystore.EventAuthFailed,
		Operator:  keystore.Operator{ID: "system", Interface: keystore.InterfaceInternal},
		Reason:    "suppressed",
		Details:   map[string]any{"suppressed": n, "note": "rejected requests not audited one by one because of their rate"},
	})
}
