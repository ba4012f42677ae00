package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// Series and log lines of the replay tests.
const (
	mReplayed     = `accessgate_invalidation_recoveries_total{outcome="replayed"}`
	mFlushed      = `accessgate_invalidation_recoveries_total{outcome="flushed"}`
	logLost       = "invalidation subscription lost"
	logBack       = "invalidation subscription re-established"
	logReplayed   = "missed changes replayed"
	logNotReplay  = "missed changes not replayed"
	writerUser    = "writer"
	writerSecret  = "writer-secret"
	replayOwner   = "u1"
	replayedLimit = 0.01 // share of the cached credentials a replay may re-verify
)

// replaySetup is a Redis topology under a gateway whose subscription a
// test takes away. The gateway connects as Redis's default user; the
// test's store writes as another user, so that taking the default user's
// channels (which ends and refuses its subscriptions) leaves the store
// free to publish.
type replaySetup struct {
	// servers are every Redis server that may hold the subscription.
	servers []*redistest.Server
	o       fleetOptions
	st      fleetStore
	// settle, when set, runs between the set-up's changes and the start
	// of the gateway.
	settle func(t *testing.T)
}

// addWriter creates the writer user on every server.
func addWriter(t *testing.T, servers []*redistest.Server) {
	t.Helper()
	for _, s := range servers {
		if err := s.Client(t).Do(context.Background(), "ACL", "SETUSER", writerUser, "on", ">"+writerSecret, "~*", "&*", "+@all").Err(); err != nil {
			t.Fatalf("ACL SETUSER %s on %s: %v", writerUser, s.Addr, err)
		}
	}
}

// allowSubscriptions gives the default user its channels back, or takes
// them, which ends its subscriptions and refuses new ones, on every
// server. A sentinel's own channels stay allowed.
func (r replaySetup) allowSubscriptions(t *testing.T, allow bool) {
	t.Helper()
	rule := []any{"resetchannels", "&__sentinel__:*"}
	if allow {
		rule = []any{"allchannels"}
	}
	for _, s := range r.servers {
		if !s.Running() {
			continue
		}
		if err := s.Client(t).Do(context.Background(), append([]any{"ACL", "SETUSER", "default"}, rule...)...).Err(); err != nil {
			t.Fatalf("ACL SETUSER default %s on %s: %v", rule, s.Addr, err)
		}
	}
}

// gets counts the GETs the running servers have served.
func (r replaySetup) gets(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, s := range r.servers {
		if s.Running() {
			n += s.CommandCount(t, "get")
		}
	}
	return n
}

// replayRun is a gateway with cached credentials, and the metrics and log
// marks taken before its subscription was lost.
type replayRun struct {
	gw     *fleetGateway
	client *http.Client
	keys   []cred
	before string // metrics text before the loss
}

// startReplayRun creates the role viewer and its user u1, starts a
// gateway, and caches n keys of u1 in it. The role and the user come
// before the gateway, so that the gateway's first position in the changes
// stream is after their messages.
func startReplayRun(t *testing.T, r replaySetup, n int) *replayRun {
	t.Helper()
	r.st.role(t, "viewer", "viewCollectors")
	r.st.user(t, replayOwner, "viewer")
	if r.settle != nil {
		r.settle(t)
	}
	up := gatewaytest.Upstream(t)
	run := &replayRun{gw: startFleetGateway(t, up, r.o), client: fleetClient(t)}
	for range n {
		run.keys = append(run.keys, r.st.key(t, keystore.KeySpec{OwnerID: replayOwner}))
	}
	run.cacheAll(t, r)
	run.before = metricsText(t, run.gw)
	return run
}

