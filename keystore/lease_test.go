package keystore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLeaseOutlivesLongJob runs a job three times longer than its lease's
// TTL while another instance keeps trying to take the lease: it never
// gets it while the job runs, still not right after, and gets it once the
// lease has run out.
func TestLeaseOutlivesLongJob(t *testing.T) {
	f := newFixture(t)
	other := New(f.rdb, Options{Prefix: "ag"})
	const ttl = 2 * time.Second
	tries, overlaps := 0, 0
	ran, err := f.store.WithLease(f.ctx, "sweep", ttl, func(ctx context.Context) {
		for start := time.Now(); time.Since(start) < 3*ttl; time.Sleep(50 * time.Millisecond) {
			tries++
			ok, err := other.WithLease(ctx, "sweep", ttl, func(context.Context) {})
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				overlaps++
			}
		}
	})
	if err != nil || !ran {
		t.Fatalf("WithLease = %v, %v; want the job run", ran, err)
	}
	if overlaps > 0 {
		t.Errorf("another instance took the lease %d times in %d tries while the job ran", overlaps, tries)
	}
	if l, err := other.TakeLease(f.ctx, "sweep", ttl); err != nil || l != nil {
		t.Errorf("another instance took the lease right after the job: %v, %v; want it to run out first", l, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := other.TakeLease(f.ctx, "sweep", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if l != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease never ran out after the job")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeaseLostCancelsJob: a job whose lease is lost (here: deleted) is
// cancelled, so that it does not overlap the next holder's.
func TestLeaseLostCancelsJob(t *testing.T) {
	f := newFixture(t)
	var cause error
	ran, err := f.store.WithLease(f.ctx, "sweep", 300*time.Millisecond, func(ctx context.Context) {
		if err := f.rdb.Del(f.ctx, f.store.prefix+":lock:sweep").Err(); err != nil {
			t.Error(err)
		}
		select {
		case <-ctx.Done():
			cause = context.Cause(ctx)
		case <-time.After(30 * time.Second):
			t.Error("the job was not cancelled after its lease was lost")
		}
	})
	if err != nil || !ran {
		t.Fatalf("WithLease = %v, %v; want the job run", ran, err)
	}
	if !errors.Is(cause, errLeaseLost) {
		t.Errorf("job cancelled with %v, want %v", cause, errLeaseLost)
	}
}
