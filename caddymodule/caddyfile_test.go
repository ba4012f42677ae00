package caddymodule

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestHandlerCaddyfile(t *testing.T) {
	tests := []struct {
		name, input string
		want        Handler
		err         string
	}{
		{
			name: "full",
			input: `access_keys {
				realm "My API"
				scope viewCollectors GET /api/v1/collectors /api/v1/collectors/*
				scope manageCollectors POST PUT DELETE /api/v1/collectors/*
				scope runLogSearch * /api/v1/search/*
				unmapped allow
				pass_credentials
				preflight pass
				strict_paths off
			}`,
			want: Handler{
				Realm: "My API",
				Scopes: []ScopeRule{
					{Scope: "viewCollectors", Methods: []string{"GET"}, Paths: []string{"/api/v1/collectors", "/api/v1/collectors/*"}},
					{Scope: "manageCollectors", Methods: []string{"POST", "PUT", "DELETE"}, Paths: []string{"/api/v1/collectors/*"}},
					{Scope: "runLogSearch", Paths: []string{"/api/v1/search/*"}},
				},
				Unmapped: "allow", PassCredentials: true, Preflight: "pass", StrictPaths: new(false),
			},
		},
		{name: "strict_paths on", input: "access_keys {\n strict_paths on\n}", want: Handler{StrictPaths: new(true)}},
		{name: "empty block", input: "access_keys", want: Handler{}},
		{name: "argument", input: "access_keys foo", err: "takes no arguments"},
		{name: "scope without path", input: "access_keys {\n scope viewCollectors GET\n}", err: "at least one path"},
		{name: "scope id only", input: "access_keys {\n scope viewCollectors\n}", err: "needs an id"},
		{name: "relative path", input: "access_keys {\n scope a GET api/v1\n}", err: "must start with"},
		{name: "bad unmapped", input: "access_keys {\n unmapped maybe\n}", err: "deny or allow"},
		{name: "bad preflight", input: "access_keys {\n preflight drop\n}", err: "respond or pass"},
		{name: "bad strict_paths", input: "access_keys {\n strict_paths no\n}", err: "on or off"},
		{name: "strict_paths without value", input: "access_keys {\n strict_paths\n}", err: "wrong argument count"},
		{name: "strict_paths two values", input: "access_keys {\n strict_paths on off\n}", err: "wrong argument count"},
		{name: "unknown setting", input: "access_keys {\n colour blue\n}", err: "unknown setting"},
		{name: "pass_credentials argument", input: "access_keys {\n pass_credentials yes\n}", err: "wrong argument count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, tc.want) {
				t.Errorf("got %+v\nwant %+v", h, tc.want)
			}
		})
	}
}

func TestAppCaddyfile(t *testing.T) {
	input := `access_keys {
		redis redis://127.0.0.1:7000 redis://127.0.0.1:7001
		redis redis://127.0.0.1:7002
		key_prefix acme
		cache_ttl 10m
		cache_size 500
		rotation_grace 2m
		last_used_flush 30s
		sweep_interval 45s
	}`
	var a App
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := App{
		Redis:     []string{"redis://127.0.0.1:7000", "redis://127.0.0.1:7001", "redis://127.0.0.1:7002"},
		KeyPrefix: "acme", CacheTTL: caddy.Duration(10 * time.Minute), CacheSize: 500,
		RotationGrace: caddy.Duration(2 * time.Minute), LastUsedFlush: caddy.Duration(30 * time.Second), SweepInterval: caddy.Duration(45 * time.Second),
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("got %+v\nwant %+v", a, want)
	}
	for _, bad := range []string{
		"access_keys {\n cache_ttl forever\n}",
		"access_keys {\n cache_size -1\n}",
		"access_keys {\n key_prefix {x}\n}",
		"access_keys {\n redis_sentinel mymaster\n}",
		"access_keys {\n nonsense 1\n}",
	} {
		var a App
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestAdaptExample adapts Caddyfile.example, as `caddy adapt` does.
func TestAdaptExample(t *testing.T) {
	body, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s", w.String())
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Apps["access_keys"]; !ok {
		t.Errorf("adapted config has no access_keys app: %s", out)
	}
	if !strings.Contains(string(out), `"handler":"access_keys"`) {
		t.Errorf("adapted config has no access_keys handler")
	}
}

// FuzzHandlerCaddyfile feeds arbitrary directive bodies to the parser: it
// must never panic, and a parsed handler with scopes must name a valid
// scope and at least one path for each.
func FuzzHandlerCaddyfile(f *testing.F) {
	for _, s := range []string{
		"access_keys {\n scope viewCollectors GET /a /b/*\n unmapped allow\n}",
		"access_keys {\n realm \"x\"\n pass_credentials\n preflight respond\n}",
		"access_keys {\n strict_paths off\n}",
		"access_keys {\n scope a * *\n}",
		"access_keys {\n scope {\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			return
		}
		for _, r := range h.Scopes {
			if r.Scope == "" || len(r.Paths) == 0 {
				t.Fatalf("accepted a scope rule without id or path: %+v", r)
			}
		}
		_ = h.Validate()
	})
}
