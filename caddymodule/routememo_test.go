package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func memoHandler(t *testing.T) *Handler {
	t.Helper()
	h := &Handler{Scopes: []ScopeRule{
		{Scope: "viewCollectors", Methods: []string{"GET", "HEAD"}, Paths: []string{"/api/v1/collectors", "/api/v1/collectors/*"}},
		{Scope: "manageCollectors", Methods: []string{"POST", "PUT", "DELETE"}, Paths: []string{"/api/v1/collectors/*"}},
		{Scope: "runLogSearch", Paths: []string{"/api/v1/search/*"}},
		{Scope: "audit", Paths: []string{"/api/v1/*"}},
	}}
	for i := range h.Scopes {
		if err := h.Scopes[i].provision(caddy.Context{}); err != nil {
			t.Fatal(err)
		}
	}
	h.memo = new(routeMemo)
	return h
}

func memoRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	return r.WithContext(ctx)
}

// TestRouteMemoMatchesRules: answers from the memo equal those of running
// every rule, for first and repeated requests, in rule order.
func TestRouteMemoMatchesRules(t *testing.T) {
	h := memoHandler(t)
	cases := []struct {
		method, path string
		want         []int
	}{
		{"GET", "/api/v1/collectors", []int{0, 3}},
		{"GET", "/api/v1/collectors/7", []int{0, 3}},
		{"POST", "/api/v1/collectors/7", []int{1, 3}},
		{"PATCH", "/api/v1/collectors/7", []int{3}},
		{"GET", "/API/V1/Collectors/7", []int{0, 3}},
		{"GET", "/api/v1/search/jobs", []int{2, 3}},
		{"GET", "/other", nil},
	}
	for round := range 2 {
		for _, tc := range cases {
			r := memoRequest(tc.method, tc.path)
			got, err := h.matchingRules(r)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("%s %s: rules %v, want %v", tc.method, tc.path, got, tc.want)
			}
			memo, known := h.memo.get(r)
			if round == 0 && known {
				t.Fatalf("%s %s: known before it was seen", tc.method, tc.path)
			}
			if round == 0 {
				h.memo.put(r, got)
				continue
			}
			if !known || !slices.Equal(memo, tc.want) {
				t.Errorf("%s %s: memo %v (known %v), want %v", tc.method, tc.path, memo, known, tc.want)
			}
		}
	}
}

// TestRouteMemoBoundsAndSkips: the memo stops growing at maxRouteMemo
// paths, ignores escaped paths, and is not used with placeholder rules.
func TestRouteMemoBoundsAndSkips(t *testing.T) {
	m := new(routeMemo)
	for i := range maxRouteMemo + 50 {
		m.put(memoRequest("GET", fmt.Sprintf("/p/%d", i)), []int{0})
	}
	if n, _ := memoSize(m); n != maxRouteMemo {
		t.Errorf("memo holds %d paths, want %d", n, maxRouteMemo)
	}
	if _, known := m.get(memoRequest("GET", fmt.Sprintf("/p/%d", maxRouteMemo+10))); known {
		t.Errorf("a path past the bound was remembered")
	}
	// A known path still takes new methods.
	m.put(memoRequest("POST", "/p/1"), []int{1})
	if got, known := m.get(memoRequest("POST", "/p/1")); !known || !slices.Equal(got, []int{1}) {
		t.Errorf("POST /p/1 = %v, %v", got, known)
	}
	long := memoRequest("GET", "/"+strings.Repeat("a", maxMemoPathLen))
	m2 := new(routeMemo)
	m2.put(long, []int{0})
	if _, known := m2.get(long); known {
		t.Errorf("a path longer than %d bytes was remembered", maxMemoPathLen)
	}
	escaped := memoRequest("GET", "/a%2Fb")
	m2.put(escaped, []int{0})
	if _, known := m2.get(escaped); known {
		t.Errorf("an escaped path was remembered")
	}
	if memoizable([]ScopeRule{{Paths: []string{"/{http.request.host}/*"}}}) || memoizable([]ScopeRule{{Paths: []string{"/a%2Fb"}}}) {
		t.Errorf("rules with placeholders or escapes must not be memoized")
	}
	var nilMemo *routeMemo
	nilMemo.put(memoRequest("GET", "/x"), nil)
	if _, known := nilMemo.get(memoRequest("GET", "/x")); known {
		t.Errorf("a nil memo remembered something")
	}
}

// TestRouteMemoInventedMethods: however many methods a client invents on
// a path, the memo keeps at most one answer per standard method; methods
// in any case share the answer of their upper-case spelling, and answers
// equal those of running every rule.
func TestRouteMemoInventedMethods(t *testing.T) {
	h := memoHandler(t)
	known := memoRequest("GET", "/api/v1/collectors/7")
	h.memo.put(known, []int{0, 3})
	for i := range 50_000 {
		r := memoRequest("GET", "/api/v1/collectors/7")
		r.Method = fmt.Sprintf("M%d", i)
		if h.memo.holds(r) {
			t.Fatalf("the memo would hold invented method %s", r.Method)
		}
		h.memo.put(r, []int{3})
		if _, known := h.memo.get(r); known {
			t.Fatalf("invented method %s was remembered", r.Method)
		}
	}
	for _, m := range []string{"get", "Get", "head", "post", "Delete", "pAtCh", "options", "PUT", "trace", "connect"} {
		r := memoRequest("GET", "/api/v1/collectors/7")
		r.Method = m
		want, err := h.matchingRules(r)
		if err != nil {
			t.Fatal(err)
		}
		if got, known := h.memo.get(r); known && !slices.Equal(got, want) {
			t.Errorf("%s: memo %v, rules %v", m, got, want)
		}
		h.memo.put(r, want)
		if got, known := h.memo.get(r); !known || !slices.Equal(got, want) {
			t.Errorf("%s: memo %v (known %v), want %v", m, got, known, want)
		}
	}
	paths, answers := memoSize(h.memo)
	if paths != 1 || answers > len(memoMethods) {
		t.Errorf("memo holds %d paths and %d answers, want 1 and at most %d", paths, answers, len(memoMethods))
	}
}

// memoSize returns the number of paths m remembers and of answers it
// keeps.
func memoSize(m *routeMemo) (paths, answers int) {
	mp := m.m.Load()
	if mp == nil {
		return 0, 0
	}
	for _, p := range *mp {
		for _, s := range p {
			if s.known {
				answers++
			}
		}
	}
	return len(*mp), answers
}

// TestRouteMemoConcurrent exercises readers and writers together (run with
// -race).
func TestRouteMemoConcurrent(t *testing.T) {
	h := memoHandler(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				r := memoRequest("GET", fmt.Sprintf("/api/v1/collectors/%d", (i*7+g)%100))
				if got, known := h.memo.get(r); known {
					if !slices.Equal(got, []int{0, 3}) {
						t.Errorf("memo answered %v", got)
						return
					}
					continue
				}
				got, err := h.matchingRules(r)
				if err != nil {
					t.Error(err)
					return
				}
				h.memo.put(r, got)
			}
		}()
	}
	wg.Wait()
}
