package caddymodule

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/accessgate/accessgate/keystore"
)

// offlineState is a state whose Redis refuses every connection: each
// verification that reaches Redis fails at once, as in an outage.
func offlineState(t *testing.T) *state {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	st, err := newState(App{Redis: []string{"redis://" + addr + "/0"}, KeyPrefix: "unit"}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Destruct() })
	return st
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// observedGate is a gate on st whose log lines, at every level, are
// recorded.
func observedGate(st *state) (*gate, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return &gate{app: &App{state: st}, logger: zap.New(core), challenge: `Basic realm="API"`, errLog: new(logLimiter)}, logs
}

// gateRequest is a GET with well-formed credentials of a made-up key, and
// the extra log fields Caddy's server gives every request.
func gateRequest(ctx context.Context) (*http.Request, *caddyhttp.ExtraLogFields) {
	extra := new(caddyhttp.ExtraLogFields)
	r := httptest.NewRequest(http.MethodGet, "/api/v1/collectors", nil)
	r = r.WithContext(context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, extra))
	r.SetBasicAuth(keystore.NewAccessID(), keystore.NewAccessKey())
	return r, extra
}

// extraField returns the string value of the extra log field named key, as
// the access log line of the request would show it ("" if absent).
// ExtraLogFields keeps its fields unexported; reflection reads them.
func extraField(extra *caddyhttp.ExtraLogFields, key string) string {
	fields := reflect.ValueOf(extra).Elem().FieldByName("fields")
	for i := range fields.Len() {
		if f := fields.Index(i); f.FieldByName("Key").String() == key {
			return f.FieldByName("String").String()
		}
	}
	return ""
}

// outcomeCount reads the authentications_total counter of outcome.
func outcomeCount(m *stateMetrics, outcome string) uint64 {
	for i, o := range outcomes {
		if o == outcome {
			return m.outcomes[i].Load()
		}
	}
	return 0
}

// TestGateClientClosed verifies a credential for a client that has gone
// away (its request context cancelled): that is no Redis outage, so no
// 503, no error log line and no "unavailable" count, but status 499 and
// reason client_closed in the access log, and its own outcome.
func TestGateClientClosed(t *testing.T) {
	st := offlineState(t)
	g, logs := observedGate(st)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, extra := gateRequest(ctx)
	w := httptest.NewRecorder()
	if _, ok := g.check(w, r); ok {
		t.Fatal("check passed a request whose client has gone")
	}
	if w.Code != 499 {
		t.Errorf("status %d, want 499 (client closed request)", w.Code)
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Errorf("%d error log lines, want none: %v", n, logs.FilterLevelExact(zapcore.ErrorLevel).All()[0].Message)
	}
	if got := extraField(extra, "access_keys_reason"); got != "client_closed" {
		t.Errorf("access log reason %q, want client_closed", got)
	}
	if got := extraField(extra, "access_keys_error_id"); got == "" {
		t.Error("no error id in the access log fields")
	}
	if n := outcomeCount(st.metrics, "unavailable"); n != 0 {
		t.Errorf("outcome unavailable counted %d times, want 0", n)
	}
	if n := outcomeCount(st.metrics, "client_closed"); n != 1 {
		t.Errorf("outcome client_closed counted %d times, want 1", n)
	}
}

// TestGateUnavailableLogRateLimited makes 50 requests fail during a Redis
// outage within one second: every one gets its 503 and its error id in the
// access log fields, but one error line is logged for them all; the first
// after the second has passed reports how many were held back.
func TestGateUnavailableLogRateLimited(t *testing.T) {
	const requests = 50
	st := offlineState(t)
	clock := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	st.now = clock.now
	g, logs := observedGate(st)

	serve := func() string {
		t.Helper()
		r, extra := gateRequest(context.Background())
		w := httptest.NewRecorder()
		if _, ok := g.check(w, r); ok {
			t.Fatal("check passed a request during an outage")
		}
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503; body %s", w.Code, w.Body)
		}
		id := extraField(extra, "access_keys_error_id")
		if id == "" || !strings.Contains(w.Body.String(), id) {
			t.Fatalf("error id %q in the access log fields, body %s: want the body's id", id, w.Body)
		}
		return id
	}
	for range requests {
		serve()
		clock.advance(10 * time.Millisecond)
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 {
		t.Fatalf("%d error log lines for %d failures within a second, want 1", len(errs), requests)
	}
	clock.advance(time.Second)
	id := serve()
	errs = logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 2 {
		t.Fatalf("%d error log lines after the second passed, want 2", len(errs))
	}
	fields := errs[1].ContextMap()
	if fields["error_id"] != id {
		t.Errorf("second error line has error_id %v, want %s", fields["error_id"], id)
	}
	if got, _ := fields["suppressed"].(int64); got != requests-1 {
		t.Errorf("second error line reports %v suppressed lines, want %d", fields["suppressed"], requests-1)
	}
}
