package caddymodule

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/internal/loadgen"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/usage"
)

// The benchmarks below run the access_keys handler in process against a
// real redis-server. Each request is prepared once, as Caddy's server
// prepares it (replacer, vars with the client IP, extra log fields), and
// reused: only the Authorization header is put back before every call, so
// the allocations reported are the handler's own. Compare ns/op with
// BenchmarkNoopHandler from the same run.

const benchPrefix = "agbench"

// benchEnv is a shared state on a real redis-server, an access_keys
// handler using it, and seeded credentials.
type benchEnv struct {
	redis *redistest.Server
	st    *state
	h     *Handler
	creds []loadgen.Cred
	auths [][]string // Authorization header values of creds
	// trips counts Redis round trips (commands and pipelines) of st.
	trips atomic.Int64
	// keyGets counts GETs of the record of watchID.
	keyGets atomic.Int64
	watchID atomic.Value // string
}

// newBenchEnv starts redis-server, seeds nKeys active keys spread over ten
// owners and builds a state with the given cache size and a handler
// mapping the scopes of Caddyfile.example.
func newBenchEnv(tb testing.TB, cacheSize, nKeys int, opts ...func(*App)) *benchEnv {
	tb.Helper()
	if _, ok := tb.(*testing.B); ok {
		quietCaddyLog(tb)
	}
	e := &benchEnv{redis: redistest.Start(tb)}
	// The keys are seeded before the state exists, so that the
	// invalidations the seeding publishes (a role, the owners) cannot
	// reach the state later, in the middle of a measurement or a test,
	// and keep a credential loaded meanwhile out of the cache.
	ctx := context.Background()
	rdb := e.redis.Client(tb)
	store := keystore.New(rdb, keystore.Options{Prefix: benchPrefix})
	owners, err := loadgen.SeedOwners(ctx, store, 10)
	if err != nil {
		tb.Fatal(err)
	}
	e.creds, err = loadgen.SeedKeys(ctx, rdb, loadgen.SeedOptions{Prefix: benchPrefix, Owners: owners, N: nKeys, Keep: true})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := App{
		Redis:     []string{e.redis.URL()},
		KeyPrefix: benchPrefix,
		CacheSize: cacheSize,
		// Keep background Redis traffic out of the measurements.
		LastUsedFlush: caddy.Duration(time.Hour),
		SweepInterval: caddy.Duration(time.Hour),
		UsageFlush:    caddy.Duration(time.Hour),
	}
	for _, o := range opts {
		o(&cfg)
	}
	cfg = cfg.withDefaults()
	st, err := newState(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	admin := e.redis.Client(tb)
	tb.Cleanup(func() {
		done := make(chan struct{})
		go func() {
			_ = st.Destruct()
			close(done)
		}()
		// The subscriber waits in a read that ignores cancellation for up
		// to 30s; closing its connection ends the wait.
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				admin.ClientKillByFilter(context.Background(), "TYPE", "pubsub")
			}
		}
	})
	st.rdb.AddHook(countHook{e})
	e.st = st
	// The state's start-up talks to Redis on its own (the subscription
	// and its position in the changes stream, the schema check): wait
	// until that is over, so that what a test or a benchmark counts is
	// its own work.
	for last, end := e.trips.Load(), time.Now().Add(10*time.Second); ; {
		time.Sleep(100 * time.Millisecond)
		n := e.trips.Load()
		if st.subscriptionUp.Load() && n == last {
			break
		}
		if time.Now().After(end) {
			tb.Fatal("the state's start-up did not settle within 10s")
		}
		last = n
	}

	e.auths = make([][]string, len(e.creds))
	for i, c := range e.creds {
		e.auths[i] = []string{c.Authorization()}
	}

	e.h = &Handler{
		Realm: "API",
		Scopes: []ScopeRule{
			{Scope: "viewCollectors", Methods: []string{"GET", "HEAD"}, Paths: []string{"/api/v1/collectors", "/api/v1/collectors/*"}},
			{Scope: "manageCollectors", Methods: []string{"POST", "PUT", "DELETE"}, Paths: []string{"/api/v1/collectors", "/api/v1/collectors/*"}},
			{Scope: "runLogSearch", Paths: []string{"/api/v1/search/*"}},
		},
	}
	for i := range e.h.Scopes {
		if err := e.h.Scopes[i].provision(caddy.Context{}); err != nil {
			tb.Fatal(err)
		}
	}
	if memoizable(e.h.Scopes) {
		e.h.memo = new(routeMemo) // as Provision does
	}
	e.h.gate = gate{app: &App{state: st}, logger: zap.NewNop(), challenge: `Basic realm="API"`}
	return e
}

