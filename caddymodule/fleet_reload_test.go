package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// promptly is how long a graceful stop, or a reload that replaces the
// app's state, may take.
const promptly = 3 * time.Second

// TestFleetReloads reloads a gateway 20 times under load, with a trivial
// change of another site and the access_keys settings unchanged, then a
// few times with changed settings. No request may fail, and neither kind
// of reload may leave goroutines behind.
func TestFleetReloads(t *testing.T) {
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	extra := gatewaytest.FreePort(t)
	site := func(v int) string {
		return fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"version %d\"\n}\n", extra, v)
	}
	// reverse_proxy keeps the upstream connections of a replaced config
	// open until their idle timeout (2m by default); a short one keeps
	// them out of the goroutine counts.
	proxy := "transport http {\n\t\t\tkeepalive 200ms\n\t\t}"
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetreload", sites: site(0), proxy: proxy}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	c := st.viewerKey(t)
	wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
	assertCached(t, rs, client, gw.collectors(), &c, nil)

	var (
		pause    sync.RWMutex // held for writing while goroutines are counted
		stop     atomic.Bool
		ok, fail atomic.Int64
		retried  atomic.Int64
		firstBad atomic.Value
		wg       sync.WaitGroup
	)
	target := gw.collectors() // Reload rewrites gw.Base (to the same value)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				pause.RLock()
				r, err := send(client, http.MethodGet, target, &c, nil)
				if err != nil {
					// A connection the old server accepted as it shut down
					// may close before answering; HTTP lets a client repeat
					// an idempotent request then (RFC 9112 §9.3.1), as
					// browsers and proxies do. A request still fails if the
					// retry fails or any answer is not 200.
					retried.Add(1)
					r, err = send(client, http.MethodGet, target, &c, nil)
				}
				pause.RUnlock()
				if err == nil && r.status == http.StatusOK {
					ok.Add(1)
					continue
				}
				fail.Add(1)
				if err != nil {
					firstBad.CompareAndSwap(nil, err.Error())
				} else {
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%d %s", r.status, r.body))
				}
			}
		}()
	}
	stopLoad := func() {
		if !stop.Swap(true) {
			wg.Wait()
		}
	}
	t.Cleanup(stopLoad)

	// settled counts the gateway's goroutines with the load paused and the
	// client's connections closed, once the count holds still.
	settled := func() int {
		pause.Lock()
		defer pause.Unlock()
		client.CloseIdleConnections()
		last, same := -1, 0
		deadline := time.Now().Add(5 * time.Second)
		for same < 3 && time.Now().Before(deadline) {
			n := gw.Goroutines(t)
			if n == last {
				same++
			} else {
				last, same = n, 1
			}
			time.Sleep(100 * time.Millisecond)
		}
		return last
	}
	reload := func(o fleetOptions) time.Duration {
		t.Helper()
		took, woken := wakeWhile(st, promptly, func() { gw.Reload(t, gw.caddyfile(o)) })
		if woken {
			t.Errorf("caddy reload took longer than %v and returned only once an invalidation message woke the subscriber (took %v)", promptly, took.Round(time.Millisecond))
		}
		return took
	}
	checkSite := func(v int) {
		t.Helper()
		r := mustSend(t, client, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", extra), nil, nil)
		if want := fmt.Sprintf("version %d", v); string(r.body) != want {
			t.Fatalf("the other site answers %q, want %q: the reload did not apply", r.body, want)
		}
	}

	var afterFirst, slowest time.Duration
	var g1 int
	for i := 1; i <= 20; i++ {
		o.sites = site(i)
		took := reload(o)
		slowest = max(slowest, took)
		checkSite(i)
		if i == 1 {
			afterFirst = took
			g1 = settled()
		}
	}
	g20 := settled()
	t.Logf("20 reloads with unchanged settings (first %v, slowest %v): %d goroutines after reload 1, %d after reload 20; %d requests, %d failed, %d retried after a closed connection",
		afterFirst.Round(time.Millisecond), slowest.Round(time.Millisecond), g1, g20, ok.Load(), fail.Load(), retried.Load())
	if n := running(t, gw, "caddymodule.(*state).subscribe"); n != 1 {
		t.Errorf("%d invalidation subscribers run after 20 reloads, want 1", n)
	}
	if g20 > g1+5 {
		t.Errorf("goroutines grew from %d after reload 1 to %d after reload 20", g1, g20)
		logGoroutines(t, gw)
	}

	var changed []int
	for i, ttl := range []string{"14m", "13m", "12m", "11m"} {
		o.cacheTTL = ttl
		o.sites = site(100 + i)
		took := reload(o)
		checkSite(100 + i)
		wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
		changed = append(changed, settled())
		t.Logf("reload with cache_ttl %s took %v; %d goroutines", ttl, took.Round(time.Millisecond), changed[i])
	}
	// Each of those reloads made a new state; the old ones must be gone.
	if n := running(t, gw, "caddymodule.(*state).subscribe"); n != 1 {
		t.Errorf("%d invalidation subscribers run after reloads that replace the state, want 1", n)
	}
	if last := changed[len(changed)-1]; last > changed[0]+5 || last > g1+5 {
		t.Errorf("goroutines grew over reloads that replace the app's state: %v (after reload 1: %d)", changed, g1)
		logGoroutines(t, gw)
	}
	stopLoad()
	if fail.Load() > 0 {
		t.Errorf("%d of %d requests failed during the reloads; first: %v", fail.Load(), ok.Load()+fail.Load(), firstBad.Load())
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests ran during the reloads", ok.Load())
	}
}

