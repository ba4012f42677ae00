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

	"github.com/accessgate/accessgate/limits"
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
				usage off
			}`,
			want: Handler{
				Realm: "My API",
				Scopes: []ScopeRule{
					{Scope: "viewCollectors", Methods: []string{"GET"}, Paths: []string{"/api/v1/collectors", "/api/v1/collectors/*"}},
					{Scope: "manageCollectors", Methods: []string{"POST", "PUT", "DELETE"}, Paths: []string{"/api/v1/collectors/*"}},
					{Scope: "runLogSearch", Paths: []string{"/api/v1/search/*"}},
				},
				Unmapped: "allow", PassCredentials: true, Preflight: "pass", StrictPaths: new(false), Usage: new(false),
			},
		},
		{name: "strict_paths on", input: "access_keys {\n strict_paths on\n}", want: Handler{StrictPaths: new(true)}},
		{name: "usage on", input: "access_keys {\n usage on\n}", want: Handler{Usage: new(true)}},
		{name: "bad usage", input: "access_keys {\n usage none\n}", err: "usage must be on or off"},
		{name: "usage without value", input: "access_keys {\n usage\n}", err: "wrong argument count"},
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
		rate_limit owner 4/s burst 8
		rate_limit key 100/m
		concurrency_limit key 10
	}`
	var a App
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := App{
		Redis:     []string{"redis://127.0.0.1:7000", "redis://127.0.0.1:7001", "redis://127.0.0.1:7002"},
		KeyPrefix: "acme", CacheTTL: caddy.Duration(10 * time.Minute), CacheSize: 500,
		RotationGrace: caddy.Duration(2 * time.Minute), LastUsedFlush: caddy.Duration(30 * time.Second), SweepInterval: caddy.Duration(45 * time.Second),
		OwnerRateLimit:      &limits.Rate{Requests: 4, PeriodSeconds: 1, Burst: 8},
		KeyRateLimit:        &limits.Rate{Requests: 100, PeriodSeconds: 60},
		KeyConcurrencyLimit: 10,
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
		"access_keys {\n rate_limit key\n}",
		"access_keys {\n rate_limit key 5\n}",
		"access_keys {\n rate_limit key 0/s\n}",
		"access_keys {\n rate_limit key 5/d\n}",
		"access_keys {\n rate_limit user 5/s\n}",
		"access_keys {\n rate_limit key 5/s burst\n}",
		"access_keys {\n rate_limit key 5/s burst 0\n}",
		"access_keys {\n rate_limit key 5/s bursts 3\n}",
		"access_keys {\n concurrency_limit key 0\n}",
		"access_keys {\n concurrency_limit owner 3\n}",
		"access_keys {\n concurrency_limit key many\n}",
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
	// The OpenAPI document is served without credentials by
	// access_keys_api; routed to the gateway it would answer 401.
	if !strings.Contains(string(out), `"/api/v1/openapi.json"`) {
		t.Errorf("Caddyfile.example does not route /api/v1/openapi.json to access_keys_api")
	}
}

// TestAdaptExampleEnvironment checks that Caddyfile.example takes the
// Redis URL and the gateway's listen address from the environment (as the
// Docker image needs), with local defaults, and that the stand-in upstream
// stays on 127.0.0.1 whatever the environment says.
func TestAdaptExampleEnvironment(t *testing.T) {
	body, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		env        map[string]string
		wantRedis  []string
		wantListen map[string][]string
	}{
		{
			name:       "defaults",
			wantRedis:  []string{"redis://127.0.0.1:6379/0"},
			wantListen: map[string][]string{"srv0": {"127.0.0.1:8080"}, "srv1": {"127.0.0.1:9000"}},
		},
		{
			name:       "from the environment",
			env:        map[string]string{"ACCESSGATE_REDIS": "redis://10.9.9.9:6379/3", "ACCESSGATE_BIND": "0.0.0.0"},
			wantRedis:  []string{"redis://10.9.9.9:6379/3"},
			wantListen: map[string][]string{"srv0": {"0.0.0.0:8080"}, "srv1": {"127.0.0.1:9000"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"ACCESSGATE_REDIS", "ACCESSGATE_BIND"} {
				t.Setenv(k, "") // restored after the test
				if v, ok := tt.env[k]; ok {
					os.Setenv(k, v)
				} else {
					os.Unsetenv(k)
				}
			}
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": "Caddyfile.example"})
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Apps struct {
					AccessKeys App `json:"access_keys"`
					HTTP       struct {
						Servers map[string]struct {
							Listen []string `json:"listen"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			if got := cfg.Apps.AccessKeys.Redis; !reflect.DeepEqual(got, tt.wantRedis) {
				t.Errorf("redis = %q, want %q", got, tt.wantRedis)
			}
			listen := map[string][]string{}
			for name, srv := range cfg.Apps.HTTP.Servers {
				listen[name] = srv.Listen
			}
			if !reflect.DeepEqual(listen, tt.wantListen) {
				t.Errorf("listen = %q, want %q", listen, tt.wantListen)
			}
		})
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
		"access_keys {\n usage off\n}",
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