var quietLog sync.Once

// quietCaddyLog sends Caddy's default log, which the audit events of the
// rejection benchmarks go to, nowhere: a config with only a discarding
// default log, no admin endpoint and nothing persisted.
func quietCaddyLog(tb testing.TB) {
	quietLog.Do(func() {
		cfg := `{"admin":{"disabled":true,"config":{"persist":false}},"logging":{"logs":{"default":{"writer":{"output":"discard"}}}}}`
		if err := caddy.Load([]byte(cfg), true); err != nil {
			tb.Fatalf("quieting Caddy's log: %v", err)
		}
	})
}

// countHook counts the Redis round trips of the state's client, and the
// GETs of one key record.
type countHook struct{ e *benchEnv }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !isUsageWrite(cmd) {
			h.e.trips.Add(1)
		}
		h.watch(cmd)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || !isUsageWrite(cmds[0]) {
			h.e.trips.Add(1)
		}
		for _, c := range cmds {
			h.watch(c)
		}
		return next(ctx, cmds)
	}
}

// isUsageWrite reports whether cmd writes usage counts: the background
// writes of the usage flush (which runs every minute whatever usage_flush
// says), not round trips of the requests measured.
func isUsageWrite(cmd redis.Cmder) bool {
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.HasPrefix(s, benchPrefix+":use") {
			return true
		}
	}
	return false
}

func (h countHook) watch(cmd redis.Cmder) {
	id, _ := h.e.watchID.Load().(string)
	if id == "" || cmd.Name() != "get" {
		return
	}
	if args := cmd.Args(); len(args) == 2 && args[1] == loadgen.RecordKey(benchPrefix, id) {
		h.e.keyGets.Add(1)
	}
}

// benchRequest returns a request prepared as Caddy's server does, from
// client 192.0.2.10.
func benchRequest(method, target string, hdr map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
	caddyhttp.SetVar(r.Context(), caddyhttp.ClientIPVarKey, "192.0.2.10")
	return r
}

// nopNext is the next handler: it does nothing.
var nopNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// discardWriter is a reusable ResponseWriter that keeps only the status.
type discardWriter struct {
	hdr    http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.hdr }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// serve runs one request through the handler and returns the status the
// handler wrote (200 when it called next without writing).
func (e *benchEnv) serve(tb testing.TB, w *discardWriter, r *http.Request, auth []string) int {
	r.Header["Authorization"] = auth
	clear(w.hdr)
	w.status = http.StatusOK
	if err := e.h.ServeHTTP(w, r, nopNext); err != nil {
		tb.Fatal(err)
	}
	return w.status
}

// warm verifies the first n credentials so that they are cached.
func (e *benchEnv) warm(tb testing.TB, n int) {
	tb.Helper()
	w := &discardWriter{hdr: http.Header{}}
	r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
	for i := range n {
		if got := e.serve(tb, w, r, e.auths[i]); got != http.StatusOK {
			tb.Fatalf("warming credential %d: status %d", i, got)
		}
	}
}

// hot is the number of credentials the cache-hit benchmarks rotate over.
const hot = 1024

// noopMiddleware is the baseline: a middleware that only calls next.
type noopMiddleware struct{}

