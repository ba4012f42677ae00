package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is a named lock in Redis that one instance holds at a time, for
// periodic jobs of which one instance at a time should run. A lease ends
// by itself after its TTL, so that the jobs go on when its holder dies.
type Lease struct {
	s     *Store
	key   string
	token string
	ttl   time.Duration
}

// TakeLease takes the lease named name for ttl if nobody holds it. It
// returns nil, and no error, when someone does.
func (s *Store) TakeLease(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	l := &Lease{s: s, key: s.prefix + ":lock:" + name, token: hex.EncodeToString(b[:]), ttl: max(ttl, time.Millisecond)}
	ok, err := s.rdb.SetNX(ctx, l.key, l.token, l.ttl).Result()
	if err != nil || !ok {
		return nil, err
	}
	return l, nil
}

// extendLease moves the end of a lease that its holder still holds.
// KEYS: lease. ARGV: token, TTL in milliseconds.
var extendLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
	return 0
end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`)

// Extend makes the lease end its TTL from now. It reports false when the
// lease was lost: it ran out, or another instance holds it now.
func (l *Lease) Extend(ctx context.Context) (bool, error) {
	n, err := extendLease.Run(ctx, l.s.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	return n == 1, err
}

// WithLease runs job if it can take the lease named name, and reports
// whether it did. While job runs, the lease is extended every third of
// ttl, so that a job longer than ttl never overlaps another instance's;
// should the lease be lost all the same (Redis unreachable for longer
// than ttl), job's context is cancelled. After job the lease runs out by
// itself, so that the fleet runs job at most once per ttl.
func (s *Store) WithLease(ctx context.Context, name string, ttl time.Duration, job func(context.Context)) (bool, error) {
	l, err := s.TakeLease(ctx, name, ttl)
	if err != nil || l == nil {
		return false, err
	}
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(max(l.ttl/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-jobCtx.Done():
				return
			case <-t.C:
				ok, err := l.Extend(jobCtx)
				if err == nil && !ok {
					cancel(errLeaseLost)
					return
				}
			}
		}
	}()
	job(jobCtx)
	close(done)
	<-renewed
	return true, nil
}

// errLeaseLost is the cause of a job's cancellation when its lease was
// lost.
var errLeaseLost = errors.New("keystore: lease lost")
