package mgmtapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
)

// TestAPIRefusalsChangeNothing sends invalid, hostile, unauthorised and
// conflicting requests; each gets its status and code in body B, and none
// changes anything in Redis or writes a change event.
func TestAPIRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	id := f.alice.id
	long := strings.Repeat("x", keystore.MaxLabelLen+1)
	tooManyOrigins := make([]string, keystore.MaxAllowlist+1)
	for i := range tooManyOrigins {
		tooManyOrigins[i] = "https://o" + strings.Repeat("a", i+1) + ".example.com"
	}
	nested := `{"label":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	megabyte := `{"label":"` + strings.Repeat("a", 1<<20) + `"}`
	tests := []struct {
		name         string
		method, path string
		c            cred
		body         any
		hdr          []string
		status       int
		code         string
	}{
		{"label missing", "POST", "/accessKeys", f.alice, map[string]any{"scopes": []string{}}, nil, 400, "accessKey:label_required"},
		{"label blank", "POST", "/accessKeys", f.alice, map[string]any{"label": "  "}, nil, 400, "accessKey:label_required"},
		{"label too long", "POST", "/accessKeys", f.alice, map[string]any{"label": long}, nil, 400, "accessKey:label_too_long"},
		{"too many origins", "POST", "/accessKeys", f.alice, map[string]any{"label": "x", "corsHeaders": tooManyOrigins}, nil, 400, "accessKey:too_many_cors_headers"},
		{"origin with http", "POST", "/accessKeys", f.alice, map[string]any{"label": "x", "corsHeaders": []string{"http://a.example.com"}}, nil, 400, "accessKey:invalid_cors_header"},
		{"origin with path", "POST", "/accessKeys", f.alice, map[string]any{"label": "x", "corsHeaders": []string{"https://a.example.com/x"}}, nil, 400, "accessKey:invalid_cors_header"},
		{"invalid scope", "POST", "/accessKeys", f.alice, map[string]any{"label": "x", "scopes": []string{"no spaces allowed"}}, nil, 400, "accessKey:invalid_scope"},
		{"label a number", "POST", "/accessKeys", f.alice, `{"label":42}`, nil, 400, "accessKey:invalid_type"},
		{"scopes a string", "POST", "/accessKeys", f.alice, `{"label":"x","scopes":"viewWidgets"}`, nil, 400, "accessKey:invalid_type"},
		{"scopes of numbers", "POST", "/accessKeys", f.alice, `{"label":"x","scopes":[1,2]}`, nil, 400, "accessKey:invalid_type"},
		{"trailing garbage", "POST", "/accessKeys", f.alice, `{"label":"x"} garbage`, nil, 400, "json.invalid"},
		{"second object", "POST", "/accessKeys", f.alice, `{"label":"x"}{"label":"y"}`, nil, 400, "json.invalid"},
		{"truncated", "POST", "/accessKeys", f.alice, `{"label":"x"`, nil, 400, "json.invalid"},
		{"not an object", "POST", "/accessKeys", f.alice, `["label"]`, nil, 400, "json.invalid"},
		{"null", "POST", "/accessKeys", f.alice, `null`, nil, 400, "json.invalid"},
		{"empty", "POST", "/accessKeys", f.alice, ``, nil, 400, "json.invalid"},
		{"deeply nested", "POST", "/accessKeys", f.alice, nested, nil, 400, "json.invalid"},
		{"one megabyte", "POST", "/accessKeys", f.alice, megabyte, nil, 413, "body.too.large"},
		{"one megabyte chunked", "POST", "/accessKeys", f.alice, io.MultiReader(strings.NewReader(megabyte)), nil, 413, "body.too.large"},
		{"form body", "POST", "/accessKeys", f.alice, "label=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "contenttype.invalid"},
		{"no content type", "POST", "/accessKeys", f.alice, `{"label":"x"}`, []string{"Content-Type", ""}, 415, "contenttype.invalid"},
		{"disabled missing", "PUT", "/accessKeys/" + id, f.alice, map[string]any{"scopes": []string{}}, nil, 400, "accessKey:disabled_required"},
		{"disabled null", "PUT", "/accessKeys/" + id, f.alice, `{"disabled":null}`, nil, 400, "accessKey:disabled_required"},
		{"disabled a string", "PUT", "/accessKeys/" + id, f.alice, `{"disabled":"true"}`, nil, 400, "accessKey:invalid_type"},
		{"cors of objects", "PUT", "/accessKeys/" + id, f.alice, `{"disabled":true,"corsHeaders":[{}]}`, nil, 400, "accessKey:invalid_type"},
		{"limit zero", "GET", "/accessKeys?limit=0", f.admin, nil, nil, 400, "accessKey:invalid_limit"},
		{"limit too big", "GET", "/accessKeys?limit=1001", f.admin, nil, nil, 400, "accessKey:invalid_limit"},
		{"limit not a number", "GET", "/accessKeys?limit=ten", f.admin, nil, nil, 400, "accessKey:invalid_limit"},
		{"bad token", "GET", "/accessKeys?token=%7Bnope%7D", f.admin, nil, nil, 400, "accessKey:invalid_token"},
		{"unknown key", "GET", "/accessKeys/" + keystore.NewAccessID(), f.admin, nil, nil, 404, "accessKey:not_found"},
		{"malformed key id", "PUT", "/accessKeys/not-an-id", f.admin, map[string]any{"disabled": true}, nil, 404, "accessKey:not_found"},
		{"unknown path", "GET", "/accessKeys/" + id + "/frobnicate", f.admin, nil, nil, 404, "notfound"},
		{"empty segment", "GET", "/accessKeys//rotate", f.admin, nil, nil, 404, "notfound"},
		{"method", "PATCH", "/accessKeys/" + id, f.admin, nil, nil, 405, "method.unsupported"},
		{"rotate with GET", "GET", "/accessKeys/" + id + "/rotate", f.admin, nil, nil, 405, "method.unsupported"},
		{"no capability", "GET", "/accessKeys", f.carol, nil, nil, 403, "forbidden"},
		{"no org settings", "PUT", "/policies/disableUnusedAccessKeys", f.alice, map[string]any{"unusedAccessKeysDisableAfterInDays": 1}, nil, 403, "forbidden"},
		{"no user management", "POST", "/roles", f.alice, map[string]any{"name": "x"}, nil, 403, "forbidden"},
		{"role in use", "DELETE", "/roles/member", f.admin, nil, nil, 409, "role:in_use"},
		{"user has keys", "DELETE", "/users/bob", f.admin, nil, nil, 409, "user:has_access_keys"},
		{"user exists", "POST", "/users", f.admin, map[string]any{"id": "bob", "email": "b@example.com"}, nil, 409, "user:exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.unchanged(t, func() {
				r := f.do(t, tt.method, tt.path, &tt.c, tt.body, tt.hdr...)
				f.checkRefusal(t, r, tt.status, tt.code)
				if tt.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
			})
		})
	}
	// The key the refused requests were aimed at is untouched.
	if st := f.gateStatus(t, f.alice); st != http.StatusOK {
		t.Errorf("alice's key gets %d", st)
	}
}

// checkRefusal checks a body B answer and that its messages stay short,
// whatever the input was.
func (f *apiFixture) checkRefusal(t *testing.T, r apiResp, status int, code string) {
	t.Helper()
	msgs := r.fails(t, status, code)
	for _, m := range msgs {
		if len(m) > 500 {
			t.Errorf("message of %d bytes", len(m))
		}
	}
}

// TestAPIAuthentication: the API authenticates like the gateway, with
// body A for 401 and for a refused origin; preflights need no key.
func TestAPIAuthentication(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	resp := f.do(t, http.MethodGet, "/accessKeys/personal", nil, nil)
	if got := resp.header.Get("WWW-Authenticate"); got != `Basic realm="API"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	resp.bodyA(t, http.StatusUnauthorized, "unauthorized", "Credential could not be verified.")
	wrong := cred{f.alice.id, keystore.NewAccessKey()}
	f.do(t, http.MethodGet, "/accessKeys/personal", &wrong, nil).bodyA(t, http.StatusUnauthorized, "unauthorized", "")

	// Origins: alice's key allowlists none; a key with an allowlist
	// passes its origin and gets it echoed.
	f.do(t, http.MethodGet, "/accessKeys/personal", &f.alice, nil, "Origin", "https://evil.example.com").
		bodyA(t, http.StatusForbidden, "forbidden", "The request origin is not allowlisted to use this access key")
	k, secret, err := f.store.CreateKey(t.Context(), keystore.KeySpec{Label: "web", OwnerID: "alice", CORSHeaders: []string{"https://app.example.com"}}, testOp)
	if err != nil {
		t.Fatal(err)
	}
	web := cred{k.ID, secret}
	r := f.do(t, http.MethodGet, "/accessKeys/personal", &web, nil, "Origin", "https://APP.example.com:443")
	r.ok(t, http.StatusOK)
	if r.header.Get("Access-Control-Allow-Origin") != "https://APP.example.com:443" || !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
		t.Errorf("CORS headers %v", r.header)
	}

	pre := apiDo(t, http.MethodOptions, f.base+"/accessKeys", nil, nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight %d %v", pre.status, pre.header)
	}

	// Paths outside the API's route reach the other handlers.
	other := apiDo(t, http.MethodGet, strings.TrimSuffix(f.base, "/api/v1")+"/data/x", &f.carol, nil)
	if other.status != http.StatusOK || string(other.body) != "ok" {
		t.Errorf("protected route: %d %s", other.status, other.body)
	}
}

