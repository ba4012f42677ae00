package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/errbody"
)

// heldLoads is a go-redis hook that counts the credential loads whose
// reads are in flight (the GETs of key records in the pipelines of
// keystore.Verify, which concurrent loads may share) and holds each such
// pipeline until release is closed.
type heldLoads struct {
	release  chan struct{}
	inFlight atomic.Int64
	peak     atomic.Int64
	total    atomic.Int64
}

func (h *heldLoads) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *heldLoads) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *heldLoads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		loads := recordLoads(cmds)
		if loads == 0 {
			return next(ctx, cmds)
		}
		h.total.Add(loads)
		n := h.inFlight.Add(loads)
		defer h.inFlight.Add(-loads)
		for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
		}
		<-h.release
		if err := ctx.Err(); err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

// recordLoads returns how many verifications' reads cmds holds: the GETs
// of key records.
func recordLoads(cmds []redis.Cmder) int64 {
	var n int64
	for _, c := range cmds {
		args := c.Args()
		key, _ := args[len(args)-1].(string)
		if c.Name() == "get" && strings.Contains(key, ":key:{") {
			n++
		}
	}
	return n
}

// withPoolSize sets the Redis connection pool size of a bench env's state.
func withPoolSize(n int) func(*App) {
	return func(a *App) { a.Redis = []string{fmt.Sprintf("%s?pool_size=%d", a.Redis[0], n)} }
}

// serveRecorded runs one request with the credential auth through the
// handler and returns what it answered.
func (e *benchEnv) serveRecorded(t *testing.T, auth []string) *httptest.ResponseRecorder {
	r := benchRequest(http.MethodGet, "/api/v1/collectors", nil)
	r.Header["Authorization"] = auth
	rec := httptest.NewRecorder()
	if err := e.h.ServeHTTP(rec, r, nopNext); err != nil {
		t.Error(err)
	}
	return rec
}

// check503 checks the answer to a request whose credential could not be
// loaded: 503, body A with code service.unavailable.
func check503(rec *httptest.ResponseRecorder) error {
	var body struct {
		Status        int
		Code, Message string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		return fmt.Errorf("503 body %q: %v", rec.Body.String(), err)
	}
	if body.Status != http.StatusServiceUnavailable || body.Code != errbody.CodeUnavailable || body.Message != errbody.MsgUnavailable {
		return fmt.Errorf("503 body %+v", body)
	}
	return nil
}

// TestColdStartLoadBound checks that a gateway meeting many credentials
// it has not cached at once (as after a start in front of many active
// keys) never loads more of them from Redis at once than its bound, half
// its Redis pool, and that every request is answered correctly in the end
// (200; a 503 asking to retry at most meanwhile, which the clients here
// follow).
func TestColdStartLoadBound(t *testing.T) {
	const pool, clients = 8, 120
	e := newBenchEnv(t, 0, clients, withPoolSize(pool))
	bound := loadBound(e.st.rdb)
	if bound != pool/2 {
		t.Fatalf("loadBound = %d with a pool of %d, want %d", bound, pool, pool/2)
	}
	h := &heldLoads{release: make(chan struct{})}
	e.st.rdb.AddHook(h)

	var wg sync.WaitGroup
	var retried atomic.Int64
	errs := make(chan error, clients)
	deadline := time.Now().Add(2 * time.Minute)
	for i := range clients {
		wg.Go(func() {
			for {
				rec := e.serveRecorded(t, e.auths[i])
				switch {
				case rec.Code == http.StatusOK:
					return
				case rec.Code != http.StatusServiceUnavailable:
					errs <- fmt.Errorf("credential %d: status %d, body %s", i, rec.Code, rec.Body)
					return
				case time.Now().After(deadline):
					errs <- fmt.Errorf("credential %d: still 503 at the deadline", i)
					return
				}
				if err := check503(rec); err != nil {
					errs <- fmt.Errorf("credential %d: %v", i, err)
					return
				}
				retried.Add(1)
			}
		})
	}
	// Every load slot taken; the reads of the loads share at most a few
	// pipelines, held here.
	waitUntil(t, "the bound of loads in flight to be reached", func() bool { return e.st.auth.LoadsInFlight() == bound })
	close(h.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := h.peak.Load(); p < 1 || p > int64(bound) {
		t.Errorf("%d credential reads in flight at most, want 1..%d (the bound)", p, bound)
	}
	if n := e.st.auth.Len(); n != clients {
		t.Errorf("%d credentials cached, want %d", n, clients)
	}
	if e.st.auth.LoadsInFlight() != 0 {
		t.Errorf("%d load slots still taken", e.st.auth.LoadsInFlight())
	}
	t.Logf("%d loads for %d credentials, %d answers 503 retried", h.total.Load(), clients, retried.Load())
}

// TestCredentialLoadsBusy checks the answer to a cache miss that finds
// every load slot taken for longer than credentialLoadWait: 503 with
// body A and a Retry-After, no verdict on the credential, which verifies
// once a slot is free.
func TestCredentialLoadsBusy(t *testing.T) {
	e := newBenchEnv(t, 0, 2, withPoolSize(2))
	if b := loadBound(e.st.rdb); b != 1 {
		t.Fatalf("loadBound = %d, want 1", b)
	}
	h := &heldLoads{release: make(chan struct{})}
	e.st.rdb.AddHook(h)
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- e.serveRecorded(t, e.auths[0]) }()
	waitUntil(t, "the first load to hold the slot", func() bool { return h.inFlight.Load() == 1 })

	rec := e.serveRecorded(t, e.auths[1])
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d while the slot is taken, want 503; body %s", rec.Code, rec.Body)
	}
	if err := check503(rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if h.total.Load() != 1 {
		t.Errorf("%d loads started, want only the first", h.total.Load())
	}
	if s := e.st.auth.Stats(); s.Busy != 1 {
		t.Errorf("Busy = %d, want 1", s.Busy)
	}
	close(h.release)
	// The first load may have outlived its own time limit while held:
	// either way its slot comes back and both credentials verify.
	if rec := <-first; rec.Code != http.StatusOK && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("first request: status %d", rec.Code)
	}
	for i := range 2 {
		if rec := e.serveRecorded(t, e.auths[i]); rec.Code != http.StatusOK {
			t.Errorf("credential %d after the slot came back: status %d, body %s", i, rec.Code, rec.Body)
		}
	}
}

// waitUntil polls cond every millisecond until it holds, failing the test
// after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
