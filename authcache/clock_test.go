package authcache

import (
	"context"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	before := time.Now()
	c := NewClock()
	if now := c.Now(); now.Before(before.Truncate(0)) || now.After(time.Now()) {
		t.Fatalf("NewClock().Now() = %v, not between %v and now", now, before)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx, time.Millisecond)
		close(done)
	}()
	start := c.Now()
	for !c.Now().After(start) {
		time.Sleep(time.Millisecond) // until a tick advances it
	}
	cancel()
	<-done // Run returns once its context ends
	stopped := c.Now()
	time.Sleep(5 * time.Millisecond)
	if !c.Now().Equal(stopped) {
		t.Error("the clock advanced after Run returned")
	}
}
