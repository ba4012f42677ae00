package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

func init() {
	caddy.RegisterModule(App{})
}

// Defaults of the app's settings.
const (
	DefaultCacheTTL      = 15 * time.Minute
	DefaultCacheSize     = 100000
	DefaultRotationGrace = keystore.DefaultRotationGrace
	DefaultLastUsedFlush = time.Minute
	DefaultSweepInterval = time.Minute
	DefaultUsageFlush    = 10 * time.Second

	DefaultMaxFailuresPerClient = 100
	DefaultMaxFailuresPerKey    = 20
	DefaultFailureWindow        = time.Minute
)

// App is the access_keys app: one per Caddy instance, configured in the
// global options. It owns the Redis client, the caches and the background
// loops that every access_keys and access_keys_api handler shares. Its
// state survives `caddy reload` when the settings do not change.
type App struct {
	// Redis URLs (redis:// or rediss://, user:password@ allowed). One URL
	// names a single server; several name the nodes of a Redis Cluster.
	// Default: redis://127.0.0.1:6379/0.
	Redis []string `json:"redis,omitempty"`

	// RedisSentinel, when set, reaches Redis through Sentinel. A URL in
	// Redis, if given, supplies the master's credentials and database.
	RedisSentinel *SentinelConfig `json:"redis_sentinel,omitempty"`

	// KeyPrefix starts every Redis key. Default: accessgate.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// CacheTTL is the longest life of a cached successful authentication.
	// Default: 15m.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// CacheSize is the number of entries in the authentication cache.
	// Default: 100000.
	CacheSize int `json:"cache_size,omitempty"`

	// RotationGrace is how long the old key works after a rotation.
	// Default: 5m.
	RotationGrace caddy.Duration `json:"rotation_grace,omitempty"`

	// LastUsedFlush is how often last-used times are written to Redis.
	// Default: 1m.
	LastUsedFlush caddy.Duration `json:"last_used_flush,omitempty"`

	// UsageFlush is how often the usage counts held in memory are written
	// to Redis (also right after each minute ends). Default: 10s.
	UsageFlush caddy.Duration `json:"usage_flush,omitempty"`

	// SweepInterval is how often expiry and unused-key deactivation are
	// recorded. Default: 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// MaxFailuresPerClient is how many failed authentications one client
	// address may make in FailureWindow before its uncached requests get
	// 429. Default: 100; -1 disables the limit.
	MaxFailuresPerClient int `json:"max_failures_per_client,omitempty"`

	// MaxFailuresPerKey is how many failed authentications one Access ID
	// may see in FailureWindow before it is guarded: its wrong keys are
	// then refused from an in-process copy of the key's hash, without a
	// Redis call, while its right key still passes (never 429, since
	// Access IDs are not secret). Default: 20; -1 disables.
	MaxFailuresPerKey int `json:"max_failures_per_key,omitempty"`

	// FailureWindow is the window of both failure limits, and how long a
	// guarded Access ID keeps its copy. Default: 1m.
	FailureWindow caddy.Duration `json:"failure_window,omitempty"`

	// OwnerRateLimit is the default rate limit of every owner: all keys of
	// one user or service account together, fleet-wide. An owner's own
	// rateLimit (management API) overrides it. Default: none.
	OwnerRateLimit *limits.Rate `json:"owner_rate_limit,omitempty"`

	// KeyRateLimit is the default rate limit of every access key,
	// fleet-wide. A key's own rateLimit overrides it. Default: none.
	KeyRateLimit *limits.Rate `json:"key_rate_limit,omitempty"`

	// KeyConcurrencyLimit is the default number of requests one access key
	// may have in flight, fleet-wide. A key's own concurrencyLimit
	// overrides it. Default: 0, no limit.
	KeyConcurrencyLimit int `json:"key_concurrency_limit,omitempty"`

	// state is set by Provision and kept after Cleanup: handlers of a
	// replaced config may still serve requests (see acquire).
	state    *state
	logger   *zap.Logger
	key      string
	released bool
}

