package caddymodule

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/authcache"
	"github.com/accessgate/accessgate/keystore"
)

// gate is the credential and CORS check shared by the access_keys and
// access_keys_api handlers: Basic credentials, checksum, cache or Redis,
// then the key's origin allowlist. This file holds that half of the
// request path top to bottom: check, then on a cache miss gate.verify
// (which answers refusals) and state.verify (failure limits, unknown IDs,
// the guard of an attacked Access ID in limits.go, and the one shared
// Redis load); the rejections are written by reject.go.
type gate struct {
	app       *App
	logger    *zap.Logger
	challenge string
	// errLog limits the error lines of 503s; nil: no limit.
	errLog *logLimiter
	// countUsage counts the rejections of existing keys for usage
	// analytics: set for the access_keys handler, not for the API's.
	countUsage bool
}

func (g *gate) provision(ctx caddy.Context, realm string) error {
	g.logger = ctx.Logger()
	g.challenge = fmt.Sprintf("Basic realm=%q", realm)
	g.errLog = new(logLimiter)
	app, err := ctx.App("access_keys")
	if err != nil {
		return fmt.Errorf("getting access_keys app: %w", err)
	}
	g.app = app.(*App)
	return nil
}

// check authenticates r and applies the key's CORS allowlist. When it
// returns false it has already answered the request.
//
// A cache hit costs a decode into a buffer on the stack, one digest and
// one lookup: nothing is allocated. The Access Key checksum is checked
// only on a miss, since an entry exists only for a verified credential and
// its key is a digest of the very secret presented.
func (g *gate) check(w http.ResponseWriter, r *http.Request) (*entry, bool) {
	st := g.app.acquire()
	defer st.release()
	var buf basicBuf
	idb, secb, ok := decodeBasic(headerValue(r.Header, "Authorization"), &buf)
	if !ok || !keystore.ValidAccessID(string(idb)) || len(secb) != keystore.AccessKeyLen {
		g.malformed(w, r, string(idb))
		return nil, false
	}
	k := st.credKeyOf(idb, secb)
	e, hit := st.cached(k)
	if !hit {
		if e, ok = g.verify(w, r, k, string(idb), string(secb)); !ok {
			return nil, false
		}
	}
	if origin := headerValue(r.Header, "Origin"); origin != "" {
		norm, err := keystore.NormalizeOrigin(origin)
		if err != nil || !keystore.OriginAllowed(e.ident.Allowlist, norm) {
			g.reject(w, r, rejection{status: http.StatusForbidden, reason: "origin_not_allowlisted", ident: e.ident, origin: origin})
			return nil, false
		}
	}
	st.lastUsed.touch(e, st.clock.Now())
	return e, true
}

// verify authenticates a credential that missed the cache (k is its
// cache key). When it returns false it has already answered the request.
func (g *gate) verify(w http.ResponseWriter, r *http.Request, k credKey, id, secret string) (*entry, bool) {
	if !keystore.ValidAccessKey(secret) {
		g.malformed(w, r, id)
		return nil, false
	}
	e, err := g.app.current().verify(r.Context(), k, id, secret, clientIP(r))
	if err == nil {
		return e, true
	}
	var ae *keystore.AuthError
	var le *limitError
	if errors.As(err, &le) {
		g.reject(w, r, rejection{status: http.StatusTooManyRequests, reason: "too_many_failures", accessID: id, retryAfter: le.retryAfter})
		return nil, false
	}
	if errors.As(err, &ae) {
		rej := rejection{status: http.StatusUnauthorized, reason: string(ae.Reason), accessID: id}
		if ae.Key != nil {
			rej.label, rej.ownerID, rej.keyFound = ae.Key.Label, ae.Key.OwnerID, true
		}
		g.reject(w, r, rej)
		return nil, false
	}
	if errors.Is(err, authcache.ErrBusy) {
		// Too many credentials loading at once (a cold start): the
		// client is asked to come back rather than Redis overloaded.
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(credentialLoadWait.Seconds()))))
		g.reject(w, r, rejection{status: http.StatusServiceUnavailable, reason: "too_many_loads", accessID: id, err: err})
		return nil, false
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away while waiting: no outage, no 503.
		g.reject(w, r, rejection{status: statusClientClosed, reason: "client_closed", accessID: id, err: err})
		return nil, false
	}
	g.reject(w, r, rejection{status: http.StatusServiceUnavailable, reason: "redis_unavailable", accessID: id, err: err})
	return nil, false
}

// credKeyOf derives the cache key of a credential. It does not allocate.
func (s *state) credKeyOf(id, secret []byte) credKey {
	var sum [sha256.Size]byte
	var buf [len(s.salt) + keystore.AccessIDLen + 1 + keystore.AccessKeyLen]byte
	if len(id)+len(secret) <= keystore.AccessIDLen+keystore.AccessKeyLen {
		n := copy(buf[:], s.salt[:])
		n += copy(buf[n:], id)
		buf[n] = 0
		n++
		n += copy(buf[n:], secret)
		sum = sha256.Sum256(buf[:n])
	} else {
		h := sha256.New()
		h.Write(s.salt[:])
		h.Write(id)
		h.Write([]byte{0})
		h.Write(secret)
		h.Sum(sum[:0])
	}
	return credKey(sum[:16])
}

