package caddymodule_test

import (
	"context"
	"encoding/json"
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

// TestFleetAuditOnceThroughOutage makes rejected requests while Redis
// takes in commands but runs none (a hung server), until the gateway has
// tried to write the first event twice; then Redis runs everything it was
// sent. Each event must reach the stream once, with the eventId of its
// one log line and the time of its request.
func TestFleetAuditOnceThroughOutage(t *testing.T) {
	const rejected = 5
	rs := redistest.Start(t)
	px := redistest.NewHoldProxy(t, rs.Addr)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{px.URL()}, prefix: "fleetauditonce"}
	gw := startFleetGateway(t, up, o)
	st := newFleetStore(rs.Client(t), o.prefix)
	client := fleetClient(t)
	ctx := context.Background()

	// A well-formed Access ID with a secret whose checksum fails: refused
	// without a Redis call, and audited with its Access ID.
	badSecret := func() string {
		for {
			s := keystore.NewAccessKey()
			s = s[:len(s)-1] + string("ab"[len(s)%2])
			if !keystore.ValidAccessKey(s) {
				return s
			}
		}
	}
	reject := func() string {
		t.Helper()
		id := keystore.NewAccessID()
		wantStatus(t, client, gw.collectors(), &cred{id, badSecret()}, nil, http.StatusUnauthorized)
		return id
	}
	inStream := func(id string) int {
		evs, err := st.Events(ctx, keystore.EventFilter{Name: keystore.EventAuthFailed, Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.AccessKey != nil && e.AccessKey.AccessID == id {
				n++
			}
		}
		return n
	}
	warm := reject()
	waitUntil(t, 10*time.Second, "the first rejection in the audit stream", func() bool { return inStream(warm) == 1 })

	px.Hold()
	before := time.Now().Truncate(time.Millisecond)
	var ids []string
	for range rejected {
		ids = append(ids, reject())
	}
	after := time.Now()
	// The first write goes out on an open connection and times out; the
	// client then opens new ones, each starting with a HELLO that hangs
	// too. A second HELLO means the first write has failed and been tried
	// again.
	first := `"accessKey":{"accessId":"` + ids[0] + `"`
	waitUntil(t, 60*time.Second, "a failed write of the first event and another try", func() bool {
		return px.Held(first) >= 1 && px.Held("\r\nhello\r\n") >= 2
	})
	px.Release()

	// Written in order after the held ones: once it is in the stream,
	// so are they.
	last := reject()
	waitUntil(t, 60*time.Second, "the rejection made after the outage in the audit stream", func() bool { return inStream(last) == 1 })

	evs, err := st.Events(ctx, keystore.EventFilter{Name: keystore.EventAuthFailed, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	stream := map[string][]keystore.Event{}
	for _, e := range evs {
		if e.AccessKey != nil {
			stream[e.AccessKey.AccessID] = append(stream[e.AccessKey.AccessID], e)
		}
	}
	logged := map[string][]string{} // access ID -> event IDs in the log
	for _, line := range strings.Split(gw.Logs(), "\n") {
		if !strings.Contains(line, `"logger":"access_keys.audit"`) {
			continue
		}
		var l struct {
			EventID   string `json:"eventId"`
			AccessKey struct {
				AccessID string `json:"accessId"`
			} `json:"accessKey"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("audit log line %q: %v", line, err)
		}
		logged[l.AccessKey.AccessID] = append(logged[l.AccessKey.AccessID], l.EventID)
	}
	for _, id := range ids {
		got := stream[id]
		if len(got) != 1 {
			var times []string
			for _, e := range got {
				times = append(times, e.EventID+"@"+e.EventTime.Format(time.RFC3339Nano))
			}
			t.Errorf("rejection of %s is %d times in the stream, want once: %v", id, len(got), times)
		}
		if n := len(logged[id]); n != 1 {
			t.Errorf("rejection of %s is logged %d times, want once: event IDs %v", id, n, logged[id])
		}
		if len(got) == 0 {
			continue
		}
		e := got[0]
		if e.EventTime.Before(before) || e.EventTime.After(after) {
			t.Errorf("rejection of %s has eventTime %v, want the time of its request, between %v and %v", id, e.EventTime, before, after)
		}
		if len(logged[id]) > 0 && logged[id][0] != e.EventID {
			t.Errorf("rejection of %s: eventId %s in the log, %s in the stream", id, logged[id][0], e.EventID)
		}
	}
}
