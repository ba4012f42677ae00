package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
)

func TestAPISegments(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"/api/v1/accessKeys", []string{"accessKeys"}},
		{"/api/v1/accessKeys/", []string{"accessKeys"}},
		{"/api/v1/accessKeys/personal", []string{"accessKeys", "personal"}},
		{"/accessKeys/su0w3Q37CBzHUM/rotate", []string{"accessKeys", "su0w3Q37CBzHUM", "rotate"}},
		{"/gw/api/v1/users/u1", []string{"users", "u1"}},
		{"/api/v1/x/api/v1/roles", []string{"roles"}},
		{"/api/v1/policies/accessKeysLifetime", []string{"policies", "accessKeysLifetime"}},
		{"/api/v1/serviceAccounts/s/accessKeys", []string{"serviceAccounts", "s", "accessKeys"}},
		{"/api/v1//accessKeys", nil},
		{"/api/v1", nil},
		{"/api/v1/", nil},
		{"/api/v1/collectors", nil},
		{"/api/v1accessKeys", nil},
		{"/api/v12/accessKeys", nil},
		{"/", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, ok := apiSegments(tt.path)
		if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
			t.Errorf("apiSegments(%q) = %q, %v; want %q", tt.path, got, ok, tt.want)
		}
	}
}

func TestRouteAPI(t *testing.T) {
	tests := []struct {
		path    string
		methods string // "" when there is no such endpoint
	}{
		{"accessKeys", "GET, HEAD, OPTIONS, POST"},
		{"accessKeys/personal", "GET, HEAD, OPTIONS"},
		{"accessKeys/scopes", "GET, HEAD, OPTIONS"},
		{"accessKeys/su0w3Q37CBzHUM", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"accessKeys/su0w3Q37CBzHUM/rotate", "OPTIONS, PUT"},
		{"accessKeys/su0w3Q37CBzHUM/other", ""},
		{"accessKeys/a/b/c", ""},
		{"policies/accessKeysLifetime", "GET, HEAD, OPTIONS, PUT"},
		{"policies/disableUnusedAccessKeys", "GET, HEAD, OPTIONS, PUT"},
		{"policies", ""},
		{"policies/other", ""},
		{"users", "GET, HEAD, OPTIONS, POST"},
		{"users/u1", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"users/u1/accessKeys", ""},
		{"serviceAccounts", "GET, HEAD, OPTIONS, POST"},
		{"serviceAccounts/s1", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"serviceAccounts/s1/accessKeys", "GET, HEAD, OPTIONS, POST"},
		{"serviceAccounts/s1/accessKeys/su0w3Q37CBzHUM", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"serviceAccounts/s1/accessKeys/su0w3Q37CBzHUM/rotate", "OPTIONS, PUT"},
		{"serviceAccounts/s1/accessKeys/personal", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"serviceAccounts/s1/other", ""},
		{"roles", "GET, HEAD, OPTIONS, POST"},
		{"roles/r1", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"roles/r1/x", ""},
		{"accessKeys//rotate", ""},
	}
	for _, tt := range tests {
		m := routeAPI(strings.Split(tt.path, "/"))
		switch {
		case tt.methods == "" && m != nil:
			t.Errorf("%s: routed to %s", tt.path, m.allow())
		case tt.methods != "" && m == nil:
			t.Errorf("%s: not routed", tt.path)
		case m != nil && m.allow() != tt.methods:
			t.Errorf("%s: methods %s, want %s", tt.path, m.allow(), tt.methods)
		}
	}
}

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{`60`, 60, true},
		{`"60"`, 60, true},
		{`" 45 "`, 45, true},
		{`0`, 0, true},
		{`"0"`, 0, true},
		{`60.0`, 60, true},
		{`6e1`, 60, true},
		{`-1`, -1, true},
		{`1000`, 1000, true},
		{`1.5`, 0, false},
		{`"1.5"`, 0, false},
		{`"sixty"`, 0, false},
		{`""`, 0, false},
		{`true`, 0, false},
		{`[60]`, 0, false},
		{`{"days":60}`, 0, false},
		{`1e300`, 0, false},
		{`"NaN"`, 0, false},
		{`"Inf"`, 0, false},
		{`99999999999999999999`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDays(json.RawMessage(tt.in))
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parseDays(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestJSONContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"Application/JSON; charset=utf-8":   true,
		"application/merge-patch+json":      true,
		"application/vnd.api+json":          true,
		"":                                  false,
		"text/plain":                        false,
		"application/x-www-form-urlencoded": false,
		"text/json+json":                    false,
		"application/json; =":               false,
	} {
		if got := jsonContentType(ct); got != want {
			t.Errorf("jsonContentType(%q) = %v", ct, got)
		}
	}
}

