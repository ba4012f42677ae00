package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/keystore"
)

// These tests check CONTRACT §3 "Rules that hold whatever the client
// sends" and the definition of a preflight (§11) against a real Caddy and
// a real redis-server.

const msgLacksManage = "This access key lacks the scope manageCollectors needed for this request"

// TestScopeMethodsIgnoreCase: a method in any case needs the scope of its
// upper-case spelling, and a rule naming GET covers HEAD.
func TestScopeMethodsIgnoreCase(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	good := f.key(t, keystore.KeySpec{}) // viewCollectors, not manageCollectors

	t.Run("lower-case methods do not escape method-bound rules", func(t *testing.T) {
		// The relaxed site maps POST only and lets unmapped requests pass.
		for _, m := range []string{"post", "Post", "pOsT"} {
			assertBodyA(t, request(t, m, f.relaxed+"/api/v1/collectors/7", &good, nil), http.StatusForbidden, "forbidden", msgLacksManage)
		}
		for _, m := range []string{"delete", "Delete", "put"} {
			assertBodyA(t, request(t, m, f.base+"/api/v1/collectors/7", &good, nil), http.StatusForbidden, "forbidden", msgLacksManage)
		}
	})

	t.Run("lower-case methods get what upper-case ones get", func(t *testing.T) {
		echo := gatewaytest.DecodeEcho(t, request(t, "get", f.base+"/api/v1/collectors/7", &good, nil))
		if echo.Method != "get" || echo.Header.Get("X-Access-Id") != good.id {
			t.Errorf("upstream saw %s with X-Access-Id %q", echo.Method, echo.Header.Get("X-Access-Id"))
		}
	})

	t.Run("GET covers HEAD", func(t *testing.T) {
		for _, m := range []string{http.MethodHead, "head"} {
			if got := status(t, m, f.base+"/api/v1/collectors", &good); got != http.StatusOK {
				t.Errorf("%s /api/v1/collectors with viewCollectors: status %d, want 200", m, got)
			}
		}
		narrow := f.key(t, keystore.KeySpec{Scopes: []string{"runLogSearch"}})
		if got := status(t, http.MethodHead, f.base+"/api/v1/collectors", &narrow); got != http.StatusForbidden {
			t.Errorf("HEAD without viewCollectors: status %d, want 403", got)
		}
	})
}