// cached returns the cached authentication of the credential whose key is
// k, if any. It is the whole of a cache hit.
func (s *state) cached(k credKey) (*entry, bool) {
	e, ok := s.auth.Get(k)
	if ok {
		s.metrics.count(outcomeCacheHit)
	}
	return e, ok
}

// verify authenticates a well-formed credential after a cache miss for k,
// the key of (id, secret). Concurrent misses for one credential share one
// Redis lookup. Clients that failed too often are refused before any Redis
// call (*limitError), and so are Access IDs known not to exist. An Access
// ID that failed too often is guarded, never refused: a wrong key for it
// is refused without a Redis call, the right one still verified (see
// limits.go).
func (s *state) verify(ctx context.Context, k credKey, id, secret, client string) (*entry, error) {
	now := s.now()
	if d, blocked := s.byClient.blocked(client, now); blocked {
		return nil, &limitError{retryAfter: d}
	}
	if _, unknown := s.negative.Get(id); unknown {
		s.failed(id, client)
		return nil, &keystore.AuthError{Reason: keystore.ReasonUnknown, AccessID: id}
	}
	if _, over := s.byKey.blocked(id, now); over {
		if err := s.screen(ctx, id, secret); err != nil {
			var ae *keystore.AuthError
			if errors.As(err, &ae) {
				s.failed(id, client)
			}
			return nil, err
		}
	}
	// The budget counts from here, so that a wait for a load slot is
	// part of it: a miss is answered within verifyTimeout, slot or not.
	budget := time.Now().Add(verifyTimeout)
	e, _, err := s.auth.LoadMissed(ctx, k, func(ctx context.Context) (*entry, time.Time, []string, error) {
		ctx, cancel := context.WithDeadline(ctx, budget)
		defer cancel()
		var ownerDeadline time.Time
		ident, err := s.store.Verify(ctx, id, secret, keystore.VerifyOptions{
			Principal: func(ctx context.Context, ownerID string) (*keystore.Principal, error) {
				oe, err := s.principal(ctx, ownerID)
				ownerDeadline = oe.deadline
				return oe.p, err
			},
			LastUsed: s.lastUsed.get,
			Policies: s.policy,
		})
		if err != nil {
			var ae *keystore.AuthError
			if errors.As(err, &ae) && ae.Reason == keystore.ReasonUnknown {
				// Remembered before the shared load ends, so that no
				// request arriving after it looks the ID up again.
				s.negative.Add(id, struct{}{}, time.Time{})
			}
			return nil, time.Time{}, nil, err
		}
		deadline := ident.Deadline
		if !ownerDeadline.IsZero() && (deadline.IsZero() || ownerDeadline.Before(deadline)) {
			deadline = ownerDeadline
		}
		return s.newEntry(ident), deadline, []string{ident.AccessID, keystore.OwnerTag(ident.OwnerID)}, nil
	})
	var ae *keystore.AuthError
	switch {
	case err == nil:
		s.metrics.count(outcomeVerified)
	case errors.As(err, &ae):
		s.failed(id, client)
	}
	return e, err
}

// verifyTimeout bounds one verification against Redis, a wait for a load
// slot included, so that an outage answers 503 quickly instead of holding
// requests.
const verifyTimeout = 2 * time.Second

// credentialLoadWait is the longest a cache miss waits for one of the
// instance's credential load slots (loadBound) before it is answered 503
// with a Retry-After of as many seconds.
const credentialLoadWait = time.Second

// loadBound returns how many credentials an instance loads from Redis at
// once: half its Redis connection pool (per node for a cluster), so that
// however many credentials miss the cache at once, as after a start in
// front of many active keys, the loads neither exhaust the pool for the
// rest of the gateway's Redis work nor flood the server. A load holds one
// connection at a time; other misses for the same credential share its
// load and take no slot.
func loadBound(rdb redis.UniversalClient) int {
	var size int
	switch c := rdb.(type) {
	case *redis.Client:
		size = c.Options().PoolSize
	case *redis.ClusterClient:
		size = c.Options().PoolSize
	}
	if size <= 0 {
		size = 10 * runtime.GOMAXPROCS(0) // go-redis's default
	}
	return max(1, size/2)
}

// failed counts a failed authentication against its client and Access ID.
func (s *state) failed(id, client string) {
	now := s.now()
	s.byClient.fail(client, now)
	s.byKey.fail(id, now)
}

// limitError says a client address failed too often.
type limitError struct{ retryAfter time.Duration }

func (e *limitError) Error() string { return "too many failed authentication attempts" }

// malformed answers a request without well-formed credentials; id is the
// Access ID presented, if any.
func (g *gate) malformed(w http.ResponseWriter, r *http.Request, id string) {
	st := g.app.current()
	st.failed("", clientIP(r))
	if g.countUsage && keystore.ValidAccessID(id) {
		st.countMalformed(id)
	}
	g.reject(w, r, rejection{status: http.StatusUnauthorized, reason: string(keystore.ReasonMalformed), accessID: printableID(id)})
}

// clientIP returns the client address Caddy determined for r.
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// headerValue returns the first value of the header named key, which must
// be in canonical form: http.Header.Get without the canonicalisation.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// printableID keeps a presented Access ID for logs only if it has the shape
// of one, so that logs never carry arbitrary client bytes (or a secret
// typed into the wrong field).
func printableID(id string) string {
	if keystore.ValidAccessID(id) {
		return id
	}
	return ""
}
