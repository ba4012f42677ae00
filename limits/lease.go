package limits

import (
	"sync"
	"time"
)

// lease is what an instance holds of a fleet-wide limit: units taken from
// Redis ahead of use, and how many to take next time. It is guarded by
// the mutex of the bucket that embeds it.
type lease struct {
	tokens   int64
	leasedAt time.Time
	batch    int64
	// fetch is non-nil while a lease is being taken; it is closed then.
	fetch chan struct{}
}

// awaitFetch reports whether another request is taking a lease; if so it
// unlocks mu and waits for that to end, and the caller tries again.
func (ls *lease) awaitFetch(mu *sync.Mutex) bool {
	ch := ls.fetch
	if ch == nil {
		return false
	}
	mu.Unlock()
	<-ch
	return true
}

// startFetch sizes the next lease, at most maxBatch, and marks it as being
// taken: a batch doubles while leases last less than leaseFast and
// halves when one lasted more than leaseSlow. It returns the size and the
// channel to pass to endFetch.
func (ls *lease) startFetch(now time.Time, maxBatch int64) (int64, chan struct{}) {
	if ls.batch < 1 {
		ls.batch = 1
	}
	if !ls.leasedAt.IsZero() {
		switch held := now.Sub(ls.leasedAt); {
		case held < leaseFast && ls.tokens == 0:
			ls.batch *= 2
		case held > leaseSlow:
			ls.batch /= 2
		}
	}
	ls.batch = max(1, min(ls.batch, maxBatch))
	ls.fetch = make(chan struct{})
	return ls.batch, ls.fetch
}

// endFetch ends the taking of a lease begun by startFetch.
func (ls *lease) endFetch(ch chan struct{}) {
	if ls.fetch == ch {
		ls.fetch = nil
	}
	close(ch)
}
