package authcache

import (
	"context"
	"errors"
	"time"
)

// ErrBusy is returned by GetOrLoad and LoadMissed when the cache's bound
// on concurrent loads (Config.MaxLoads) stayed reached for Config.LoadWait:
// the load was not started. Callers that had joined it get ErrBusy too.
var ErrBusy = errors.New("authcache: too many loads in flight")

// acquireLoad takes a load slot, waiting at most c.loadWait or until ctx
// ends. Taking a free slot allocates nothing.
func (c *Cache[K, V]) acquireLoad(ctx context.Context, s *shard[K, V]) error {
	select {
	case c.loads <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(c.loadWait)
	defer t.Stop()
	select {
	case c.loads <- struct{}{}:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	s.busy.Add(1)
	return ErrBusy
}

// releaseLoad gives back a slot taken by acquireLoad.
func (c *Cache[K, V]) releaseLoad() { <-c.loads }

// LoadsInFlight returns the number of load slots taken; zero when loads
// are not bounded.
func (c *Cache[K, V]) LoadsInFlight() int { return len(c.loads) }
