package caddymodule

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/authcache"
	"github.com/accessgate/accessgate/keystore"
)

// states holds the shared state of every access_keys app configuration in
// use, so that a reload with unchanged settings keeps its Redis client,
// caches and loops.
var states = caddy.NewUsagePool()

// credKey is the cache key of a credential: its Access ID and a keyed
// digest of the secret, so the cache never holds the secret and a changed
// secret never matches an old entry.
type credKey struct {
	id  string
	sum [16]byte
}

// entry is a cached successful authentication, with the header values it
// adds precomputed.
type entry struct {
	ident     *keystore.Identity
	idHdr     []string
	ownerHdr  []string
	scopesHdr []string
}

func newEntry(id *keystore.Identity) *entry {
	return &entry{
		ident:     id,
		idHdr:     []string{id.AccessID},
		ownerHdr:  []string{id.OwnerID},
		scopesHdr: []string{strings.Join(id.Scopes, " ")},
	}
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
	audit  *auditQueue
	salt   [32]byte
	now    func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

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
	rdb, err := keystore.Dial(cfg.redisConfig())
	if err != nil {
		return nil, err
	}
	s := &state{cfg: cfg, rdb: rdb, now: time.Now}
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
		Hash:   func(k credKey) uint64 { return binary.LittleEndian.Uint64(k.sum[:8]) },
	})
	s.owners = authcache.New[string, ownerEntry](authcache.Config[string]{
		Size: 10000,
		TTL:  ttl,
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.audit = newAuditQueue(s.store, 1024, 20, 100)
	s.loop(ctx, func(ctx context.Context) { s.audit.run(ctx) })
	s.every(ctx, time.Minute, func(context.Context) {
		s.auth.SweepExpired()
		s.owners.SweepExpired()
	})
	return s, nil
}

// loop runs fn in a goroutine that Destruct waits for.
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

// Destruct stops the loops and closes the Redis client; the usage pool
// calls it when the last app instance using this state is cleaned up.
func (s *state) Destruct() error {
	s.cancel()
	s.wg.Wait()
	return s.rdb.Close()
}

// credKeyOf derives the cache key of a credential.
func (s *state) credKeyOf(id, secret string) credKey {
	h := sha256.New()
	h.Write(s.salt[:])
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	var sum [32]byte
	h.Sum(sum[:0])
	k := credKey{id: id}
	copy(k.sum[:], sum[:16])
	return k
}

// authenticate verifies a well-formed credential, from the cache when it
// can. Concurrent misses for one credential share one Redis lookup.
func (s *state) authenticate(ctx context.Context, id, secret string) (*entry, error) {
	e, _, err := s.auth.GetOrLoad(ctx, s.credKeyOf(id, secret), func(ctx context.Context) (*entry, time.Time, []string, error) {
		var ownerDeadline time.Time
		ident, err := s.store.Verify(ctx, id, secret, keystore.VerifyOptions{
			Principal: func(ctx context.Context, ownerID string) (*keystore.Principal, error) {
				oe, err := s.principal(ctx, ownerID)
				ownerDeadline = oe.deadline
				return oe.p, err
			},
		})
		if err != nil {
			return nil, time.Time{}, nil, err
		}
		deadline := ident.Deadline
		if !ownerDeadline.IsZero() && (deadline.IsZero() || ownerDeadline.Before(deadline)) {
			deadline = ownerDeadline
		}
		return newEntry(ident), deadline, []string{ident.AccessID, ownerTag(ident.OwnerID)}, nil
	})
	return e, err
}

// ownerTag is the cache tag of every entry owned by ownerID.
func ownerTag(ownerID string) string { return "owner:" + ownerID }

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
