package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// Target is where the command line reads and writes: the Redis setup,
// the key prefix and the rotation grace of the app.
type Target struct {
	// Redis says how to reach Redis.
	Redis keystore.RedisConfig
	// Prefix starts every Redis key. Default: keystore.DefaultPrefix.
	Prefix string
	// Grace is how long the old key of a rotation keeps working; rotate
	// states it. Default: keystore.DefaultRotationGrace.
	Grace time.Duration
}

// ReadConfig reads the Target of a config file, adapting it first with
// the named adapter ("" to pick one from the file). It fills the defaults
// of the config's own program, as a running instance would.
type ReadConfig func(file, adapter string) (Target, error)

// target resolves the Redis setup from --config, then --redis and
// --prefix, which win over the config.
func (g *globals) target(cmd *cobra.Command) (Target, error) {
	var t Target
	if g.config != "" {
		c, err := g.read(g.config, g.adapter)
		if err != nil {
			return Target{}, err
		}
		t = c
	} else if g.adapter != "" {
		return Target{}, fmt.Errorf("--adapter needs --config")
	}
	if cmd.Flags().Changed("redis") || g.config == "" {
		t.Redis = keystore.RedisConfig{URLs: g.redis}
	}
	if g.prefix != "" {
		t.Prefix = g.prefix
	}
	if t.Prefix != "" && !keystore.ValidPrefix(t.Prefix) {
		return Target{}, fmt.Errorf("prefix %q: use letters, digits and _.:- only (no braces)", t.Prefix)
	}
	if t.Prefix == "" {
		t.Prefix = keystore.DefaultPrefix
	}
	if t.Grace == 0 {
		t.Grace = keystore.DefaultRotationGrace
	}
	return t, nil
}

// describe names the Redis setup for error messages, without credentials.
func (t Target) describe() string {
	if t.Redis.SentinelMaster != "" {
		return fmt.Sprintf("Redis master %q through the sentinels %s", t.Redis.SentinelMaster, strings.Join(t.Redis.SentinelAddrs, ", "))
	}
	addrs := make([]string, len(t.Redis.URLs))
	for i, u := range t.Redis.URLs {
		addrs[i] = redisAddr(u)
	}
	if len(addrs) > 1 {
		return "the Redis Cluster at " + strings.Join(addrs, ", ")
	}
	return "Redis at " + strings.Join(addrs, "")
}

// redisAddr is the address a Redis URL names.
func redisAddr(u string) string {
	if o, err := redis.ParseURL(u); err == nil {
		return o.Addr
	}
	return "(invalid URL)"
}

// scrub removes the passwords of the Redis setup from an error message.
func (t Target) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, u := range append(append([]string(nil), t.Redis.URLs...), t.Redis.SentinelAddrs...) {
		if p := urlPassword(u); p != "" {
			clean = strings.ReplaceAll(clean, p, "***")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// urlPassword returns the password part of a URL's user info; the whole
// user info when it has no colon, since Redis may read it as a password.
func urlPassword(u string) string {
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
