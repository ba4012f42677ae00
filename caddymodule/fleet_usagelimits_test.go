package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

// Body A codes of the usage limits' refusals.
const (
	codeRateLimited   = "rate.limit.exceeded"
	codeQuotaExceeded = "quota.exceeded"
)

// countingUpstream is the API behind the gateways of the usage limit
// tests: it answers 200 and counts what reached it, per Access ID (the
// X-Access-Id header the gateway sets). A request with the query hold=1
// is held until release is called or the gateway drops the connection;
// inflight and maxInflight count the requests being answered.
type countingUpstream struct {
	*httptest.Server

	mu       sync.Mutex
	byKey    map[string]int
	total    int
	inflight int
	maxIn    int
	released chan struct{}
	once     sync.Once
}

// startCountingUpstream starts a countingUpstream, closed (after every
// held request is released) when the test ends.
func startCountingUpstream(t *testing.T) *countingUpstream {
	t.Helper()
	u := &countingUpstream{byKey: map[string]int{}, released: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	t.Cleanup(u.release) // runs first: Close waits for held requests
	return u
}

func (u *countingUpstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.byKey[r.Header.Get("X-Access-Id")]++
	u.total++
	u.inflight++
	u.maxIn = max(u.maxIn, u.inflight)
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.inflight--
		u.mu.Unlock()
	}()
	if r.URL.Query().Get("hold") != "" {
		select {
		case <-u.released:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
}

// release lets every held request, and every later one, go on.
func (u *countingUpstream) release() { u.once.Do(func() { close(u.released) }) }

// count returns how many requests of accessID reached the upstream.
func (u *countingUpstream) count(accessID string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.byKey[accessID]
}

// inFlight returns the requests being answered now and the most there
// ever were at once.
func (u *countingUpstream) inFlight() (now, most int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.inflight, u.maxIn
}

// startFleet starts n gateways in front of up, sharing rs under prefix,
// with extra lines for the access_keys global option.
func startFleet(t *testing.T, n int, rs *redistest.Server, up *countingUpstream, prefix, extra string) []*fleetGateway {
	t.Helper()
	o := fleetOptions{redis: []string{rs.URL()}, prefix: prefix, extra: extra}
	gws := make([]*fleetGateway, n)
	for i := range gws {
		gws[i] = startFleetGateway(t, up.Server, o)
	}
	return gws
}

// limitTally counts the answers of a load run, per Access ID, and keeps
// the first few answers that break the contract.
type limitTally struct {
	mu       sync.Mutex
	ok       map[string]int
	refused  map[string]int
	messages map[string]int // messages of the refusals
	problems []string
	// kinds counts the answers that break the contract, by gateway and
	// status (0 for a transport error).
	kinds map[string]int
	// firstRefusal is when the first refusal was seen.
	firstRefusal time.Time
}

func newLimitTally() *limitTally {
	return &limitTally{ok: map[string]int{}, refused: map[string]int{}, messages: map[string]int{}, kinds: map[string]int{}}
}

// check is what a tally requires of each answer.
type check struct {
	// code is the body A code of a 429.
	code string
	// headers: every answer carries RateLimit-Limit, -Remaining and
	// -Reset.
	headers bool
}

// add records one answer of gateway g to a request made with c.
func (tl *limitTally) add(g *fleetGateway, c cred, r fleetResult, err error, ck check) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	problem := func(format string, args ...any) {
		tl.kinds[fmt.Sprintf("%s status %d", g.Base, r.status)]++
		if len(tl.problems) < 10 {
			tl.problems = append(tl.problems, g.Base+": "+fmt.Sprintf(format, args...))
		}
	}
	if err != nil {
		problem("transport error: %v", err)
		return
	}
	switch r.status {
	case http.StatusOK:
		tl.ok[c.id]++
	case http.StatusTooManyRequests:
		tl.refused[c.id]++
		if tl.firstRefusal.IsZero() {
			tl.firstRefusal = time.Now()
		}
		if !isBodyA(r.body, http.StatusTooManyRequests, ck.code) {
			problem("429 is not body A with code %s: %s", ck.code, r.body)
		}
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
			problem("429 with Retry-After %q, want whole seconds >= 1", r.header.Get("Retry-After"))
		}
		var a struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(r.body, &a)
		tl.messages[a.Message]++
	default:
		problem("status %d: %s", r.status, r.body)
		return
	}
	if ck.headers {
		for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			if v := r.header.Get(h); v == "" {
				problem("%d without %s", r.status, h)
			} else if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				problem("%d with %s %q, not a whole number", r.status, h, v)
			}
		}
	}
}

