package usage

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
)

func TestStatusOutcome(t *testing.T) {
	for status, want := range map[int]Outcome{200: Status2xx, 204: Status2xx, 101: Status2xx, 302: Status3xx, 404: Status4xx, 429: Status4xx, 499: Status4xx, 500: Status5xx, 503: Status5xx} {
		if got := StatusOutcome(status); got != want {
			t.Errorf("StatusOutcome(%d) = %d, want %d", status, got, want)
		}
	}
}

func TestFinest(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		age  time.Duration
		want Granularity
	}{
		{time.Hour, Minute}, {2 * time.Hour, Minute}, {3 * time.Hour, Hour}, {24 * time.Hour, Hour},
		{14 * 24 * time.Hour, Hour}, {15 * 24 * time.Hour, Day}, {90 * 24 * time.Hour, Day},
	} {
		if got := Finest(now.Add(-tc.age), now); got != tc.want {
			t.Errorf("Finest(now-%v) = %s, want %s", tc.age, got, tc.want)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder(1000)
	t0 := time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				r.Add("suA", Outcome(i%int(numOutcomes)), t0)
				r.Add("suB", Status2xx, t0.Add(time.Duration(w)*time.Minute))
			}
		}()
	}
	wg.Wait()
	ds := r.Take()
	got := map[string]Counts{}
	for _, d := range ds {
		got[d.AccessID+" "+d.Minute.Format("15:04")] = d.Counts
	}
	if c := got["suA 12:00"]; c.Requests() != 400 || c[Unauthorized] != 60 || c[Status5xx] != 56 {
		t.Errorf("suA 12:00: %v (requests %d)", c, c.Requests())
	}
	for w := range 4 {
		k := fmt.Sprintf("suB 12:0%d", w)
		if c := got[k]; c[Status2xx] != 100 || c.Requests() != 100 {
			t.Errorf("%s: %v", k, c)
		}
	}
	if r.Len() != 0 || len(r.Take()) != 0 {
		t.Fatal("Take did not drain the recorder")
	}
	// Restore puts counts back, merged with new ones.
	r.Restore(ds)
	r.Add("suA", Unauthorized, t0)
	for _, d := range r.Take() {
		if d.AccessID == "suA" && d.Counts[Unauthorized] != 61 {
			t.Errorf("restored and new counts of suA: %v", d.Counts)
		}
	}
}

func TestRecorderBound(t *testing.T) {
	r := NewRecorder(32)
	now := time.Now()
	for i := range 1000 {
		r.Add("su"+strconv.Itoa(i), Status2xx, now)
	}
	if n := r.Len(); n > 32 {
		t.Fatalf("recorder holds %d pairs, bound 32", n)
	}
	if r.Dropped() != int64(1000-r.Len()) {
		t.Fatalf("dropped %d, want %d", r.Dropped(), 1000-r.Len())
	}
}

func TestRecorderAddAllocatesNothing(t *testing.T) {
	r := NewRecorder(1000)
	now := time.Now()
	r.Add("suKnown", Status2xx, now)
	if n := testing.AllocsPerRun(1000, func() { r.Add("suKnown", Status2xx, now) }); n != 0 {
		t.Fatalf("Add of a key already counted this minute allocates %v times", n)
	}
}

func newStore(t testing.TB) (*Store, *redistest.Server) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, "ut"), srv
}

