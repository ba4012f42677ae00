package authcache

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heldLoad is a load that signals when it starts and returns only when
// released.
type heldLoad struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
	ctxErr  atomic.Value // ctx.Err() seen by the load after release
	val     int
	tags    []string
	err     error
}

func newHeldLoad(val int, tags ...string) *heldLoad {
	return &heldLoad{started: make(chan struct{}), release: make(chan struct{}), val: val, tags: tags}
}

func (h *heldLoad) load(ctx context.Context) (int, time.Time, []string, error) {
	if h.calls.Add(1) == 1 {
		close(h.started)
	}
	<-h.release
	h.ctxErr.Store(fmtErr(ctx.Err()))
	return h.val, time.Time{}, h.tags, h.err
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

type result struct {
	v   int
	hit bool
	err error
}

// lead starts GetOrLoad in a new goroutine and waits until its load runs.
func lead(c *Cache[key, int], ctx context.Context, id string, h *heldLoad) <-chan result {
	out := make(chan result, 1)
	go func() {
		v, hit, err := c.GetOrLoad(ctx, k(id), h.load)
		out <- result{v, hit, err}
	}()
	<-h.started
	return out
}

func TestSingleflight(t *testing.T) {
	for _, shards := range []int{1, 16} {
		c := New[key, int](Config[key]{Shards: shards, Hash: hashKey})
		h := newHeldLoad(42, "acc")
		const n = 1000
		var ready, done sync.WaitGroup
		results := make([]result, n)
		ready.Add(n)
		done.Add(n)
		for i := range n {
			go func() {
				defer done.Done()
				ready.Done()
				v, hit, err := c.GetOrLoad(context.Background(), k("a"), h.load)
				results[i] = result{v, hit, err}
			}()
		}
		ready.Wait()
		<-h.started
		close(h.release)
		done.Wait()
		if got := h.calls.Load(); got != 1 {
			t.Fatalf("shards=%d: load called %d times, want 1", shards, got)
		}
		hits := 0
		for i, r := range results {
			if r.v != 42 || r.err != nil {
				t.Fatalf("shards=%d: caller %d got %d, %v", shards, i, r.v, r.err)
			}
			if r.hit {
				hits++
			}
		}
		if s := c.Stats(); s.Hits != uint64(hits) || s.Misses != uint64(n-hits) {
			t.Fatalf("shards=%d: stats %+v, %d hits seen", shards, s, hits)
		}
		if v, hit, err := c.GetOrLoad(context.Background(), k("a"), h.load); v != 42 || !hit || err != nil {
			t.Fatalf("shards=%d: after load: %d, %v, %v", shards, v, hit, err)
		}
		if c.InvalidateTag("acc") != 1 {
			t.Fatalf("shards=%d: loaded value not tagged", shards)
		}
		for _, s := range c.shards {
			if len(s.flights) != 0 {
				t.Fatalf("shards=%d: flight left behind", shards)
			}
		}
	}
}

func TestGetOrLoadDeadline(t *testing.T) {
	clk := newClock()
	c := New[key, int](Config[key]{TTL: time.Hour, Now: clk.Now})
	load := func(context.Context) (int, time.Time, []string, error) {
		return 1, clk.Now().Add(time.Minute), nil, nil
	}
	if _, hit, _ := c.GetOrLoad(context.Background(), k("a"), load); hit {
		t.Fatal("first GetOrLoad was a hit")
	}
	if _, hit, _ := c.GetOrLoad(context.Background(), k("a"), load); !hit {
		t.Fatal("second GetOrLoad was not a hit")
	}
	clk.Advance(time.Minute)
	if _, hit, _ := c.GetOrLoad(context.Background(), k("a"), load); hit {
		t.Fatal("GetOrLoad served an entry past its load deadline")
	}
	// A load returning a deadline already passed is returned, not cached.
	past := func(context.Context) (int, time.Time, []string, error) {
		return 2, clk.Now().Add(-time.Second), nil, nil
	}
	if v, hit, err := c.GetOrLoad(context.Background(), k("b"), past); v != 2 || hit || err != nil {
		t.Fatalf("GetOrLoad = %d, %v, %v", v, hit, err)
	}
	if _, ok := c.Get(k("b")); ok {
		t.Fatal("value with a passed deadline cached")
	}
}

func TestErrorsNotCached(t *testing.T) {
	c := New[key, int](Config[key]{})
	boom := errors.New("boom")
	h := newHeldLoad(7)
	h.err = boom
	first := lead(c, context.Background(), "a", h)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, _, err := c.GetOrLoad(context.Background(), k("a"), h.load)
			errs <- err
		})
	}
	close(h.release)
	if r := <-first; !errors.Is(r.err, boom) || r.hit {
		t.Fatalf("leader got %+v", r)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		// Latecomers may start their own (failing) load; all see boom.
		if !errors.Is(err, boom) {
			t.Fatalf("waiter got %v", err)
		}
	}
	if _, ok := c.Get(k("a")); ok || c.Len() != 0 {
		t.Fatal("error result cached")
	}
	calls := 0
	ok := func(context.Context) (int, time.Time, []string, error) {
		calls++
		return 8, time.Time{}, nil, nil
	}
	if v, hit, err := c.GetOrLoad(context.Background(), k("a"), ok); v != 8 || hit || err != nil || calls != 1 {
		t.Fatalf("retry after error: %d, %v, %v, calls=%d", v, hit, err, calls)
	}
}

