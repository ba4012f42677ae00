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
// counted and reported in a summary event.
type auditQueue struct {
	store *keystore.Store
	ch    chan keystore.Event

	mu     sync.Mutex
	tokens float64
	last   time.Time
	rate   float64 // tokens per second
	burst  float64

	suppressed atomic.Int64

	// retry holds events whose write failed (Redis unreachable), oldest
	// first, up to maxRetry; only the run goroutine touches it.
	retry []keystore.Event
	lost  atomic.Int64
}

// maxRetry bounds the events kept in memory while Redis is unreachable.
const maxRetry = 10000

func newAuditQueue(store *keystore.Store, size int, perSecond, burst float64) *auditQueue {
	return &auditQueue{store: store, ch: make(chan keystore.Event, size), rate: perSecond, burst: burst, tokens: burst}
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

// reject queues the event of a rejected request without ever blocking.
func (q *auditQueue) reject(e keystore.Event) {
	if !q.allow(time.Now()) {
		q.suppressed.Add(1)
		return
	}
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

// write appends e to the audit stream, keeping it for a later try if Redis
// refuses it.
func (q *auditQueue) write(ctx context.Context, e keystore.Event) {
	if len(q.retry) > 0 {
		q.keep(e)
		return
	}
	if err := q.store.AppendEvent(ctx, e); err != nil {
		q.keep(e)
	}
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
		if err := q.store.AppendEvent(ctx, q.retry[0]); err != nil {
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
