package caddymodule

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/authcache"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
	"github.com/accessgate/accessgate/usage"
)

// states holds the shared state of every access_keys app configuration in
// use, so that a reload with unchanged settings keeps its Redis client,
// caches and loops.
var states = caddy.NewUsagePool()

// credKey is the cache key of a credential: a keyed digest (SHA-256 under
// the state's random salt, truncated to 128 bits) of its Access ID and
// Access Key. The cache never holds the secret, a digest of it that can be
// checked without the salt, or the Access ID presented by the client, and
// a wrong or changed secret never matches an entry.
type credKey [16]byte

// Indexes of entry.hdrs and entry.vals.
const (
	valAccessID = iota
	valOwner
	valScopes
)

// entry is a cached successful authentication, with the header and
// placeholder values it adds precomputed.
type entry struct {
	ident *keystore.Identity
	// hdrs are the values of X-Access-Id, X-Access-Owner and
	// X-Access-Scopes.
	hdrs [3]string
	// vals are the same values boxed once for the replacer, so that
	// setting the placeholders allocates nothing.
	vals [3]any
	// lastMark is the Unix second of the last use recorded for this entry.
	lastMark atomic.Int64
	// guard, set on the guard entry of an Access ID over its failure
	// limit only (see limits.go), is what it keeps of the key's record.
	guard *keystore.Key
	// subject is the usage limits that apply to the key's requests; nil
	// when none does.
	subject *limits.Subject
	// use counts the key's allowed requests for usage analytics without a
	// lock (usage.Cell); nil in entries built outside a state (tests).
	use *usage.Cell
}

func newEntry(id *keystore.Identity) *entry {
	e := &entry{ident: id, hdrs: [3]string{id.AccessID, id.OwnerID, strings.Join(id.Scopes, " ")}}
	for i, v := range e.hdrs {
		e.vals[i] = v
	}
	return e
}

// newEntry returns the cache entry of a verified identity, with the usage
// limits that apply to it: the key's and owner's overrides, else the
// defaults.
func (s *state) newEntry(id *keystore.Identity) *entry {
	e := newEntry(id)
	e.use = s.usage.NewCell(id.AccessID)
	sub := &limits.Subject{KeyID: id.LimitID, OwnerID: id.OwnerID}
	if sub.KeyID == "" {
		sub.KeyID = id.AccessID
	}
	if r := cmp.Or(id.RateLimit, s.cfg.KeyRateLimit); r != nil {
		sub.KeyRate = *r
	}
	if r := cmp.Or(id.OwnerRateLimit, s.cfg.OwnerRateLimit); r != nil {
		sub.OwnerRate = *r
	}
	if id.Quota != nil {
		sub.Quota = *id.Quota
	}
	sub.Concurrency = s.cfg.KeyConcurrencyLimit
	if id.ConcurrencyLimit != nil {
		sub.Concurrency = *id.ConcurrencyLimit
	}
	if sub.Limited() {
		e.subject = sub
	}
	return e
}

// ownerEntry is a cached owner with the deadline of its cache entry.
type ownerEntry struct {
	p        *keystore.Principal
	deadline time.Time
}