// TestAPIRedisDown: with Redis gone, a request whose credential is cached
// gets 503 in body B, never a wrong answer; Redis back, all is well.
func TestAPIRedisDown(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	f.do(t, http.MethodGet, "/accessKeys/personal", &f.admin, nil).ok(t, http.StatusOK)
	f.redis.Stop(t)
	began := time.Now()
	f.do(t, http.MethodGet, "/accessKeys", &f.admin, nil).fails(t, http.StatusServiceUnavailable, "service.unavailable")
	f.do(t, http.MethodPost, "/accessKeys", &f.admin, map[string]any{"label": "x"}).fails(t, http.StatusServiceUnavailable, "service.unavailable")
	if d := time.Since(began); d > 15*time.Second {
		t.Errorf("503s took %v", d)
	}
	f.redis.Restart(t)
	eventually(t, 10*time.Second, "the API answering again", func() bool {
		return f.do(t, http.MethodGet, "/accessKeys", &f.admin, nil).status == http.StatusOK
	})
}

// TestAPIOptionsNeedsCredentials: as through the access_keys handler, an
// OPTIONS request needs credentials unless it is a CORS preflight, which
// is answered without them.
func TestAPIOptionsNeedsCredentials(t *testing.T) {
	f := newAPIFixture(t)
	for _, hdr := range [][]string{nil, {"Origin", "https://app.example.com"}} {
		r := apiDo(t, http.MethodOptions, f.base+"/accessKeys", nil, nil, hdr...)
		if r.status != http.StatusUnauthorized {
			t.Errorf("OPTIONS with %v: %d, want 401", hdr, r.status)
		}
	}
	pre := apiDo(t, http.MethodOptions, f.base+"/accessKeys", nil, nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if pre.status != http.StatusNoContent {
		t.Errorf("preflight: %d, want 204", pre.status)
	}
}

// TestAPIChangeRefusedWhenNotAnnounced: when Redis refuses the invalidation
// message of a change (a policy change, a key deactivation), the
// management API must not answer as if the change were made (the gateways
// would keep their cached authentications for up to cache_ttl): the
// change is not stored and the caller gets an error. Once Redis takes the
// message, the change works.
func TestAPIChangeRefusedWhenNotAnnounced(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	target := f.key(t, "bob", nil)
	if got := f.gateStatus(t, target); got != http.StatusOK {
		t.Fatalf("the key to deactivate: status %d through the gateway, want 200", got)
	}
	tests := []struct {
		name, path string
		body       map[string]any
		// made checks the change once it is made.
		made func(t *testing.T)
	}{
		{"policy change", "/policies/accessKeysLifetime", map[string]any{"accessKeysLifetimeInDays": 60}, func(t *testing.T) {
			pol, err := f.store.Policies(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pol.LifetimeDays != 60 {
				t.Errorf("lifetime %d after the change, want 60", pol.LifetimeDays)
			}
		}},
		{"key deactivation", "/accessKeys/" + target.id, map[string]any{"disabled": true}, func(t *testing.T) {
			k, err := f.store.Key(ctx, target.id)
			if err != nil {
				t.Fatal(err)
			}
			if !k.Disabled {
				t.Errorf("the key is not deactivated after the change")
			}
			if got := f.gateStatus(t, target); got != http.StatusUnauthorized {
				t.Errorf("the deactivated key: status %d through the gateway, want 401", got)
			}
		}},
	}
	acl := func(rule string) {
		t.Helper()
		if err := f.rdb.Do(ctx, "ACL", "SETUSER", "default", rule).Err(); err != nil {
			t.Fatal(err)
		}
	}
	acl("-publish")
	for _, tt := range tests {
		f.unchanged(t, func() {
			r := f.do(t, http.MethodPut, tt.path, &f.admin, tt.body)
			if r.status < 500 {
				t.Errorf("%s that could not be announced: status %d, want a server error; body %s", tt.name, r.status, r.body)
			}
			t.Logf("%s that could not be announced: %d %s", tt.name, r.status, r.body)
		})
	}
	if got := f.gateStatus(t, target); got != http.StatusOK {
		t.Errorf("the key whose deactivation was refused: status %d through the gateway, want 200", got)
	}
	acl("+publish")
	for _, tt := range tests {
		f.do(t, http.MethodPut, tt.path, &f.admin, tt.body).ok(t, http.StatusOK)
		tt.made(t)
	}
}