// TestIdentityHeadersWhateverClientSends: the upstream gets the identity
// headers the gateway set, whatever the client sends in Connection, in
// odd-case copies or in trailers.
func TestIdentityHeadersWhateverClientSends(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	good := f.key(t, keystore.KeySpec{})
	want := map[string]string{
		"X-Access-Id":     good.id,
		"X-Access-Owner":  "u1",
		"X-Access-Scopes": "createAccessKeys runLogSearch viewCollectors",
	}
	assertIdentity := func(t *testing.T, h http.Header) {
		t.Helper()
		for k, v := range want {
			if got := h.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("upstream %s = %q, want [%q]", k, got, v)
			}
		}
	}

	t.Run("Connection cannot remove them", func(t *testing.T) {
		for _, conn := range []string{
			"keep-alive, X-Access-Id, X-Access-Owner, X-Access-Scopes",
			"x-access-id,x-access-owner , X-ACCESS-SCOPES",
		} {
			for _, site := range []string{f.base + "/api/v1/collectors/7", f.relaxed + "/x"} {
				resp := request(t, http.MethodGet, site, &good, map[string]string{"Connection": conn})
				assertIdentity(t, gatewaytest.DecodeEcho(t, resp).Header)
			}
		}
	})

	t.Run("Connection still removes other headers", func(t *testing.T) {
		resp := request(t, http.MethodGet, f.base+"/api/v1/collectors/7", &good, map[string]string{"Connection": "X-Hop, X-Access-Id", "X-Hop": "1"})
		echo := gatewaytest.DecodeEcho(t, resp)
		assertIdentity(t, echo.Header)
		if echo.Header.Get("X-Hop") != "" {
			t.Errorf("a header named in Connection reached the upstream")
		}
	})

	t.Run("odd-case copies are replaced", func(t *testing.T) {
		resp := rawRequest(t, f.base, "GET /api/v1/collectors/7 HTTP/1.1\r\n"+
			"Authorization: "+basic(good.id, good.secret)+"\r\n"+
			"x-access-owner: admin\r\nX-ACCESS-SCOPES: manageAccessKeys\r\nx-Access-iD: suFORGEDFORGED\r\n\r\n")
		assertIdentity(t, gatewaytest.DecodeEcho(t, resp).Header)
	})

	t.Run("trailers with their names are dropped", func(t *testing.T) {
		up := trailerUpstream(t)
		edge := startEdge(t, f, up.URL)
		cases := []struct{ name, declared string }{
			{"declared", "X-Access-Owner, X-Access-Id, X-Access-Scopes, X-Checksum"},
			{"undeclared", "X-Checksum"},
			{"none declared", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp := rawRequest(t, edge, "POST /upload HTTP/1.1\r\n"+
					"Authorization: "+basic(good.id, good.secret)+"\r\n"+
					"Transfer-Encoding: chunked\r\n"+trailerLine(tc.declared)+"\r\n"+
					"5\r\nhello\r\n0\r\n"+
					"X-Access-Owner: admin\r\nx-access-id: suFORGEDFORGED\r\nX-ACCESS-SCOPES: manageAccessKeys\r\nX-Checksum: abc\r\n\r\n")
				echo := decodeTrailerEcho(t, resp)
				assertIdentity(t, echo.Header)
				if echo.Body != "hello" || tc.declared != "" && echo.Trailer.Get("X-Checksum") != "abc" {
					t.Fatalf("upstream got body %q and trailers %v; the request did not carry its trailers", echo.Body, echo.Trailer)
				}
				for k := range want {
					if v, ok := echo.Trailer[k]; ok {
						t.Errorf("trailer %s = %q reached the upstream", k, v)
					}
				}
			})
		}
		t.Run("passed preflight", func(t *testing.T) {
			resp := rawRequest(t, edge, "OPTIONS /upload HTTP/1.1\r\n"+
				"Origin: https://app.example.com\r\nAccess-Control-Request-Method: PUT\r\n"+
				"Transfer-Encoding: chunked\r\nTrailer: X-Access-Owner, X-Checksum\r\n\r\n"+
				"0\r\nX-Access-Owner: admin\r\nX-Checksum: abc\r\n\r\n")
			echo := decodeTrailerEcho(t, resp)
			if echo.Trailer.Get("X-Checksum") != "abc" {
				t.Fatalf("upstream got trailers %v; the request did not carry its trailers", echo.Trailer)
			}
			if v, ok := echo.Trailer["X-Access-Owner"]; ok {
				t.Errorf("trailer X-Access-Owner = %q reached the upstream", v)
			}
		})
	})
}