func TestWaiterContextCancelled(t *testing.T) {
	c := New[key, int](Config[key]{})
	h := newHeldLoad(5)
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	first := lead(c, leaderCtx, "a", h)

	// A waiter whose context ends while waiting.
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan result, 1)
	go func() {
		v, hit, err := c.GetOrLoad(ctx, k("a"), h.load)
		waiter <- result{v, hit, err}
	}()
	cancel()
	if r := <-waiter; !errors.Is(r.err, context.Canceled) || r.hit {
		t.Fatalf("cancelled waiter got %+v", r)
	}
	// A waiter whose deadline has already passed.
	dctx, dcancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer dcancel()
	if _, _, err := c.GetOrLoad(dctx, k("a"), h.load); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired waiter got %v", err)
	}
	// The leader's caller going away does not cancel the load either.
	cancelLeader()

	other := make(chan result, 1)
	go func() {
		v, hit, err := c.GetOrLoad(context.Background(), k("a"), h.load)
		other <- result{v, hit, err}
	}()
	close(h.release)
	if r := <-first; r.v != 5 || r.err != nil {
		t.Fatalf("leader got %+v", r)
	}
	if r := <-other; r.v != 5 || r.err != nil {
		t.Fatalf("remaining waiter got %+v", r)
	}
	if got := h.ctxErr.Load(); got != "<nil>" {
		t.Fatalf("load context ended: %v", got)
	}
	if h.calls.Load() != 1 {
		t.Fatalf("load called %d times", h.calls.Load())
	}
	if v, ok := c.Get(k("a")); !ok || v != 5 {
		t.Fatalf("value not cached: %d, %v", v, ok)
	}
}

func TestCancelledCallerStartsNoLoad(t *testing.T) {
	c := New[key, int](Config[key]{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, _, err := c.GetOrLoad(ctx, k("a"), func(context.Context) (int, time.Time, []string, error) {
		called = true
		return 1, time.Time{}, nil, nil
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("err = %v, load called = %v", err, called)
	}
	// A hit is served whatever the context.
	c.Add(k("a"), 2, time.Time{})
	if v, hit, err := c.GetOrLoad(ctx, k("a"), nil); v != 2 || !hit || err != nil {
		t.Fatalf("hit with cancelled ctx: %d, %v, %v", v, hit, err)
	}
}

func TestInvalidationDuringLoad(t *testing.T) {
	tests := []struct {
		name   string
		during func(c *Cache[key, int])
		want   int // cached afterwards; 0 for none
	}{
		{"InvalidateTag of its tag", func(c *Cache[key, int]) { c.InvalidateTag("acc1") }, 0},
		{"InvalidateTag of its other tag", func(c *Cache[key, int]) { c.InvalidateTag("own1") }, 0},
		{"InvalidateTag of another tag", func(c *Cache[key, int]) { c.InvalidateTag("unrelated") }, 1},
		{"InvalidateTag of its tag among many others", func(c *Cache[key, int]) {
			for i := range 1000 {
				c.InvalidateTag(fmt.Sprint("before", i))
			}
			c.InvalidateTag("own1")
			for i := range 1000 {
				c.InvalidateTag(fmt.Sprint("after", i))
			}
		}, 0},
		{"InvalidateTag of its tag, then Purge", func(c *Cache[key, int]) { c.InvalidateTag("acc1"); c.Purge() }, 0},
		{"Purge", func(c *Cache[key, int]) { c.Purge() }, 0},
		{"Remove", func(c *Cache[key, int]) { c.Remove(k("a")) }, 0},
		{"Add wins", func(c *Cache[key, int]) { c.Add(k("a"), 99, time.Time{}) }, 99},
		{"Remove of another key", func(c *Cache[key, int]) { c.Remove(k("b")) }, 1},
		{"nothing", func(*Cache[key, int]) {}, 1},
	}
	for _, shards := range []int{1, 4} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/shards=%d", tt.name, shards), func(t *testing.T) {
				c := New[key, int](Config[key]{Shards: shards, Hash: hashKey})
				h := newHeldLoad(1, "acc1", "own1")
				first := lead(c, context.Background(), "a", h)
				tt.during(c)
				close(h.release)
				if r := <-first; r.v != 1 || r.err != nil {
					t.Fatalf("load result not returned: %+v", r)
				}
				v, ok := c.Get(k("a"))
				if got := map[bool]int{true: v}[ok]; got != tt.want {
					t.Fatalf("cached afterwards: %d, %v; want %d", v, ok, tt.want)
				}
				checkIndex(t, c)
			})
		}
	}
}

