package authcache

import (
	"context"
	"sync/atomic"
	"time"
)

// Clock is a coarse clock for Config.Now. Reading it is one atomic load,
// where time.Now costs a clock read that is slow on some virtual machines.
// It does not advance by itself: its owner runs Run in a goroutine of its
// own, and the clock then lags the real time by about the tick (more when
// that goroutine waits for a CPU), so an entry may be served up to that
// long past its deadline. Deadlines computed from it are never later than
// with time.Now.
type Clock struct {
	ns atomic.Int64
}

// NewClock returns a Clock set to the current time.
func NewClock() *Clock {
	c := new(Clock)
	c.ns.Store(time.Now().UnixNano())
	return c
}

// Now returns the time of the last tick, without a monotonic reading.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Run sets the clock to the current time every tick until ctx ends.
func (c *Clock) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.ns.Store(time.Now().UnixNano())
		}
	}
}