// state is what every app instance with the same settings shares.
type state struct {
	cfg    App
	rdb    redis.UniversalClient
	store  *keystore.Store
	auth   *authcache.Cache[credKey, *entry]
	owners *authcache.Cache[string, ownerEntry]
	// policies holds the key policies (under the one key struct{}), so
	// that a verification reads no key every instance reads.
	policies *authcache.Cache[struct{}, policyEntry]
	// negative remembers Access IDs that do not exist, briefly, so that
	// repeated requests with one made-up ID cost Redis one lookup.
	negative *authcache.Cache[string, struct{}]
	// byClient and byKey limit failed authentications.
	byClient *failureLimiter
	byKey    *failureLimiter
	lastUsed *lastUseTracker
	// limiter enforces the usage limits.
	limiter *limits.Limiter
	audit   *auditQueue
	// usage counts the requests of each key per minute until the
	// usage flush writes them to usageStore (usagecount.go).
	usage *usage.Recorder
	// unverified counts requests whose Access Key failed its checksum,
	// by the Access ID they named, until a flush learns which of those
	// IDs exist (usagecount.go).
	unverified   *usage.Recorder
	usageStore   *usage.Store
	usageFailing atomic.Bool
	metrics      *stateMetrics
	salt         [32]byte
	now          func() time.Time
	// clock is the coarse clock of the authentication cache and of
	// last-use marks; a loop of the state advances it.
	clock *authcache.Clock

	subscriptionUp atomic.Bool
	// follow moves the subscription to a new master on a Sentinel-managed
	// Redis; nil on other topologies.
	follow *masterFollow

	// refs counts the holds on the state: one of the usage pool while an
	// app instance uses it, and one per request using it. The last
	// release closes it, so a reload never closes a state under a request.
	refs atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// clockTick is the resolution of the coarse clock: cached authentications
// end at most about this late.
const clockTick = 10 * time.Millisecond

// negativeTTL is how long an unknown Access ID is remembered.
const negativeTTL = 30 * time.Second

func (s *state) logger() *zap.Logger { return caddy.Log().Named("access_keys") }

func auditLogger() *zap.Logger { return caddy.Log().Named("access_keys.audit") }

// logEvent writes an audit event to Caddy's log.
func logEvent(e keystore.Event) {
	l := auditLogger()
	fields := []zap.Field{
		zap.String("eventId", e.EventID),
		zap.String("eventName", e.EventName),
		zap.Time("eventTime", e.EventTime),
		zap.String("subsystem", e.Subsystem),
		zap.Any("operator", e.Operator),
	}
	if e.AccessKey != nil {
		fields = append(fields, zap.Any("accessKey", e.AccessKey))
	}
	if e.From != nil {
		fields = append(fields, zap.Any("from", e.From))
	}
	if e.To != nil {
		fields = append(fields, zap.Any("to", e.To))
	}
	if e.Reason != "" {
		fields = append(fields, zap.String("reason", e.Reason))
	}
	if e.Details != nil {
		fields = append(fields, zap.Any("details", e.Details))
	}
	l.Info(e.EventName, fields...)
}

func newState(cfg App) (*state, error) {
	routeRedisLog()
	rdb, err := keystore.Dial(cfg.redisConfig())
	if err != nil {
		return nil, err
	}
	master, sentinels, err := keystore.Sentinels(cfg.redisConfig())
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	s := &state{cfg: cfg, rdb: rdb, now: time.Now, clock: authcache.NewClock(), metrics: newStateMetrics(), lastUsed: newLastUseTracker()}
	s.refs.Store(1) // the usage pool's
	rdb.AddHook(redisHook{s.metrics})
	if _, err := rand.Read(s.salt[:]); err != nil {
		return nil, err
	}
	s.store = keystore.New(rdb, keystore.Options{
		Prefix:        cfg.KeyPrefix,
		RotationGrace: time.Duration(cfg.RotationGrace),
		OnEvent:       logEvent,
	})
	ttl := time.Duration(cfg.CacheTTL)
	s.auth = authcache.New[credKey, *entry](authcache.Config[credKey]{
		Size:   cfg.CacheSize,
		TTL:    ttl,
		Shards: 16,
		Hash:   func(k credKey) uint64 { return binary.LittleEndian.Uint64(k[:8]) },
		Now:    s.clock.Now,

		MaxLoads: loadBound(rdb), LoadWait: credentialLoadWait,
	})
	s.owners = authcache.New[string, ownerEntry](authcache.Config[string]{Size: 10000, TTL: ttl})
	s.policies = authcache.New[struct{}, policyEntry](authcache.Config[struct{}]{Size: 1, TTL: ttl})
	s.negative = authcache.New[string, struct{}](authcache.Config[string]{Size: 100000, TTL: min(ttl, negativeTTL)})
	window := time.Duration(cfg.FailureWindow)
	s.byClient = newFailureLimiter(cfg.MaxFailuresPerClient, window, 100000)
	s.byKey = newFailureLimiter(cfg.MaxFailuresPerKey, window, 100000)
	s.audit = newAuditQueue(s.store, logEvent, 1024, 20, 100)
	s.usage = usage.NewRecorder(usageRecorderPairs)
	s.unverified = usage.NewRecorder(unverifiedPairs)
	s.usageStore = usage.NewStore(rdb, cfg.KeyPrefix)
	s.limiter = limits.New(limits.Options{Redis: rdb, Prefix: cfg.KeyPrefix, Logger: s.logger(), MaxSubjects: cfg.CacheSize})

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if master != "" {
		s.follow = &masterFollow{}
		s.loop(ctx, func(ctx context.Context) { s.watchSentinels(ctx, master, sentinels) })
	}
	s.loop(ctx, func(ctx context.Context) { s.clock.Run(ctx, clockTick) })
	s.loop(ctx, s.audit.run)
	s.loop(ctx, s.subscribe)
	s.loop(ctx, s.runUsageFlush)
	s.every(ctx, time.Duration(cfg.LastUsedFlush), s.flushLastUsed)
	s.loop(ctx, s.migrate)
	s.every(ctx, time.Duration(cfg.SweepInterval), s.sweep)
	s.every(ctx, time.Minute, func(context.Context) {
		s.auth.SweepExpired()
		s.owners.SweepExpired()
		s.negative.SweepExpired()
	})
	return s, nil
}

// migrate brings a store written by the previous version to the layout
// of due indexes and sharded last-use times, at start-up, under a lease
// (one instance does it). Should it fail, every sweep tries again, and
// sweeps read every key until it is done.
func (s *state) migrate(ctx context.Context) {
	if err := s.store.Migrate(ctx); err != nil {
		s.logger().Warn("migrating the key indexes failed; the sweep will try again", zap.Error(err))
	}
}

// sweep records expired and unused keys as deactivated. One instance per
// interval does the work, under a lease that lasts as long as the work
// does; the store makes each change exactly once anyway.
func (s *state) sweep(ctx context.Context) {
	// A lease that cannot be taken (Redis unreachable) means no sweep
	// this interval; the next one tries again. With nothing due, a sweep
	// costs a few commands whatever the number of keys (keystore's due
	// indexes).
	interval := time.Duration(s.cfg.SweepInterval)
	_, _ = s.store.WithLease(ctx, "sweep", interval*9/10, func(ctx context.Context) {
		res, err := s.store.Sweep(ctx)
		if err != nil {
			s.logger().Warn("sweep failed", zap.Error(err))
			return
		}
		if res.Expired+res.Unused > 0 {
			s.logger().Info("keys deactivated by policy", zap.Int("expired", res.Expired), zap.Int("unused", res.Unused), zap.Int("scanned", res.Scanned))
		}
		// The index repair scans every record and index entry, so one
		// instance runs it at most once per repairInterval.
		_, _ = s.store.WithLease(ctx, "repair", repairInterval, s.repair)
	})
}

// repair makes the key indexes agree with the records.
func (s *state) repair(ctx context.Context) {
	rep, err := s.store.RepairIndexes(ctx)
	if err != nil {
		s.logger().Warn("index repair failed", zap.Error(err))
		return
	}
	if rep != (keystore.RepairResult{}) {
		s.logger().Info("key indexes repaired", zap.Int("indexed", rep.Indexed), zap.Int("unindexed", rep.Unindexed),
			zap.Int("due_indexed", rep.DueIndexed), zap.Int("due_unindexed", rep.DueUnindexed),
			zap.Int("pending_removed", rep.PendingRemoved), zap.Int("last_used_removed", rep.LastUsedRemoved))
	}
}

// repairInterval is how often the key indexes are checked against the
// records.
const repairInterval = time.Hour

// loop runs fn in a goroutine that close waits for.
func (s *state) loop(ctx context.Context, fn func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(ctx)
	}()
}

