package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
)

// badAppConfigs are access_keys app settings, as JSON, that a config must
// be refused for, with a word the refusal must contain.
var badAppConfigs = []struct {
	name     string
	settings string
	want     string
}{
	{"negative last_used_flush", `"last_used_flush": "-1s"`, "last_used_flush"},
	{"negative sweep_interval", `"sweep_interval": "-5m"`, "sweep_interval"},
	{"negative sweep_interval in nanoseconds", `"sweep_interval": -1000`, "sweep_interval"},
	{"negative cache_ttl", `"cache_ttl": "-1s"`, "cache_ttl"},
	{"negative rotation_grace", `"rotation_grace": "-1m"`, "rotation_grace"},
	{"negative failure_window", `"failure_window": "-1m"`, "failure_window"},
	{"negative cache_size", `"cache_size": -1`, "cache_size"},
	{"max_failures_per_client below -1", `"max_failures_per_client": -2`, "max_failures_per_client"},
	{"max_failures_per_key below -1", `"max_failures_per_key": -5`, "max_failures_per_key"},
	{"key_prefix with a brace", `"key_prefix": "ag{x}"`, "key_prefix"},
	{"key_prefix with a space", `"key_prefix": "a g"`, "key_prefix"},
	{"key_prefix too long", `"key_prefix": "` + strings.Repeat("a", 65) + `"`, "key_prefix"},
	{"sentinel without addresses", `"redis_sentinel": {"master": "m"}`, "redis_sentinel"},
	{"unparsable redis URL", `"redis": ["http://127.0.0.1:6379"]`, "redis"},
	{"negative key_concurrency_limit", `"key_concurrency_limit": -1`, "key_concurrency_limit"},
	{"key_rate_limit without requests", `"key_rate_limit": {"periodSeconds": 1}`, "key_rate_limit"},
	{"owner_rate_limit with a day period", `"owner_rate_limit": {"requests": 5, "periodSeconds": 86400}`, "owner_rate_limit"},
	{"key_rate_limit with a negative burst", `"key_rate_limit": {"requests": 5, "periodSeconds": 1, "burst": -1}`, "key_rate_limit"},
}

// appJSON is a config with only the access_keys app, holding settings.
func appJSON(admin, settings string) string {
	return fmt.Sprintf(`{"admin": {"listen": %q}, "apps": {"access_keys": {%s}}}`, admin, settings)
}

// TestConfigInvalidJSONValidate runs `caddy validate` on JSON configs with
// invalid access_keys settings: each is refused with a message naming the
// setting, and Caddy never panics.
func TestConfigInvalidJSONValidate(t *testing.T) {
	bin := gatewaytest.Binary(t)
	dir := t.TempDir()
	env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	run := func(t *testing.T, cfg string) (string, error) {
		path := filepath.Join(t.TempDir(), "caddy.json")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "validate", "--config", path)
		cmd.Env = env
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	admin := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	for _, tc := range badAppConfigs {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, appJSON(admin, tc.settings))
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Fatalf("caddy validate panicked:\n%s", out)
			}
			if err == nil {
				t.Fatalf("caddy validate accepted %s:\n%s", tc.settings, out)
			}
			if !strings.Contains(out, "access_keys") || !strings.Contains(out, tc.want) {
				t.Errorf("caddy validate refused %s without naming %s:\n%s", tc.settings, tc.want, out)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		if out, err := run(t, appJSON(admin, `"key_prefix": "ag:test_1.x-y", "last_used_flush": "30s", "sweep_interval": 60000000000`)); err != nil {
			t.Fatalf("caddy validate refused a valid config: %v\n%s", err, out)
		}
	})
}

// TestConfigInvalidJSONLoad loads JSON configs with invalid access_keys
// settings into a running gateway through the admin API: each load is
// refused with a message, and the gateway keeps running and serving its
// previous config.
func TestConfigInvalidJSONLoad(t *testing.T) {
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "cfgload"}
	gw := startFleetGateway(t, up, o)
	client := fleetClient(t)
	st := newFleetStore(rs.Client(t), o.prefix)
	c := st.viewerKey(t)
	wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)

	// The running config as JSON: each case replaces the app's settings.
	admin := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := admin.Get("http://" + gw.AdminAddr + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	running, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var cfg map[string]any
	if err := json.Unmarshal(running, &cfg); err != nil {
		t.Fatalf("running config: %v: %s", err, running)
	}
	apps := cfg["apps"].(map[string]any)
	good := apps["access_keys"].(map[string]any)

	for _, tc := range badAppConfigs {
		t.Run(tc.name, func(t *testing.T) {
			var bad map[string]any
			if err := json.Unmarshal([]byte("{"+tc.settings+"}"), &bad); err != nil {
				t.Fatal(err)
			}
			app := map[string]any{}
			for k, v := range good {
				app[k] = v
			}
			for k, v := range bad {
				app[k] = v
			}
			apps["access_keys"] = app
			body, _ := json.Marshal(cfg)
			apps["access_keys"] = good
			req, _ := http.NewRequest(http.MethodPost, "http://"+gw.AdminAddr+"/load", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := admin.Do(req)
			if !gw.Running() {
				t.Fatalf("the gateway exited while loading %s (load: %v)", tc.settings, err)
			}
			if err != nil {
				t.Fatalf("POST /load: %v", err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("the gateway accepted %s", tc.settings)
			}
			if !strings.Contains(string(msg), tc.want) {
				t.Errorf("refusal of %s does not name %s: %d %s", tc.settings, tc.want, resp.StatusCode, msg)
			}
			wantStatus(t, client, gw.collectors(), &c, nil, http.StatusOK)
		})
	}
	if strings.Contains(gw.Logs(), "panic") {
		t.Errorf("the gateway log shows a panic:\n%s", gw.Logs())
	}
}