// totals returns the answers 200 and 429 to requests made with the given
// keys.
func (tl *limitTally) totals(ids ...string) (ok, refused int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, id := range ids {
		ok += tl.ok[id]
		refused += tl.refused[id]
	}
	return ok, refused
}

// report fails the test with the problems seen.
func (tl *limitTally) report(t *testing.T) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, p := range tl.problems {
		t.Error(p)
	}
	if len(tl.kinds) > 0 {
		t.Errorf("answers breaking the contract, by gateway and status (0: transport error): %v", tl.kinds)
	}
}

// firstRefusalAt returns when the first refusal was seen (zero if none).
func (tl *limitTally) firstRefusalAt() time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.firstRefusal
}

// load is a run of requests spread round-robin over gateways and keys.
type load struct {
	gws     []*fleetGateway
	creds   []cred
	workers int
	// pace is the pause of each worker between requests.
	pace time.Duration
	// query is appended to the collectors URL.
	query string
	check check
}

// run sends requests from l.workers goroutines until stop returns true
// and returns the number sent and the wall time from before the first
// request to after the last answer.
func (l load) run(t *testing.T, tl *limitTally, stop func() bool) (sent int64, elapsed time.Duration) {
	t.Helper()
	client := fleetClient(t)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop() {
				n := next.Add(1) - 1
				g := l.gws[int(n)%len(l.gws)]
				c := l.creds[int(n/int64(len(l.gws)))%len(l.creds)]
				r, err := send(client, http.MethodGet, g.collectors()+l.query, &c, nil)
				tl.add(g, c, r, err, l.check)
				if l.pace > 0 {
					time.Sleep(l.pace)
				}
			}
		}()
	}
	wg.Wait()
	return next.Load(), time.Since(start)
}

// forDuration is a stop function that turns true d from now.
func forDuration(d time.Duration) func() bool {
	end := time.Now().Add(d)
	return func() bool { return time.Now().After(end) }
}

// rateBound is what a rate may admit over elapsed: rate × time + burst.
func rateBound(r limits.Rate, elapsed time.Duration) float64 {
	burst := r.Burst
	if burst == 0 {
		burst = r.Requests
	}
	return float64(r.Requests)*elapsed.Seconds()/float64(r.PeriodSeconds) + float64(burst)
}

// wantWithin fails the test unless got is within ±10 % of bound.
func wantWithin(t *testing.T, what string, got int, bound float64) {
	t.Helper()
	if float64(got) < 0.9*bound || float64(got) > 1.1*bound {
		t.Errorf("%s: %d admitted, want within ±10%% of rate × time + burst = %.1f [%.1f, %.1f]", what, got, bound, 0.9*bound, 1.1*bound)
	}
}

// sumMetric adds up one series over the gateways' /metrics.
func sumMetric(t *testing.T, gws []*fleetGateway, series string) float64 {
	t.Helper()
	var sum float64
	for _, g := range gws {
		v, ok := metricValue(metricsText(t, g), series)
		if !ok {
			t.Fatalf("gateway %s has no metric %s", g.Base, series)
		}
		sum += v
	}
	return sum
}

// decisions is the series of the usage limits' decisions with outcome.
func decisions(outcome string) string {
	return `accessgate_usage_limit_decisions_total{outcome="` + outcome + `"}`
}

