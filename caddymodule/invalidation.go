package caddymodule

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
)

// subscribe listens for invalidation messages until ctx ends and drops the
// matching cache entries. Every (re)subscription after the first flushes
// the caches, since messages may have been missed while the subscription
// was down; cache_ttl remains the bound when messages are lost otherwise.
func (s *state) subscribe(ctx context.Context) {
	ps := s.rdb.Subscribe(ctx, s.store.InvalidationChannel())
	// A blocked receive does not watch ctx: closing the subscription is
	// what ends it promptly when the state is destroyed.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	subscribed := false
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if redisTimeout(err) {
				// Quiet channel: check the connection; a failure shows up
				// as an error on the next receive.
				_ = ps.Ping(ctx)
				continue
			}
			s.subscriptionLost(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if subscribed {
				// The subscription has its own connection and may come back
				// before the command pool does; flushing first would turn
				// the cached credentials served through the outage into
				// 503s until then.
				s.awaitCommands(ctx)
				s.flush("invalidation subscription re-established")
			}
			subscribed = true
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
		s.metrics.invalidations.Add(uint64(s.auth.InvalidateTag(accessID)))
		s.negative.Remove(accessID)
	case ownerID != "":
		s.metrics.invalidations.Add(uint64(s.auth.InvalidateTag(ownerTag(ownerID))))
		s.owners.InvalidateTag(ownerID)
	}
}

// flush drops every cached authentication and owner.
func (s *state) flush(why string) {
	n := s.auth.Len()
	s.auth.Purge()
	s.owners.Purge()
	s.negative.Purge()
	s.metrics.invalidations.Add(uint64(n))
	if why != "" {
		s.logger().Info("authentication cache flushed", zap.String("reason", why), zap.Int("entries", n))
	}
}

func redisTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}