// every runs fn every d until ctx ends.
func (s *state) every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	s.loop(ctx, func(ctx context.Context) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	})
}

// Destruct releases the usage pool's hold, which it calls when the last
// app instance using the state is cleaned up. The state closes then, or,
// when requests still use it (old handlers after a reload), once the last
// of them releases it.
func (s *state) Destruct() error {
	if s.refs.Add(-1) == 0 {
		return s.close()
	}
	return nil
}

// hold takes a hold on the state for a request, unless it is closing.
func (s *state) hold() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release ends a request's hold. The last release of a state that the
// usage pool has released closes it, off the request's path.
func (s *state) release() {
	if s.refs.Add(-1) == 0 {
		go func() {
			if err := s.close(); err != nil {
				s.logger().Warn("closing the state of replaced settings", zap.Error(err))
			}
		}()
	}
}

// close stops the loops, writes the last-used times and usage counts held,
// and closes the Redis client.
func (s *state) close() error {
	s.cancel()
	s.wg.Wait()
	flush, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	s.flushLastUsed(flush)
	cancel()
	flush, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	s.flushUsage(flush)
	cancel()
	s.limiter.Close()
	return s.rdb.Close()
}

// principal resolves an owner from the owner cache or Redis. The entry's
// deadline bounds every authentication derived from it, so a change of the
// owner's roles shows once those entries end.
func (s *state) principal(ctx context.Context, ownerID string) (ownerEntry, error) {
	oe, _, err := s.owners.GetOrLoad(ctx, ownerID, func(ctx context.Context) (ownerEntry, time.Time, []string, error) {
		p, err := s.store.Principal(ctx, ownerID)
		if err != nil {
			return ownerEntry{}, time.Time{}, nil, err
		}
		d := s.now().Add(time.Duration(s.cfg.CacheTTL))
		return ownerEntry{p: p, deadline: d}, d, []string{ownerID}, nil
	})
	return oe, err
}

// policyEntry is the cached key policies with the deadline of their cache
// entry.
type policyEntry struct {
	p        keystore.Policies
	deadline time.Time
}

// policy returns the key policies from the instance's cache or Redis, and
// until when that copy may be used. A policy change announces "all", which
// empties the cache (forgetAll); the deadline bounds the authentications
// derived from the copy when that message is lost.
func (s *state) policy(ctx context.Context) (keystore.Policies, time.Time, error) {
	pe, _, err := s.policies.GetOrLoad(ctx, struct{}{}, func(ctx context.Context) (policyEntry, time.Time, []string, error) {
		p, err := s.store.Policies(ctx)
		if err != nil {
			return policyEntry{}, time.Time{}, nil, err
		}
		d := s.now().Add(time.Duration(s.cfg.CacheTTL))
		return policyEntry{p: p, deadline: d}, d, nil, nil
	})
	return pe.p, pe.deadline, err
}