// SentinelConfig names a Redis master monitored by Sentinel.
type SentinelConfig struct {
	// Master is the name the sentinels monitor the master under.
	Master string `json:"master"`
	// Addrs are the sentinels' host:port addresses.
	Addrs []string `json:"addrs"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "access_keys",
		New: func() caddy.Module { return new(App) },
	}
}

// withDefaults returns a copy of the settings with every default filled.
func (a App) withDefaults() App {
	if a.KeyPrefix == "" {
		a.KeyPrefix = keystore.DefaultPrefix
	}
	if len(a.Redis) == 0 && a.RedisSentinel == nil {
		a.Redis = []string{keystore.DefaultRedisURL}
	}
	if a.CacheTTL == 0 {
		a.CacheTTL = caddy.Duration(DefaultCacheTTL)
	}
	if a.CacheSize == 0 {
		a.CacheSize = DefaultCacheSize
	}
	if a.RotationGrace == 0 {
		a.RotationGrace = caddy.Duration(DefaultRotationGrace)
	}
	if a.LastUsedFlush == 0 {
		a.LastUsedFlush = caddy.Duration(DefaultLastUsedFlush)
	}
	if a.MaxFailuresPerClient == 0 {
		a.MaxFailuresPerClient = DefaultMaxFailuresPerClient
	}
	if a.MaxFailuresPerKey == 0 {
		a.MaxFailuresPerKey = DefaultMaxFailuresPerKey
	}
	if a.FailureWindow == 0 {
		a.FailureWindow = caddy.Duration(DefaultFailureWindow)
	}
	if a.SweepInterval == 0 {
		a.SweepInterval = caddy.Duration(DefaultSweepInterval)
	}
	if a.UsageFlush == 0 {
		a.UsageFlush = caddy.Duration(DefaultUsageFlush)
	}
	return a
}

// Validate checks the settings. Provision has checked them already,
// before anything started; Validate repeats the check without contacting
// Redis.
func (a *App) Validate() error { return a.check() }

// check refuses settings the app cannot run with: negative durations and
// sizes (zero means the default), limits below -1, a key prefix outside
// letters, digits and _.:- (a brace would break Redis Cluster hash tags)
// and an incomplete Sentinel setting.
func (a *App) check() error {
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{
		{"cache_ttl", a.CacheTTL},
		{"rotation_grace", a.RotationGrace},
		{"last_used_flush", a.LastUsedFlush},
		{"usage_flush", a.UsageFlush},
		{"sweep_interval", a.SweepInterval},
		{"failure_window", a.FailureWindow},
	} {
		if d.v < 0 {
			return fmt.Errorf("access_keys: %s must be a positive duration, not %v", d.name, time.Duration(d.v))
		}
	}
	switch {
	case a.CacheSize < 0:
		return fmt.Errorf("access_keys: cache_size must be a positive number, not %d", a.CacheSize)
	case a.MaxFailuresPerClient < -1:
		return fmt.Errorf("access_keys: max_failures_per_client must be positive, or -1 for no limit, not %d", a.MaxFailuresPerClient)
	case a.MaxFailuresPerKey < -1:
		return fmt.Errorf("access_keys: max_failures_per_key must be positive, or -1 for no limit, not %d", a.MaxFailuresPerKey)
	case a.KeyConcurrencyLimit < 0 || a.KeyConcurrencyLimit > limits.MaxConcurrency:
		return fmt.Errorf("access_keys: key_concurrency_limit must be from 1 to %d, not %d", limits.MaxConcurrency, a.KeyConcurrencyLimit)
	case a.OwnerRateLimit != nil && a.OwnerRateLimit.Validate() != nil:
		return fmt.Errorf("access_keys: owner_rate_limit: %v", a.OwnerRateLimit.Validate())
	case a.KeyRateLimit != nil && a.KeyRateLimit.Validate() != nil:
		return fmt.Errorf("access_keys: key_rate_limit: %v", a.KeyRateLimit.Validate())
	case a.KeyPrefix != "" && !keystore.ValidPrefix(a.KeyPrefix):
		return fmt.Errorf("access_keys: key_prefix %q: use 1-64 letters, digits and _.:- only", a.KeyPrefix)
	case a.RedisSentinel != nil && (a.RedisSentinel.Master == "" || len(a.RedisSentinel.Addrs) == 0):
		return errors.New("access_keys: redis_sentinel needs a master name and at least one address")
	case a.RedisSentinel != nil && len(a.Redis) > 1:
		return errors.New("access_keys: redis_sentinel cannot be combined with a Redis Cluster")
	}
	return nil
}

func (a App) redisConfig() keystore.RedisConfig {
	rc := keystore.RedisConfig{URLs: a.Redis}
	if a.RedisSentinel != nil {
		rc.SentinelMaster, rc.SentinelAddrs = a.RedisSentinel.Master, a.RedisSentinel.Addrs
	}
	return rc
}

// Provision checks the settings, then gets the shared state for them,
// creating it the first time; a reload with the same settings reuses it.
// Caddy provisions before it validates, so the check comes first: invalid
// settings must be refused before any loop starts.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.check(); err != nil {
		return err
	}
	cfg := a.withDefaults()
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	a.key = string(b)
	v, _, err := states.LoadOrNew(a.key, func() (caddy.Destructor, error) {
		return newState(cfg)
	})
	if err != nil {
		return fmt.Errorf("access_keys: %w", err)
	}
	a.state = v.(*state)
	return a.state.registerMetrics(ctx.GetMetricsRegistry())
}

// activeApp is the app instance of the running config: the one started
// last and not stopped since.
var activeApp atomic.Pointer[App]

// Start implements caddy.App. The background loops belong to the shared
// state and are already running.
func (a *App) Start() error {
	activeApp.Store(a)
	return nil
}

// Stop implements caddy.App.
func (a *App) Stop() error {
	activeApp.CompareAndSwap(a, nil)
	return nil
}

// Cleanup releases this instance's hold on the shared state; the last
// holder closes it once no request uses it any more.
func (a *App) Cleanup() error {
	if a.state == nil || a.released {
		return nil
	}
	a.released = true
	_, err := states.Delete(a.key)
	return err
}

// stateRef is a state held for a request.
type stateRef struct {
	*state
	held bool
}

// release ends the hold.
func (r stateRef) release() {
	if r.held {
		r.state.release()
	}
}

// acquire returns the state a request uses, held until its release: the
// app's own, or, when a reload has replaced the settings and the own
// state has closed, that of the running config. Requests that the old
// server of a reload still serves (grace_period) thus never meet a closed
// state. A hold costs two atomic additions.
func (a *App) acquire() stateRef {
	if a.state.hold() {
		return stateRef{a.state, true}
	}
	if cur := activeApp.Load(); cur != nil && cur.state.hold() {
		return stateRef{cur.state, true}
	}
	return stateRef{state: a.state} // nothing runs: its Redis calls fail
}

// current returns the state acquire would, without a hold, for code that
// runs while its request holds one.
func (a *App) current() *state {
	if a.state.refs.Load() > 0 {
		return a.state
	}
	if cur := activeApp.Load(); cur != nil && cur.state.refs.Load() > 0 {
		return cur.state
	}
	return a.state
}

// holdFor acquires a state for as long as ctx lives.
func (a *App) holdFor(ctx context.Context) *state {
	r := a.acquire()
	if r.held {
		context.AfterFunc(ctx, r.release)
	}
	return r.state
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
