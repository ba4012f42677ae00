package limits

import (
	"context"
	"sync"
	"time"
)

// Concurrency slots live in Redis, per subject: how many requests each
// instance has in flight, and each instance's lease. An instance renews
// its leases every slotRenew while it holds slots; the slots of an
// instance that stopped renewing (it died) are dropped by the next
// acquisition after slotLease.
const (
	slotLease = 20 * time.Second
	slotRenew = 5 * time.Second
)

// slots is one subject's requests in flight on this instance.
type slots struct {
	id string
	// remote slots are counted in Redis; local ones were admitted while
	// Redis was unreachable.
	remote, local int
	// ops counts Redis calls in flight for the subject.
	ops int
	// refs counts the requests using this entry.
	refs int
	// dirty: Redis may count slots this instance no longer holds (a
	// release failed); cleared once nothing is in flight.
	dirty bool
	// clearing is non-nil while the dirty count is being cleared in
	// Redis; acquisitions wait for it, closed at the end.
	clearing chan struct{}
}

// slotTable holds the subjects with requests in flight or dirty slots:
// it is bounded by the requests in flight.
type slotTable struct {
	mu sync.Mutex
	m  map[string]*slots
}

// Slot is a concurrency slot taken by Admit, given back by Release.
type slot struct {
	s      *slots
	remote bool
}

func (l *Limiter) acquire(ctx context.Context, id string, limit int) (*slot, take) {
	t := &l.slots
	t.mu.Lock()
	s := t.m[id]
	if s == nil {
		s = &slots{id: id}
		t.m[id] = s
	}
	s.refs++
	for s.clearing != nil {
		ch := s.clearing
		t.mu.Unlock()
		<-ch
		t.mu.Lock()
	}
	now := l.now()
	if l.health.down(now) {
		sl, tk := s.localAcquire(limit)
		if sl == nil {
			l.unref(s)
		}
		t.mu.Unlock()
		return sl, tk
	}
	s.ops++
	t.mu.Unlock()

	ok, err := l.acquireRemote(ctx, id, limit)

	t.mu.Lock()
	defer t.mu.Unlock()
	s.ops--
	if err != nil {
		s.dirty = true
		l.health.fail(l.now(), err)
		sl, tk := s.localAcquire(limit)
		if sl == nil {
			l.unref(s)
		}
		return sl, tk
	}
	l.health.ok()
	if !ok {
		l.unref(s)
		return nil, take{limit: int64(limit), retry: time.Second}
	}
	s.remote++
	return &slot{s: s, remote: true}, take{ok: true}
}

// localAcquire decides alone: at most limit requests in flight here.
func (s *slots) localAcquire(limit int) (*slot, take) {
	if s.remote+s.local >= limit {
		return nil, take{local: true, limit: int64(limit), retry: time.Second}
	}
	s.local++
	return &slot{s: s}, take{ok: true, local: true}
}

// release gives a slot back.
func (l *Limiter) release(ctx context.Context, sl *slot) {
	t := &l.slots
	s := sl.s
	t.mu.Lock()
	if !sl.remote {
		s.local--
		l.unref(s)
		t.mu.Unlock()
		return
	}
	s.remote--
	s.ops++
	t.mu.Unlock()

	err := l.releaseRemote(ctx, s.id)

	t.mu.Lock()
	s.ops--
	if err != nil {
		s.dirty = true
		l.health.fail(l.now(), err)
	}
	l.unref(s)
	t.mu.Unlock()
}

// unref drops a request's reference; t.mu is held.
func (l *Limiter) unref(s *slots) {
	s.refs--
	if s.refs == 0 && !s.dirty {
		delete(l.slots.m, s.id)
	}
}

func (l *Limiter) acquireRemote(ctx context.Context, id string, limit int) (bool, error) {
	ctx, cancel := l.redisContext(ctx)
	defer cancel()
	vals, err := acquireSlot.Run(ctx, l.rdb, []string{concKey(l.prefix, id), concLeaseKey(l.prefix, id)},
		l.instance, limit, l.slotLease.Milliseconds()).Int64Slice()
	if err != nil {
		return false, err
	}
	if len(vals) != 2 {
		return false, errShortReply
	}
	return vals[0] == 1, nil
}

func (l *Limiter) releaseRemote(ctx context.Context, id string) error {
	ctx, cancel := l.redisContext(ctx)
	defer cancel()
	return releaseSlot.Run(ctx, l.rdb, []string{concKey(l.prefix, id), concLeaseKey(l.prefix, id)}, l.instance).Err()
}

// renewSlots extends this instance's leases of the subjects it holds
// slots of, and clears the dirty subjects that have nothing in flight.
func (l *Limiter) renewSlots(ctx context.Context) {
	type job struct {
		s     *slots
		clear bool
	}
	var jobs []job
	t := &l.slots
	t.mu.Lock()
	for _, s := range t.m {
		switch {
		case s.remote > 0:
			jobs = append(jobs, job{s: s})
		case s.dirty && s.remote+s.local == 0 && s.ops == 0 && s.clearing == nil:
			s.clearing = make(chan struct{})
			jobs = append(jobs, job{s: s, clear: true})
		}
	}
	t.mu.Unlock()
	for _, j := range jobs {
		keys := []string{concKey(l.prefix, j.s.id), concLeaseKey(l.prefix, j.s.id)}
		cctx, cancel := l.redisContext(ctx)
		if j.clear {
			err := clearSlots.Run(cctx, l.rdb, keys, l.instance).Err()
			cancel()
			t.mu.Lock()
			close(j.s.clearing)
			j.s.clearing = nil
			if err == nil {
				j.s.dirty = false
				if j.s.refs == 0 {
					delete(t.m, j.s.id)
				}
			}
			t.mu.Unlock()
			continue
		}
		n, err := renewSlots.Run(cctx, l.rdb, keys, l.instance, l.slotLease.Milliseconds()).Int64()
		cancel()
		if err == nil && n == 0 {
			// Another instance took this one for dead: its count is gone
			// until its requests end.
			t.mu.Lock()
			j.s.dirty = true
			t.mu.Unlock()
		}
	}
}
