package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// consoleGet runs Serve on one request and returns whether it
// answered and the recorded response.
func consoleGet(t *testing.T, method, target string, hdr map[string]string) (bool, *http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	served := Serve(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return served, resp, string(body)
}

// assertConsoleSecurityHeaders checks the headers every console answer carries.
func assertConsoleSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy %q allows inline or eval'd script", csp)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", got)
	}
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q", got)
	}
}

func TestServeConsoleFiles(t *testing.T) {
	tests := []struct {
		path, contentType, contains string
	}{
		{"/console/", "text/html; charset=utf-8", `<script type="module" src="app.js"></script>`},
		{"/console/index.html", "text/html; charset=utf-8", "<title>"},
		{"/console/app.js", "text/javascript; charset=utf-8", "accessKeys/personal"},
		{"/console/style.css", "text/css; charset=utf-8", ":focus-visible"},
		{"/console/?pageSize=2", "text/html; charset=utf-8", "<title>"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			served, resp, body := consoleGet(t, http.MethodGet, tc.path, nil)
			if !served {
				t.Fatal("not served")
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if resp.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			assertConsoleSecurityHeaders(t, resp.Header)
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
		})
	}
}

func TestServeConsoleRevalidation(t *testing.T) {
	_, first, _ := consoleGet(t, http.MethodGet, "/console/app.js", nil)
	etag := first.Header.Get("ETag")
	_, resp, body := consoleGet(t, http.MethodGet, "/console/app.js", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation = %d with %d bytes, want 304 and no body", resp.StatusCode, len(body))
	}
	assertConsoleSecurityHeaders(t, resp.Header)

	_, head, body := consoleGet(t, http.MethodHead, "/console/", nil)
	if head.StatusCode != http.StatusOK || body != "" || head.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("HEAD = %d, %q, %d bytes", head.StatusCode, head.Header.Get("Content-Type"), len(body))
	}
}

// TestServeConsoleRedirect checks that /console leads to /console/ with a
// relative Location, which also holds behind a stripped path prefix.
func TestServeConsoleRedirect(t *testing.T) {
	for _, tc := range []struct{ target, location string }{
		{"/console", "console/"},
		{"/console?pageSize=5", "console/?pageSize=5"},
	} {
		served, resp, _ := consoleGet(t, http.MethodGet, tc.target, nil)
		if !served || resp.StatusCode != http.StatusMovedPermanently {
			t.Fatalf("%s: served %v, status %d, want a 301", tc.target, served, resp.StatusCode)
		}
		if got := resp.Header.Get("Location"); got != tc.location {
			t.Errorf("%s: Location = %q, want %q", tc.target, got, tc.location)
		}
		assertConsoleSecurityHeaders(t, resp.Header)
	}
}

func TestServeConsoleNotFound(t *testing.T) {
	for _, p := range []string{
		"/console/missing.js",
		"/console/app.js/",
		"/console/console/",
		"/console//app.js",
		"/console/./app.js",
		"/console/../console.go",
		"/console/%2e%2e/console.go",
		"/console/.hidden",
		"/console/sub/",
		"/console/index.html/",
		"/console/APP.JS",
	} {
		t.Run(p, func(t *testing.T) {
			served, resp, body := consoleGet(t, http.MethodGet, p, nil)
			if !served {
				t.Fatal("not served; every path under /console/ belongs to the console")
			}
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status = %d, want 404; body %q", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if strings.Contains(body, "<a href") || strings.Contains(body, "app.js") {
				t.Errorf("404 body looks like a listing: %q", body)
			}
			assertConsoleSecurityHeaders(t, resp.Header)
		})
	}
}

func TestServeConsoleMethods(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		served, resp, _ := consoleGet(t, m, "/console/", nil)
		if !served || resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /console/: served %v, status %d, want 405", m, served, resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", m, got)
		}
	}
}

func TestServeConsoleOtherPaths(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/accessKeys", "/consoles", "/console.html", "/consolex/app.js", "/api/v1/console/"} {
		served, _, _ := consoleGet(t, http.MethodGet, p, nil)
		if served {
			t.Errorf("%s was served by the console", p)
		}
	}
}

// TestConsoleFilesNoInlineScript keeps the page compatible with its CSP: no
// inline script, event handler attributes, inline styles or outside URLs.
func TestConsoleFilesNoInlineScript(t *testing.T) {
	html := string(index["index.html"].body)
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	if inlineScript.MatchString(html) {
		t.Error("index.html has an inline script")
	}
	if m := regexp.MustCompile(`\son[a-z]+\s*=`).FindString(html); m != "" {
		t.Errorf("index.html has an event handler attribute: %q", m)
	}
	if strings.Contains(html, "style=") || strings.Contains(html, "<style") {
		t.Error("index.html has inline styles")
	}
	for name, f := range index {
		if regexp.MustCompile(`(?:src|href)="(?:https?:)?//`).Match(f.body) {
			t.Errorf("%s loads something from another origin", name)
		}
	}
	js := string(index["app.js"].body)
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

func TestBuildConsoleIndex(t *testing.T) {
	fsys := fstest.MapFS{
		"static/index.html":    {Data: []byte("<!doctype html>")},
		"static/a/b.js":        {Data: []byte("x")},
		"static/notes.md":      {Data: []byte("not served")},
		"static/sub/style.css": {Data: []byte("a{}")},
	}
	idx := buildIndex(fsys)
	var names []string
	for name := range idx {
		names = append(names, name)
	}
	for _, want := range []string{"index.html", "a/b.js", "sub/style.css"} {
		if _, ok := idx[want]; !ok {
			t.Errorf("index lacks %s (has %v)", want, names)
		}
	}
	if _, ok := idx["notes.md"]; ok {
		t.Error("a file of unknown type is served")
	}
	if idx["index.html"].etag == idx["a/b.js"].etag {
		t.Error("different files share an ETag")
	}
	if _, err := fs.Stat(files, "static/index.html"); err != nil {
		t.Errorf("embedded files: %v", err)
	}
}
