package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
)

// subscriptionCheck is how often the invalidation subscription is asked
// for a PONG, and how long that PONG may take before the subscription
// counts as lost: a silent (half-open) connection is noticed within twice
// this. Each PONG also advances the subscriber's position in the changes
// stream (see listen).
const subscriptionCheck = 10 * time.Second

// errSilent says the subscription did not answer a PING in time.
var errSilent = fmt.Errorf("no answer to PING within %v", subscriptionCheck)

// replayTimeout bounds the replay of the changes missed while the
// subscription was lost; a replay that takes longer flushes the caches
// instead.
const replayTimeout = 30 * time.Second

// unlistedMemory is how long after receiving messages that the changes
// stream does not hold (see changesTracker) a lost subscription flushes
// the caches rather than replay the stream.
const unlistedMemory = time.Hour

// changesTracker is what the subscriber knows of the changes stream,
// across subscriptions.
type changesTracker struct {
	// pos is the position in the changes stream up to which every
	// message was received.
	pos keystore.ChangePosition
	// unlisted is when the subscription last received more messages than
	// the stream received entries meanwhile: a writer announces changes
	// without writing the stream (an instance or CLI of a version before
	// the stream, during a rolling upgrade), whose changes a replay would
	// miss. Zero if never.
	unlisted time.Time
}

// subscribe listens for invalidation messages until ctx ends and drops the
// matching cache entries. A subscription that fails or goes silent is
// replaced, and every subscription after the first replays from the
// changes stream the messages that may have been missed while there was
// none, or flushes the caches when the stream cannot tell them (see
// recoverMissed); cache_ttl remains the bound when messages are lost
// otherwise.
func (s *state) subscribe(ctx context.Context) {
	again := false
	var tr changesTracker
	for ctx.Err() == nil {
		err := s.listen(ctx, again, &tr)
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
// and returns why it ended. When the subscription is confirmed it
// recovers the messages missed before it if again is set, and it keeps
// tr up to date while it lasts.
//
// Every PONG moves tr.pos to the position read before its PING (right
// after the previous PONG, or the confirmation): every message published
// before that read has arrived before the PONG, on the same connection.
// On a Redis Cluster, messages published on other nodes may still be on
// their way then; keystore.ReplayChanges replays a margin before the
// position for them. The read costs one command per subscriptionCheck,
// whatever the number of messages; on a Sentinel-managed Redis, one more
// checks that the commands still reach the subscription's server (see
// failover.go).
func (s *state) listen(ctx context.Context, again bool, tr *changesTracker) error {
	// Every message this subscription receives is published, and has its
	// stream entry added, after base was read.
	base, baseRead := s.changesInfo(ctx)
	// On a Sentinel-managed Redis, a master switch closes the
	// subscription (see failover.go).
	gen := s.follow.generation()
	server := s.newServerCheck(ctx)
	ps := s.rdb.Subscribe(ctx, s.store.InvalidationChannel())
	if !s.follow.track(ps, gen) {
		_ = ps.Close()
		return errMasterSwitched
	}
	defer s.follow.untrack(ps)
	// A blocked receive does not watch ctx: closing the subscription is
	// what ends it promptly when the state is destroyed.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	var (
		confirmed bool
		// pinged is set while a PING awaits its PONG; pending is the
		// position its PONG confirms.
		pinged   bool
		pending  keystore.ChangePosition
		received int64
		// due is when the next PING is.
		due = time.Now().Add(subscriptionCheck)
	)
	ping := func() error {
		if err := ps.Ping(ctx); err != nil {
			return err
		}
		pinged = true
		return nil
	}
	for {
		wait := subscriptionCheck
		if !pinged {
			wait = max(time.Until(due), time.Millisecond)
		}
		msg, err := ps.ReceiveTimeout(ctx, wait)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case s.follow.switchedSince(gen):
				return errMasterSwitched
			case !redisTimeout(err):
				return err
			case pinged:
				// A half-open connection: writes still succeed, nothing
				// comes back.
				return errSilent
			}
			if err := ping(); err != nil {
				return err
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if again {
				// The subscription has its own connection and may come back
				// before the command pool does. The replay needs commands,
				// and a flush before they work would turn the cached
				// credentials served through the outage into 503s until
				// then.
				s.awaitCommands(ctx)
			}
			if !server.same(ctx) {
				// The master changed while the subscription was set up.
				return errMasterMoved
			}
			if again {
				s.recoverMissed(ctx, tr)
			} else {
				// The first subscription: requests served before it was
				// confirmed may have cached what a change it did not hear
				// of made stale, so the caches are flushed, after the
				// position is read. Every change before the read is then
				// in what is loaded after the flush, and every one after
				// it reaches this subscription or a replay from it.
				info, _ := s.changesInfo(ctx)
				tr.pos = info.Position()
				s.flush("")
			}
			pending = tr.pos
			confirmed = true
			s.subscriptionUp.Store(true)
		case *redis.Pong:
			pinged = false
			due = time.Now().Add(subscriptionCheck)
			if !confirmed {
				continue
			}
			info, ok := s.changesInfo(ctx)
			if !server.same(ctx) {
				// The commands moved to another master (a switch
				// the sentinels' announcement of which was missed): the
				// subscription must follow, and neither position may be
				// trusted.
				return errMasterMoved
			}
			if pending.Known() {
				tr.pos = pending
			}
			pending = info.Position()
			// Redis before 7.0 counts no entries.
			if ok && baseRead && info.Added > 0 && received > info.Added-base.Added {
				s.unlistedMessages(tr)
			}
		case *redis.Message:
			received++
			s.invalidate(m.Payload)
		}
		if !pinged && !time.Now().Before(due) {
			// Messages keep coming: the position advances all the same.
			if err := ping(); err != nil {
				return err
			}
		}
	}
}