func (noopMiddleware) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// BenchmarkNoopHandler is the baseline of the handler benchmarks: the same
// per-request work of the benchmark loop around a middleware that only
// calls next. "reused" matches the cache-hit benchmarks; "recorder" adds
// the fresh httptest.ResponseRecorder of the rejection benchmarks.
func BenchmarkNoopHandler(b *testing.B) {
	auth := []string{loadgen.Cred{ID: keystore.NewAccessID(), Secret: keystore.NewAccessKey()}.Authorization()}
	var m caddyhttp.MiddlewareHandler = noopMiddleware{}
	b.Run("reused", func(b *testing.B) {
		r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
		w := &discardWriter{hdr: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			r.Header["Authorization"] = auth
			clear(w.hdr)
			if err := m.ServeHTTP(w, r, nopNext); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("recorder", func(b *testing.B) {
		r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
		b.ReportAllocs()
		for b.Loop() {
			r.Header["Authorization"] = auth
			if err := m.ServeHTTP(httptest.NewRecorder(), r, nopNext); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHandlerCacheHit measures a request whose credential is cached,
// rotating over 1024 cached credentials.
func BenchmarkHandlerCacheHit(b *testing.B) {
	e := newBenchEnv(b, 0, hot)
	e.warm(b, hot)
	r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
	w := &discardWriter{hdr: http.Header{}}
	before := e.trips.Load()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if got := e.serve(b, w, r, e.auths[i%hot]); got != http.StatusOK {
			b.Fatalf("status %d", got)
		}
	}
	if n := e.trips.Load() - before; n != 0 {
		b.Fatalf("cache hits made %d Redis round trips", n)
	}
	if got := r.Header.Get(HeaderAccessScopes); got != "runLogSearch viewCollectors" {
		b.Fatalf("%s = %q", HeaderAccessScopes, got)
	}
}

// BenchmarkHandlerCacheHitCounted is BenchmarkHandlerCacheHit (whose
// requests are counted too) with proof of the counting: after the loop,
// the counts written to Redis hold exactly one allowed 2xx request per
// request served, warming included.
func BenchmarkHandlerCacheHitCounted(b *testing.B) {
	e := newBenchEnv(b, 0, hot)
	start := time.Now()
	e.warm(b, hot)
	r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
	w := &discardWriter{hdr: http.Header{}}
	before := e.trips.Load()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if got := e.serve(b, w, r, e.auths[n%hot]); got != http.StatusOK {
			b.Fatalf("status %d", got)
		}
		n++
	}
	b.StopTimer()
	if d := e.trips.Load() - before; d != 0 {
		b.Fatalf("cache hits made %d Redis round trips", d)
	}
	ctx := context.Background()
	e.st.flushUsage(ctx)
	if e.st.usage.Len() != 0 || e.st.usage.Dropped() != 0 {
		b.Fatalf("after the flush: %d pairs held, %d counts dropped", e.st.usage.Len(), e.st.usage.Dropped())
	}
	buckets, err := e.st.usageStore.Org(ctx, start.Add(-time.Minute), time.Now().Add(time.Minute), usage.Minute)
	if err != nil {
		b.Fatal(err)
	}
	var got usage.Counts
	for _, bk := range buckets {
		for o := range got {
			got[o] += bk.Counts[o]
		}
	}
	if want := int64(hot + n); got[usage.Status2xx] != want || got.Requests() != want {
		b.Fatalf("counted %v (%d requests), want %d requests answered 2xx", got, got.Requests(), want)
	}
}

// BenchmarkHandlerCacheHitParallel is BenchmarkHandlerCacheHit from
// GOMAXPROCS goroutines at once (run it with -cpu 2), each with its own
// request.
func BenchmarkHandlerCacheHitParallel(b *testing.B) {
	e := newBenchEnv(b, 0, hot)
	e.warm(b, hot)
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
		w := &discardWriter{hdr: http.Header{}}
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			if got := e.serve(b, w, r, e.auths[i%hot]); got != http.StatusOK {
				b.Errorf("status %d", got)
				return
			}
			i++
		}
	})
}

// BenchmarkHandlerCacheMiss measures requests whose credential is not
// cached: every request presents another of 4096 keys, through a cache of
// 64 entries, so each one is verified against Redis and evicts another.
// With owner=cached the owner comes from the owner cache; with
// owner=uncached it is dropped from that cache before each request. The
// metrics roundtrips/op (Redis commands or pipelines sent by the gateway,
// counted by a go-redis hook) and rediscmds/op (commands counted by the
// server) check "one round trip when the owner is cached, two at most
// otherwise".
func BenchmarkHandlerCacheMiss(b *testing.B) {
	const keys = 4096
	e := newBenchEnv(b, 64, keys)
	owners := make([]string, keys)
	ctx := context.Background()
	rdb := e.redis.Client(b)
	for i, c := range e.creds {
		raw, err := rdb.Get(ctx, loadgen.RecordKey(benchPrefix, c.ID)).Bytes()
		if err != nil {
			b.Fatal(err)
		}
		var k keystore.Key
		if err := keystore.DecodeKey(raw, &k); err != nil {
			b.Fatal(err)
		}
		owners[i] = k.OwnerID
	}
	e.warm(b, 64) // owners cached, connections open
	// walk continues from one run of a loop to the next (b.Run calls each
	// function several times while it sizes b.N), so that no credential
	// comes back before the other keys-1 have evicted it from the cache.
	walk := 0
	for _, ownerCached := range []bool{true, false} {
		b.Run(fmt.Sprintf("owner=%s", map[bool]string{true: "cached", false: "uncached"}[ownerCached]), func(b *testing.B) {
			r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
			w := &discardWriter{hdr: http.Header{}}
			trips0 := e.trips.Load()
			cmds0 := redisCommands(b, e.redis)
			misses0 := e.st.auth.Stats().Misses
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				j := (walk + 64) % keys
				walk++
				if !ownerCached {
					e.st.owners.Remove(owners[j])
				}
				if got := e.serve(b, w, r, e.auths[j]); got != http.StatusOK {
					b.Fatalf("status %d", got)
				}
				n++
			}
			b.StopTimer()
			if m := e.st.auth.Stats().Misses - misses0; m < uint64(n) {
				b.Fatalf("%d cache misses for %d requests", m, n)
			}
			b.ReportMetric(float64(e.trips.Load()-trips0)/float64(n), "roundtrips/op")
			b.ReportMetric(float64(redisCommands(b, e.redis)-cmds0)/float64(n), "rediscmds/op")
		})
	}
}

// redisCommands returns the commands the server has run that the gateway
// sends when verifying: GET, HGETALL and HGET.
func redisCommands(tb testing.TB, s *redistest.Server) int64 {
	return s.CommandCount(tb, "get") + s.CommandCount(tb, "hgetall") + s.CommandCount(tb, "hget")
}

// BenchmarkHandlerChecksumReject measures a well-shaped credential whose
// Access Key checksum is wrong: 401 without Redis.
func BenchmarkHandlerChecksumReject(b *testing.B) {
	e := newBenchEnv(b, 0, 1)
	bad := e.creds[0]
	bad.Secret = bad.Secret[:keystore.AccessKeyLen-1] + map[bool]string{true: "B", false: "A"}[bad.Secret[keystore.AccessKeyLen-1] == 'A']
	benchReject(b, e, benchRequest(http.MethodGet, "/api/v1/collectors", nil), []string{bad.Authorization()}, http.StatusUnauthorized)
}

// BenchmarkHandlerCORSReject measures a cached credential sent from an
// origin its allowlist lacks: 403.
func BenchmarkHandlerCORSReject(b *testing.B) {
	e := newBenchEnv(b, 0, 1)
	e.warm(b, 1)
	r := benchRequest(http.MethodGet, "/api/v1/collectors", map[string]string{"Origin": "https://evil.example.net"})
	benchReject(b, e, r, e.auths[0], http.StatusForbidden)
}

// BenchmarkHandlerScopeReject measures a cached credential on a route
// needing a scope it lacks: 403.
func BenchmarkHandlerScopeReject(b *testing.B) {
	e := newBenchEnv(b, 0, 1)
	e.warm(b, 1)
	benchReject(b, e, benchRequest(http.MethodPost, "/api/v1/collectors/c1", nil), e.auths[0], http.StatusForbidden)
}

// benchReject serves r with auth into a fresh httptest.ResponseRecorder
// per request and checks the status. Rejections make no Redis call on the
// request path; their audit events are written in batches by the state.
func benchReject(b *testing.B, e *benchEnv, r *http.Request, auth []string, want int) {
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		w := httptest.NewRecorder()
		if err := e.h.ServeHTTP(w, r, nopNext); err != nil {
			b.Fatal(err)
		}
		if w.Code != want {
			b.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
		}
	}
}

