package limits

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/accessgate/accessgate/internal/redistest"
)

const testPrefix = "lt"

func newRedis(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// fleet starts n limiters sharing one Redis at addr.
func fleet(t *testing.T, addr string, n int, o Options) []*Limiter {
	t.Helper()
	out := make([]*Limiter, n)
	for i := range out {
		o := o
		o.Redis, o.Prefix = newRedis(t, addr), testPrefix
		out[i] = New(o)
		t.Cleanup(out[i].Close)
	}
	return out
}

// drive sends requests of s to the limiters, round robin over workers,
// until stop says so; it returns the admitted and refused counts.
func drive(ls []*Limiter, s *Subject, workers int, stop func(admitted, refused int64) bool) (admitted, refused int64) {
	var a, r atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[w%len(ls)]
			for !stop(a.Load(), r.Load()) {
				d := l.Admit(context.Background(), s)
				if d.Allowed {
					a.Add(1)
					l.Release(context.Background(), &d)
				} else {
					r.Add(1)
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return a.Load(), r.Load()
}

func TestRateFleetWide(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name      string
		instances int
		rate      Rate
	}{
		{"one instance 200/s", 1, Rate{Requests: 200, PeriodSeconds: 1}},
		{"three instances 200/s", 3, Rate{Requests: 200, PeriodSeconds: 1}},
		{"three instances 3000/m burst 100", 3, Rate{Requests: 3000, PeriodSeconds: 60, Burst: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := fleet(t, srv.Addr, tc.instances, Options{})
			s := &Subject{KeyID: "su" + strconv.Itoa(int(time.Now().UnixNano())), KeyRate: tc.rate}
			start := time.Now()
			admitted, refused := drive(ls, s, 6, func(int64, int64) bool { return time.Since(start) > 3*time.Second })
			elapsed := time.Since(start).Seconds()
			r := tc.rate.Normalized()
			want := float64(r.Burst) + elapsed*float64(r.Requests)/float64(r.PeriodSeconds)
			t.Logf("admitted %d, refused %d, expected %.0f over %.2fs", admitted, refused, want, elapsed)
			if refused == 0 {
				t.Fatal("the traffic never reached the limit")
			}
			if f := float64(admitted); f > want*1.1 || f < want*0.9 {
				t.Fatalf("admitted %d, want %.0f ±10%%", admitted, want)
			}
		})
	}
}

func TestQuotaFleetWide(t *testing.T) {
	srv := redistest.Start(t)
	ls := fleet(t, srv.Addr, 3, Options{})
	q := Quota{Requests: 600, Period: PeriodDay}
	s := &Subject{KeyID: "suquota0000001", Quota: q}
	admitted, refused := drive(ls, s, 9, func(_, refused int64) bool { return refused > 300 })
	t.Logf("admitted %d, refused %d", admitted, refused)
	if admitted > q.Requests {
		t.Fatalf("admitted %d, more than the quota %d", admitted, q.Requests)
	}
	if admitted < q.Requests*99/100 {
		t.Fatalf("admitted %d, less than 99%% of the quota %d", admitted, q.Requests)
	}
	used, _, err := QuotaUsage(context.Background(), ls[0].rdb, testPrefix, s.KeyID, q, time.Now())
	if err != nil || used != q.Requests {
		t.Fatalf("quota used in Redis %d (%v), want %d", used, err, q.Requests)
	}
}

func TestConcurrencyFleetWide(t *testing.T) {
	srv := redistest.Start(t)
	ls := fleet(t, srv.Addr, 3, Options{})
	const limit = 5
	s := &Subject{KeyID: "suconc00000001", Concurrency: limit}
	var inFlight, peak, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[w%3]
			for range 40 {
				d := l.Admit(context.Background(), s)
				if !d.Allowed {
					refused.Add(1)
					if d.Refused != KindConcurrency {
						t.Errorf("refused by %v", d.Refused)
					}
					continue
				}
				admitted.Add(1)
				n := inFlight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond)
				inFlight.Add(-1)
				l.Release(context.Background(), &d)
			}
		}()
	}
	wg.Wait()
	t.Logf("admitted %d, refused %d, peak %d", admitted.Load(), refused.Load(), peak.Load())
	if peak.Load() > limit {
		t.Fatalf("%d requests in flight, limit %d", peak.Load(), limit)
	}
	if peak.Load() < limit || refused.Load() == 0 {
		t.Fatalf("the limit was never reached: peak %d, refused %d", peak.Load(), refused.Load())
	}
	n, err := ls[0].rdb.HLen(context.Background(), concKey(testPrefix, s.KeyID)).Result()
	if err != nil || n != 0 {
		t.Fatalf("slots left in Redis after every request ended: %d (%v)", n, err)
	}
}

