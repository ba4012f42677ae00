package caddymodule_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/keystore"
)

// TestContract runs every row of CONTRACT §3 (but 429 and 503) against a
// real Caddy and a real redis-server, each row as its own subtest.
func TestContract(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	collectors := f.base + "/api/v1/collectors"

	t.Run("preflight answered without credentials", func(t *testing.T) {
		resp := request(t, http.MethodOptions, collectors, nil, map[string]string{
			"Origin":                         "https://app.example.com",
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "authorization, x-custom",
		})
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status = %d, want 204", resp.StatusCode)
		}
		h := resp.Header
		if got := h.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
		if got := h.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") || !strings.Contains(got, "GET") {
			t.Errorf("Access-Control-Allow-Methods = %q", got)
		}
		if got := h.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Authorization") || !strings.Contains(got, "x-custom") {
			t.Errorf("Access-Control-Allow-Headers = %q", got)
		}
		if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary = %q, want Origin", h.Values("Vary"))
		}
	})

	t.Run("preflight pass reaches the upstream", func(t *testing.T) {
		resp := request(t, http.MethodOptions, f.relaxed+"/anything", nil, map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET", "X-Access-Owner": "forged"})
		echo := gatewaytest.DecodeEcho(t, resp)
		if echo.Method != http.MethodOptions {
			t.Fatalf("upstream saw %s", echo.Method)
		}
		if echo.Header.Get("X-Access-Owner") != "" {
			t.Errorf("client-sent X-Access-Owner reached the upstream")
		}
	})

	good := f.key(t, keystore.KeySpec{})
	unauthorized := []struct {
		name string
		hdr  map[string]string
		cred func(t *testing.T) *cred
	}{
		{"no credentials", nil, nil},
		{"bearer scheme", map[string]string{"Authorization": "Bearer " + good.secret}, nil},
		{"basic without base64", map[string]string{"Authorization": "Basic !!!not-base64"}, nil},
		{"basic without colon", map[string]string{"Authorization": "Basic c3UxMjM0NTY3ODkwMTI="}, nil},
		{"empty access id", map[string]string{"Authorization": basic("", good.secret)}, nil},
		{"oversized header", map[string]string{"Authorization": "Basic " + strings.Repeat("QUFB", 2000)}, nil},
		{"malformed key checksum", nil, func(t *testing.T) *cred {
			bad := good.secret[:63] + flip(good.secret[63])
			return &cred{good.id, bad}
		}},
		{"unknown access id", nil, func(t *testing.T) *cred {
			return &cred{keystore.NewAccessID(), keystore.NewAccessKey()}
		}},
		{"wrong key", nil, func(t *testing.T) *cred {
			return &cred{good.id, keystore.NewAccessKey()}
		}},
		{"deactivated", nil, func(t *testing.T) *cred {
			c := f.key(t, keystore.KeySpec{})
			disabled := true
			if _, err := f.store.UpdateKey(ctx, c.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
				t.Fatal(err)
			}
			return &c
		}},
		{"expired", nil, func(t *testing.T) *cred {
			c := f.key(t, keystore.KeySpec{})
			backdate(t, f, c.id, 181*24*time.Hour)
			return &c
		}},
		{"deleted", nil, func(t *testing.T) *cred {
			c := f.key(t, keystore.KeySpec{})
			if err := f.store.DeleteKey(ctx, c.id, testOp); err != nil {
				t.Fatal(err)
			}
			return &c
		}},
		{"owner inactive", nil, func(t *testing.T) *cred {
			f.user(t, "gone")
			c := f.key(t, keystore.KeySpec{OwnerID: "gone"})
			o, err := f.store.Owner(ctx, "gone")
			if err != nil {
				t.Fatal(err)
			}
			o.IsActive = false
			if _, err := f.store.PutOwner(ctx, *o, "test"); err != nil {
				t.Fatal(err)
			}
			return &c
		}},
	}
	for _, tc := range unauthorized {
		t.Run("401 "+tc.name, func(t *testing.T) {
			var c *cred
			if tc.cred != nil {
				c = tc.cred(t)
			}
			assert401(t, request(t, http.MethodGet, collectors, c, tc.hdr))
		})
	}

	t.Run("malformed key rejected without a Redis call", func(t *testing.T) {
		before := f.redis.CommandCount(t, "get")
		bad := &cred{good.id, good.secret[:10] + flip(good.secret[10]) + good.secret[11:]}
		for range 20 {
			assert401(t, request(t, http.MethodGet, collectors, bad, nil))
		}
		if after := f.redis.CommandCount(t, "get"); after != before {
			t.Errorf("Redis GET calls went from %d to %d for checksum-failing keys", before, after)
		}
	})

	noCORS := f.key(t, keystore.KeySpec{})
	withCORS := f.key(t, keystore.KeySpec{CORSHeaders: []string{"https://app.example.com", "https://tools.example.com:8443"}})

	t.Run("403 origin with empty allowlist", func(t *testing.T) {
		resp := request(t, http.MethodGet, collectors, &noCORS, map[string]string{"Origin": "https://app.example.com"})
		assertBodyA(t, resp, http.StatusForbidden, "forbidden", "The request origin is not allowlisted to use this access key")
	})

	t.Run("403 origin not in allowlist", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example.com", "http://app.example.com", "https://tools.example.com", "null", "https://app.example.com/path"} {
			resp := request(t, http.MethodGet, collectors, &withCORS, map[string]string{"Origin": origin})
			assertBodyA(t, resp, http.StatusForbidden, "forbidden", "The request origin is not allowlisted to use this access key")
		}
	})

	t.Run("no origin accepted", func(t *testing.T) {
		resp := request(t, http.MethodGet, collectors, &noCORS, nil)
		gatewaytest.DecodeEcho(t, resp)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("CORS header set without an Origin")
		}
	})

	t.Run("origin in allowlist accepted", func(t *testing.T) {
		for _, origin := range []string{"https://app.example.com", "https://APP.Example.com:443", "https://tools.example.com:8443"} {
			resp := request(t, http.MethodGet, collectors, &withCORS, map[string]string{"Origin": origin})
			gatewaytest.DecodeEcho(t, resp)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary = %q, want Origin", resp.Header.Values("Vary"))
			}
		}
	})

	t.Run("403 missing scope names it", func(t *testing.T) {
		resp := request(t, http.MethodPost, collectors+"/123", &good, nil)
		assertBodyA(t, resp, http.StatusForbidden, "forbidden", "")
		// the body was consumed by assertBodyA; ask again to read the message
		resp = request(t, http.MethodPost, collectors+"/123", &good, nil)
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if msg, _ := body["message"].(string); !strings.Contains(msg, "manageCollectors") {
			t.Errorf("message %q does not name the missing scope", msg)
		}
	})

	t.Run("403 custom scopes narrower than owner", func(t *testing.T) {
		narrow := f.key(t, keystore.KeySpec{Scopes: []string{"runLogSearch"}})
		assertBodyA(t, request(t, http.MethodGet, collectors, &narrow, nil), http.StatusForbidden, "forbidden", "")
		gatewaytest.DecodeEcho(t, request(t, http.MethodGet, f.base+"/api/v1/search/jobs", &narrow, nil))
	})

	t.Run("403 unmapped route with unmapped deny", func(t *testing.T) {
		assertBodyA(t, request(t, http.MethodGet, f.base+"/api/v1/other", &good, nil), http.StatusForbidden, "forbidden", "")
	})

	t.Run("unmapped allow lets a valid key pass", func(t *testing.T) {
		gatewaytest.DecodeEcho(t, request(t, http.MethodGet, f.relaxed+"/api/v1/other", &good, nil))
		assert401(t, request(t, http.MethodGet, f.relaxed+"/api/v1/other", nil, nil))
	})

	t.Run("identity headers replace client copies", func(t *testing.T) {
		resp := request(t, http.MethodGet, collectors+"/7", &good, map[string]string{
			"X-Access-Id": "suFORGEDFORGED", "X-Access-Owner": "admin", "X-Access-Scopes": "manageAccessKeys",
			// CGI-style upstreams read underscores as hyphens; Caddy
			// drops such names unless the server expects them.
			"X_Access_Owner": "admin", "x_access_scopes": "manageAccessKeys", "X-Access_Id": "suFORGEDFORGED",
		})
		echo := gatewaytest.DecodeEcho(t, resp)
		for k := range echo.Header {
			if strings.Contains(k, "_") {
				t.Errorf("look-alike identity header %s reached the upstream", k)
			}
		}
		want := map[string]string{
			"X-Access-Id":     good.id,
			"X-Access-Owner":  "u1",
			"X-Access-Scopes": "createAccessKeys runLogSearch viewCollectors",
			"X-Ph-Owner":      "u1",
			"X-Ph-Access-Id":  good.id,
			"X-Ph-Scopes":     "createAccessKeys runLogSearch viewCollectors",
		}
		for k, v := range want {
			if got := echo.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("upstream %s = %q, want [%q]", k, got, v)
			}
		}
		if echo.Header.Get("Authorization") != "" {
			t.Errorf("Authorization reached the upstream without pass_credentials")
		}
	})

	t.Run("pass_credentials keeps Authorization", func(t *testing.T) {
		echo := gatewaytest.DecodeEcho(t, request(t, http.MethodGet, f.relaxed+"/x", &good, nil))
		if got := echo.Header.Get("Authorization"); got != basic(good.id, good.secret) {
			t.Errorf("upstream Authorization = %q", got)
		}
	})

	t.Run("rejections are audited", func(t *testing.T) {
		for _, name := range []string{keystore.EventAuthFailed, keystore.EventOriginRejected, keystore.EventScopeRejected} {
			eventually(t, 5*time.Second, name+" in the audit stream", func() bool {
				evs, err := f.store.Events(ctx, keystore.EventFilter{Name: name})
				return err == nil && len(evs) > 0
			})
		}
		evs, _ := f.store.Events(ctx, keystore.EventFilter{Name: keystore.EventOriginRejected})
		e := evs[0]
		if e.AccessKey == nil || e.AccessKey.AccessID == "" || e.Operator.SourceIP == "" || e.Details["errorId"] == nil {
			t.Errorf("origin rejection event lacks key, source IP or error id: %+v", e)
		}
	})

	t.Run("no secret in Redis, logs or audit events", func(t *testing.T) {
		assertNoSecrets(t, f)
	})
}