// readTestBody runs readJSONObject on a request with the given body.
func readTestBody(body, ct string) (*jsonBody, error) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/accessKeys", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return readJSONObject(httptest.NewRecorder(), r, "accessKey")
}

func TestReadJSONObject(t *testing.T) {
	tests := []struct {
		name, body, ct string
		status         int // 0: accepted
	}{
		{"object", `{"label":"x"}`, "application/json", 0},
		{"object with space", " \n{\"label\":\"x\"}\n\t ", "application/json; charset=utf-8", 0},
		{"empty object", `{}`, "application/json", 0},
		{"duplicate keys", `{"label":"x","label":"y"}`, "application/json", 0},
		{"not json type", `{"label":"x"}`, "text/plain", http.StatusUnsupportedMediaType},
		{"no type", `{"label":"x"}`, "", http.StatusUnsupportedMediaType},
		{"empty", ``, "application/json", http.StatusBadRequest},
		{"array", `[1]`, "application/json", http.StatusBadRequest},
		{"string", `"x"`, "application/json", http.StatusBadRequest},
		{"null", `null`, "application/json", http.StatusBadRequest},
		{"trailing", `{} x`, "application/json", http.StatusBadRequest},
		{"two objects", `{}{}`, "application/json", http.StatusBadRequest},
		{"truncated", `{"a":`, "application/json", http.StatusBadRequest},
		{"bad escape", `{"a":"\q"}`, "application/json", http.StatusBadRequest},
		{"deep", `{"a":` + strings.Repeat("[", 12000) + strings.Repeat("]", 12000) + `}`, "application/json", http.StatusBadRequest},
		{"too large", `{"a":"` + strings.Repeat("x", maxAPIBody) + `"}`, "application/json", http.StatusRequestEntityTooLarge},
		{"too large after object", `{}` + strings.Repeat(" ", maxAPIBody), "application/json", http.StatusRequestEntityTooLarge},
	}
	c := &apiCall{noun: "accessKey"}
	for _, tt := range tests {
		b, err := readTestBody(tt.body, tt.ct)
		if tt.status == 0 {
			if err != nil || b == nil || b.fields == nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if got := c.asAPIError(err).status; got != tt.status {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, got, tt.status, err)
		}
	}
}

func TestJSONBodyFields(t *testing.T) {
	b, err := readTestBody(`{"label":5,"scopes":"x","corsHeaders":[1],"disabled":"no","days":"7","n":null,"ok":"fine","list":[],"yes":true}`, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if b.str("label") != nil || b.strs("scopes") != nil || b.strs("corsHeaders") != nil || b.boolean("disabled") != nil {
		t.Error("a value of the wrong type was accepted")
	}
	if d := b.days("days"); d == nil || *d != 7 {
		t.Errorf("days = %v", d)
	}
	if b.str("n") != nil || b.str("absent") != nil || b.require("n") || !b.require("ok") {
		t.Error("null or absent read as present")
	}
	if s := b.str("ok"); s == nil || *s != "fine" {
		t.Errorf("ok = %v", s)
	}
	if l := b.strs("list"); l == nil || *l == nil || len(*l) != 0 {
		t.Errorf("list = %v", l)
	}
	if y := b.boolean("yes"); y == nil || !*y {
		t.Errorf("yes = %v", y)
	}
	var ae *apiError
	if !errors.As(b.err(), &ae) || ae.status != http.StatusBadRequest || len(ae.problems) != 5 {
		t.Fatalf("err = %+v", b.err())
	}
	codes := map[string]int{}
	for _, p := range ae.problems {
		codes[p.Code]++
	}
	if codes["accessKey:invalid_type"] != 4 || codes["accessKey:n_required"] != 1 {
		t.Errorf("codes %v", codes)
	}
}

func TestAsAPIError(t *testing.T) {
	user := &apiCall{noun: "user"}
	tests := []struct {
		name   string
		c      *apiCall
		err    error
		status int
		code   string
	}{
		{"validation", user, &keystore.ValidationError{Problems: []keystore.FieldError{{Field: "email", Code: "owner:invalid_email", Message: "m"}, {Code: "role:not_found", Message: "r"}}}, 400, "user:invalid_email"},
		{"not found owner", &apiCall{noun: "serviceAccount"}, &keystore.NotFoundError{Kind: "owner", ID: "x"}, 404, "serviceAccount:not_found"},
		{"not found key", user, &keystore.NotFoundError{Kind: "accessKey", ID: "x"}, 404, "accessKey:not_found"},
		{"conflict", user, &keystore.ConflictError{Code: "owner:exists", Message: "m"}, 409, "user:exists"},
		{"conflict without code", user, &keystore.ConflictError{Message: "m"}, 409, "user:conflict"},
		{"too large", user, &http.MaxBytesError{Limit: 10}, 413, "body.too.large"},
		{"api error", user, forbidden("manageAccessKeys"), 403, "forbidden"},
		{"wrapped api error", user, fmt.Errorf("x: %w", apiErrorf(404, "notfound", "m")), 404, "notfound"},
		{"refused", user, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, 503, "service.unavailable"},
		{"refused errno", user, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), 503, "service.unavailable"},
		{"closed", user, redis.ErrClosed, 503, "service.unavailable"},
		{"pool timeout", user, redis.ErrPoolTimeout, 503, "service.unavailable"},
		{"other", user, errors.New("corrupt record"), 500, "internal.error"},
	}
	for _, tt := range tests {
		ae := tt.c.asAPIError(tt.err)
		if ae.status != tt.status || len(ae.problems) == 0 || ae.problems[0].Code != tt.code {
			t.Errorf("%s: %d %+v, want %d %s", tt.name, ae.status, ae.problems, tt.status, tt.code)
		}
	}
	ve := user.asAPIError(&keystore.ValidationError{Problems: []keystore.FieldError{{Code: "owner:a"}, {Code: "role:not_found"}}})
	if len(ve.problems) != 2 || ve.problems[1].Code != "role:not_found" {
		t.Errorf("problems %+v", ve.problems)
	}
	if ae := user.asAPIError(errors.New("secret detail")); strings.Contains(ae.Error(), "secret detail") || ae.cause == nil {
		t.Errorf("500 shows or loses its cause: %+v", ae)
	}
}