// TestFleetRateLimitAcrossGateways sends one key's requests, well above
// its rate for 10 s (the window of CONTRACT §8), round-robin to three
// gateways sharing one Redis: the requests admitted (counted by the
// upstream, and equal to the 200s the clients saw) are within ±10 % of
// rate × time + burst, every answer carries the RateLimit-* headers, and
// every refusal is 429 body A rate.limit.exceeded with Retry-After.
func TestFleetRateLimitAcrossGateways(t *testing.T) {
	rate := limits.Rate{Requests: 40, PeriodSeconds: 1, Burst: 40}
	rs := redistest.Start(t)
	up := startCountingUpstream(t)
	const prefix = "fleetlimrate"
	gws := startFleet(t, 3, rs, up, prefix, "rate_limit key 40/s")
	st := newFleetStore(rs.Client(t), prefix)
	c := st.viewerKey(t)

	tl := newLimitTally()
	l := load{gws: gws, creds: []cred{c}, workers: 8, pace: 10 * time.Millisecond,
		check: check{code: codeRateLimited, headers: true}}
	sent, elapsed := l.run(t, tl, forDuration(10*time.Second))
	tl.report(t)
	ok, refused := tl.totals(c.id)
	bound := rateBound(rate, elapsed)
	t.Logf("%d requests in %v (%.0f/s) over 3 gateways: %d admitted (bound %.1f), %d refused, upstream saw %d; refusal messages %v",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), ok, bound, refused, up.count(c.id), tl.messages)
	if float64(sent) < 2*bound {
		t.Fatalf("only %d requests sent in %v: not well above the rate, the test proves nothing", sent, elapsed)
	}
	if got := up.count(c.id); got != ok {
		t.Errorf("the upstream saw %d requests, the clients %d answers 200", got, ok)
	}
	if int64(ok+refused) != sent {
		t.Errorf("%d sent, %d answered 200 or 429", sent, ok+refused)
	}
	wantWithin(t, "3 gateways, one key", up.count(c.id), bound)
	for m := range tl.messages {
		if !strings.Contains(m, "this access key may make 40 requests per second") {
			t.Errorf("refusal message %q does not name the key's rate", m)
		}
	}
}

// TestFleetOwnerRateLimit sets a rate on an owner: its two keys, used
// through three gateways, are limited together to that rate, while a key
// of another owner, sent as often, is never refused.
func TestFleetOwnerRateLimit(t *testing.T) {
	rate := limits.Rate{Requests: 20, PeriodSeconds: 1, Burst: 20}
	rs := redistest.Start(t)
	up := startCountingUpstream(t)
	const prefix = "fleetlimowner"
	gws := startFleet(t, 3, rs, up, prefix, "")
	st := newFleetStore(rs.Client(t), prefix)
	ctx := context.Background()
	st.viewer(t)
	st.user(t, "u2", "viewer")
	if _, err := st.UpdateOwner(ctx, "u1", keystore.OwnerUser, func(o *keystore.Owner) { o.RateLimit = &rate }, testOp); err != nil {
		t.Fatal(err)
	}
	k1 := st.key(t, keystore.KeySpec{OwnerID: "u1"})
	k2 := st.key(t, keystore.KeySpec{OwnerID: "u1"})
	other := st.key(t, keystore.KeySpec{OwnerID: "u2"})

	tl := newLimitTally()
	otherTl := newLimitTally()
	var sent, otherSent int64
	var elapsed time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l := load{gws: gws, creds: []cred{other}, workers: 2, pace: 20 * time.Millisecond, check: check{code: codeRateLimited}}
		otherSent, _ = l.run(t, otherTl, forDuration(5*time.Second))
	}()
	l := load{gws: gws, creds: []cred{k1, k2}, workers: 8, pace: 10 * time.Millisecond,
		check: check{code: codeRateLimited, headers: true}}
	sent, elapsed = l.run(t, tl, forDuration(5*time.Second))
	wg.Wait()
	tl.report(t)
	otherTl.report(t)

	ok, refused := tl.totals(k1.id, k2.id)
	seen := up.count(k1.id) + up.count(k2.id)
	bound := rateBound(rate, elapsed)
	t.Logf("owner u1: %d requests in %v, %d admitted (k1 %d, k2 %d; bound %.1f), %d refused; messages %v",
		sent, elapsed.Round(time.Millisecond), seen, up.count(k1.id), up.count(k2.id), bound, refused, tl.messages)
	if float64(sent) < 2*bound {
		t.Fatalf("only %d requests sent in %v: not well above the rate, the test proves nothing", sent, elapsed)
	}
	if seen != ok {
		t.Errorf("the upstream saw %d requests of u1's keys, the clients %d answers 200", seen, ok)
	}
	wantWithin(t, "two keys of one owner on 3 gateways", seen, bound)
	if up.count(k1.id) == 0 || up.count(k2.id) == 0 {
		t.Errorf("k1 admitted %d, k2 %d: both keys should share the owner's rate", up.count(k1.id), up.count(k2.id))
	}
	for m := range tl.messages {
		if !strings.Contains(m, "the access keys of this owner may make 20 requests per second") {
			t.Errorf("refusal message %q does not name the owner's rate", m)
		}
	}
	oOK, oRefused := otherTl.totals(other.id)
	t.Logf("owner u2: %d requests, %d admitted, %d refused", otherSent, oOK, oRefused)
	if oRefused != 0 || int64(oOK) != otherSent || up.count(other.id) != oOK {
		t.Errorf("the other owner's key: %d sent, %d admitted, %d refused, upstream %d; want every one admitted", otherSent, oOK, oRefused, up.count(other.id))
	}
}