// BenchmarkAuthCacheMemory fills the real authentication cache with
// 100,000 credentials verified against Redis (records with a label, two
// scopes and one allowlisted origin, ten owners) and reports the heap
// they take: bytes/credential. record-bytes is the mean length of a key's
// JSON record in Redis, for scale.
func BenchmarkAuthCacheMemory(b *testing.B) {
	const warmN, n = 1000, 100_000
	e := newBenchEnv(b, 2*n, warmN+n)
	ctx := context.Background()
	rdb := e.redis.Client(b)
	var recBytes int64
	for _, c := range e.creds[:100] {
		l, err := rdb.StrLen(ctx, loadgen.RecordKey(benchPrefix, c.ID)).Result()
		if err != nil {
			b.Fatal(err)
		}
		recBytes += l
	}
	fill := func(creds []loadgen.Cred) {
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 8 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(creds) {
						return
					}
					c := creds[i]
					if _, err := e.st.authenticate(ctx, c.ID, c.Secret, "192.0.2.10"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	var perEntry float64
	for b.Loop() {
		e.st.auth.Purge()
		fill(e.creds[:warmN]) // owners, connections, pool buffers
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fill(e.creds[warmN:])
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := e.st.auth.Len(); got != warmN+n {
			b.Fatalf("cache holds %d entries, want %d", got, warmN+n)
		}
		perEntry = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	}
	b.ReportMetric(perEntry, "bytes/credential")
	b.ReportMetric(float64(recBytes)/100, "record-bytes")
}

// TestSingleLookupForConcurrentMisses sends 1,000 concurrent requests with
// one uncached credential and checks that Redis is asked for its record
// once, and that every request is let through.
func TestSingleLookupForConcurrentMisses(t *testing.T) {
	e := newBenchEnv(t, 0, 11)
	e.warm(t, 1) // creds[0] and creds[10] share an owner, now cached
	c := e.creds[10]
	e.watchID.Store(c.ID)
	trips0 := e.trips.Load()
	gets0 := e.redis.CommandCount(t, "get")

	const n = 1000
	start := make(chan struct{})
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
		r.Header.Set("Authorization", c.Authorization())
		wg.Go(func() {
			<-start
			w := httptest.NewRecorder()
			if err := e.h.ServeHTTP(w, r, nopNext); err != nil {
				t.Error(err)
			}
			codes[i] = w.Code
		})
	}
	close(start)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	if got := e.keyGets.Load(); got != 1 {
		t.Errorf("%d GETs of the key record for %d concurrent requests, want 1", got, n)
	}
	if got := e.redis.CommandCount(t, "get") - gets0; got != 1 {
		t.Errorf("redis-server ran %d GETs, want 1", got)
	}
	if got := e.trips.Load() - trips0; got != 1 {
		t.Errorf("%d Redis round trips, want 1 (the owner was cached)", got)
	}
}

// TestIdentityHeadersOwnedByRequest checks that a handler editing the
// identity header values in place, as Caddy's header replacements do,
// cannot change what later requests with the same cached key get.
func TestIdentityHeadersOwnedByRequest(t *testing.T) {
	e := newBenchEnv(t, 0, 1)
	e.warm(t, 1)
	edit := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		for _, name := range []string{HeaderAccessID, HeaderAccessOwner, HeaderAccessScopes} {
			for i := range r.Header[name] {
				r.Header[name][i] = "edited"
			}
		}
		return nil
	})
	for i := range 2 {
		r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
		r.Header["Authorization"] = e.auths[0]
		var seen http.Header
		next := edit
		if i == 1 {
			next = func(_ http.ResponseWriter, r *http.Request) error {
				seen = r.Header.Clone()
				return nil
			}
		}
		if err := e.h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if got := seen.Get(HeaderAccessID); got != e.creds[0].ID {
				t.Errorf("%s = %q after an earlier request edited it, want %q", HeaderAccessID, got, e.creds[0].ID)
			}
			if got := seen.Get(HeaderAccessScopes); got != "runLogSearch viewCollectors" {
				t.Errorf("%s = %q after an earlier request edited it", HeaderAccessScopes, got)
			}
		}
	}
}

