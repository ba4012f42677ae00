package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// TestFleetAuditFlood sends 2,000 rejected requests: the audit stream and
// the log get at most the burst (100) plus 20 events a second, and
// summary events whose details.suppressed account for every other
// rejection.
func TestFleetAuditFlood(t *testing.T) {
	const requests, burst, perSecond = 2000, 100, 20
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetaudit"}
	gw := startFleetGateway(t, up, o)
	st := newFleetStore(rs.Client(t), o.prefix)
	ctx := context.Background()

	start := time.Now()
	rawFlood(t, gw.collectors(), requests, 4, 25, func(int) cred { return cred{keystore.NewAccessID(), keystore.NewAccessKey()} }, func(r rawResponse) {
		if r.status != http.StatusUnauthorized && r.status != http.StatusTooManyRequests {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
	rejected := requests
	flooded := time.Since(start)

	type tally struct {
		single, summaries int
		suppressed        int64
		elapsed           time.Duration
	}
	read := func() tally {
		evs, err := st.Events(ctx, keystore.EventFilter{Name: keystore.EventAuthFailed, Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		tl := tally{elapsed: time.Since(start)}
		for _, e := range evs {
			if e.Reason != "suppressed" {
				tl.single++
				continue
			}
			tl.summaries++
			n, _ := e.Details["suppressed"].(float64)
			if n <= 0 {
				t.Errorf("summary event without a positive details.suppressed: %+v", e)
			}
			tl.suppressed += int64(n)
		}
		return tl
	}
	check := func(tl tally) {
		t.Helper()
		secs := tl.elapsed.Seconds()
		if limit := burst + int(perSecond*secs) + 1; tl.single > limit {
			t.Errorf("%d single rejection events %v after the flood began, want at most %d (burst %d + %d/s)", tl.single, tl.elapsed, limit, burst, perSecond)
		}
		if limit := int(secs) + 2; tl.summaries > limit {
			t.Errorf("%d summary events in %v, want at most one a second (%d)", tl.summaries, tl.elapsed, limit)
		}
	}
	var tl tally
	waitUntil(t, 5*time.Second, "a summary event with details.suppressed", func() bool {
		tl = read()
		check(tl)
		return tl.summaries > 0
	})
	waitUntil(t, 5*time.Second, "every rejection audited or counted as suppressed", func() bool {
		tl = read()
		check(tl)
		return tl.single+int(tl.suppressed) >= rejected
	})
	t.Logf("%d rejections in %v: %d audited one by one, %d summarised in %d summary events (read %v after the flood began)",
		rejected, flooded.Round(time.Millisecond), tl.single, tl.suppressed, tl.summaries, tl.elapsed.Round(time.Millisecond))
	if got := tl.single + int(tl.suppressed); got != rejected {
		t.Errorf("audited %d + suppressed %d = %d, want exactly %d rejections", tl.single, tl.suppressed, got, rejected)
	}
	if logged := strings.Count(gw.Logs(), `"logger":"access_keys.audit"`); logged != tl.single+tl.summaries {
		t.Errorf("the log holds %d audit events, the stream %d", logged, tl.single+tl.summaries)
	}
}
