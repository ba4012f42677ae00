package loadgen

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestConnGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part one, "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/auth":
			if r.Header.Get("Authorization") != "Basic abc" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		case "/extra":
			if r.Header.Get("X-Access-Id") != "suAAAAAAAAAAAA" || r.Header.Get("X-Access-Scopes") != "a b" {
				w.WriteHeader(http.StatusBadRequest)
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Write([]byte(strings.Repeat("x", 100)))
		}
	}))
	defer srv.Close()
	c := newConn(strings.TrimPrefix(srv.URL, "http://"))
	defer c.close()
	for _, path := range []string{"/", "/chunked", "/", "/close", "/", "/auth"} {
		auth := ""
		if path == "/auth" {
			auth = "Basic abc"
		}
		if err := c.get(path, auth, nil); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	if err := c.get("/extra", "", []string{"X-Access-Id: suAAAAAAAAAAAA", "X-Access-Scopes: a b"}); err != nil {
		t.Fatalf("GET /extra with the extra headers: %v", err)
	}
	if _, ok := IsStatus(c.get("/extra", "", nil)); !ok {
		t.Fatal("GET /extra without the extra headers succeeded")
	}
	if err := c.get("/auth", "", nil); err == nil {
		t.Fatal("GET /auth without credentials succeeded")
	} else if code, ok := IsStatus(err); !ok || code != http.StatusUnauthorized {
		t.Fatalf("GET /auth without credentials: %v", err)
	}
	if _, ok := IsStatus(c.get("/empty", "", nil)); !ok {
		t.Fatal("204 not reported as a status")
	}
	if err := c.get("/", "", nil); err != nil {
		t.Fatalf("GET / after a 204: %v", err)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := percentile(d, 0.5); got != 5 {
		t.Errorf("p50 = %v, want 5", got)
	}
	if got := percentile(d, 0.99); got != 10 {
		t.Errorf("p99 = %v, want 10", got)
	}
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("Median odd = %v", got)
	}
	if got := Median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("Median even = %v", got)
	}
}