// authenticate is the gate's path without HTTP: the cache, then verify.
func (s *state) authenticate(ctx context.Context, id, secret, client string) (*entry, error) {
	k := s.credKeyOf([]byte(id), []byte(secret))
	if e, ok := s.cached(k); ok {
		return e, nil
	}
	return s.verify(ctx, k, id, secret, client)
}

// BenchmarkHandlerCacheMissParallel is BenchmarkHandlerCacheMiss
// (owner=cached) from 8×GOMAXPROCS goroutines at once, as a loaded gateway
// sees misses: their Redis reads share pipelines, so roundtrips/op falls
// below one.
func BenchmarkHandlerCacheMissParallel(b *testing.B) {
	const keys = 4096
	e := newBenchEnv(b, 64, keys)
	e.warm(b, 64) // owners cached, connections open
	var worker atomic.Int64
	trips0 := e.trips.Load()
	misses0 := e.st.auth.Stats().Misses
	cpu0, cpuOK := processCPU()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
		w := &discardWriter{hdr: http.Header{}}
		i := int(worker.Add(1)) * 257
		for pb.Next() {
			if got := e.serve(b, w, r, e.auths[i%keys]); got != http.StatusOK {
				b.Errorf("status %d", got)
				return
			}
			i++
		}
	})
	b.StopTimer()
	m := e.st.auth.Stats().Misses - misses0
	if m == 0 {
		b.Fatal("no cache misses")
	}
	b.ReportMetric(float64(m)/float64(b.N), "misses/op")
	if cpu1, ok := processCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.ReportMetric(float64(e.trips.Load()-trips0)/float64(b.N), "roundtrips/op")
}

// processCPU returns the CPU time (user and system) the test process has
// used, from /proc/self/stat at the usual 100 ticks a second; false where
// there is no /proc. It excludes redis-server: the gateway's own cost.
func processCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which ends with the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}