// changesInfo reads the state of the changes stream, and reports whether
// it could.
func (s *state) changesInfo(ctx context.Context) (keystore.ChangesInfo, bool) {
	rctx, cancel := context.WithTimeout(ctx, subscriptionCheck/5)
	defer cancel()
	info, err := s.store.ChangesInfo(rctx)
	return info, err == nil
}

// unlistedMessages records that the subscription received messages the
// changes stream does not hold.
func (s *state) unlistedMessages(tr *changesTracker) {
	now := time.Now()
	if tr.unlisted.IsZero() || now.Sub(tr.unlisted) > unlistedMemory {
		s.logger().Warn("invalidation messages received that the changes stream does not hold (an instance or CLI of an older version?); for an hour, a lost subscription flushes the cache")
	}
	tr.unlisted = now
}

// Outcomes of recoverMissed, counted in
// accessgate_invalidation_recoveries_total.
const (
	recoveryReplayed = iota
	recoveryFlushed
)

// recoverMissed applies the invalidation messages published after tr.pos,
// read from the changes stream, after a lost subscription was replaced,
// and moves tr.pos to the stream's newest position. When the stream
// cannot tell every change made after tr.pos (no position yet, the gap
// older than the stream, Redis restarted or failed over without the
// stream, more changes than replayed, writers that do not write the
// stream, or the replay failed), it flushes the caches instead. The
// messages go through invalidate, as live ones do, so loads in flight
// during the replay cache nothing it dropped.
func (s *state) recoverMissed(ctx context.Context, tr *changesTracker) {
	rctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	if !tr.unlisted.IsZero() && time.Since(tr.unlisted) < unlistedMemory {
		// Read the position before the flush: what the flush drops is
		// older than it.
		info, _ := s.changesInfo(rctx)
		tr.pos = info.Position()
		s.metrics.recoveries[recoveryFlushed].Add(1)
		s.flush("invalidation subscription re-established; missed changes not replayed: messages without a stream entry were seen within the hour")
		return
	}
	next, n, err := s.store.ReplayChanges(rctx, tr.pos, s.invalidate)
	tr.pos = next
	if err != nil {
		s.metrics.recoveries[recoveryFlushed].Add(1)
		s.flush("invalidation subscription re-established; missed changes not replayed: " + err.Error())
		return
	}
	s.metrics.recoveries[recoveryReplayed].Add(1)
	s.logger().Info("invalidation subscription re-established; missed changes replayed", zap.Int("changes", n))
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
		s.logger().Warn("invalidation subscription lost; the changes missed will be replayed, or the cache flushed, when it is back", zap.Error(err))
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
