package caddymodule

import (
	"regexp"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("access_keys", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("access_keys", parseHandlerDirective)
	httpcaddyfile.RegisterDirectiveOrder("access_keys", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption reads the access_keys global option into the app.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("access_keys: the global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "access_keys", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens:
//
//	access_keys {
//		redis           <url>              # repeatable: several make a Redis Cluster
//		redis_sentinel  <master> <addr>...
//		key_prefix      <prefix>
//		cache_ttl       <duration>
//		cache_size      <entries>
//		rotation_grace  <duration>
//		last_used_flush <duration>
//		usage_flush     <duration>
//		sweep_interval  <duration>
//		max_failures_per_client <n>
//		max_failures_per_key    <n>
//		failure_window  <duration>
//		rate_limit owner|key <n>/s|<n>/m|<n>/h [burst <n>]
//		concurrency_limit key <n>
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "redis":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			a.Redis = append(a.Redis, args...)
		case "redis_sentinel":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("redis_sentinel needs a master name and at least one sentinel address")
			}
			a.RedisSentinel = &SentinelConfig{Master: args[0], Addrs: args[1:]}
		case "key_prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if !keystore.ValidPrefix(d.Val()) {
				return d.Errf("key_prefix %q: use letters, digits and _.:- only (no braces)", d.Val())
			}
			a.KeyPrefix = d.Val()
		case "cache_size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return d.Errf("cache_size %q: must be a positive whole number", d.Val())
			}
			a.CacheSize = n
		case "rate_limit":
			args := d.RemainingArgs()
			if len(args) != 2 && len(args) != 4 || len(args) == 4 && args[2] != "burst" {
				return d.Errf("rate_limit: want rate_limit owner|key N/s|N/m|N/h [burst N]")
			}
			r, err := limits.ParseRate(args[1])
			if err != nil {
				return d.Errf("rate_limit: %v", err)
			}
			if len(args) == 4 {
				if r.Burst, err = strconv.ParseInt(args[3], 10, 64); err != nil || r.Burst < 1 {
					return d.Errf("rate_limit: burst %q: must be a positive whole number", args[3])
				}
			}
			if err := r.Validate(); err != nil {
				return d.Errf("rate_limit: %v", err)
			}
			switch args[0] {
			case "owner":
				a.OwnerRateLimit = &r
			case "key":
				a.KeyRateLimit = &r
			default:
				return d.Errf("rate_limit %q: the first argument must be owner or key", args[0])
			}
		case "concurrency_limit":
			args := d.RemainingArgs()
			if len(args) != 2 || args[0] != "key" {
				return d.Errf("concurrency_limit: want concurrency_limit key N")
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || limits.ValidateConcurrency(n) != nil {
				return d.Errf("concurrency_limit %q: must be a whole number from 1 to %d", args[1], limits.MaxConcurrency)
			}
			a.KeyConcurrencyLimit = n
		case "max_failures_per_client", "max_failures_per_key":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n == 0 || n < -1 {
				return d.Errf("%s %q: must be a positive whole number, or -1 for no limit", opt, d.Val())
			}
			if opt == "max_failures_per_client" {
				a.MaxFailuresPerClient = n
			} else {
				a.MaxFailuresPerKey = n
			}
		case "cache_ttl", "rotation_grace", "last_used_flush", "usage_flush", "sweep_interval", "failure_window":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("%s %q: must be a positive duration such as 15m", opt, d.Val())
			}
			v := caddy.Duration(dur)
			switch opt {
			case "cache_ttl":
				a.CacheTTL = v
			case "rotation_grace":
				a.RotationGrace = v
			case "last_used_flush":
				a.LastUsedFlush = v
			case "usage_flush":
				a.UsageFlush = v
			case "failure_window":
				a.FailureWindow = v
			default:
				a.SweepInterval = v
			}
		default:
			return d.Errf("access_keys: unknown option %q", opt)
		}
		if d.NextArg() {
			return d.Errf("%s: unexpected argument %q", d.Val(), d.Val())
		}
	}
	return nil
}

func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// methodPattern is what an HTTP method looks like in a scope rule.
var methodPattern = regexp.MustCompile(`^[A-Z]+$`)

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	access_keys {
//		realm <realm>
//		scope <id> <METHOD|*>... <path>...
//		unmapped deny|allow
//		pass_credentials
//		preflight respond|pass
//		strict_paths on|off
//		usage on|off
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("access_keys takes no arguments; put its settings in a block (got %q)", d.Val())
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "realm":
			realm, err := parseRealm(d)
			if err != nil {
				return err
			}
			h.Realm = realm
		case "scope":
			rule, err := parseScopeRule(d)
			if err != nil {
				return err
			}
			h.Scopes = append(h.Scopes, rule)
		case "unmapped":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if v := d.Val(); v != UnmappedDeny && v != UnmappedAllow {
				return d.Errf("unmapped must be deny or allow, not %q", v)
			}
			h.Unmapped = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "pass_credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.PassCredentials = true
		case "preflight":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if v := d.Val(); v != PreflightRespond && v != PreflightPass {
				return d.Errf("preflight must be respond or pass, not %q", v)
			}
			h.Preflight = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "strict_paths", "usage":
			if !d.NextArg() {
				return d.ArgErr()
			}
			var on bool
			switch d.Val() {
			case "on":
				on = true
			case "off":
			default:
				return d.Errf("%s must be on or off, not %q", opt, d.Val())
			}
			if opt == "usage" {
				h.Usage = &on
			} else {
				h.StrictPaths = &on
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("access_keys: unknown setting %q", opt)
		}
	}
	return nil
}

// parseRealm reads the single argument of `realm <realm>`.
func parseRealm(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	realm := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return realm, nil
}

// parseScopeRule reads `scope <id> <METHOD|*>... <path>...`.
func parseScopeRule(d *caddyfile.Dispenser) (ScopeRule, error) {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return ScopeRule{}, d.Errf("scope needs an id and at least one path: scope <id> [METHOD...] <path>...")
	}
	rule := ScopeRule{Scope: args[0]}
	anyMethod := false
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if a == "*" {
			anyMethod = true
			continue
		}
		if !methodPattern.MatchString(a) {
			break
		}
		rule.Methods = append(rule.Methods, a)
	}
	if anyMethod {
		rule.Methods = nil
	}
	rule.Paths = args[i:]
	if len(rule.Paths) == 0 {
		return ScopeRule{}, d.Errf("scope %s: at least one path is required after the methods", rule.Scope)
	}
	for _, p := range rule.Paths {
		if p == "" || p[0] != '/' && p[0] != '*' {
			return ScopeRule{}, d.Errf("scope %s: path %q must start with / or *", rule.Scope, p)
		}
	}
	return rule, nil
}

// Interface guards.
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