func TestDeadInstanceSlotsFree(t *testing.T) {
	srv := redistest.Start(t)
	o := Options{slotLease: 1500 * time.Millisecond, slotRenew: 300 * time.Millisecond}
	ls := fleet(t, srv.Addr, 2, o)
	s := &Subject{KeyID: "sudead00000001", Concurrency: 3}
	for range 3 {
		if d := ls[0].Admit(context.Background(), s); !d.Allowed {
			t.Fatal("instance 0 refused a free slot")
		}
	}
	if d := ls[1].Admit(context.Background(), s); d.Allowed {
		t.Fatal("a fourth slot was granted")
	}
	// Instance 0 dies: it stops renewing and never releases.
	ls[0].cancel()
	<-ls[0].done
	var got bool
	for range 100 {
		time.Sleep(100 * time.Millisecond)
		if d := ls[1].Admit(context.Background(), s); d.Allowed {
			got = true
			break
		}
	}
	if !got {
		t.Fatal("the dead instance's slots never came free")
	}
}

func TestLiveInstanceKeepsSlots(t *testing.T) {
	srv := redistest.Start(t)
	o := Options{slotLease: 600 * time.Millisecond, slotRenew: 100 * time.Millisecond}
	ls := fleet(t, srv.Addr, 2, o)
	s := &Subject{KeyID: "sulive00000001", Concurrency: 2}
	for range 2 {
		if d := ls[0].Admit(context.Background(), s); !d.Allowed {
			t.Fatal("refused a free slot")
		}
	}
	// Requests longer than the lease keep their slots while the instance
	// lives and renews.
	for range 15 {
		time.Sleep(100 * time.Millisecond)
		if d := ls[1].Admit(context.Background(), s); d.Allowed {
			t.Fatal("a live instance's slot was given away")
		}
	}
}

