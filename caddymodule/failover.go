package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// On a Sentinel-managed Redis, the client library moves its command
// connections to a new master when Sentinel announces it (+switch-master),
// but not the invalidation subscription: that stays on the old master,
// which goes on answering its PINGs until Sentinel turns it into a
// replica, seconds later, while changes are published on the new master.
// Two guards move the subscription at once instead:
//
//   - watchSentinels subscribes to the sentinels' +switch-master channel
//     and closes the invalidation subscription when the master changes;
//   - at each position read, serverCheck compares the server the command
//     connections reach with the one they reached when the subscription
//     was confirmed (a +switch-master missed).
//
// A subscription that ends so is replaced through the failover dialer,
// on the new master, and recovers what it missed as after any loss.

// switchChannel is the sentinels' channel announcing a new master:
// "<master-name> <old-ip> <old-port> <new-ip> <new-port>".
const switchChannel = "+switch-master"

// sentinelRetry is the pause before the next sentinel is tried.
const sentinelRetry = 500 * time.Millisecond

var (
	errMasterSwitched = errors.New("Sentinel switched the master")
	errMasterMoved    = errors.New("the commands reach another Redis server than the subscription (a master switch)")
)

// masterFollow tracks the invalidation subscription of a state on a
// Sentinel-managed Redis, so that a master switch closes it. It is safe
// for concurrent use; its methods do nothing on a nil masterFollow (other
// topologies).
type masterFollow struct {
	mu sync.Mutex
	// gen counts the master switches seen.
	gen uint64
	// ps is the current invalidation subscription, nil between two.
	ps *redis.PubSub
	// master is the master's address last named by a sentinel.
	master string
}

// generation returns the number of switches seen so far.
func (f *masterFollow) generation() uint64 {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

// track makes ps the subscription a switch closes, and reports false
// (tracking nothing) when a switch came after generation gen was read:
// ps may then be on the old master.
func (f *masterFollow) track(ps *redis.PubSub, gen uint64) bool {
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen {
		return false
	}
	f.ps = ps
	return true
}

// untrack forgets ps.
func (f *masterFollow) untrack(ps *redis.PubSub) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ps == ps {
		f.ps = nil
	}
}

// switchedSince reports whether a switch came after generation gen.
func (f *masterFollow) switchedSince(gen uint64) bool {
	return f.generation() != gen
}

// switched records that the master is now at addr, and closes the
// subscription if that is a change. It reports whether it was.
func (f *masterFollow) switched(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if addr == f.master {
		return false
	}
	first := f.master == ""
	f.master = addr
	if first {
		return false
	}
	f.gen++
	if f.ps != nil {
		_ = f.ps.Close()
		f.ps = nil
	}
	return true
}

// parseSwitch decodes a +switch-master message.
func parseSwitch(payload string) (master, addr string, ok bool) {
	f := strings.Fields(payload)
	if len(f) != 5 {
		return "", "", false
	}
	return f[0], net.JoinHostPort(f[3], f[4]), true
}

// watchSentinels follows the master switches of master, announced by
// the sentinels, until ctx ends: it listens to one sentinel at a time,
// and to the next one when that one fails.
func (s *state) watchSentinels(ctx context.Context, master string, sentinels []*redis.Options) {
	failing := false
	for i := 0; ; i = (i + 1) % len(sentinels) {
		subscribed, err := s.watchSentinel(ctx, master, sentinels[i])
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			failing = false
		}
		if !failing {
			s.logger().Warn("lost the sentinel's master switch announcements; trying the next sentinel",
				zap.String("sentinel", sentinels[i].Addr), zap.Error(err))
		}
		failing = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(sentinelRetry):
		}
	}
}

// watchSentinel listens to the +switch-master announcements of one
// sentinel until it fails, goes silent or ctx ends. Once subscribed it
// asks the sentinel for the master, so that a switch announced while no
// sentinel was listened to is not missed. It reports whether it was
// subscribed.
func (s *state) watchSentinel(ctx context.Context, master string, o *redis.Options) (subscribed bool, err error) {
	c := redis.NewSentinelClient(o)
	defer c.Close()
	ps := c.Subscribe(ctx, switchChannel)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, subscriptionCheck)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return subscribed, ctx.Err()
			case !redisTimeout(err):
				return subscribed, err
			case pinged:
				return subscribed, errSilent
			}
			if err := ps.Ping(ctx); err != nil {
				return subscribed, err
			}
			pinged = true
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			hp, err := c.GetMasterAddrByName(ctx, master).Result()
			if err != nil {
				return subscribed, err
			}
			if len(hp) != 2 {
				return subscribed, fmt.Errorf("SENTINEL get-master-addr-by-name %s: %q", master, hp)
			}
			subscribed = true
			s.masterAt(net.JoinHostPort(hp[0], hp[1]))
		case *redis.Pong:
			pinged = false
		case *redis.Message:
			if name, addr, ok := parseSwitch(m.Payload); ok && name == master {
				s.masterAt(addr)
			}
		}
	}
}

// masterAt records where a sentinel says the master is.
func (s *state) masterAt(addr string) {
	if s.follow.switched(addr) {
		s.logger().Info("Redis master switched; subscribing on the new master", zap.String("master", addr))
	}
}

// serverCheck tells whether the command connections still reach the
// Redis server they reached when the subscription was set up, by its
// run_id. It checks nothing on other topologies than Sentinel, or when
// INFO fails (a user not allowed it, say).
type serverCheck struct {
	s *state
	// at is the run_id of the subscription's server; empty if unknown.
	at string
}

// newServerCheck reads the server reached before the subscription is
// opened.
func (s *state) newServerCheck(ctx context.Context) *serverCheck {
	c := &serverCheck{s: s}
	if s.follow != nil {
		c.at = s.serverID(ctx)
	}
	return c
}

// same reports whether the command connections reach the server they
// reached before; on the first call after newServerCheck, that is
// whether they reached one server throughout the subscription's set-up.
func (c *serverCheck) same(ctx context.Context) bool {
	if c.s.follow == nil {
		return true
	}
	id := c.s.serverID(ctx)
	switch {
	case id == "":
		return true
	case c.at == "":
		c.at = id
		return true
	}
	return id == c.at
}

// serverID returns the run_id of the server the command connections
// reach, or "" if it cannot tell.
func (s *state) serverID(ctx context.Context) string {
	rctx, cancel := context.WithTimeout(ctx, subscriptionCheck/5)
	defer cancel()
	info, err := s.rdb.Info(rctx, "server").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	return ""
}
