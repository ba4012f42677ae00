package caddymodule

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestScopeRuleMethods(t *testing.T) {
	tests := []struct {
		methods []string
		method  string
		want    bool
	}{
		{nil, "ANYTHING", true},
		{[]string{"GET"}, "GET", true},
		{[]string{"GET"}, "get", true},
		{[]string{"GET"}, "HEAD", true},
		{[]string{"GET"}, "Head", true},
		{[]string{"GET"}, "POST", false},
		{[]string{"HEAD"}, "GET", false},
		{[]string{"POST", "DELETE"}, "delete", true},
		{[]string{"POST", "DELETE"}, "DeLeTe", true},
		{[]string{"POST"}, "po\u017ft", true}, // ſ upper-cases to S
		{[]string{"POST"}, "POSTS", false},
		{[]string{"POST"}, "", false},
	}
	for _, tc := range tests {
		rule := provisionedRule(t, tc.methods)
		if got := rule.coversMethod(tc.method); got != tc.want {
			t.Errorf("rule %v, method %q: %v, want %v", tc.methods, tc.method, got, tc.want)
		}
	}
}

func provisionedRule(t testing.TB, methods []string) *ScopeRule {
	t.Helper()
	rule := &ScopeRule{Scope: "s", Methods: methods, Paths: []string{"/api/*"}}
	if err := rule.provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	return rule
}

// FuzzScopeMethods checks, for any rule methods and any request method,
// that the method matches whatever its case, that GET covers HEAD, that a
// rule matches only methods it names (folded), and that the route memo
// gives the same answer as the rules.
func FuzzScopeMethods(f *testing.F) {
	f.Add("GET", "get")
	f.Add("GET", "hEaD")
	f.Add("POST PUT DELETE", "delete")
	f.Add("POST", "po\u017ft")
	f.Add("", "PATCH")
	f.Add("PATCH", "M1")
	f.Fuzz(func(t *testing.T, ruleMethods, method string) {
		var methods []string
		for _, m := range strings.Fields(ruleMethods) {
			if methodPattern.MatchString(m) && len(methods) < 8 {
				methods = append(methods, m)
			}
		}
		rule := provisionedRule(t, methods)
		got := rule.coversMethod(method)
		for _, variant := range []string{strings.ToUpper(method), strings.ToLower(method), upperASCII(method)} {
			if rule.coversMethod(variant) != got {
				t.Fatalf("rule %v: %q -> %v but %q -> %v", methods, method, got, variant, !got)
			}
		}
		upper := strings.ToUpper(method)
		switch {
		case len(methods) == 0:
			if !got {
				t.Fatalf("a rule without methods does not cover %q", method)
			}
		case slices.Contains(methods, upper), upper == http.MethodHead && slices.Contains(methods, http.MethodGet):
			if !got {
				t.Fatalf("rule %v does not cover %q", methods, method)
			}
		case got && !slices.ContainsFunc(methods, func(m string) bool { return strings.EqualFold(m, method) }):
			t.Fatalf("rule %v covers %q, which it does not name", methods, method)
		}

		// The route memo answers as the rules do, and holds no
		// answer for a method outside the standard ones.
		h := &Handler{Scopes: []ScopeRule{*rule}, memo: new(routeMemo)}
		r := (&http.Request{Method: method, URL: &url.URL{Path: "/api/x"}, Header: http.Header{}}).WithContext(memoRequest("GET", "/").Context())
		want, err := h.matchingRules(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) > 0 != got {
			t.Fatalf("matchingRules %v, coversMethod %v", want, got)
		}
		h.memo.put(r, want)
		memo, known := h.memo.get(r)
		if known != (memoMethod(method) >= 0) || known && !slices.Equal(memo, want) {
			t.Fatalf("method %q: memo %v (known %v), rules %v", method, memo, known, want)
		}
		if memoMethod(method) >= 0 && !slices.Contains(memoMethods[:], strings.ToUpper(method)) {
			t.Fatalf("method %q has a memo slot", method)
		}
	})
}