// TestLateCallerReloadsAfterInvalidation: a caller that arrives after an
// invalidation hit a load in flight must not get that load's value, which
// may predate the change, but a fresh one; callers that arrived before the
// change may share the load, and changes of other tags keep it shared.
func TestLateCallerReloadsAfterInvalidation(t *testing.T) {
	tests := []struct {
		name   string
		during func(c *Cache[key, int])
		late   int // value the late caller gets
	}{
		{"InvalidateTag of its tag", func(c *Cache[key, int]) { c.InvalidateTag("acc1") }, 2},
		{"InvalidateTag of its other tag", func(c *Cache[key, int]) { c.InvalidateTag("own1") }, 2},
		{"InvalidateTag of its tag, then of others", func(c *Cache[key, int]) {
			c.InvalidateTag("own1")
			for i := range 1000 {
				c.InvalidateTag(fmt.Sprint("other", i))
			}
		}, 2},
		{"Purge", func(c *Cache[key, int]) { c.Purge() }, 2},
		{"Remove", func(c *Cache[key, int]) { c.Remove(k("a")) }, 2},
		{"InvalidateTag of another tag", func(c *Cache[key, int]) { c.InvalidateTag("unrelated") }, 1},
		{"Remove of another key", func(c *Cache[key, int]) { c.Remove(k("b")) }, 1},
	}
	for _, shards := range []int{1, 4} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/shards=%d", tt.name, shards), func(t *testing.T) {
				c := New[key, int](Config[key]{Shards: shards, Hash: hashKey})
				h := newHeldLoad(1, "acc1", "own1")
				fresh := func(context.Context) (int, time.Time, []string, error) {
					return 2, time.Time{}, []string{"acc1", "own1"}, nil
				}
				first := lead(c, context.Background(), "a", h)
				early := make(chan result, 1)
				go func() {
					v, hit, err := c.GetOrLoad(context.Background(), k("a"), fresh)
					early <- result{v, hit, err}
				}()
				waitMisses(c, 2)
				tt.during(c)
				late := make(chan result, 1)
				go func() {
					v, hit, err := c.GetOrLoad(context.Background(), k("a"), fresh)
					late <- result{v, hit, err}
				}()
				waitMisses(c, 3)
				close(h.release)
				if r := <-first; r.v != 1 || r.err != nil {
					t.Fatalf("leader got %+v", r)
				}
				if r := <-early; r.v != 1 || r.err != nil {
					t.Fatalf("caller that came before the change got %+v, want the shared load's 1", r)
				}
				if r := <-late; r.v != tt.late || r.err != nil {
					t.Fatalf("caller that came after the change got %+v, want %d", r, tt.late)
				}
				if h.calls.Load() != 1 {
					t.Fatalf("held load called %d times", h.calls.Load())
				}
				checkIndex(t, c)
				for _, s := range c.shards {
					if len(s.flights) != 0 || len(s.dropped) != 0 {
						t.Fatalf("flights or invalidation records left behind: %d, %d", len(s.flights), len(s.dropped))
					}
				}
			})
		}
	}
}

// TestUntaggedValueSurvivesInvalidateTag: a value without tags cannot be
// concerned by a tag, whatever tags were invalidated during its load (up
// to the number of invalidations a shard keeps track of).
func TestUntaggedValueSurvivesInvalidateTag(t *testing.T) {
	c := New[key, int](Config[key]{})
	h := newHeldLoad(1)
	first := lead(c, context.Background(), "a", h)
	for i := range maxDropped {
		c.InvalidateTag(fmt.Sprint("tag", i%3))
	}
	close(h.release)
	if r := <-first; r.v != 1 || r.err != nil {
		t.Fatalf("GetOrLoad = %+v", r)
	}
	if _, ok := c.Get(k("a")); !ok {
		t.Fatal("untagged value not cached")
	}
}

