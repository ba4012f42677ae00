package caddymodule

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accessgate/accessgate/authcache"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/usage"
)

// TestUsageFlushOption reads usage_flush from the Caddyfile, fills its
// default and refuses what is not a positive duration.
func TestUsageFlushOption(t *testing.T) {
	var a App
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("access_keys {\n usage_flush 3s\n}")); err != nil {
		t.Fatal(err)
	}
	if a.UsageFlush != caddy.Duration(3*time.Second) {
		t.Errorf("usage_flush 3s: got %v", time.Duration(a.UsageFlush))
	}
	if got := (App{}).withDefaults().UsageFlush; got != caddy.Duration(DefaultUsageFlush) || DefaultUsageFlush != 10*time.Second {
		t.Errorf("default usage_flush = %v, want 10s", time.Duration(got))
	}
	for _, bad := range []string{"usage_flush 0s", "usage_flush -1s", "usage_flush soon", "usage_flush"} {
		var a App
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("access_keys {\n " + bad + "\n}")); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	neg := App{UsageFlush: caddy.Duration(-time.Second)}
	if err := neg.check(); err == nil || !strings.Contains(err.Error(), "usage_flush") {
		t.Errorf("negative usage_flush: check() = %v", err)
	}
}

// TestUsageStatusOfAllowedRequests counts an allowed request with the
// status class the client gets, whatever way the next handler answers.
func TestUsageStatusOfAllowedRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		next func(http.ResponseWriter) error
		want usage.Outcome
	}{
		{"nothing written", func(http.ResponseWriter) error { return nil }, usage.Status2xx},
		{"body only", func(w http.ResponseWriter) error { _, err := w.Write([]byte("x")); return err }, usage.Status2xx},
		{"302", func(w http.ResponseWriter) error { w.WriteHeader(http.StatusFound); return nil }, usage.Status3xx},
		{"early hints then 404", func(w http.ResponseWriter) error {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNotFound)
			return nil
		}, usage.Status4xx},
		{"503 then body", func(w http.ResponseWriter) error {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, err := w.Write([]byte("x"))
			return err
		}, usage.Status5xx},
		{"handler error 502", func(http.ResponseWriter) error {
			return caddyhttp.Error(http.StatusBadGateway, errors.New("upstream down"))
		}, usage.Status5xx},
		{"handler error 404", func(http.ResponseWriter) error {
			return caddyhttp.Error(http.StatusNotFound, errors.New("no file"))
		}, usage.Status4xx},
		{"plain error", func(http.ResponseWriter) error { return errors.New("boom") }, usage.Status5xx},
		{"error after 200", func(w http.ResponseWriter) error {
			w.WriteHeader(http.StatusOK)
			return caddyhttp.Error(http.StatusBadGateway, errors.New("cut"))
		}, usage.Status2xx},
		{"unwraps to the writer", func(w http.ResponseWriter) error {
			if _, ok := w.(interface{ Unwrap() http.ResponseWriter }).Unwrap().(*httptest.ResponseRecorder); !ok {
				return caddyhttp.Error(http.StatusTeapot, errors.New("not unwrapped"))
			}
			return nil
		}, usage.Status2xx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state{usage: usage.NewRecorder(10), clock: authcache.NewClock()}
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error { return tc.next(w) })
			e := &entry{ident: &keystore.Identity{AccessID: "suTEST00000000"}, use: st.usage.NewCell("suTEST00000000")}
			_ = serveCounted(st, e, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), next)
			ds := st.usage.Take()
			if len(ds) != 1 || ds[0].AccessID != "suTEST00000000" || ds[0].Counts.Requests() != 1 || ds[0].Counts[tc.want] != 1 {
				t.Fatalf("counted %+v, want one request with outcome %d", ds, tc.want)
			}
		})
	}
}
