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
	done chan struct{} // closed once val and err are set
	val  V
	err  error

	// noStore, set under the shard lock, keeps the result out of the
	// cache because the key was removed or replaced during the load.
	noStore bool
}

// wait returns the result of f, or ctx.Err() if ctx ends first. Leaving
// early does not affect the load.
func (f *call[V]) wait(ctx context.Context) (V, bool, error) {
	select {
	case <-f.done:
		return f.val, false, f.err
	case <-ctx.Done():
		select {
		case <-f.done: // both ready: prefer the result
			return f.val, false, f.err
		default:
		}
		var zero V
		return zero, false, ctx.Err()
	}
}

// GetOrLoad returns the live value for k, or else loads it.
//
// When k is not cached, load is called to produce the value, its
// deadline (zero for none; the TTL still applies) and its tags, which are
// used as by Add. Concurrent misses for the same key share one call of
// load. The first caller runs it itself (no goroutine is started) with a
// context that carries that caller's values but is never cancelled on its
// account (context.WithoutCancel), so the first caller returns only once
// load does, and load should bound its own running time. The other
// callers wait for it; one whose ctx ends first returns ctx.Err() while
// the load carries on for the rest. A caller whose ctx has already ended
// does not start a load.
//
// An error from load is returned to every caller sharing the load and is
// not cached. A successful value is cached unless the key was removed or
// re-added, or InvalidateTag or Purge was called, while the load was in
// flight; it is still returned to the callers sharing that load.
//
// If load panics, the callers waiting on it get an error describing the
// panic, and the panic is re-raised with its original value in the caller
// that ran load. Nothing is cached in that case.
//
// hit reports whether the value came from the cache without a load.
func (c *Cache[K, V]) GetOrLoad(ctx context.Context, k K, load func(ctx context.Context) (v V, deadline time.Time, tags []string, err error)) (v V, hit bool, err error) {
	s := c.shard(k)
	now := c.now().UnixNano()
	s.mu.Lock()
	if e, ok := s.get(k, now); ok {
		v = e.val
		s.hits.Add(1)
		s.unlock()
		return v, true, nil
	}
	s.misses.Add(1)
	if f, ok := s.flights[k]; ok {
		s.unlock()
		return f.wait(ctx)
	}
	if err := ctx.Err(); err != nil {
		s.unlock()
		return v, false, err
	}
	f := &call[V]{done: make(chan struct{})}
	if s.flights == nil {
		s.flights = make(map[K]*call[V])
	}
	s.flights[k] = f
	gen := s.gen
	s.unlock()
	return c.lead(ctx, s, k, f, gen, load)
}

// lead runs load for the callers of f and publishes the result.
func (c *Cache[K, V]) lead(ctx context.Context, s *shard[K, V], k K, f *call[V], gen uint64, load func(context.Context) (V, time.Time, []string, error)) (V, bool, error) {
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
		c.finish(s, k, f, gen, false, time.Time{}, nil)
		if r != nil {
			panic(r)
		}
	}()
	v, deadline, tags, err := load(context.WithoutCancel(ctx))
	returned = true
	f.val, f.err = v, err
	c.finish(s, k, f, gen, err == nil, deadline, tags)
	return v, false, err
}

// finish ends the flight f for k, caching its value if store is set and
// nothing invalidated it meanwhile, and releases its waiters.
func (c *Cache[K, V]) finish(s *shard[K, V], k K, f *call[V], gen uint64, store bool, deadline time.Time, tags []string) {
	defer close(f.done) // even if OnEvict panics
	now := c.now()
	dl := c.deadline(now, deadline)
	s.mu.Lock()
	if s.flights[k] == f {
		delete(s.flights, k)
	}
	if store && !f.noStore && gen == s.gen {
		s.add(k, f.val, dl, now.UnixNano(), tags)
	}
	s.unlock()
}
