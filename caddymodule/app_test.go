package caddymodule

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
)

// testState starts a state on a fresh redis-server. The returned
// function waits until the state has closed its Redis client.
func testState(t *testing.T) (*state, func()) {
	t.Helper()
	srv := redistest.Start(t)
	st, err := newState(App{
		Redis:         []string{srv.URL()},
		LastUsedFlush: caddy.Duration(time.Hour),
		SweepInterval: caddy.Duration(time.Hour),
	}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	admin := srv.Client(t)
	closed := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !errors.Is(st.rdb.Ping(context.Background()).Err(), redis.ErrClosed) {
			if time.Now().After(deadline) {
				t.Fatal("the state's Redis client was not closed")
			}
			// The subscriber waits in a read that ignores cancellation;
			// closing its connection ends the wait.
			admin.ClientKillByFilter(context.Background(), "TYPE", "pubsub")
			time.Sleep(20 * time.Millisecond)
		}
	}
	return st, closed
}

// TestStateOutlivesItsRequests: a state that the usage pool releases (a
// reload replaced the settings) stays open while requests hold it, and
// closes with the last of them; an old app whose state has closed hands
// its requests the running app's state.
func TestStateOutlivesItsRequests(t *testing.T) {
	old, oldClosed := testState(t)
	running, runningClosed := testState(t)
	oldApp, runningApp := &App{state: old}, &App{state: running}
	if err := runningApp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = runningApp.Stop()
		_ = running.Destruct()
		runningClosed()
	})

	var held []stateRef
	for range 3 {
		r := oldApp.acquire()
		if r.state != old || !r.held {
			t.Fatalf("acquire = %p held %v, want the app's own state %p", r.state, r.held, old)
		}
		held = append(held, r)
	}
	// Requests come and go while the pool releases the state.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				r := oldApp.acquire()
				if err := r.rdb.Ping(context.Background()).Err(); err != nil {
					t.Errorf("a held state's Redis client failed: %v", err)
				}
				r.release()
			}
		}()
	}
	if err := old.Destruct(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, r := range held {
		if err := r.rdb.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("request %d: the state closed under it: %v", i, err)
		}
		r.release()
	}
	oldClosed()
	if r := oldApp.acquire(); r.state != running || !r.held {
		t.Errorf("after its state closed, the old app handed out %p (held %v), want the running state %p", r.state, r.held, running)
	} else {
		r.release()
	}
	if cur := oldApp.current(); cur != running {
		t.Errorf("current() = %p, want the running state %p", cur, running)
	}
}