func TestAPIHandlerCaddyfile(t *testing.T) {
	tests := []struct {
		input, realm, err string
	}{
		{"access_keys_api", "", ""},
		{"access_keys_api {\n}", "", ""},
		{"access_keys_api {\n realm \"Mgmt API\"\n}", "Mgmt API", ""},
		{"access_keys_api extra", "", "takes no arguments"},
		{"access_keys_api {\n realm\n}", "", "wrong argument count"},
		{"access_keys_api {\n realm a b\n}", "", "wrong argument count"},
		{"access_keys_api {\n scope x GET /\n}", "", "unknown setting"},
	}
	for _, tt := range tests {
		var h APIHandler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.input, err, tt.err)
			}
			continue
		}
		if err != nil || h.Realm != tt.realm {
			t.Errorf("%q: realm %q, %v", tt.input, h.Realm, err)
		}
	}
	if err := (&APIHandler{Realm: `a"b`}).Validate(); err == nil {
		t.Error("a realm with a quote is valid")
	}
}

// TestAPIDirectiveOrder: without a route block, access_keys_api runs before
// respond.
func TestAPIDirectiveOrder(t *testing.T) {
	in := ":8080 {\n\trespond \"fallback\"\n\taccess_keys_api\n}\n"
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings %v", warnings)
	}
	api, respond := bytes.Index(out, []byte(`"handler":"access_keys_api"`)), bytes.Index(out, []byte(`"handler":"static_response"`))
	if api < 0 || respond < 0 || api > respond {
		t.Errorf("adapted order wrong: %s", out)
	}
}

// FuzzAPIBody: the body reader never panics, and accepts exactly the
// bodies that are one JSON object.
func FuzzAPIBody(f *testing.F) {
	for _, s := range []string{`{"label":"x"}`, `{}`, `[]`, `null`, `{"a":[[[]]]}`, `{} {}`, `{"a":1e999}`, "{\"a\":\"\xff\"}", ` {"disabled":true} `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		b, err := readTestBody(body, "application/json")
		trimmed := strings.TrimSpace(body)
		isObject := json.Valid([]byte(trimmed)) && strings.HasPrefix(trimmed, "{") && len(body) <= maxAPIBody
		if (err == nil) != isObject {
			t.Fatalf("accepted=%v for %q (object: %v, err %v)", err == nil, body, isObject, err)
		}
		if err == nil && b.fields == nil {
			t.Fatal("accepted without fields")
		}
		if err != nil {
			st := (&apiCall{noun: "accessKey"}).asAPIError(err).status
			if st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for %q", st, body)
			}
		}
	})
}

// FuzzAPISegments: path routing never panics, and what it routes starts
// with one of the API's roots and has no empty segment.
func FuzzAPISegments(f *testing.F) {
	for _, s := range []string{"/api/v1/accessKeys", "/api/v1/serviceAccounts/a/accessKeys/b/rotate", "/x/api/v1/users/", "//", "/api/v1/api/v1/roles"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		segs, ok := apiSegments(path)
		if !ok {
			return
		}
		if !slices.Contains(apiRoots, segs[0]) {
			t.Fatalf("routed %q to %q", path, segs)
		}
		if m := routeAPI(segs); m != nil && slices.Contains(segs, "") {
			t.Fatalf("routed %q with an empty segment", path)
		}
	})
}