// TestFleetQuotaAcrossGateways gives a key a quota of 300 a day and sends
// its requests to three gateways until well after refusals began: the
// upstream sees no more than 300 of them and at least 99 % of 300, and
// every refusal is quota.exceeded.
func TestFleetQuotaAcrossGateways(t *testing.T) {
	const quota = 300
	rs := redistest.Start(t)
	up := startCountingUpstream(t)
	const prefix = "fleetlimquota"
	gws := startFleet(t, 3, rs, up, prefix, "")
	st := newFleetStore(rs.Client(t), prefix)
	st.viewer(t)
	c := st.key(t, keystore.KeySpec{OwnerID: "u1", Limits: keystore.KeyLimits{Quota: &limits.Quota{Requests: quota, Period: "day"}}})

	tl := newLimitTally()
	l := load{gws: gws, creds: []cred{c}, workers: 6, pace: 10 * time.Millisecond,
		check: check{code: codeQuotaExceeded, headers: true}}
	// Requests leased to an instance but unused go back to the counter
	// after two seconds: keep asking for 6 s after the first refusal, so
	// that all of the quota can be spent.
	deadline := time.Now().Add(90 * time.Second)
	sent, elapsed := l.run(t, tl, func() bool {
		first := tl.firstRefusalAt()
		return time.Now().After(deadline) || !first.IsZero() && time.Since(first) > 6*time.Second
	})
	tl.report(t)
	ok, refused := tl.totals(c.id)
	got := up.count(c.id)
	t.Logf("%d requests in %v: %d admitted, %d refused, upstream saw %d; messages %v", sent, elapsed.Round(time.Millisecond), ok, refused, got, tl.messages)
	if refused == 0 {
		t.Fatal("no request was refused")
	}
	if got != ok {
		t.Errorf("the upstream saw %d requests, the clients %d answers 200", got, ok)
	}
	if got > quota || got < quota*99/100 {
		t.Errorf("the upstream saw %d requests of a key with a quota of %d a day, want from %d to %d", got, quota, quota*99/100, quota)
	}
	for m := range tl.messages {
		if !strings.Contains(m, "300 requests per day") {
			t.Errorf("refusal message %q does not name the quota", m)
		}
	}
}

// holdRequests sends n requests with c that the upstream holds, each to
// the next of gws, and returns a channel that gets the status of each (0
// for a transport error) as it is answered.
func holdRequests(t *testing.T, gws []*fleetGateway, c cred, n int) <-chan fleetResult {
	t.Helper()
	client := fleetClient(t)
	client.Timeout = 120 * time.Second
	out := make(chan fleetResult, n)
	for i := range n {
		g := gws[i%len(gws)]
		go func() {
			r, err := send(client, http.MethodGet, g.collectors()+"?hold=1", &c, nil)
			if err != nil {
				r = fleetResult{body: []byte(err.Error())}
			}
			out <- r
		}()
	}
	return out
}