// TestStrictPaths: a path with a dot segment, a backslash or an encoded
// percent sign in any spelling is refused with 400 before any credential
// work; other paths, including tricky spellings of mapped routes, are
// judged by the scope rules as the upstream will see them.
func TestStrictPaths(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	good := f.key(t, keystore.KeySpec{Scopes: []string{"viewCollectors"}})
	const msg = "The request path contains a dot segment, a backslash or an encoded percent sign; send it in its plain form."

	refused := []string{
		"/api/v1/collectors/..;/search/x",
		"/api/v1/collectors/%5c..%5csearch%5cx",
		"/api/v1/collectors/%5C..%5Csearch%5Cx",
		"/api/v1/collectors/%252e%252e/search/x",
		"/api/v1/collectors/%25",
		"/api/v1/collectors/../search/x",
		"/api/v1/collectors/%2e%2e/search/x",
		"/api/v1/collectors/%2E./search/x",
		"/api/v1/collectors/.%2e/search/x",
		"/api/v1/collectors/./7",
		"/api/v1/collectors/.;x/7",
		"/api/v1/collectors/%2e;x/7",
		"/api/v1/collectors/..",
		"/api/v1/collectors/.",
		"/api/v1/collectors/7/..%3bx",
		"/api/v1/collectors%2f..%2fsearch/x",
		"/..",
		"http:..;/api/v1/collectors",
		"/api/v1/collectors/%c0%ae%c0%ae/search/x",
		"/api/v1/collectors/%e0%80%ae%e0%80%ae/search/x",
	}
	t.Run("refused with 400", func(t *testing.T) {
		for _, p := range refused {
			t.Run(p, func(t *testing.T) {
				for _, site := range []string{f.base, f.relaxed} {
					for _, c := range []*cred{&good, nil} {
						resp := rawRequest(t, site, "GET "+p+" HTTP/1.1\r\n"+authLine(c)+"\r\n")
						assertBodyA(t, resp, http.StatusBadRequest, "bad.request", msg)
					}
				}
			})
		}
		resp := rawRequest(t, f.base, "GET /api/v1/collectors\\..\\search\\x HTTP/1.1\r\n"+authLine(&good)+"\r\n")
		assertBodyA(t, resp, http.StatusBadRequest, "bad.request", msg)
		// also before a preflight is answered or passed
		for _, site := range []string{f.base, f.relaxed} {
			resp := rawRequest(t, site, "OPTIONS /api/v1/collectors/..;/search HTTP/1.1\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\n\r\n")
			assertBodyA(t, resp, http.StatusBadRequest, "bad.request", msg)
		}
	})

	t.Run("ordinary paths pass", func(t *testing.T) {
		for _, p := range []string{"/api/v1/collectors/a.b", "/api/v1/collectors/...", "/api/v1/collectors/.well-known", "/api/v1/collectors/x..", "/api/v1/collectors/a;b", "/api/v1/collectors/%41b", "/api/v1/collectors/%c3%a9t%c3%a9"} {
			resp := rawRequest(t, f.base, "GET "+p+" HTTP/1.1\r\n"+authLine(&good)+"\r\n")
			gatewaytest.DecodeEcho(t, resp)
		}
	})

	t.Run("path tricks are judged by the scope rules", func(t *testing.T) {
		// good lacks manageCollectors; the relaxed site maps POST
		// /api/v1/collectors/* to it and lets unmapped requests pass.
		for _, p := range []string{"/api/v1/collectors/7", "/API/V1/Collectors/7", "/api/v1//collectors/7", "//api/v1/collectors/7", "/api/v1/%63ollectors/7", "/api/v1/collectors%2f7"} {
			resp := rawRequest(t, f.relaxed, "POST "+p+" HTTP/1.1\r\n"+authLine(&good)+"Content-Length: 0\r\n\r\n")
			assertBodyA(t, resp, http.StatusForbidden, "forbidden", msgLacksManage)
		}
	})

	t.Run("strict_paths off lets them through as sent", func(t *testing.T) {
		edge := startEdge(t, f, trailerUpstream(t).URL)
		for _, p := range []string{"/api/v1/collectors/..;/search/x", "/api/v1/collectors/%252e%252e/search/x"} {
			resp := rawRequest(t, edge, "GET "+p+" HTTP/1.1\r\n"+authLine(&good)+"\r\n")
			if echo := decodeTrailerEcho(t, resp); echo.RequestURI != p {
				t.Errorf("upstream got %q, want %q", echo.RequestURI, p)
			}
		}
	})
}