func TestRefusalTakesNothing(t *testing.T) {
	srv := redistest.Start(t)
	ls := fleet(t, srv.Addr, 1, Options{})
	l := ls[0]
	ctx := context.Background()
	// A quota of 2 refuses the third request; the key's rate of 5 per
	// hour must then still admit 5 requests in all over both subjects.
	rate := Rate{Requests: 5, PeriodSeconds: 3600}
	s := &Subject{KeyID: "surefund000001", KeyRate: rate, Quota: Quota{Requests: 2, Period: PeriodDay}}
	var n int
	for range 4 {
		if d := l.Admit(ctx, s); d.Allowed {
			n++
		} else if d.Refused != KindQuota {
			t.Fatalf("refused by %v, want the quota", d.Refused)
		}
	}
	if n != 2 {
		t.Fatalf("admitted %d, want 2", n)
	}
	s2 := &Subject{KeyID: s.KeyID, KeyRate: rate}
	n = 0
	for range 6 {
		if d := l.Admit(ctx, s2); d.Allowed {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("the rate admitted %d more requests, want 3 (quota refusals must not use it)", n)
	}
}

func TestHeadersAndRetry(t *testing.T) {
	srv := redistest.Start(t)
	l := fleet(t, srv.Addr, 1, Options{})[0]
	ctx := context.Background()
	s := &Subject{KeyID: "suheaders00001", KeyRate: Rate{Requests: 3, PeriodSeconds: 60}}
	var last Decision
	for i := range 3 {
		d := l.Admit(ctx, s)
		if !d.Allowed {
			t.Fatalf("request %d refused", i)
		}
		if d.Limit != 3 {
			t.Fatalf("Limit %d, want 3", d.Limit)
		}
		last = d
	}
	if last.Remaining != 0 {
		t.Fatalf("Remaining after 3 of 3: %d", last.Remaining)
	}
	d := l.Admit(ctx, s)
	if d.Allowed || d.Refused != KindKeyRate {
		t.Fatalf("4th request: %+v", d)
	}
	if d.RetryAfter < 15*time.Second || d.RetryAfter > 21*time.Second {
		t.Fatalf("RetryAfter %v, want about 20s (one request every 20s)", d.RetryAfter)
	}
}

func TestRedisDownLimitsPerInstance(t *testing.T) {
	srv := redistest.Start(t)
	core, logs := observer.New(zap.InfoLevel)
	l := fleet(t, srv.Addr, 1, Options{Logger: zap.New(core)})[0]
	ctx := context.Background()
	s := &Subject{KeyID: "sudown00000001", KeyRate: Rate{Requests: 10, PeriodSeconds: 3600}, Concurrency: 2}
	if d := l.Admit(ctx, s); !d.Allowed || d.Local {
		t.Fatalf("with Redis up: %+v", d)
	} else {
		l.Release(ctx, &d)
	}
	srv.Stop(t)
	var admitted int
	for range 30 {
		d := l.Admit(ctx, s)
		if d.Allowed {
			admitted++
			if !d.Local {
				t.Fatal("Redis is down, but the decision is not local")
			}
			l.Release(ctx, &d)
		}
	}
	if admitted == 0 || admitted > 10 {
		t.Fatalf("with Redis down, admitted %d of 30, want 1..10 (the rate held by this instance)", admitted)
	}
	if !l.Degraded() {
		t.Fatal("Degraded() false with Redis down")
	}
	if logs.FilterMessageSnippet("held by this instance alone").Len() != 1 {
		t.Fatalf("want one log line saying limits are per instance, got %v", logs.All())
	}
	srv.Restart(t)
	time.Sleep(retryRedis + 100*time.Millisecond)
	for range 20 {
		d := l.Admit(ctx, s)
		l.Release(ctx, &d)
		if !l.Degraded() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if l.Degraded() {
		t.Fatal("still degraded after Redis came back")
	}
	if logs.FilterMessageSnippet("fleet-wide again").Len() != 1 {
		t.Fatalf("want one log line saying limits are fleet-wide again, got %v", logs.All())
	}
}

func TestQuotaRefundOnClose(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newRedis(t, srv.Addr)
	l := New(Options{Redis: rdb, Prefix: testPrefix})
	ctx := context.Background()
	q := Quota{Requests: 100000, Period: PeriodMonth}
	s := &Subject{KeyID: "suclose0000001", Quota: q}
	var n int64
	for range 200 {
		if d := l.Admit(ctx, s); d.Allowed {
			n++
		}
	}
	l.Close()
	used, _, err := QuotaUsage(ctx, rdb, testPrefix, s.KeyID, q, time.Now())
	if err != nil || used != n {
		t.Fatalf("after Close the counter says %d (%v), want the %d requests made", used, err, n)
	}
}

func TestLocalGCRA(t *testing.T) {
	r := Rate{Requests: 2, PeriodSeconds: 1, Burst: 4}
	var g localGCRA
	now := time.Unix(1000, 0)
	for i := range 4 {
		if ok, _, _ := g.take(r, now); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, _, retry := g.take(r, now)
	if ok || retry != 500*time.Millisecond {
		t.Fatalf("5th at once: ok %v retry %v, want refused, 500ms", ok, retry)
	}
	if ok, _, _ := g.take(r, now.Add(500*time.Millisecond)); !ok {
		t.Fatal("refused after one emission interval")
	}
}