// flip changes one base62 character into another.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// backdate moves a key's issue and activation times into the past, as if
// it had been created age ago.
func backdate(t *testing.T, f *fixture, id string, age time.Duration) {
	t.Helper()
	rdb := f.redis.Client(t)
	ctx := context.Background()
	rkey := f.prefix + ":key:{" + id + "}"
	raw, err := rdb.Get(ctx, rkey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var k keystore.Key
	if err := keystore.DecodeKey(raw, &k); err != nil {
		t.Fatal(err)
	}
	k.IssuedAt = k.IssuedAt.Add(-age)
	k.ActivatedAt = k.ActivatedAt.Add(-age)
	k.CreatedAt = k.CreatedAt.Add(-age)
	b := keystore.EncodeKey(&k)
	if err := rdb.Set(ctx, rkey, b, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// assertNoSecrets scans every Redis value, the gateway's log and the audit
// events for any secret the fixture created, raw or inside a Basic header.
func assertNoSecrets(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	rdb := f.redis.Client(t)
	var corpus strings.Builder
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		corpus.WriteString(k)
		typ, _ := rdb.Type(ctx, k).Result()
		switch typ {
		case "string":
			corpus.WriteString(rdb.Get(ctx, k).Val())
		case "hash":
			for hk, hv := range rdb.HGetAll(ctx, k).Val() {
				corpus.WriteString(hk + hv)
			}
		case "set":
			corpus.WriteString(strings.Join(rdb.SMembers(ctx, k).Val(), " "))
		case "zset":
			corpus.WriteString(strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), " "))
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				for fk, fv := range m.Values {
					corpus.WriteString(fk)
					corpus.WriteString(fv.(string))
				}
			}
		default:
			t.Errorf("unexpected Redis type %s for %s", typ, k)
		}
	}
	redisText := corpus.String()
	logs := f.gw.Logs()
	if len(logs) == 0 || !strings.Contains(logs, "access_keys.audit") {
		t.Fatalf("gateway log is empty or has no audit events; the scan would prove nothing")
	}
	if len(f.secrets) == 0 {
		t.Fatal("no secrets were created")
	}
	for _, s := range f.secrets {
		for where, text := range map[string]string{"Redis": redisText, "log": logs} {
			if strings.Contains(text, s) {
				t.Errorf("a secret appears in the %s", where)
			}
			// In a Basic header the key starts at byte 15, on a base64
			// group boundary, so its first 63 bytes encode the same way.
			if strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(s[:63]))) {
				t.Errorf("a base64-encoded secret appears in the %s", where)
			}
		}
	}
}
