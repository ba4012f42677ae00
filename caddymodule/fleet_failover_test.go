package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// TestFleetSentinelSwitchFollowed: at a Sentinel failover, the gateways'
// invalidation subscriptions follow the new master at once, on the
// sentinel's +switch-master announcement, not when the old master is
// turned into a replica. The old master is kept a master (its default
// user may not run REPLICAOF, so Sentinel cannot convert it): a
// subscription left on it would never hear of the key deactivated on the
// new master, which two gateways with the key cached must refuse while
// the old master still says role:master.
func TestFleetSentinelSwitchFollowed(t *testing.T) {
	const logged = "Redis master switched"
	ctx := context.Background()
	s := redistest.StartSentinel(t)
	servers := []*redistest.Server{s.Master(), s.Replica()}
	addWriter(t, servers)
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: s.SentinelAddrs()[0]})
	t.Cleanup(func() { _ = sentinel.Close() })
	wc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.SentinelAddrs(), Username: writerUser, Password: writerSecret})
	t.Cleanup(func() { _ = wc.Close() })
	prefix := "fleetswitch"
	r := replaySetup{servers: servers, o: fleetOptions{sentinel: s.MasterName() + " " + strings.Join(s.SentinelAddrs(), " "), prefix: prefix},
		st: fleetStore{keystore.New(wc, keystore.Options{Prefix: prefix, RotationGrace: 2 * time.Second})}}
	run := startReplayRun(t, r, 3)
	other := &replayRun{gw: startFleetGateway(t, gatewaytest.Upstream(t), r.o), client: fleetClient(t), keys: run.keys}
	other.cacheAll(t, r)
	gateways := []*replayRun{run, other}

	old := s.Master()
	if err := old.Client(t).Do(ctx, "ACL", "SETUSER", "default", "-replicaof", "-slaveof").Err(); err != nil {
		t.Fatal(err)
	}
	// A failover does not wait for the replica: without this, the keys
	// just written could be missing on the new master.
	waitUntil(t, time.Minute, "the replica holding every write of the master", func() bool {
		mo, ok1 := infoValue(old.Info(t, "replication"), "master_repl_offset")
		ro, ok2 := infoValue(s.Replica().Info(t, "replication"), "slave_repl_offset")
		return ok1 && ok2 && mo == ro
	})
	from := s.MasterAddr(t)
	waitUntil(t, time.Minute, "SENTINEL FAILOVER accepted", func() bool {
		return sentinel.Failover(ctx, s.MasterName()).Err() == nil
	})
	waitUntil(t, time.Minute, "the sentinel naming the new master", func() bool { return s.MasterAddr(t) != from })

	nc := redis.NewClient(&redis.Options{Addr: s.MasterAddr(t)})
	t.Cleanup(func() { _ = nc.Close() })
	disabled := true
	if _, err := keystore.New(nc, keystore.Options{Prefix: prefix}).UpdateKey(ctx, run.keys[0].id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
		t.Fatalf("deactivating the key on the new master: %v", err)
	}
	for i, g := range gateways {
		took := waitUntil(t, time.Minute, "the key deactivated on the new master refused", func() bool {
			res := mustSend(t, g.client, http.MethodGet, g.gw.collectors(), &g.keys[0], nil)
			switch res.status {
			case http.StatusOK, http.StatusUnauthorized, http.StatusServiceUnavailable:
			default:
				t.Fatalf("gateway %d: status %d; body %s", i+1, res.status, res.body)
			}
			return res.status == http.StatusUnauthorized
		})
		t.Logf("gateway %d refused the key %v after its deactivation", i+1, took.Round(time.Millisecond))
	}
	if role, _ := infoValue(old.Info(t, "replication"), "role"); role != "master" {
		t.Fatalf("the old master has role %q: the refusals may come from its conversion, not from the switch", role)
	}
	for i, g := range gateways {
		if !strings.Contains(g.gw.Logs(), logged) {
			t.Errorf("gateway %d: the log does not say %q", i+1, logged)
		}
		wantStatus(t, g.client, g.gw.collectors(), &g.keys[1], nil, http.StatusOK)
	}
}

// infoValue returns the value of field in the text of an INFO reply.
func infoValue(info, field string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, true
		}
	}
	return "", false
}