// TestFleetGracefulStop stops a gateway that has served keys: Caddy must
// exit promptly after SIGINT, its app state's loops ending with it.
func TestFleetGracefulStop(t *testing.T) {
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetstop"}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	c := st.viewerKey(t)
	wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
	client.CloseIdleConnections()

	took, woken := wakeWhile(st, promptly, func() { gw.Stop(t) })
	if woken {
		t.Errorf("caddy did not exit within %v of SIGINT; it exited %v after it, once an invalidation message woke the subscriber", promptly, took.Round(time.Millisecond))
	} else {
		t.Logf("caddy exited %v after SIGINT", took.Round(time.Millisecond))
	}
}

// goroutineProfile returns the gateway's goroutines grouped by stack: the
// number in each group and the functions of its stack.
func goroutineProfile(t *testing.T, gw *fleetGateway) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + gw.AdminAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	groups := map[string]int{}
	for _, blk := range strings.Split(string(b), "\n\n") {
		var n int
		var funcs []string
		for _, line := range strings.Split(blk, "\n") {
			if _, err := fmt.Sscanf(line, "%d @", &n); err == nil {
				continue
			}
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" {
				funcs = append(funcs, f[2])
			}
		}
		if n > 0 {
			groups[strings.Join(funcs, " < ")] += n
		}
	}
	return groups
}

// running counts the gateway's goroutines with fn on their stack.
func running(t *testing.T, gw *fleetGateway, fn string) int {
	t.Helper()
	n := 0
	for stack, c := range goroutineProfile(t, gw) {
		if strings.Contains(stack, fn) {
			n += c
		}
	}
	return n
}

// logGoroutines logs the gateway's goroutine groups of more than one
// goroutine, where leaks show.
func logGoroutines(t *testing.T, gw *fleetGateway) {
	t.Helper()
	for stack, n := range goroutineProfile(t, gw) {
		if n > 1 {
			t.Logf("gateway goroutines: %d × %s", n, stack)
		}
	}
}

// TestFleetReloadGracePeriod reloads a gateway that has a grace_period
// with settings that replace the app's state, while requests are in
// flight: under load, waiting for a slow upstream, and waiting for Redis
// in the old handlers (a verification, a management API call). None may
// fail because of the reload.
func TestFleetReloadGracePeriod(t *testing.T) {
	rs := redistest.Start(t)
	px := redistest.NewHoldProxy(t, rs.Addr)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	var slowIn sync.WaitGroup
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			slowIn.Done()
			<-release
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	api := gatewaytest.FreePort(t)
	o := fleetOptions{
		redis:  []string{px.URL()},
		prefix: "fleetgrace",
		global: "grace_period 30s",
		sites:  fmt.Sprintf("http://127.0.0.1:%d {\n\taccess_keys_api\n}\n", api),
		proxy:  "transport http {\n\t\t\tkeepalive 200ms\n\t\t}",
	}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	st.role(t, "viewer", "viewCollectors", "createAccessKeys")
	st.user(t, "u1", "viewer")
	cached := st.key(t, keystore.KeySpec{OwnerID: "u1"})
	fresh := st.key(t, keystore.KeySpec{OwnerID: "u1"})
	wantStatus(t, client, gw.collectors(), &cached, nil, http.StatusOK)
	assertCached(t, rs, client, gw.collectors(), &cached, nil)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d/api/v1/accessKeys/personal", api)
	wantStatus(t, client, apiURL, &cached, nil, http.StatusOK)
	target := gw.collectors() // Reload rewrites gw.Base (to the same value)

	// Load during the reload, as in TestFleetReloads: a cached
	// credential, so that it needs no Redis.
	var (
		stop      atomic.Bool
		ok, fail  atomic.Int64
		firstFail atomic.Value
		wg        sync.WaitGroup
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r, err := send(client, http.MethodGet, target, &cached, nil)
				if err != nil {
					r, err = send(client, http.MethodGet, target, &cached, nil)
				}
				if err == nil && r.status == http.StatusOK {
					ok.Add(1)
					continue
				}
				fail.Add(1)
				firstFail.CompareAndSwap(nil, fmt.Sprintf("%v %d %s", err, r.status, r.body))
			}
		}()
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	type result struct {
		name   string
		status int
		body   string
		err    error
	}
	inFlight := make(chan result, 10)
	start := func(name, url string, c cred) {
		go func() {
			r, err := send(client, http.MethodGet, url, &c, nil)
			inFlight <- result{name, r.status, string(r.body), err}
		}()
	}
	// Requests waiting for the upstream across the reload.
	const slow = 3
	slowIn.Add(slow)
	for range slow {
		start("request waiting for the upstream", target+"/slow", cached)
	}
	slowIn.Wait()
	// Requests waiting for Redis in the old handlers: a verification and
	// a management API call.
	px.Hold()
	start("verification waiting for Redis", target, fresh)
	start("management API call waiting for Redis", apiURL, cached)
	waitUntil(t, 10*time.Second, "both requests waiting for Redis", func() bool {
		return px.Held("{"+fresh.id+"}") > 0 && px.Held(":owner:{u1}:keys") > 0
	})

	o.cacheTTL = "14m" // a new state; the old one is released
	gw.Reload(t, gw.caddyfile(o))
	px.Release()
	unblock()
	for range slow + 2 {
		r := <-inFlight
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("%s across the reload: %v %d %s", r.name, r.err, r.status, r.body)
		}
	}
	wantStatus(t, client, target, &fresh, nil, http.StatusOK)
	wantStatus(t, client, apiURL, &cached, nil, http.StatusOK)
	stop.Store(true)
	wg.Wait()
	if fail.Load() > 0 {
		t.Errorf("%d of %d requests failed during the reload; first: %v", fail.Load(), ok.Load()+fail.Load(), firstFail.Load())
	}
	if strings.Contains(gw.Logs(), "panic") {
		t.Error("the gateway log shows a panic")
	}
}
