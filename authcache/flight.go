package authcache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errLoadExited is given to waiters when the goroutine running their load
// exited (runtime.Goexit) before the load returned.
var errLoadExited = errors.New("authcache: load did not return")

// call is one load in flight, shared by every GetOrLoad caller that misses
// the same key meanwhile.
type call[V any] struct {
	done chan struct{} // closed once val, err and stale are set
	val  V
	err  error

	// start is the shard's generation when the load started.
	start uint64
	// stale, set under the shard lock, is the generation of the first
	// change (Add or Remove of the key, Purge, or InvalidateTag of one of
	// the value's tags) made after the load started, or zero if none. The
	// value may predate that change: it is not cached, and callers that
	// joined the load after the change load again.
	stale uint64
}

// taint records that a change at generation gen may make f's value stale.
func (f *call[V]) taint(gen uint64) {
	if f.stale == 0 || gen < f.stale {
		f.stale = gen
	}
}

// wait returns the result of f, or ctx.Err() if ctx ends first. Leaving
// early does not affect the load. again reports that the caller, which
// joined f at generation joined, came after a change that f's value may
// predate and must look the key up again. Errors are returned as they
// are: they are never cached, and a retry would only repeat a failure.
func (f *call[V]) wait(ctx context.Context, joined uint64) (v V, again bool, err error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		select {
		case <-f.done: // both ready: prefer the result
		default:
			return v, false, ctx.Err()
		}
	}
	if f.err == nil && f.stale != 0 && joined >= f.stale {
		return v, true, nil
	}
	return f.val, false, f.err
}

// GetOrLoad returns the live value for k, or else loads it.
//
// When k is not cached, load is called to produce the value, its
// deadline (zero for none; the TTL still applies) and its tags, which are
// used as by Add. Concurrent misses for the same key share one call of
// load. The first caller runs it itself (no goroutine is started) with a
// context that carries that caller's values and deadline but is never
// cancelled on its account, so the first caller returns only once load
// does, and load should bound its own running time. The other callers
// wait for it; one whose ctx ends first returns ctx.Err() while the load
// carries on for the rest. A caller whose ctx has already ended does not
// start a load.
//
// An error from load is returned to every caller sharing the load and is
// not cached. A successful value is cached unless, while the load was in
// flight, the key was removed or re-added, the cache purged, or one of
// the value's tags invalidated; InvalidateTag of other tags does not
// affect it. A value not cached for one of those changes is still
// returned to the caller that ran the load and to those that joined it
// before the change; callers that joined it after the change look k up
// again (and load it anew if need be), so that no caller arriving after
// an invalidation gets a value that may predate it.
//
// If load panics, the callers waiting on it get an error describing the
// panic, and the panic is re-raised with its original value in the caller
// that ran load. Nothing is cached in that case.
//
// hit reports whether the value came from the cache without a load.
func (c *Cache[K, V]) GetOrLoad(ctx context.Context, k K, load func(ctx context.Context) (v V, deadline time.Time, tags []string, err error)) (v V, hit bool, err error) {
	return c.getOrLoad(ctx, k, load, true)
}

// LoadMissed is GetOrLoad for a caller whose Get of k has just missed
// (and was counted as a miss): it looks k up again, since another caller
// may have filled it meanwhile, but does not count that lookup in Stats,
// so that one request that misses counts one miss.
func (c *Cache[K, V]) LoadMissed(ctx context.Context, k K, load func(ctx context.Context) (v V, deadline time.Time, tags []string, err error)) (v V, hit bool, err error) {
	return c.getOrLoad(ctx, k, load, false)
}

func (c *Cache[K, V]) getOrLoad(ctx context.Context, k K, load func(context.Context) (V, time.Time, []string, error), count bool) (v V, hit bool, err error) {
	s := c.shard(k)
	for {
		now := c.now().UnixNano()
		s.mu.Lock()
		if e, ok := s.get(k, now); ok {
			v = e.val
			if count {
				s.hits.Add(1)
			}
			s.unlock()
			return v, true, nil
		}
		if count {
			s.misses.Add(1)
			count = false // a caller looking again is still one miss
		}
		if f, ok := s.flights[k]; ok {
			joined := s.gen
			s.unlock()
			v, again, err := f.wait(ctx, joined)
			if again {
				continue
			}
			return v, false, err
		}
		if err := ctx.Err(); err != nil {
			s.unlock()
			return v, false, err
		}
		f := &call[V]{done: make(chan struct{}), start: s.gen}
		if s.flights == nil {
			s.flights = make(map[K]*call[V])
		}
		s.flights[k] = f
		s.unlock()
		return c.lead(ctx, s, k, f, load)
	}
}

// lead runs load for the callers of f and publishes the result.
func (c *Cache[K, V]) lead(ctx context.Context, s *shard[K, V], k K, f *call[V], load func(context.Context) (V, time.Time, []string, error)) (V, bool, error) {
	returned := false
	defer func() {
		if returned {
			return
		}
		// load panicked or called runtime.Goexit.
		r := recover()
		if r != nil {
			f.err = fmt.Errorf("authcache: load panicked: %v", r)
		} else {
			f.err = errLoadExited
		}
		c.finish(s, k, f, false, time.Time{}, nil)
		if r != nil {
			panic(r)
		}
	}()
	// The load is shared: one caller going away must not end it for the
	// others, but the caller's deadline still bounds it.
	lctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadline(lctx, d)
		defer cancel()
	}
	if c.loads != nil {
		if err := c.acquireLoad(lctx, s); err != nil {
			var zero V
			returned = true
			f.err = err
			c.finish(s, k, f, false, time.Time{}, nil)
			return zero, false, err
		}
		defer c.releaseLoad()
	}
	v, deadline, tags, err := load(lctx)
	returned = true
	f.val, f.err = v, err
	c.finish(s, k, f, err == nil, deadline, tags)
	return v, false, err
}

// finish ends the flight f for k, caching its value if store is set and
// nothing invalidated it meanwhile, and releases its waiters.
func (c *Cache[K, V]) finish(s *shard[K, V], k K, f *call[V], store bool, deadline time.Time, tags []string) {
	defer close(f.done) // even if OnEvict panics
	now := c.now()
	dl := c.deadline(now, deadline)
	s.mu.Lock()
	if store {
		s.settle(f, tags, false)
	}
	if s.flights[k] == f {
		delete(s.flights, k)
	}
	if len(s.flights) == 0 {
		s.forgetDropped()
	}
	if store && f.stale == 0 {
		s.add(k, f.val, dl, now.UnixNano(), tags)
	}
	s.unlock()
}
