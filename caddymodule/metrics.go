package caddymodule

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/limits"
)

// Authentication outcomes counted in accessgate_authentications_total.
const (
	outcomeCacheHit    = "cache_hit"
	outcomeVerified    = "verified"
	outcomeRejected    = "rejected"
	outcomeRateLimited = "rate_limited"
	outcomeUnavailable = "unavailable"
	outcomeForbidden   = "forbidden"
	// outcomeClientClosed: the client went away before its credential was
	// verified.
	outcomeClientClosed = "client_closed"
)

var outcomes = [...]string{outcomeCacheHit, outcomeVerified, outcomeRejected, outcomeRateLimited, outcomeUnavailable, outcomeForbidden, outcomeClientClosed}

// stateMetrics are the counters of the shared state. They are plain
// atomics so that the state, which outlives reloads, never depends on a
// registry; each app instance exposes them in its own registry.
type stateMetrics struct {
	outcomes      [len(outcomes)]atomic.Uint64
	invalidations atomic.Uint64
	redisErrors   atomic.Uint64
	// limited counts the decisions of the usage limits: index 0 the
	// requests admitted, the others the refusals by limits.Kind.
	limited      [limits.KindConcurrency + 1]atomic.Uint64
	redisLatency prometheus.Histogram
	// recoveries counts the replaced invalidation subscriptions by
	// outcome: recoveryReplayed, recoveryFlushed.
	recoveries [2]atomic.Uint64
}

func newStateMetrics() *stateMetrics {
	return &stateMetrics{
		redisLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "accessgate",
			Name:      "redis_command_duration_seconds",
			Help:      "Latency of Redis commands and pipelines issued by accessgate.",
			Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
}

func (m *stateMetrics) count(outcome string) {
	for i, o := range outcomes {
		if o == outcome {
			m.outcomes[i].Add(1)
			return
		}
	}
}

// register exposes the state's metrics in reg.
func (s *state) registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	m := s.metrics
	var cs []prometheus.Collector
	for i, o := range outcomes {
		i := i
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "accessgate", Name: "authentications_total",
			Help:        "Authentications by outcome.",
			ConstLabels: prometheus.Labels{"outcome": o},
		}, func() float64 { return float64(m.outcomes[i].Load()) }))
	}
	stat := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "accessgate", Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	cs = append(cs,
		stat("cache_hits_total", "Authentication cache hits.", func() uint64 { return s.auth.Stats().Hits }),
		stat("cache_misses_total", "Authentication cache misses.", func() uint64 { return s.auth.Stats().Misses }),
		stat("cache_evictions_total", "Authentication cache entries evicted to make room.", func() uint64 { return s.auth.Stats().Evictions }),
		stat("cache_expirations_total", "Authentication cache entries dropped because their deadline passed.", func() uint64 { return s.auth.Stats().Expirations }),
		stat("cache_invalidations_total", "Authentication cache entries dropped by invalidation.", m.invalidations.Load),
		stat("redis_errors_total", "Failed Redis commands.", m.redisErrors.Load),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "accessgate", Name: "cache_entries", Help: "Entries in the authentication cache."},
			func() float64 { return float64(s.auth.Len()) }),
		m.redisLatency,
		stat("usage_counts_dropped_total", "Usage counts lost because too many (key, minute) pairs waited to be written.",
			func() uint64 { return uint64(s.usage.Dropped() + s.unverified.Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "accessgate", Name: "usage_counts_pending",
			Help: "(key, minute) pairs of usage counts held in memory, waiting to be written to Redis."},
			func() float64 { return float64(s.usage.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "accessgate", Name: "usage_limits_local",
			Help: "1 while usage limits are held by this instance alone because Redis cannot be reached, else 0."},
			func() float64 {
				if s.limiter.Degraded() {
					return 1
				}
				return 0
			}),
	)
	for k := range m.limited {
		outcome := "allowed"
		if k > 0 {
			outcome = limits.Kind(k).String()
		}
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "accessgate", Name: "usage_limit_decisions_total",
			Help:        "Requests subject to usage limits, by outcome: allowed, or the limit that refused them.",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(m.limited[k].Load()) }))
	}
	for k, outcome := range [...]string{recoveryReplayed: "replayed", recoveryFlushed: "flushed"} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "accessgate", Name: "invalidation_recoveries_total",
			Help:        "Invalidation subscriptions replaced after a loss, by how the messages missed meanwhile were recovered: replayed from the changes stream, or the caches flushed.",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(m.recoveries[k].Load()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return err
		}
	}
	return nil
}

// redisHook times Redis commands and counts their failures.
type redisHook struct{ m *stateMetrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.m.redisErrors.Add(1)
		}
		return c, err
	}
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(start, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe(start, err)
		return err
	}
}

func (h redisHook) observe(start time.Time, err error) {
	h.m.redisLatency.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		h.m.redisErrors.Add(1)
	}
}
