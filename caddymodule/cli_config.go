package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// cliTarget is where the command line reads and writes: the Redis setup,
// the key prefix and the rotation grace of the app.
type cliTarget struct {
	redis  keystore.RedisConfig
	prefix string
	grace  time.Duration
}

// target resolves the Redis setup from --config, then --redis and
// --prefix, which win over the config.
func (g *cliGlobals) target(cmd *cobra.Command) (cliTarget, error) {
	var app App
	if g.config != "" {
		a, err := cliLoadAppConfig(g.config, g.adapter)
		if err != nil {
			return cliTarget{}, err
		}
		app = a
	} else if g.adapter != "" {
		return cliTarget{}, fmt.Errorf("--adapter needs --config")
	}
	if cmd.Flags().Changed("redis") || g.config == "" {
		app.Redis, app.RedisSentinel = g.redis, nil
	}
	if g.prefix != "" {
		app.KeyPrefix = g.prefix
	}
	if app.KeyPrefix != "" && !keystore.ValidPrefix(app.KeyPrefix) {
		return cliTarget{}, fmt.Errorf("prefix %q: use letters, digits and _.:- only (no braces)", app.KeyPrefix)
	}
	app = app.withDefaults()
	return cliTarget{redis: app.redisConfig(), prefix: app.KeyPrefix, grace: time.Duration(app.RotationGrace)}, nil
}

// cliConfigFile is the part of a Caddy JSON config the command line reads.
type cliConfigFile struct {
	Apps struct {
		AccessKeys *App `json:"access_keys"`
	} `json:"apps"`
}

// cliLoadAppConfig reads the access_keys app of a Caddy config file, adapting
// it first unless it is JSON. A config without the app yields the defaults,
// as it does for a running Caddy.
func cliLoadAppConfig(file, adapterName string) (App, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return App{}, fmt.Errorf("reading config: %w", err)
	}
	if name := cliChooseAdapter(file, adapterName, body); name != "" {
		if body, err = cliAdaptConfig(file, name, body); err != nil {
			return App{}, err
		}
	}
	var cfg cliConfigFile
	if err := json.Unmarshal(body, &cfg); err != nil {
		return App{}, fmt.Errorf("config %s: %w", file, err)
	}
	if cfg.Apps.AccessKeys == nil {
		return App{}, nil
	}
	return *cfg.Apps.AccessKeys, nil
}

// cliChooseAdapter picks the adapter for a config file: the one asked for,
// none for JSON, the Caddyfile adapter otherwise.
func cliChooseAdapter(file, adapterName string, body []byte) string {
	if adapterName != "" {
		return adapterName
	}
	if strings.EqualFold(filepath.Ext(file), ".json") || json.Valid(body) {
		return ""
	}
	return "caddyfile"
}

// cliAdaptConfig turns a config file into Caddy's JSON.
func cliAdaptConfig(file, name string, body []byte) ([]byte, error) {
	adapter := caddyconfig.GetAdapter(name)
	if adapter == nil {
		return nil, fmt.Errorf("unrecognized config adapter: %s", name)
	}
	out, _, err := adapter.Adapt(body, map[string]any{"filename": file})
	if err != nil {
		return nil, fmt.Errorf("adapting config %s with %s: %w", file, name, err)
	}
	return out, nil
}

// describe names the Redis setup for error messages, without credentials.
func (t cliTarget) describe() string {
	if t.redis.SentinelMaster != "" {
		return fmt.Sprintf("Redis master %q through the sentinels %s", t.redis.SentinelMaster, strings.Join(t.redis.SentinelAddrs, ", "))
	}
	addrs := make([]string, len(t.redis.URLs))
	for i, u := range t.redis.URLs {
		addrs[i] = cliRedisAddr(u)
	}
	if len(addrs) > 1 {
		return "the Redis Cluster at " + strings.Join(addrs, ", ")
	}
	return "Redis at " + strings.Join(addrs, "")
}

// cliRedisAddr is the address a Redis URL names.
func cliRedisAddr(u string) string {
	if o, err := redis.ParseURL(u); err == nil {
		return o.Addr
	}
	return "(invalid URL)"
}

// scrub removes the passwords of the Redis setup from an error message.
func (t cliTarget) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, u := range append(append([]string(nil), t.redis.URLs...), t.redis.SentinelAddrs...) {
		if p := cliUrlPassword(u); p != "" {
			clean = strings.ReplaceAll(clean, p, "***")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// cliUrlPassword returns the password part of a URL's user info; the whole
// user info when it has no colon, since Redis may read it as a password.
func cliUrlPassword(u string) string {
	scheme := strings.Index(u, "://")
	at := strings.LastIndex(u, "@")
	if scheme < 0 || at < scheme+3 {
		return ""
	}
	info := u[scheme+3 : at]
	if i := strings.IndexByte(info, ':'); i >= 0 {
		return info[i+1:]
	}
	return info
}
