package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestBadRequestPath(t *testing.T) {
	tests := []struct {
		target string
		bad    bool
	}{
		{"/", false},
		{"*", false},
		{"/api/v1/collectors", false},
		{"/api/v1/collectors/a.b", false},
		{"/api/v1/collectors/...", false},
		{"/api/v1/collectors/.well-known/x", false},
		{"/api/v1/collectors/x../y", false},
		{"/api/v1/collectors/a;b/..x", false},
		{"/api/v1/collectors/%41b", false},
		{"/api/v1/collectors/%2e%2e%2e", false},
		{"/api/v1/collectors/;/x", false},
		{"/api/v1/search?q=../x&p=%25", false},
		{"/..", true},
		{"/.", true},
		{"/a/../b", true},
		{"/a/./b", true},
		{"/a/..", true},
		{"/a/.", true},
		{"/a/..;/b", true},
		{"/a/..;x/b", true},
		{"/a/.;x/b", true},
		{"/a/%2e%2e/b", true},
		{"/a/%2E%2E/b", true},
		{"/a/%2E./b", true},
		{"/a/.%2e/b", true},
		{"/a/%2e/b", true},
		{"/a/%2e%2e%3bx/b", true},
		{"/a%2f..%2fb", true},
		{"/a/%5c..%5cb", true},
		{"/a/%5C", true},
		{"/a\\b", true},
		{"/a/%252e%252e/b", true},
		{"/a/%25", true},
		{"/a/%2541", true},
		{"http:..;/x", true},
		{"http:x", true},
		{"http://example.com/a/b", false},
		{"http://example.com/a/%2e%2e/b", true},
	}
	for _, tc := range tests {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		if got := badRequestPath(&http.Request{URL: u}); got != tc.bad {
			t.Errorf("badRequestPath(%q) = %v, want %v", tc.target, got, tc.bad)
		}
	}
	// A raw path a handler left behind is checked too.
	if !badRequestPath(&http.Request{URL: &url.URL{Path: "/a/b", RawPath: "/a/%2e%2e/b"}}) {
		t.Errorf("a raw path with a dot segment passed")
	}
	if !badRequestPath(&http.Request{URL: &url.URL{Path: "/a/b", RawPath: "/a/%zz"}}) {
		t.Errorf("a raw path with an invalid escape passed")
	}
}

// TestBadRequestPathAllocs: the check allocates nothing, on ordinary and
// on escaped paths.
func TestBadRequestPathAllocs(t *testing.T) {
	for _, target := range []string{"/api/v1/collectors/7", "/api/v1/collectors/%41b%2fc", "/a/..;/b"} {
		r := memoRequest(http.MethodGet, target)
		if n := testing.AllocsPerRun(100, func() { badRequestPath(r) }); n != 0 {
			t.Errorf("%s: %v allocations", target, n)
		}
	}
}

// FuzzStrictPath: for any request target net/http accepts, the check
// never panics, and a path it accepts has, after one decoding pass, no
// dot segment, no backslash and no percent sign (no encoded `%`): neither
// the path as sent, nor the path forwarded upstream.
func FuzzStrictPath(f *testing.F) {
	for _, s := range []string{
		"/api/v1/collectors/7", "/api/v1/collectors/..;/search/x", "/api/v1/collectors/%5c..%5csearch%5cx",
		"/api/v1/collectors/%252e%252e/search/x", "/a/%2E./b", "/a/.;x", "/a%2f..", "*", "/a/...", "/%41?x=..",
		"http://example.com/a/../b", "/a\\b", "http:..;/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		if p := u.Path; !strings.Contains(p, "%") && badDecodedPath(p) != badEscapedPath(p) {
			t.Fatalf("%q: the decoded and the escaped check disagree on %q", target, p)
		}
		if badRequestPath(&http.Request{URL: u, RequestURI: target}) {
			return
		}
		if u.Opaque != "" {
			t.Fatalf("%q accepted: opaque target %q", target, u.Opaque)
		}
		forwarded, err := url.PathUnescape(u.EscapedPath())
		if err != nil {
			t.Fatalf("%q: forwarded path %q does not decode: %v", target, u.EscapedPath(), err)
		}
		assertPlainPath(t, target, forwarded)
		if strings.HasPrefix(target, "/") {
			sent, _, _ := strings.Cut(target, "?")
			dec, err := url.PathUnescape(sent)
			if err != nil {
				t.Fatalf("%q: accepted a path that does not decode: %v", target, err)
			}
			assertPlainPath(t, target, dec)
		}
	})
}

// assertPlainPath fails unless the decoded path p has no backslash, no
// percent sign and no dot segment (".", "..", also with ";parameters").
func assertPlainPath(t *testing.T, target, p string) {
	t.Helper()
	if strings.ContainsAny(p, "\\%") {
		t.Fatalf("%q accepted: decoded path %q has a backslash or an encoded percent sign", target, p)
	}
	for _, seg := range strings.Split(p, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			t.Fatalf("%q accepted: decoded path %q has a dot segment", target, p)
		}
	}
}
