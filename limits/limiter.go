package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Kind names a limit.
type Kind uint8

// Limits, in the order Admit applies them.
const (
	KindNone Kind = iota
	KindKeyRate
	KindOwnerRate
	KindQuota
	KindConcurrency
)

// String names the kind for metrics and logs.
func (k Kind) String() string {
	switch k {
	case KindKeyRate:
		return "key_rate"
	case KindOwnerRate:
		return "owner_rate"
	case KindQuota:
		return "quota"
	case KindConcurrency:
		return "concurrency"
	}
	return "none"
}

// Subject tells which limits apply to one request. Zero values mean no
// limit of that kind.
type Subject struct {
	// KeyID names the access key's use (its rotation lineage); OwnerID its
	// owner.
	KeyID, OwnerID string
	// KeyRate limits the key; OwnerRate all keys of the owner together.
	KeyRate, OwnerRate Rate
	// Quota limits the key's requests per UTC day or month.
	Quota Quota
	// Concurrency limits the key's requests in flight.
	Concurrency int
}

// Limited reports whether any limit applies.
func (s *Subject) Limited() bool {
	return s != nil && (s.KeyRate.Requests > 0 || s.OwnerRate.Requests > 0 || s.Quota.Requests > 0 || s.Concurrency > 0)
}

// Decision is the verdict of Admit on one request.
type Decision struct {
	// Allowed: the request may go on; it must then be given to Release
	// once it is done.
	Allowed bool
	// Refused names the limit that refused the request.
	Refused Kind
	// RetryAfter says when to try again, when refused.
	RetryAfter time.Duration
	// Limit, Remaining and Reset describe the most constraining rate or
	// quota limit, for the RateLimit-* headers; Limit is 0 when none
	// applies. For a rate, Limit is the burst, Remaining the requests that
	// may be made at once now, Reset when the bucket is full again; for a
	// quota, the quota, what is left of it, and the end of its period.
	Limit, Remaining int64
	Reset            time.Duration
	// Local: Redis could not be reached and this instance decided alone.
	Local bool

	slot *slot
}

// Options configure a Limiter.
type Options struct {
	// Redis holds the fleet-wide state. Required.
	Redis redis.UniversalClient
	// Prefix starts every Redis key. Required.
	Prefix string
	// Logger reports when limits fall back to this instance alone, and
	// when they are fleet-wide again. Default: none.
	Logger *zap.Logger
	// MaxSubjects bounds the keys and owners whose rate and quota state
	// this instance keeps (least recently used dropped first). Default
	// 100,000.
	MaxSubjects int
	// Timeout bounds one Redis call. Default 500ms.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// slotLease and slotRenew override the constants (tests).
	slotLease, slotRenew time.Duration
}

// Limiter enforces limits fleet-wide. It is safe for concurrent use.
type Limiter struct {
	rdb      redis.UniversalClient
	prefix   string
	instance string
	timeout  time.Duration
	now      func() time.Time
	health   health
	// slotLease and slotRenew: see the constants of the same names.
	slotLease, slotRenew time.Duration

	keyRates   *table[rateBucket]
	ownerRates *table[rateBucket]
	quotas     *table[quotaBucket]
	slots      slotTable

	heldMu sync.Mutex
	held   map[*quotaBucket]struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// errShortReply says a script answered with an unexpected shape.
var errShortReply = errors.New("limits: unexpected script reply")

// New returns a Limiter and starts its background work (lease renewals
// and refunds); Close stops it.
func New(o Options) *Limiter {
	if o.MaxSubjects <= 0 {
		o.MaxSubjects = 100_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.slotLease <= 0 {
		o.slotLease, o.slotRenew = slotLease, slotRenew
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	l := &Limiter{
		rdb: o.Redis, prefix: o.Prefix, instance: hex.EncodeToString(id[:]),
		timeout: o.Timeout, now: o.Now, slotLease: o.slotLease, slotRenew: o.slotRenew,
		health:     health{log: o.Logger},
		keyRates:   newTable[rateBucket](o.MaxSubjects),
		ownerRates: newTable[rateBucket](o.MaxSubjects),
		quotas:     newTable[quotaBucket](o.MaxSubjects),
		slots:      slotTable{m: map[string]*slots{}},
		held:       map[*quotaBucket]struct{}{},
		done:       make(chan struct{}),
	}
	l.start()
	return l
}

func (l *Limiter) start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.loop(ctx)
}

// Close stops the background work and gives back the unused requests of
// quota leases.
func (l *Limiter) Close() {
	l.cancel()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.refundIdle(ctx, true)
}

func (l *Limiter) loop(ctx context.Context) {
	defer close(l.done)
	refund := time.NewTicker(time.Second)
	defer refund.Stop()
	renew := time.NewTicker(l.slotRenew)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refund.C:
			l.refundIdle(ctx, false)
		case <-renew.C:
			l.renewSlots(ctx)
		}
	}
}