// cacheAll uses every key and waits until each is answered from the
// cache.
func (run *replayRun) cacheAll(t *testing.T, r replaySetup) {
	t.Helper()
	for i := range run.keys {
		wantStatus(t, run.client, run.gw.collectors(), &run.keys[i], nil, http.StatusOK)
	}
	// Every key answered from the cache: a whole round without a GET.
	for try := 0; ; try++ {
		before := r.gets(t)
		for i := range run.keys {
			wantStatus(t, run.client, run.gw.collectors(), &run.keys[i], nil, http.StatusOK)
		}
		if r.gets(t) == before {
			return
		}
		if try == 20 {
			t.Fatalf("the %d keys are not all cached after %d rounds", len(run.keys), try)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// loseSubscription takes the gateway's subscription away, runs during
// while it is gone, gives it back and waits until the gateway has
// recovered what it missed.
func (run *replayRun) loseSubscription(t *testing.T, r replaySetup, during func()) {
	t.Helper()
	lost, back := strings.Count(run.gw.Logs(), logLost), strings.Count(run.gw.Logs(), logBack)
	r.allowSubscriptions(t, false)
	took := waitUntil(t, time.Minute, "the gateway losing its subscription", func() bool {
		return strings.Count(run.gw.Logs(), logLost) > lost
	})
	t.Logf("subscription lost %v after it was refused", took.Round(time.Millisecond))
	during()
	r.allowSubscriptions(t, true)
	took = waitUntil(t, time.Minute, "the gateway subscribing again", func() bool {
		return strings.Count(run.gw.Logs(), logBack) > back
	})
	t.Logf("subscription recovered %v after it was allowed", took.Round(time.Millisecond))
}

// recovered returns how many recoveries of each outcome the gateway made
// since startReplayRun.
func (run *replayRun) recovered(t *testing.T) (replayed, flushed int) {
	t.Helper()
	now := metricsText(t, run.gw)
	delta := func(series string) int {
		a, _ := metricValue(run.before, series)
		b, ok := metricValue(now, series)
		if !ok {
			t.Fatalf("admin /metrics lacks %s", series)
		}
		return int(b - a)
	}
	return delta(mReplayed), delta(mFlushed)
}

// reverified requests every key but the first (each must answer 200) and
// returns how many of them the gateway verified again, by its metrics and
// by the GETs Redis served meanwhile.
func (run *replayRun) reverified(t *testing.T, r replaySetup) (verified, gets int64) {
	t.Helper()
	before, getsBefore := metricsText(t, run.gw), r.gets(t)
	for i := 1; i < len(run.keys); i++ {
		wantStatus(t, run.client, run.gw.collectors(), &run.keys[i], nil, http.StatusOK)
	}
	a, _ := metricValue(before, mVerified)
	b, _ := metricValue(metricsText(t, run.gw), mVerified)
	return int64(b - a), r.gets(t) - getsBefore
}

// singleReplaySetup is one redis-server with the writer user.
func singleReplaySetup(t *testing.T, prefix string, maxLen int64, args ...string) (replaySetup, *redistest.Server) {
	rs := redistest.Start(t, args...)
	addWriter(t, []*redistest.Server{rs})
	wc := redis.NewClient(&redis.Options{Addr: rs.Addr, Username: writerUser, Password: writerSecret})
	t.Cleanup(func() { _ = wc.Close() })
	st := fleetStore{keystore.New(wc, keystore.Options{Prefix: prefix, RotationGrace: 2 * time.Second, ChangesMaxLen: maxLen})}
	return replaySetup{servers: []*redistest.Server{rs}, o: fleetOptions{redis: []string{rs.URL()}, prefix: prefix}, st: st}, rs
}

// TestFleetReplayAfterLostSubscription: a gateway that loses its
// subscription while keys change replays the changes it missed once it
// subscribes again. The key deactivated meanwhile is refused at once;
// the other cached credentials stay cached: at most 1% of them are
// verified again (a flush would verify every one).
func TestFleetReplayAfterLostSubscription(t *testing.T) {
	const n = 200
	r, _ := singleReplaySetup(t, "fleetreplay", 0)
	run := startReplayRun(t, r, n)
	ctx := context.Background()
	run.loseSubscription(t, r, func() {
		disabled := true
		if _, err := r.st.UpdateKey(ctx, run.keys[0].id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
		r.st.user(t, "u2", "viewer")
		r.st.key(t, keystore.KeySpec{OwnerID: "u2"})
	})
	wantStatus(t, run.client, run.gw.collectors(), &run.keys[0], nil, http.StatusUnauthorized)
	verified, gets := run.reverified(t, r)
	t.Logf("after the lost subscription, %d of %d cached credentials were verified again (%d Redis GETs)", verified, n-1, gets)
	if limit := int64(n * replayedLimit); verified > limit || gets > limit {
		t.Errorf("%d credentials verified again, %d GETs; want at most %d", verified, gets, limit)
	}
	if replayed, flushed := run.recovered(t); replayed != 1 || flushed != 0 {
		t.Errorf("recoveries: %d replayed, %d flushed; want 1 replayed", replayed, flushed)
	}
	if !strings.Contains(run.gw.Logs(), logReplayed) {
		t.Errorf("the gateway log does not report the replay")
	}
}

// TestFleetReplayPositionAdvances: while its subscription lasts, the
// gateway's position in the changes stream follows the messages it
// receives. A role change (which empties every cache) made and received
// before the subscription is lost is not replayed after it: no cached
// credential is verified again but the key deactivated in the gap.
func TestFleetReplayPositionAdvances(t *testing.T) {
	r, rs := singleReplaySetup(t, "fleetadvance", 0)
	run := startReplayRun(t, r, 20)
	r.st.role(t, "viewer", "viewCollectors", "runLogSearch")
	waitUntil(t, propagationTimeout, "the role change received", func() bool {
		a, _ := metricValue(run.before, mInvalidations)
		b, _ := metricValue(metricsText(t, run.gw), mInvalidations)
		return b > a
	})
	run.cacheAll(t, r)
	// The gateway reads the stream's state (XINFO) after each PONG of its
	// subscription, and the next PONG moves its position to what it
	// read: the second read after the change follows the PONG that moved
	// the position past the change.
	reads := rs.CommandCount(t, "xinfo|stream")
	waitUntil(t, 2*time.Minute, "two checkpoints of the gateway's position", func() bool {
		return rs.CommandCount(t, "xinfo|stream") >= reads+2
	})
	run.before = metricsText(t, run.gw)
	ctx := context.Background()
	run.loseSubscription(t, r, func() {
		disabled := true
		if _, err := r.st.UpdateKey(ctx, run.keys[0].id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
	})
	wantStatus(t, run.client, run.gw.collectors(), &run.keys[0], nil, http.StatusUnauthorized)
	if verified, gets := run.reverified(t, r); verified != 0 || gets != 0 {
		t.Errorf("%d credentials verified again, %d GETs; want none (the role change was received before the loss)", verified, gets)
	}
	if replayed, flushed := run.recovered(t); replayed != 1 || flushed != 0 {
		t.Errorf("recoveries: %d replayed, %d flushed; want 1 replayed", replayed, flushed)
	}
}

// TestFleetReplayUnlistedMessages: a gateway that receives invalidation
// messages the changes stream does not hold (published by an instance of
// a version before the stream, during a rolling upgrade) cannot trust a
// replay to hold every change: after a lost subscription it flushes its
// cache, and says why.
func TestFleetReplayUnlistedMessages(t *testing.T) {
	r, rs := singleReplaySetup(t, "fleetunlisted", 0)
	run := startReplayRun(t, r, 5)
	ctx := context.Background()
	// What an older writer does: PUBLISH alone.
	if err := rs.Client(t).Publish(ctx, r.st.InvalidationChannel(), wakeMessage).Err(); err != nil {
		t.Fatal(err)
	}
	const warned = "that the changes stream does not hold"
	waitUntil(t, 2*time.Minute, "the gateway noticing a message without a stream entry", func() bool {
		return strings.Contains(run.gw.Logs(), warned)
	})
	run.loseSubscription(t, r, func() {
		disabled := true
		if _, err := r.st.UpdateKey(ctx, run.keys[0].id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
	})
	wantStatus(t, run.client, run.gw.collectors(), &run.keys[0], nil, http.StatusUnauthorized)
	if verified, _ := run.reverified(t, r); verified != int64(len(run.keys)-1) {
		t.Errorf("%d of %d credentials verified again after the flush", verified, len(run.keys)-1)
	}
	if replayed, flushed := run.recovered(t); replayed != 0 || flushed != 1 {
		t.Errorf("recoveries: %d replayed, %d flushed; want 1 flushed", replayed, flushed)
	}
	if !strings.Contains(run.gw.Logs(), "without a stream entry") {
		t.Errorf("the gateway log does not say why it flushed")
	}
}

// TestFleetReplayGapTrimmed: when more changes were made while the
// subscription was lost than the changes stream keeps, the gateway cannot
// know them all, and flushes its cache, saying so in its log.
func TestFleetReplayGapTrimmed(t *testing.T) {
	r, _ := singleReplaySetup(t, "fleettrim", 5)
	run := startReplayRun(t, r, 3)
	ctx := context.Background()
	run.loseSubscription(t, r, func() {
		disabled := true
		if _, err := r.st.UpdateKey(ctx, run.keys[0].id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
		// The stream trims whole nodes of 100 entries: make more.
		for i := range 150 {
			o := keystore.Owner{ID: "u2", Kind: keystore.OwnerUser, Email: "u2@example.com", FirstName: fmt.Sprint("n", i), RoleIDs: []string{"viewer"}, IsActive: true}
			if _, err := r.st.PutOwner(ctx, o, "test"); err != nil {
				t.Fatal(err)
			}
		}
	})
	wantStatus(t, run.client, run.gw.collectors(), &run.keys[0], nil, http.StatusUnauthorized)
	if verified, _ := run.reverified(t, r); verified != int64(len(run.keys)-1) {
		t.Errorf("%d of %d credentials verified again after the flush", verified, len(run.keys)-1)
	}
	if replayed, flushed := run.recovered(t); replayed != 0 || flushed != 1 {
		t.Errorf("recoveries: %d replayed, %d flushed; want 1 flushed", replayed, flushed)
	}
	if logs := run.gw.Logs(); !strings.Contains(logs, logNotReplay) || !strings.Contains(logs, "trimmed") {
		t.Errorf("the gateway log does not report the flush for a trimmed gap")
	}
}

// TestFleetReplayRedisRestarted: Redis restarted. Without persistence it
// lost everything, the changes stream included: the gateway flushes its
// cache and refuses the keys that are gone. With every write persisted it
// lost nothing, and the gateway replays what it missed: nothing.
func TestFleetReplayRedisRestarted(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		replayed bool
	}{
		{"data lost", nil, false},
		{"data kept", []string{"--appendonly", "yes", "--appendfsync", "always"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rs := singleReplaySetup(t, "fleetrestart", 0, tt.args...)
			run := startReplayRun(t, r, 3)
			back := strings.Count(run.gw.Logs(), logBack)
			rs.Restart(t)
			waitUntil(t, time.Minute, "the gateway subscribing again", func() bool {
				return strings.Count(run.gw.Logs(), logBack) > back
			})
			replayed, flushed := run.recovered(t)
			t.Logf("recoveries: %d replayed, %d flushed", replayed, flushed)
			if tt.replayed {
				if replayed != 1 || flushed != 0 {
					t.Errorf("want 1 replayed")
				}
				// Connections pooled before the restart may fail once.
				waitUntil(t, time.Minute, "the gateway answering again", func() bool {
					return mustSend(t, run.client, http.MethodGet, run.gw.collectors(), &run.keys[0], nil).status == http.StatusOK
				})
				if verified, _ := run.reverified(t, r); verified != 0 {
					t.Errorf("%d credentials verified again after a replay of nothing", verified)
				}
				return
			}
			if replayed != 0 || flushed != 1 {
				t.Errorf("want 1 flushed")
			}
			for i := range run.keys {
				wantStatus(t, run.client, run.gw.collectors(), &run.keys[i], nil, http.StatusUnauthorized)
			}
			if !strings.Contains(run.gw.Logs(), "stream is gone") {
				t.Errorf("the gateway log does not say why it flushed")
			}
		})
	}
}

// TestFleetReplayCluster: on a three-master Redis Cluster, where the
// changes stream lives on one node and changes on all, a gateway that
// lost its subscription replays what it missed: the key deactivated
// meanwhile is refused at once, and the other cached credentials stay
// cached. The replay starts a margin before the gateway's position
// (keystore.ReplayChanges), so the gateway starts only once the set-up's
// messages (a role: "all"; the keys' owner) are older than that margin.
func TestFleetReplayCluster(t *testing.T) {
	const n = 100
	cl := redistest.StartCluster(t, 3)
	addWriter(t, cl.Nodes())
	var urls []string
	for _, n := range cl.Nodes() {
		urls = append(urls, n.URL())
	}
	wc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Username: writerUser, Password: writerSecret})
	t.Cleanup(func() { _ = wc.Close() })
	prefix := "fleetreplaycl"
	ctx := context.Background()
	r := replaySetup{servers: cl.Nodes(), o: fleetOptions{redis: urls, prefix: prefix},
		st: fleetStore{keystore.New(wc, keystore.Options{Prefix: prefix, RotationGrace: 2 * time.Second})}}
	r.settle = func(t *testing.T) {
		info, err := r.st.ChangesInfo(ctx)
		if err != nil || !info.Exists {
			t.Fatalf("changes stream after the set-up: %+v, %v", info, err)
		}
		const margin = 31 * time.Second
		waitUntil(t, 2*margin, "the set-up's messages older than the replay margin", func() bool {
			now, err := wc.Time(ctx).Result()
			return err == nil && now.UnixMilli() > int64(info.Last.MS)+margin.Milliseconds()
		})
	}
	run := startReplayRun(t, r, n)
	run.loseSubscription(t, r, func() {
		disabled := true
		if _, err := r.st.UpdateKey(ctx, run.keys[0].id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
		r.st.user(t, "u2", "viewer")
	})
	wantStatus(t, run.client, run.gw.collectors(), &run.keys[0], nil, http.StatusUnauthorized)
	verified, gets := run.reverified(t, r)
	t.Logf("after the lost subscription, %d of %d cached credentials were verified again (%d Redis GETs)", verified, n-1, gets)
	if limit := int64(n * replayedLimit); verified > limit || gets > limit {
		t.Errorf("%d credentials verified again, %d GETs; want at most %d", verified, gets, limit)
	}
	if replayed, flushed := run.recovered(t); replayed != 1 || flushed != 0 {
		t.Errorf("recoveries: %d replayed, %d flushed; want 1 replayed", replayed, flushed)
	}
}

// TestFleetReplaySentinelFailover: the master fails while the gateway's
// subscription is gone and a key was deactivated (and replicated). After
// the failover the gateway either replays the changes from the promoted
// replica's copy of the stream or flushes its cache; either way the key
// is refused at once, and never served from the cache.
func TestFleetReplaySentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t)
	servers := []*redistest.Server{s.Master(), s.Replica()}
	addWriter(t, servers)
	wc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.SentinelAddrs(), Username: writerUser, Password: writerSecret})
	t.Cleanup(func() { _ = wc.Close() })
	prefix := "fleetreplaysen"
	r := replaySetup{servers: servers, o: fleetOptions{sentinel: s.MasterName() + " " + strings.Join(s.SentinelAddrs(), " "), prefix: prefix},
		st: fleetStore{keystore.New(wc, keystore.Options{Prefix: prefix, RotationGrace: 2 * time.Second})}}
	run := startReplayRun(t, r, 5)
	ctx := context.Background()
	run.loseSubscription(t, r, func() {
		disabled := true
		if _, err := r.st.UpdateKey(ctx, run.keys[0].id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
			t.Fatal(err)
		}
		if err := wc.Do(ctx, "WAIT", 1, 10000).Err(); err != nil {
			t.Fatal(err)
		}
		old := s.MasterAddr(t)
		s.Master().Stop(t)
		waitUntil(t, time.Minute, "promotion of the replica", func() bool { return s.MasterAddr(t) != old })
	})
	// Until the gateway's pooled connections to the dead master are gone,
	// a verification may fail with 503; never may the key pass.
	waitUntil(t, time.Minute, "the deactivated key refused", func() bool {
		r := mustSend(t, run.client, http.MethodGet, run.gw.collectors(), &run.keys[0], nil)
		if r.status != http.StatusUnauthorized && r.status != http.StatusServiceUnavailable {
			t.Fatalf("the key deactivated before the failover: status %d; body %s", r.status, r.body)
		}
		return r.status == http.StatusUnauthorized
	})
	replayed, flushed := run.recovered(t)
	t.Logf("after the failover: %d replayed, %d flushed", replayed, flushed)
	if replayed+flushed < 1 {
		t.Errorf("no recovery counted")
	}
}
