package authcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntil polls cond with a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestMaxLoadsBound checks that many misses for distinct keys never run
// more loads at once than Config.MaxLoads, and that all of them are
// answered once loads end.
func TestMaxLoadsBound(t *testing.T) {
	for _, shards := range []int{1, 16} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			const bound, callers = 3, 60
			c := New[key, string](Config[key]{Shards: shards, Hash: hashKey, MaxLoads: bound, LoadWait: time.Hour})
			release := make(chan struct{})
			var running, peak, started atomic.Int64
			load := func(id string) func(context.Context) (string, time.Time, []string, error) {
				return func(context.Context) (string, time.Time, []string, error) {
					started.Add(1)
					n := running.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					<-release
					running.Add(-1)
					return "v" + id, time.Time{}, nil, nil
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for i := range callers {
				wg.Go(func() {
					id := fmt.Sprint(i)
					v, _, err := c.GetOrLoad(context.Background(), k(id), load(id))
					if err == nil && v != "v"+id {
						err = fmt.Errorf("key %s got %q", id, v)
					}
					if err != nil {
						errs <- err
					}
				})
			}
			waitUntil(t, "the bound to be reached", func() bool { return started.Load() == bound })
			if n := c.LoadsInFlight(); n != bound {
				t.Fatalf("%d loads in flight, want %d", n, bound)
			}
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if p := peak.Load(); p > bound {
				t.Fatalf("%d loads ran at once, bound %d", p, bound)
			}
			if started.Load() != callers || c.LoadsInFlight() != 0 || c.Len() != callers {
				t.Fatalf("%d loads, %d slots taken, %d entries", started.Load(), c.LoadsInFlight(), c.Len())
			}
		})
	}
}

// TestMaxLoadsBusy checks that a load that cannot get a slot within
// Config.LoadWait is not started and answers ErrBusy, that callers
// joining a load in flight take no slot, and that slots come back.
func TestMaxLoadsBusy(t *testing.T) {
	c := New[key, int](Config[key]{MaxLoads: 1, LoadWait: time.Millisecond})
	h := newHeldLoad(1, "a")
	ctx := context.Background()
	firstDone := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(ctx, k("a"), h.load)
		firstDone <- err
	}()
	<-h.started
	joined := make(chan error, 1)
	go func() {
		v, _, err := c.GetOrLoad(ctx, k("a"), h.load)
		if err == nil && v != 1 {
			err = fmt.Errorf("joined caller got %d", v)
		}
		joined <- err
	}()
	waitUntil(t, "the second caller to join", func() bool { return c.Stats().Misses == 2 })

	called := false
	_, _, err := c.GetOrLoad(ctx, k("b"), func(context.Context) (int, time.Time, []string, error) {
		called = true
		return 2, time.Time{}, nil, nil
	})
	if !errors.Is(err, ErrBusy) || called {
		t.Fatalf("load past the bound: err %v, load called %v", err, called)
	}
	if s := c.Stats(); s.Busy != 1 {
		t.Fatalf("Busy = %d, want 1", s.Busy)
	}
	close(h.release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if h.calls.Load() != 1 {
		t.Fatalf("%d loads of a, want 1", h.calls.Load())
	}
	if v, _, err := c.GetOrLoad(ctx, k("b"), func(context.Context) (int, time.Time, []string, error) {
		return 2, time.Time{}, nil, nil
	}); v != 2 || err != nil {
		t.Fatalf("after the slot came back: %d, %v", v, err)
	}
	if c.LoadsInFlight() != 0 {
		t.Fatalf("%d slots still taken", c.LoadsInFlight())
	}
}
