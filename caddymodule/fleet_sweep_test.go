package caddymodule_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// TestFleetSweepAfterUpgrade starts two gateways on a store written by the
// previous version (no due indexes, one hash of last uses): one of them
// migrates it, the keys past their deadlines are deactivated with one
// event each, a key whose last use the old hash held keeps working, and
// new uses reach the sharded last-use times.
func TestFleetSweepAfterUpgrade(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	const prefix = "fleetsweep"
	st := newFleetStore(rdb, prefix)
	st.viewer(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	day := 24 * time.Hour
	// oldKey writes a key as the previous version did.
	oldKey := func(issued, lastUsed time.Time) cred {
		t.Helper()
		secret := keystore.NewAccessKey()
		k := keystore.Key{ID: keystore.NewAccessID(), SecretHash: keystore.HashSecret(secret), Label: "old", OwnerID: "u1",
			OwnerKind: keystore.OwnerUser, CreatedAt: issued, ModifiedAt: issued, IssuedAt: issued, ActivatedAt: issued, Version: 1}
		b, _ := json.Marshal(k)
		pipe := rdb.Pipeline()
		pipe.Set(ctx, prefix+":key:{"+k.ID+"}", b, 0)
		pipe.ZAdd(ctx, prefix+":keys", redis.Z{Member: k.ID})
		pipe.SAdd(ctx, prefix+":owner:{u1}:keys", k.ID)
		if !lastUsed.IsZero() {
			pipe.HSet(ctx, prefix+":lastused", k.ID, strconv.FormatInt(lastUsed.UnixMilli(), 10))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return cred{k.ID, secret}
	}
	expired := oldKey(now.Add(-200*day), now.Add(-time.Hour))
	unused := oldKey(now.Add(-40*day), time.Time{})
	used := oldKey(now.Add(-40*day), now.Add(-day))

	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: prefix, extra: fastLoops}
	gws := []*fleetGateway{startFleetGateway(t, up, o), startFleetGateway(t, up, o)}
	client := fleetClient(t)

	waitUntil(t, 30*time.Second, "the migration and the sweep", func() bool {
		if rdb.Get(ctx, prefix+":schema").Val() != "2" {
			return false
		}
		for _, c := range []cred{expired, unused} {
			if k, err := st.Key(ctx, c.id); err != nil || !k.Disabled {
				return false
			}
		}
		return true
	})
	for _, tc := range []struct {
		c      cred
		event  string
		reason string
	}{{expired, keystore.EventKeyExpired, keystore.DisabledExpired}, {unused, keystore.EventKeyDeactivatedUnused, keystore.DisabledUnused}} {
		if k, _ := st.Key(ctx, tc.c.id); k.DisabledReason != tc.reason {
			t.Errorf("key %s disabled for %q, want %q", tc.c.id, k.DisabledReason, tc.reason)
		}
		events, err := st.Events(ctx, keystore.EventFilter{Name: tc.event})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range events {
			if e.AccessKey != nil && e.AccessKey.AccessID == tc.c.id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d %s events for %s, want 1", n, tc.event, tc.c.id)
		}
	}
	// The used key's last use survived the migration: it is not unused.
	for _, gw := range gws {
		wantStatus(t, client, gw.collectors(), &used, nil, http.StatusOK)
	}
	if ttl := rdb.PTTL(ctx, prefix+":lastused").Val(); ttl <= 0 {
		t.Errorf("the old hash of last uses has TTL %v, want it to expire", ttl)
	}
	// Uses through the gateways reach the shards.
	waitUntil(t, 10*time.Second, "the last use flushed", func() bool {
		lu, err := st.LastUsed(ctx, used.id)
		return err == nil && !lu[used.id].Before(now)
	})
	if k, _ := st.Key(ctx, used.id); k.Disabled {
		t.Errorf("the used key was deactivated")
	}
}
