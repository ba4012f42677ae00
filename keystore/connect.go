package keystore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig says how to reach Redis: one URL for a single server, several
// for a Redis Cluster, or a Sentinel master name with sentinel addresses.
type RedisConfig struct {
	// URLs are redis:// or rediss:// URLs (user:password@ allowed).
	URLs []string
	// SentinelMaster is the master name monitored by the sentinels.
	SentinelMaster string
	// SentinelAddrs are host:port addresses (or redis:// URLs) of sentinels.
	SentinelAddrs []string
}

// DefaultRedisURL is used when no Redis is configured.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// Timeouts applied when a URL does not set its own: short, so that an
// outage turns into a quick error rather than held requests.
const (
	defaultDialTimeout = 2 * time.Second
	// defaultIOTimeout bounds one read or write; callers' contexts (such
	// as the gateway's 2 s budget for a verification) bound calls further.
	defaultIOTimeout = 3 * time.Second
	// defaultRetries keeps an outage's 503s quick: one retry, not the
	// client library's several.
	defaultRetries = 1
)

// Dial builds a Redis client for cfg without contacting Redis.
func Dial(cfg RedisConfig) (redis.UniversalClient, error) {
	urls := cfg.URLs
	if len(urls) == 0 && cfg.SentinelMaster == "" {
		urls = []string{DefaultRedisURL}
	}
	var base *redis.Options
	if len(urls) > 0 {
		var err error
		if base, err = redis.ParseURL(urls[0]); err != nil {
			return nil, urlError("redis", urls[0], err)
		}
		if !strings.Contains(urls[0], "dial_timeout=") {
			base.DialTimeout = defaultDialTimeout
		}
		if !strings.Contains(urls[0], "read_timeout=") {
			base.ReadTimeout = defaultIOTimeout
		}
		if !strings.Contains(urls[0], "write_timeout=") {
			base.WriteTimeout = defaultIOTimeout
		}
		if !strings.Contains(urls[0], "max_retries=") {
			base.MaxRetries = defaultRetries
		}
		base.DialerRetries = defaultRetries
		base.ContextTimeoutEnabled = true
	}
	switch {
	case cfg.SentinelMaster != "":
		fo, err := failoverOptions(cfg, base)
		if err != nil {
			return nil, err
		}
		return redis.NewFailoverClient(fo), nil
	case len(urls) > 1:
		co := &redis.ClusterOptions{Username: base.Username, Password: base.Password, TLSConfig: base.TLSConfig,
			DialTimeout: base.DialTimeout, ReadTimeout: base.ReadTimeout, WriteTimeout: base.WriteTimeout,
			MaxRetries: base.MaxRetries, DialerRetries: base.DialerRetries, ContextTimeoutEnabled: true}
		for _, u := range urls {
			o, err := redis.ParseURL(u)
			if err != nil {
				return nil, urlError("redis", u, err)
			}
			if o.DB != 0 {
				return nil, fmt.Errorf("redis %q: a Redis Cluster has only database 0", redactURL(u))
			}
			co.Addrs = append(co.Addrs, o.Addr)
		}
		return redis.NewClusterClient(co), nil
	default:
		return redis.NewClient(base), nil
	}
}

// failoverOptions are the options of the Sentinel failover client of cfg;
// base, when not nil, holds the options of its first URL (credentials,
// database and TLS of the data servers).
func failoverOptions(cfg RedisConfig, base *redis.Options) (*redis.FailoverOptions, error) {
	if len(cfg.SentinelAddrs) == 0 {
		return nil, errors.New("redis_sentinel needs at least one sentinel address")
	}
	fo := &redis.FailoverOptions{MasterName: cfg.SentinelMaster, DialTimeout: defaultDialTimeout, ReadTimeout: defaultIOTimeout,
		WriteTimeout: defaultIOTimeout, MaxRetries: defaultRetries, DialerRetries: defaultRetries, ContextTimeoutEnabled: true}
	for _, a := range cfg.SentinelAddrs {
		if strings.Contains(a, "://") {
			o, err := redis.ParseURL(a)
			if err != nil {
				return nil, urlError("sentinel", a, err)
			}
			a = o.Addr
			fo.SentinelUsername, fo.SentinelPassword = o.Username, o.Password
		}
		fo.SentinelAddrs = append(fo.SentinelAddrs, a)
	}
	if base != nil {
		fo.Username, fo.Password, fo.DB, fo.TLSConfig = base.Username, base.Password, base.DB, base.TLSConfig
	}
	return fo, nil
}

// Sentinels returns, for a Sentinel configuration, the master name and
// the options of a client of each configured sentinel, with the
// credentials, TLS and timeouts that the failover client built by Dial
// uses for its sentinels; an empty name for other configurations.
func Sentinels(cfg RedisConfig) (master string, sentinels []*redis.Options, err error) {
	if cfg.SentinelMaster == "" {
		return "", nil, nil
	}
	var base *redis.Options
	if len(cfg.URLs) > 0 {
		if base, err = redis.ParseURL(cfg.URLs[0]); err != nil {
			return "", nil, urlError("redis", cfg.URLs[0], err)
		}
	}
	fo, err := failoverOptions(cfg, base)
	if err != nil {
		return "", nil, err
	}
	for _, a := range fo.SentinelAddrs {
		sentinels = append(sentinels, &redis.Options{Addr: a, Username: fo.SentinelUsername, Password: fo.SentinelPassword,
			TLSConfig: fo.TLSConfig, DialTimeout: fo.DialTimeout, ReadTimeout: fo.ReadTimeout, WriteTimeout: fo.WriteTimeout,
			MaxRetries: fo.MaxRetries, DialerRetries: fo.DialerRetries, ContextTimeoutEnabled: true})
	}
	return fo.MasterName, sentinels, nil
}

// urlError reports a bad Redis URL without repeating its password, which
// the parser's own message may quote.
func urlError(what, u string, err error) error {
	r := redactURL(u)
	return fmt.Errorf("%s %q: %s", what, r, strings.ReplaceAll(err.Error(), u, r))
}

// redactURL hides the password of a Redis URL for error messages.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	return u[:scheme+3] + "***" + u[at:]
}