// TestOptionsNeedsCredentials: only an OPTIONS request with Origin and
// Access-Control-Request-Method is a preflight; any other OPTIONS needs
// credentials like every other method.
func TestOptionsNeedsCredentials(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	good := f.key(t, keystore.KeySpec{})
	notPreflights := []map[string]string{
		nil,
		{"Origin": "https://app.example.com"},
		{"Access-Control-Request-Method": "POST"},
	}
	for _, site := range []string{f.base, f.relaxed} {
		for _, hdr := range notPreflights {
			assert401(t, request(t, http.MethodOptions, site+"/api/v1/search/x", nil, hdr))
		}
	}
	// With credentials it is an ordinary request.
	echo := gatewaytest.DecodeEcho(t, request(t, http.MethodOptions, f.relaxed+"/anything", &good, nil))
	if echo.Method != http.MethodOptions || echo.Header.Get("X-Access-Id") != good.id {
		t.Errorf("upstream saw %s with X-Access-Id %q", echo.Method, echo.Header.Get("X-Access-Id"))
	}
	// A real preflight still needs none: passed on the relaxed site,
	// answered on the strict one.
	pre := map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
	gatewaytest.DecodeEcho(t, request(t, http.MethodOptions, f.relaxed+"/anything", nil, pre))
	if got := status(t, http.MethodOptions, f.base+"/api/v1/collectors", nil); got != http.StatusUnauthorized {
		t.Errorf("strict site, OPTIONS without CORS headers: %d, want 401", got)
	}
	resp := request(t, http.MethodOptions, f.base+"/api/v1/collectors", nil, pre)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("strict site, preflight: %d, want 204", resp.StatusCode)
	}
}

// trailerLine is the Trailer header line declaring names, or nothing.
func trailerLine(names string) string {
	if names == "" {
		return ""
	}
	return "Trailer: " + names + "\r\n"
}

// authLine is the Authorization header line of c, or nothing.
func authLine(c *cred) string {
	if c == nil {
		return ""
	}
	return "Authorization: " + basic(c.id, c.secret) + "\r\n"
}

// rawRequest sends head (a request line and headers, and any body, as
// written on the wire, without Host and Connection) to the server of base
// over a new TCP connection, so that nothing on the client side
// normalises the request target or the headers.
func rawRequest(t *testing.T, base, head string) *http.Response {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	line, rest, _ := strings.Cut(head, "\r\n")
	if _, err := io.WriteString(conn, line+"\r\nHost: "+addr+"\r\nConnection: close\r\n"+rest); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(line, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// trailerEcho is what trailerUpstream saw of a request.
type trailerEcho struct {
	RequestURI string      `json:"request_uri"`
	Header     http.Header `json:"header"`
	Trailer    http.Header `json:"trailer"`
	Body       string      `json:"body"`
}

// trailerUpstream is an upstream answering with the request target as
// received, the headers, the body and the trailers of each request.
func trailerUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(trailerEcho{RequestURI: r.RequestURI, Header: r.Header, Trailer: r.Trailer, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func decodeTrailerEcho(t *testing.T, resp *http.Response) trailerEcho {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e trailerEcho
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &e) != nil {
		t.Fatalf("want the upstream's echo, got %s: %s", resp.Status, raw)
	}
	return e
}

// edgeCaddyfile is one site with strict_paths off, unmapped allow and
// preflight pass, in front of upstream %[5]s, sharing the fixture's Redis
// and key prefix.
const edgeCaddyfile = `{
	admin 127.0.0.1:%[1]d
	access_keys {
		redis %[2]s
		key_prefix %[3]s
	}
}

http://127.0.0.1:%[4]d {
	access_keys {
		scope viewCollectors GET /api/v1/collectors /api/v1/collectors/*
		unmapped allow
		preflight pass
		strict_paths off
	}
	reverse_proxy %[5]s
}
`

// startEdge starts a second gateway on f's Redis in front of upstream and
// returns its base URL.
func startEdge(t *testing.T, f *fixture, upstream string) string {
	t.Helper()
	admin, port := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	gatewaytest.Start(t, fmt.Sprintf(edgeCaddyfile, admin, f.redis.URL(), f.prefix, port, strings.TrimPrefix(upstream, "http://")))
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}
