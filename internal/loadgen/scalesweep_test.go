package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
)

// TestMeasureSweeps runs a stand-in sweeper that takes the lease and
// reads ten keys in one transaction (13 commands with MULTI and EXEC),
// then pauses, and checks that the measurement holds whole sweeps only.
func TestMeasureSweeps(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	sweeper := rs.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_, _ = sweeper.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "test:lock:sweep", "token", time.Second)
				for i := range 10 {
					p.Get(ctx, "test:key:"+string(rune('a'+i)))
				}
				return nil
			})
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() { cancel(); <-done }()

	w, err := MeasureSweeps(context.Background(), rdb, SweepOptions{
		LeaseKey: "test:lock:sweep", Skip: 1, MinSweeps: 5, MinWindow: time.Hour,
		FirstWait: time.Minute, Interval: 100 * time.Millisecond, MaxWait: 5 * time.Minute, Quiet: 30 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Estimated || w.Sweeps < 5 {
		t.Fatalf("%d sweeps (estimated: %v), want at least 5 seen", w.Sweeps, w.Estimated)
	}
	if want := int64(13 * w.Sweeps); w.Commands != want {
		t.Errorf("%d commands over %d sweeps, want %d: %s", w.Commands, w.Sweeps, want, w.Delta.Top(5))
	}
	if cfg, _ := rdb.ConfigGet(context.Background(), "notify-keyspace-events").Result(); cfg["notify-keyspace-events"] != "" {
		t.Errorf("notify-keyspace-events left at %q", cfg["notify-keyspace-events"])
	}
}