// TestLoadKeepsCallerDeadline: the load runs with the deadline of the
// caller that started it, but the caller's cancellation does not end it.
func TestLoadKeepsCallerDeadline(t *testing.T) {
	c := New[key, int](Config[key]{})
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	var got time.Time
	var has bool
	h := newHeldLoad(1)
	load := func(ctx context.Context) (int, time.Time, []string, error) {
		got, has = ctx.Deadline()
		return h.load(ctx)
	}
	out := make(chan result, 1)
	go func() {
		v, hit, err := c.GetOrLoad(ctx, k("a"), load)
		out <- result{v, hit, err}
	}()
	<-h.started
	cancel()
	close(h.release)
	if r := <-out; r.v != 1 || r.err != nil {
		t.Fatalf("GetOrLoad = %+v", r)
	}
	if !has || !got.Equal(deadline) {
		t.Fatalf("load ran with deadline %v (set: %v), want the caller's %v", got, has, deadline)
	}
	if e := h.ctxErr.Load(); e != "<nil>" {
		t.Fatalf("the caller's cancellation ended the load: %v", e)
	}
}

// TestLoadMissedCountsOnce: a Get that misses followed by LoadMissed is
// one lookup, counted once.
func TestLoadMissedCountsOnce(t *testing.T) {
	c := New[key, int](Config[key]{})
	load := func(context.Context) (int, time.Time, []string, error) { return 1, time.Time{}, nil, nil }
	if _, ok := c.Get(k("a")); ok {
		t.Fatal("hit in an empty cache")
	}
	if v, hit, err := c.LoadMissed(context.Background(), k("a"), load); v != 1 || hit || err != nil {
		t.Fatalf("LoadMissed = %d, %v, %v", v, hit, err)
	}
	if s := c.Stats(); s.Misses != 1 || s.Hits != 0 {
		t.Fatalf("after one miss: %+v", s)
	}
	if _, ok := c.Get(k("a")); !ok {
		t.Fatal("loaded value not cached")
	}
	// Filled meanwhile: LoadMissed finds it without a load or a count.
	if v, hit, err := c.LoadMissed(context.Background(), k("a"), nil); v != 1 || !hit || err != nil {
		t.Fatalf("LoadMissed of a filled key = %d, %v, %v", v, hit, err)
	}
	if s := c.Stats(); s.Misses != 1 || s.Hits != 1 {
		t.Fatalf("after one miss and one hit: %+v", s)
	}
}

func TestLoadPanics(t *testing.T) {
	c := New[key, int](Config[key]{})
	started, release := make(chan struct{}), make(chan struct{})
	panicking := func(context.Context) (int, time.Time, []string, error) {
		close(started)
		<-release
		panic("kaboom")
	}
	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		c.GetOrLoad(context.Background(), k("a"), panicking)
	}()
	<-started
	waiter := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(context.Background(), k("a"), nil)
		waiter <- err
	}()
	// The waiter's load is nil: it must join the flight, not start one.
	waitMisses(c, 2)
	close(release)
	if r := <-leader; r != "kaboom" {
		t.Fatalf("leader recovered %v, want the original panic value", r)
	}
	if err := <-waiter; err == nil || !strings.Contains(err.Error(), "panicked: kaboom") {
		t.Fatalf("waiter got %v", err)
	}
	if c.Len() != 0 || len(c.shards[0].flights) != 0 {
		t.Fatal("state left behind by the panicking load")
	}
	v, hit, err := c.GetOrLoad(context.Background(), k("a"), func(context.Context) (int, time.Time, []string, error) {
		return 3, time.Time{}, nil, nil
	})
	if v != 3 || hit || err != nil {
		t.Fatalf("after panic: %d, %v, %v", v, hit, err)
	}
}

func TestLoadGoexit(t *testing.T) {
	c := New[key, int](Config[key]{})
	started, release := make(chan struct{}), make(chan struct{})
	exiting := func(context.Context) (int, time.Time, []string, error) {
		close(started)
		<-release
		runtime.Goexit()
		return 0, time.Time{}, nil, nil
	}
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		c.GetOrLoad(context.Background(), k("a"), exiting)
	}()
	<-started
	waiter := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(context.Background(), k("a"), nil)
		waiter <- err
	}()
	waitMisses(c, 2)
	close(release)
	<-leaderDone
	if err := <-waiter; !errors.Is(err, errLoadExited) {
		t.Fatalf("waiter got %v", err)
	}
}

// waitMisses yields until c has counted n misses, i.e. until that many
// GetOrLoad calls have joined or started a flight.
func waitMisses(c *Cache[key, int], n uint64) {
	for c.Stats().Misses < n {
		runtime.Gosched()
	}
}