func TestStoreWriteAndRead(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	// Half past the current hour (past 01:00 UTC, so that every bucket
	// is of today): buckets expire relative to the real clock.
	now := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	if now.Hour() == 0 {
		now = now.Add(time.Hour)
	}
	today := now.Truncate(24 * time.Hour)
	s.now = func() time.Time { return now }
	m := func(minutesAgo int) time.Time { return now.Add(-time.Duration(minutesAgo) * time.Minute) }
	c := func(vals ...int64) Counts {
		var out Counts
		copy(out[:], vals)
		return out
	}
	// Two writes (as two flushes, or two gateways) add up.
	for range 2 {
		if _, err := s.Write(ctx, []Delta{
			{AccessID: "suA", Minute: m(5), Counts: c(1, 0, 2, 10, 0, 0, 1)},
			{AccessID: "suA", Minute: m(45), Counts: c(0, 3, 0, 5)},
			{AccessID: "suB", Minute: m(5), Counts: c(0, 0, 0, 7)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := s.Key(ctx, "suA", now.Add(-2*time.Hour), now.Add(time.Minute), Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []Bucket{{m(45), c(0, 6, 0, 10)}, {m(5), c(2, 0, 4, 20, 0, 0, 2)}}
	if fmt.Sprint(bs) != fmt.Sprint(want) {
		t.Fatalf("minute buckets of suA:\n got %v\nwant %v", bs, want)
	}
	if a := bs[1].Counts; a.Allowed() != 22 || a.Requests() != 28 || a.Rejected() != 6 {
		t.Fatalf("derived counts: allowed %d requests %d rejected %d", a.Allowed(), a.Requests(), a.Rejected())
	}
	hours, err := s.Key(ctx, "suA", now.Add(-24*time.Hour), now, Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(hours) != 2 || hours[0].Start != now.Add(-90*time.Minute) || hours[1].Counts.Requests() != 28 {
		t.Fatalf("hour buckets of suA: %v", hours)
	}
	days, err := s.Key(ctx, "suA", now.Add(-90*24*time.Hour), now, Day)
	if err != nil || len(days) != 1 || days[0].Counts.Requests() != 44 || days[0].Start != today {
		t.Fatalf("day buckets of suA: %v, %v", days, err)
	}
	org, err := s.Org(ctx, now.Add(-2*time.Hour), now.Add(time.Minute), Minute)
	if err != nil || len(org) != 2 || org[1].Counts.Requests() != 28+14 {
		t.Fatalf("org minute buckets: %v, %v", org, err)
	}
	top, err := s.Top(ctx, now.Add(-24*time.Hour), now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 2 || top[0] != (TopKey{"suA", 44, 12}) || top[1] != (TopKey{"suB", 14, 0}) {
		t.Fatalf("top keys: %+v", top)
	}
	if top, _ := s.Top(ctx, now.Add(-24*time.Hour), now, 1); len(top) != 1 {
		t.Fatalf("top 1: %+v", top)
	}
	// Nothing outside the range, nothing for unknown keys.
	if bs, err := s.Key(ctx, "suA", m(30), now, Minute); err != nil || len(bs) != 1 {
		t.Fatalf("minute buckets of the last 30 minutes: %v, %v", bs, err)
	}
	if bs, err := s.Key(ctx, "suNone", now.Add(-time.Hour), now, Minute); err != nil || len(bs) != 0 {
		t.Fatalf("buckets of a key never used: %v, %v", bs, err)
	}
}

func TestStoreExpiry(t *testing.T) {
	s, srv := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := s.Write(ctx, []Delta{{AccessID: "suT", Minute: now.Truncate(time.Minute), Counts: Counts{Status2xx: 1}}}); err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client(t)
	for g, max := range map[Granularity]time.Duration{Minute: MinuteRetention + time.Hour, Hour: HourRetention + 24*time.Hour, Day: DayRetention + 31*24*time.Hour} {
		c, _ := s.chunkOf("suT", g, now)
		ttl, err := rdb.TTL(ctx, c.key).Result()
		if err != nil || ttl <= g.Retention()-time.Minute || ttl > max {
			t.Errorf("%s hash %s expires in %v (%v), want about its retention %v", g, c.key, ttl, err, g.Retention())
		}
	}
}

func TestStoreWriteAfterScriptFlush(t *testing.T) {
	s, srv := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Minute)
	d := []Delta{{AccessID: "suF", Minute: now, Counts: Counts{Status2xx: 1}}}
	if _, err := s.Write(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, d); err != nil {
		t.Fatal(err)
	}
	bs, err := s.Key(ctx, "suF", now.Add(-time.Minute), now.Add(time.Minute), Minute)
	if err != nil || len(bs) != 1 || bs[0].Counts[Status2xx] != 2 {
		t.Fatalf("after a script flush: %v, %v (want exactly 2: no write lost, none twice)", bs, err)
	}
	top, _ := s.Top(ctx, now.Add(-time.Hour), now.Add(time.Minute), 5)
	if len(top) != 1 || top[0].Requests != 2 {
		t.Fatalf("ranking after a script flush: %+v (want 2)", top)
	}
}

func TestParseCountsIgnoresJunk(t *testing.T) {
	for val, want := range map[string]Counts{
		"":              {},
		"3":             {3},
		",,,40":         {0, 0, 0, 40},
		"1,2,3,4,5,6,7": {1, 2, 3, 4, 5, 6, 7},
		"x,-5,,9":       {0, 0, 0, 9},
	} {
		var c Counts
		parseCounts(val, &c)
		if c != want {
			t.Errorf("parseCounts(%q) = %v, want %v", val, c, want)
		}
	}
}

func TestStoreWriteUnreachable(t *testing.T) {
	s, srv := newStore(t)
	srv.Stop(t)
	ds := []Delta{
		{AccessID: "suX", Minute: time.Now().UTC().Truncate(time.Minute), Counts: Counts{Status2xx: 3}},
		{AccessID: "suY", Minute: time.Now().UTC().Truncate(time.Minute), Counts: Counts{Forbidden: 1}},
	}
	unwritten, err := s.Write(context.Background(), ds)
	if err == nil || len(unwritten) != len(ds) {
		t.Fatalf("Write with Redis down: %d of %d deltas returned as unwritten, error %v", len(unwritten), len(ds), err)
	}
}

// TestCell counts a minute through a Cell, then the next one: the ended
// minute is moved into the Recorder, and Add allocates nothing.
func TestCell(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC)
	r2 := NewRecorder(100)
	c2 := r2.NewCell("suCell")
	for range 1000 {
		c2.Add(Status4xx, t0)
	}
	c2.Add(Status2xx, t0.Add(time.Minute)) // the next minute: rolls over
	ds := r2.Take()
	got := map[string]Counts{}
	for _, d := range ds {
		got[d.Minute.Format("15:04")] = d.Counts
	}
	if got["12:00"][Status4xx] != 1000 || got["12:01"][Status2xx] != 1 || len(got) != 2 {
		t.Fatalf("cell counts by minute: %v", got)
	}
	if n := testing.AllocsPerRun(1000, func() { c2.Add(Status2xx, t0.Add(time.Minute)) }); n != 0 {
		t.Fatalf("Cell.Add allocates %v times", n)
	}
}

func TestCellLosesNothingUnderConcurrentTakes(t *testing.T) {
	r := NewRecorder(1000)
	c := r.NewCell("suCell")
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var drained int64
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, d := range r.Take() {
				mu.Lock()
				drained += d.Counts.Requests()
				mu.Unlock()
			}
		}
	}()
	var adders sync.WaitGroup
	for range 4 {
		adders.Add(1)
		go func() {
			defer adders.Done()
			for range 5000 {
				c.Add(Status2xx, now)
			}
		}()
	}
	adders.Wait()
	close(stop)
	wg.Wait()
	for _, d := range r.Take() {
		drained += d.Counts.Requests()
	}
	if drained != 20000 {
		t.Fatalf("drained %d counts, want 20000", drained)
	}
}
