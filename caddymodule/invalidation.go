package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
)

// subscriptionCheck is how long the invalidation subscription may stay
// quiet before it is asked for a PONG, and how long that PONG may take
// before the subscription counts as lost: a silent (half-open) connection
// is noticed within twice this.
const subscriptionCheck = 10 * time.Second

// errSilent says the subscription did not answer a PING in time.
var errSilent = fmt.Errorf("no answer to PING within %v", subscriptionCheck)

// subscribe listens for invalidation messages until ctx ends and drops the
// matching cache entries. A subscription that fails or goes silent is
// replaced, and every subscription after the first flushes the caches,
// since messages may have been missed while there was none; cache_ttl
// remains the bound when messages are lost otherwise.
func (s *state) subscribe(ctx context.Context) {
	again := false
	for ctx.Err() == nil {
		err := s.listen(ctx, again)
		if ctx.Err() != nil {
			return
		}
		again = true
		s.subscriptionLost(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// listen holds one subscription until it fails, goes silent or ctx ends,
// and returns why it ended. The subscription flushes the caches when it is
// confirmed if again is set.
func (s *state) listen(ctx context.Context, again bool) error {
	ps := s.rdb.Subscribe(ctx, s.store.InvalidationChannel())
	// A blocked receive does not watch ctx: closing the subscription is
	// what ends it promptly when the state is destroyed.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, subscriptionCheck)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case !redisTimeout(err):
				return err
			case pinged:
				// A half-open connection: writes still succeed, nothing
				// comes back.
				return errSilent
			}
			// Quiet channel: ask for a PONG, which the next receive must
			// bring (or any other message).
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if again {
				// The subscription has its own connection and may come back
				// before the command pool does; flushing first would turn
				// the cached credentials served through the outage into
				// 503s until then.
				s.awaitCommands(ctx)
				s.flush("invalidation subscription re-established")
			}
			again = true
			s.subscriptionUp.Store(true)
		case *redis.Message:
			s.invalidate(m.Payload)
		}
	}
}

// awaitCommands waits until Redis answers commands again, or ctx ends.
func (s *state) awaitCommands(ctx context.Context) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *state) subscriptionLost(err error) {
	if s.subscriptionUp.Swap(false) {
		s.logger().Warn("invalidation subscription lost; the cache will be flushed when it is back", zap.Error(err))
	}
}

// invalidate applies one invalidation message.
func (s *state) invalidate(msg string) {
	all, accessID, ownerID := keystore.InvalidationTarget(msg)
	switch {
	case all:
		s.flush("")
	case accessID != "":
		s.metrics.invalidations.Add(uint64(s.forgetKey(accessID)))
	case ownerID != "":
		s.metrics.invalidations.Add(uint64(s.forgetOwner(ownerID)))
	}
}

// flush drops every cached authentication, owner and policy.
func (s *state) flush(why string) {
	n := s.forgetAll()
	s.metrics.invalidations.Add(uint64(n))
	if why != "" {
		s.logger().Info("authentication cache flushed", zap.String("reason", why), zap.Int("entries", n))
	}
}

// The forget methods are the only places that drop cached data after a
// change; invalidation messages and the management API's own changes go
// through them. What a cached authentication was derived from (policies,
// owners) goes before the authentications: a credential load running in
// between then finds it gone and reads it afresh, whereas in the other
// order it would re-derive an authentication from the old data and cache
// it anew, after the authentications were dropped.

// forgetKey drops the cached authentications of one Access ID and
// returns how many there were.
func (s *state) forgetKey(accessID string) int {
	s.negative.Remove(accessID)
	return s.auth.InvalidateTag(accessID)
}

// forgetOwner drops an owner and the cached authentications of its keys,
// and returns how many authentications there were.
func (s *state) forgetOwner(ownerID string) int {
	s.owners.InvalidateTag(ownerID)
	return s.auth.InvalidateTag(keystore.OwnerTag(ownerID))
}

// forgetAll drops everything cached, after a change that may concern any
// key (a role, a policy), and returns how many authentications there
// were.
func (s *state) forgetAll() int {
	s.policies.Purge()
	s.owners.Purge()
	s.negative.Purge()
	n := s.auth.Len()
	s.auth.Purge()
	return n
}

func redisTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}