// isConcurrencyRefusal reports whether r is the 429 of a concurrency
// limit: body A rate.limit.exceeded naming concurrency, with Retry-After.
func isConcurrencyRefusal(r fleetResult) bool {
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	return r.status == http.StatusTooManyRequests && isBodyA(r.body, r.status, codeRateLimited) &&
		strings.Contains(string(r.body), "Concurrency limit exceeded") && err == nil && ra >= 1
}

// TestFleetConcurrencyAcrossGateways sends 20 requests of one key at once
// through three gateways to an upstream that holds them: the upstream
// never has more than 4 in flight, has 4 at some point, and the other 16
// are refused with 429 naming the concurrency limit. Once the held ones
// are answered, the slots are free again.
func TestFleetConcurrencyAcrossGateways(t *testing.T) {
	const (
		limit = 4
		total = 20
	)
	rs := redistest.Start(t)
	up := startCountingUpstream(t)
	const prefix = "fleetlimconc"
	gws := startFleet(t, 3, rs, up, prefix, "concurrency_limit key 4")
	st := newFleetStore(rs.Client(t), prefix)
	c := st.viewerKey(t)

	answers := holdRequests(t, gws, c, total)
	var refusals []fleetResult
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d refusals and %d requests held", total-limit, limit), func() bool {
	drain:
		for {
			select {
			case r := <-answers:
				refusals = append(refusals, r)
			default:
				break drain
			}
		}
		now, _ := up.inFlight()
		return len(refusals) >= total-limit && now >= limit
	})
	now, most := up.inFlight()
	t.Logf("held %d (most at once %d), refused %d", now, most, len(refusals))
	for _, r := range refusals {
		if !isConcurrencyRefusal(r) {
			t.Errorf("status %d, Retry-After %q, body %s: want 429 rate.limit.exceeded naming the concurrency limit", r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if len(refusals) != total-limit {
		t.Errorf("%d answers while %d requests were held, want %d refusals", len(refusals), limit, total-limit)
	}
	up.release()
	for range limit {
		select {
		case r := <-answers:
			if r.status != http.StatusOK {
				t.Errorf("held request answered %d: %s", r.status, r.body)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a held request was not answered within 60 s of its release")
		}
	}
	if _, most := up.inFlight(); most != limit {
		t.Errorf("the upstream had at most %d requests in flight, want exactly the limit %d", most, limit)
	}
	if got := up.count(c.id); got != limit {
		t.Errorf("the upstream saw %d requests, want %d", got, limit)
	}
	// The slots were given back: each gateway admits again.
	client := fleetClient(t)
	for _, g := range gws {
		wantStatus(t, client, g.collectors(), &c, nil, http.StatusOK)
	}
}

// TestFleetDeadGatewaySlotsFree lets gateway A hold all 4 concurrency
// slots of a key, then kills A with SIGKILL, so that it cannot give them
// back: gateways B and C refuse the key while A holds them, and admit it
// again once A's lease has run out.
func TestFleetDeadGatewaySlotsFree(t *testing.T) {
	const limit = 4
	rs := redistest.Start(t)
	up := startCountingUpstream(t)
	const prefix = "fleetlimdead"
	gws := startFleet(t, 3, rs, up, prefix, "concurrency_limit key 4")
	a, others := gws[0], gws[1:]
	st := newFleetStore(rs.Client(t), prefix)
	c := st.viewerKey(t)
	client := fleetClient(t)

	answers := holdRequests(t, []*fleetGateway{a}, c, limit)
	waitUntil(t, 30*time.Second, "A holding 4 requests in the upstream", func() bool {
		now, _ := up.inFlight()
		return now == limit
	})
	for _, g := range others {
		if r := mustSend(t, client, http.MethodGet, g.collectors(), &c, nil); !isConcurrencyRefusal(r) {
			t.Fatalf("%s while A holds every slot: status %d, body %s; want 429 naming the concurrency limit", g.Base, r.status, r.body)
		}
	}

	a.Kill(t)
	killed := time.Now()
	for range limit {
		select {
		case r := <-answers:
			if r.status == http.StatusOK {
				t.Errorf("a request held by the killed gateway was answered 200")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the requests held by the killed gateway did not end")
		}
	}
	waitUntil(t, 10*time.Second, "the upstream seeing the killed gateway's requests end", func() bool {
		now, _ := up.inFlight()
		return now == 0
	})
	var refusedAfter int
	for i := 0; ; i++ {
		g := others[i%len(others)]
		r := mustSend(t, client, http.MethodGet, g.collectors(), &c, nil)
		if r.status == http.StatusOK {
			break
		}
		if !isConcurrencyRefusal(r) {
			t.Fatalf("%s after A was killed: status %d, body %s; want 429 naming the concurrency limit or 200", g.Base, r.status, r.body)
		}
		refusedAfter++
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("the slots of the killed gateway were still held %v after it died", time.Since(killed).Round(time.Millisecond))
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("the killed gateway's slots came free %v after it died (%d refusals meanwhile)", took.Round(time.Millisecond), refusedAfter)
	// All four slots are free: four held requests through B and C are
	// admitted at once.
	more := holdRequests(t, others, c, limit)
	waitUntil(t, 30*time.Second, "B and C holding 4 requests in the upstream", func() bool {
		now, _ := up.inFlight()
		return now == limit
	})
	up.release()
	for range limit {
		if r := <-more; r.status != http.StatusOK {
			t.Errorf("held request through B or C answered %d: %s", r.status, r.body)
		}
	}
}

// TestFleetLimitsWithoutRedis stops Redis while two gateways hold a key
// in their caches: each gateway goes on limiting the key's rate by
// itself (admitting no more than rate × time + burst), logs that limits
// are held by this instance alone and reports it in
// accessgate_usage_limits_local; once Redis is back, the log says limits
// are fleet-wide again.
func TestFleetLimitsWithoutRedis(t *testing.T) {
	rate := limits.Rate{Requests: 20, PeriodSeconds: 1, Burst: 20}
	rs := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	up := startCountingUpstream(t)
	const prefix = "fleetlimnoredis"
	gws := startFleet(t, 2, rs, up, prefix, "rate_limit key 20/s")
	st := newFleetStore(rs.Client(t), prefix)
	c := st.viewerKey(t)
	client := fleetClient(t)
	for _, g := range gws {
		assertCached(t, rs, client, g.collectors(), &c, nil)
	}
	const local = "accessgate_usage_limits_local"
	for _, g := range gws {
		if v, ok := metricValue(metricsText(t, g), local); !ok || v != 0 {
			t.Fatalf("%s: %s = %v (present %v) before the outage, want 0", g.Base, local, v, ok)
		}
	}

	rs.Stop(t)
	before := up.count(c.id)
	// Each gateway gets its own load, counted apart.
	tallies := make([]*limitTally, len(gws))
	sent := make([]int64, len(gws))
	elapsed := make([]time.Duration, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		tallies[i] = newLimitTally()
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := load{gws: []*fleetGateway{g}, creds: []cred{c}, workers: 4, pace: 10 * time.Millisecond,
				check: check{code: codeRateLimited, headers: true}}
			sent[i], elapsed[i] = l.run(t, tallies[i], forDuration(4*time.Second))
		}()
	}
	wg.Wait()
	var admitted int
	for i, g := range gws {
		tallies[i].report(t)
		ok, refused := tallies[i].totals(c.id)
		admitted += ok
		bound := rateBound(rate, elapsed[i])
		t.Logf("%s without Redis: %d requests in %v, %d admitted (bound %.1f), %d refused", g.Base, sent[i], elapsed[i].Round(time.Millisecond), ok, bound, refused)
		if float64(ok) > 1.1*bound {
			t.Errorf("%s admitted %d without Redis, want at most rate × time + burst = %.1f (+10 %%)", g.Base, ok, bound)
		}
		if float64(ok) < 0.5*float64(rate.Requests)*elapsed[i].Seconds() {
			t.Errorf("%s admitted only %d in %v without Redis: it should go on admitting the key's rate", g.Base, ok, elapsed[i])
		}
		if refused == 0 {
			t.Errorf("%s refused nothing without Redis: the key's rate was not applied", g.Base)
		}
		if !strings.Contains(g.Logs(), "usage limits are held by this instance alone") {
			t.Errorf("%s: the log does not say that usage limits are held by this instance alone", g.Base)
		}
		if v, ok := metricValue(metricsText(t, g), local); !ok || v != 1 {
			t.Errorf("%s: %s = %v (present %v) during the outage, want 1", g.Base, local, v, ok)
		}
	}
	if got := up.count(c.id) - before; got != admitted {
		t.Errorf("the upstream saw %d requests during the outage, the clients %d answers 200", got, admitted)
	}

	rs.Restart(t)
	for _, g := range gws {
		took := waitUntil(t, 60*time.Second, g.Base+" logging that usage limits are fleet-wide again", func() bool {
			_, _ = send(client, http.MethodGet, g.collectors(), &c, nil)
			return strings.Contains(g.Logs(), "usage limits are fleet-wide again")
		})
		t.Logf("%s: limits fleet-wide again %v after Redis restarted", g.Base, took.Round(time.Millisecond))
		if v, ok := metricValue(metricsText(t, g), local); !ok || v != 0 {
			t.Errorf("%s: %s = %v (present %v) after Redis is back, want 0", g.Base, local, v, ok)
		}
	}
}

// TestFleetRateLimitAudit sends a key's requests faster than its rate
// through three gateways: a refusal writes AccessKeyRateLimited with the
// key's Access ID, and the gateways' decision counters add up to the
// answers the client saw, allowed and key_rate.
func TestFleetRateLimitAudit(t *testing.T) {
	rs := redistest.Start(t)
	up := startCountingUpstream(t)
	const prefix = "fleetlimaudit"
	gws := startFleet(t, 3, rs, up, prefix, "rate_limit key 5/s")
	st := newFleetStore(rs.Client(t), prefix)
	c := st.viewerKey(t)
	ctx := context.Background()

	tl := newLimitTally()
	var n atomic.Int64
	l := load{gws: gws, creds: []cred{c}, workers: 1, check: check{code: codeRateLimited, headers: true}}
	l.run(t, tl, func() bool { return n.Add(1) > 60 })
	tl.report(t)
	ok, refused := tl.totals(c.id)
	t.Logf("60 requests: %d admitted, %d refused", ok, refused)
	if refused == 0 {
		t.Fatal("no request was refused")
	}

	var found []keystore.Event
	waitUntil(t, 30*time.Second, "an AccessKeyRateLimited event of the key in the audit stream", func() bool {
		evs, err := st.Events(ctx, keystore.EventFilter{Name: keystore.EventKeyRateLimited, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		found = found[:0]
		for _, e := range evs {
			if e.AccessKey != nil && e.AccessKey.AccessID == c.id {
				found = append(found, e)
			}
		}
		return len(found) > 0
	})
	e := found[0]
	t.Logf("%d AccessKeyRateLimited events of the key; first: reason %q, details %v", len(found), e.Reason, e.Details)
	if len(found) > refused {
		t.Errorf("%d AccessKeyRateLimited events for %d refusals", len(found), refused)
	}
	if e.Details["limit"] != "key_rate" {
		t.Errorf("event details %v, want limit key_rate", e.Details)
	}
	if e.AccessKey.OwnerID != "" && e.AccessKey.OwnerID != "u1" {
		t.Errorf("event names owner %q, want u1", e.AccessKey.OwnerID)
	}

	if got := sumMetric(t, gws, decisions("allowed")); got != float64(ok) {
		t.Errorf("%s summed over the gateways is %v, want the %d answers 200", decisions("allowed"), got, ok)
	}
	if got := sumMetric(t, gws, decisions("key_rate")); got != float64(refused) {
		t.Errorf("%s summed over the gateways is %v, want the %d refusals", decisions("key_rate"), got, refused)
	}
	for _, o := range []string{"owner_rate", "quota", "concurrency"} {
		if got := sumMetric(t, gws, decisions(o)); got != 0 {
			t.Errorf("%s summed over the gateways is %v, want 0", decisions(o), got)
		}
	}
}