// Admit decides whether a request of subject s may go on now, taking
// one unit of every limit that applies. An allowed request must be given
// to Release when it is done. A refused one has taken nothing.
//
// Rates and quotas are decided from leases held by this instance: most
// requests make no Redis call. A concurrency limit takes a slot in Redis
// (one call) and Release gives it back (one more).
func (l *Limiter) Admit(ctx context.Context, s *Subject) Decision {
	var d Decision
	var keyTk, ownerTk, quotaTk take
	var keyB, ownerB *rateBucket
	var quotaB *quotaBucket
	refuse := func(k Kind, tk take) Decision {
		if keyTk.ok {
			keyB.refund(keyTk, l.now())
		}
		if ownerTk.ok {
			ownerB.refund(ownerTk, l.now())
		}
		if quotaTk.ok {
			quotaB.refund(quotaTk)
		}
		d := Decision{Refused: k, RetryAfter: max(tk.retry, time.Second), Local: tk.local}
		if tk.limit > 0 && k != KindConcurrency {
			d.Limit, d.Remaining, d.Reset = tk.limit, 0, tk.retry
		}
		return d
	}
	if s.KeyRate.Requests > 0 {
		keyB = l.keyRates.get(s.KeyID, func(b *rateBucket) {})
		if keyTk = l.takeRate(ctx, keyB, "key", s.KeyID, s.KeyRate); !keyTk.ok {
			return refuse(KindKeyRate, keyTk)
		}
		d.constrain(keyTk)
	}
	if s.OwnerRate.Requests > 0 {
		ownerB = l.ownerRates.get(s.OwnerID, func(b *rateBucket) {})
		if ownerTk = l.takeRate(ctx, ownerB, "owner", s.OwnerID, s.OwnerRate); !ownerTk.ok {
			return refuse(KindOwnerRate, ownerTk)
		}
		d.constrain(ownerTk)
	}
	if s.Quota.Requests > 0 {
		quotaB = l.quotas.get(s.KeyID, func(b *quotaBucket) { b.id = s.KeyID })
		if quotaTk = l.takeQuota(ctx, quotaB, s.Quota); !quotaTk.ok {
			return refuse(KindQuota, quotaTk)
		}
		d.constrain(quotaTk)
	}
	if s.Concurrency > 0 {
		sl, tk := l.acquire(ctx, s.KeyID, s.Concurrency)
		if sl == nil {
			return refuse(KindConcurrency, tk)
		}
		d.slot = sl
		d.Local = d.Local || tk.local
	}
	d.Allowed = true
	return d
}

// constrain keeps in d the headers of the most constraining limit.
func (d *Decision) constrain(tk take) {
	d.Local = d.Local || tk.local
	if d.Limit == 0 || tk.remaining < d.Remaining || tk.remaining == d.Remaining && tk.reset > d.Reset {
		d.Limit, d.Remaining, d.Reset = tk.limit, tk.remaining, tk.reset
	}
}

// Holds reports whether d holds a concurrency slot, which Release must
// give back.
func (d *Decision) Holds() bool { return d.slot != nil }

// Release ends a request admitted by Admit, giving back its concurrency
// slot, if any.
func (l *Limiter) Release(ctx context.Context, d *Decision) {
	if d.slot != nil {
		l.release(context.WithoutCancel(ctx), d.slot)
		d.slot = nil
	}
}

// Degraded reports whether limits are currently held by this instance
// alone because Redis could not be reached.
func (l *Limiter) Degraded() bool { return l.health.isDown() }

// redisContext bounds one Redis call; it outlives the caller's
// cancellation, since a lease taken serves other requests too.
func (l *Limiter) redisContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), l.timeout)
}

// holding records a quota bucket that holds leased requests.
func (l *Limiter) holding(b *quotaBucket) {
	l.heldMu.Lock()
	l.held[b] = struct{}{}
	l.heldMu.Unlock()
}

func (l *Limiter) released(b *quotaBucket) {
	l.heldMu.Lock()
	delete(l.held, b)
	l.heldMu.Unlock()
}

func (l *Limiter) heldQuotas() []*quotaBucket {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	out := make([]*quotaBucket, 0, len(l.held))
	for b := range l.held {
		out = append(out, b)
	}
	return out
}

// health tracks whether Redis answers. After a failure, limits are held
// per instance and Redis is tried again after retryRedis.
type health struct {
	log       *zap.Logger
	mu        sync.Mutex
	downUntil time.Time
	isDownNow bool
}

const retryRedis = time.Second

func (h *health) down(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.isDownNow && now.Before(h.downUntil)
}

func (h *health) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.isDownNow
}

func (h *health) fail(now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.isDownNow {
		h.log.Warn("usage limits are held by this instance alone: Redis cannot be reached", zap.Error(err))
	}
	h.isDownNow, h.downUntil = true, now.Add(retryRedis)
}

func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isDownNow {
		h.log.Info("usage limits are fleet-wide again: Redis answers")
	}
	h.isDownNow = false
}
