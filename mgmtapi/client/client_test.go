package client

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// recorder is a management API that answers every request with answer
// and keeps the method, path and body of the last one.
type recorder struct {
	answer string

	mu                 sync.Mutex
	method, path, body string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.method, r.path, r.body = req.Method, req.URL.Path, string(b)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, r.answer)
}

// last returns the method, path and body of the last request.
func (r *recorder) last() (method, path, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.method, r.path, r.body
}

func newRecorder(t *testing.T, answer string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{answer: answer}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/api/v1", "suAAAAAAAAAAAAAA", "secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

// TestUpdateRequestLimits: a limit left nil is not sent, Clear sends
// null and Set sends the value.
func TestUpdateRequestLimits(t *testing.T) {
	c, rec := newRecorder(t, `{"id":"suAAAAAAAAAAAAAA"}`)
	list := []string{"viewCollectors"}
	tests := []struct {
		name string
		req  UpdateRequest
		want string
	}{
		{"nothing", UpdateRequest{}, `{"disabled":false}`},
		{"scopes only", UpdateRequest{Disabled: true, Scopes: &list}, `{"disabled":true,"scopes":["viewCollectors"]}`},
		{"set", UpdateRequest{
			RateLimit:        Set(Rate{Requests: 100, PeriodSeconds: 60, Burst: 150}),
			ConcurrencyLimit: Set(10),
			Quota:            Set(Quota{Requests: 1000, Period: "day"}),
		}, `{"disabled":false,"rateLimit":{"requests":100,"periodSeconds":60,"burst":150},"concurrencyLimit":10,"quota":{"requests":1000,"period":"day"}}`},
		{"rate without burst", UpdateRequest{RateLimit: Set(Rate{Requests: 5, PeriodSeconds: 1})},
			`{"disabled":false,"rateLimit":{"requests":5,"periodSeconds":1}}`},
		{"clear", UpdateRequest{RateLimit: Clear[Rate](), ConcurrencyLimit: Clear[int](), Quota: Clear[Quota]()},
			`{"disabled":false,"rateLimit":null,"concurrencyLimit":null,"quota":null}`},
		{"mixed", UpdateRequest{ConcurrencyLimit: Set(3), Quota: Clear[Quota]()},
			`{"disabled":false,"concurrencyLimit":3,"quota":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.UpdateAccessKey(t.Context(), "suAAAAAAAAAAAAAA", tc.req); err != nil {
				t.Fatal(err)
			}
			method, path, body := rec.last()
			if method != http.MethodPut || path != "/api/v1/accessKeys/suAAAAAAAAAAAAAA" {
				t.Errorf("request %s %s", method, path)
			}
			if body != tc.want {
				t.Errorf("body %s, want %s", body, tc.want)
			}
		})
	}
}

// TestCreateRequestLimits: create sends the limits given and leaves out
// the others.
func TestCreateRequestLimits(t *testing.T) {
	c, rec := newRecorder(t, `{"id":"suAAAAAAAAAAAAAA","key":"k"}`)
	n := 4
	tests := []struct {
		name string
		sa   string
		req  CreateRequest
		path string
		want string
	}{
		{"no limits", "", CreateRequest{Label: "ci"}, "/api/v1/accessKeys", `{"label":"ci"}`},
		{"limits", "robot", CreateRequest{Label: "ci", RateLimit: &Rate{Requests: 4, PeriodSeconds: 1, Burst: 8}, ConcurrencyLimit: &n, Quota: &Quota{Requests: 9, Period: "month"}},
			"/api/v1/serviceAccounts/robot/accessKeys",
			`{"label":"ci","rateLimit":{"requests":4,"periodSeconds":1,"burst":8},"concurrencyLimit":4,"quota":{"requests":9,"period":"month"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.CreateAccessKey(t.Context(), tc.sa, tc.req); err != nil {
				t.Fatal(err)
			}
			method, path, body := rec.last()
			if method != http.MethodPost || path != tc.path || body != tc.want {
				t.Errorf("request %s %s %s, want POST %s %s", method, path, body, tc.path, tc.want)
			}
		})
	}
}

// TestAccessKeyLimits: the limits of a key and the use of its quota are
// read from the answer, null ones as nil.
func TestAccessKeyLimits(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		check  func(t *testing.T, k *AccessKey)
	}{
		{"limits", `{"id":"suAAAAAAAAAAAAAA","rateLimit":{"requests":100,"periodSeconds":60,"burst":100},"concurrencyLimit":10,
			"quota":{"requests":1000,"period":"day"},"quotaUsed":12,"quotaResetsAt":"2026-01-02T00:00:00Z"}`, func(t *testing.T, k *AccessKey) {
			if k.RateLimit == nil || *k.RateLimit != (Rate{Requests: 100, PeriodSeconds: 60, Burst: 100}) {
				t.Errorf("rateLimit = %+v", k.RateLimit)
			}
			if k.ConcurrencyLimit == nil || *k.ConcurrencyLimit != 10 {
				t.Errorf("concurrencyLimit = %v", k.ConcurrencyLimit)
			}
			if k.Quota == nil || *k.Quota != (Quota{Requests: 1000, Period: "day"}) {
				t.Errorf("quota = %+v", k.Quota)
			}
			if k.QuotaUsed == nil || *k.QuotaUsed != 12 {
				t.Errorf("quotaUsed = %v", k.QuotaUsed)
			}
			if k.QuotaResetsAt == nil || !k.QuotaResetsAt.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("quotaResetsAt = %v", k.QuotaResetsAt)
			}
		}},
		{"nulls", `{"id":"suAAAAAAAAAAAAAA","rateLimit":null,"concurrencyLimit":null,"quota":null,"quotaUsed":null,"quotaResetsAt":null}`, noLimits},
		{"absent", `{"id":"suAAAAAAAAAAAAAA"}`, noLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := newRecorder(t, tc.answer)
			k, err := c.GetAccessKey(t.Context(), "suAAAAAAAAAAAAAA")
			if err != nil {
				t.Fatal(err)
			}
			if method, path, _ := rec.last(); method != http.MethodGet || path != "/api/v1/accessKeys/suAAAAAAAAAAAAAA" {
				t.Errorf("request %s %s", method, path)
			}
			tc.check(t, k)
		})
	}
}

func noLimits(t *testing.T, k *AccessKey) {
	t.Helper()
	if k.RateLimit != nil || k.ConcurrencyLimit != nil || k.Quota != nil || k.QuotaUsed != nil || k.QuotaResetsAt != nil {
		t.Errorf("a key without limits has %+v", k)
	}
}

// TestSettingJSON: a Setting on its own encodes its value or null.
func TestSettingJSON(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{Set(5), "5"},
		{Clear[int](), "null"},
		{*Set(Quota{Requests: 1, Period: "day"}), `{"requests":1,"period":"day"}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("json.Marshal(%#v) = %s, %v; want %s", tc.v, b, err, tc.want)
		}
	}
}
