package caddymodule

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
)

func TestParseSwitch(t *testing.T) {
	tests := []struct {
		payload      string
		master, addr string
		ok           bool
	}{
		{"mymaster 10.0.0.1 6379 10.0.0.2 6380", "mymaster", "10.0.0.2:6380", true},
		{"mymaster ::1 6379 fe80::1 6380", "mymaster", "[fe80::1]:6380", true},
		{"mymaster 10.0.0.1 6379", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		master, addr, ok := parseSwitch(tt.payload)
		if master != tt.master || addr != tt.addr || ok != tt.ok {
			t.Errorf("parseSwitch(%q) = %q, %q, %v; want %q, %q, %v", tt.payload, master, addr, ok, tt.master, tt.addr, tt.ok)
		}
	}
}

// TestMasterFollowCloses: the first master address a sentinel names is
// recorded; a different one closes the tracked subscription, and a
// subscription opened before the switch is refused.
func TestMasterFollowCloses(t *testing.T) {
	rs := redistest.Start(t)
	ctx := context.Background()
	f := &masterFollow{}
	if f.switched("10.0.0.1:6379") {
		t.Fatal("the first master named counts as a switch")
	}
	gen := f.generation()
	ps := rs.Client(t).Subscribe(ctx, "ch")
	defer ps.Close()
	if !f.track(ps, gen) {
		t.Fatal("track refused a subscription with no switch since")
	}
	if f.switched("10.0.0.1:6379") {
		t.Fatal("the same master counts as a switch")
	}
	late := f.generation()
	if !f.switched("10.0.0.2:6379") {
		t.Fatal("a new master does not count as a switch")
	}
	if _, err := ps.Receive(ctx); err == nil {
		t.Error("the subscription still works after the switch")
	}
	if !f.switchedSince(gen) || f.track(rs.Client(t).Subscribe(ctx, "ch"), late) {
		t.Error("a subscription opened before the switch is accepted")
	}
}

// TestServerCheck: on a Sentinel-managed Redis, the check tells whether
// the commands reach the server they reached when it began.
func TestServerCheck(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	ctx := context.Background()
	s := &state{rdb: a.Client(t), follow: &masterFollow{}}
	c := s.newServerCheck(ctx)
	if !c.same(ctx) {
		t.Fatal("the same server counts as another")
	}
	s.rdb = b.Client(t)
	if c.same(ctx) {
		t.Error("another server counts as the same")
	}
	s.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer s.rdb.Close()
	if !c.same(ctx) {
		t.Error("a server that cannot be asked counts as another")
	}
	s.follow = nil
	s.rdb = b.Client(t)
	if !(&serverCheck{s: s, at: "x"}).same(ctx) {
		t.Error("checked on another topology than Sentinel")
	}
}
