package keystore

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// TestEveryChangeWritesOneEvent runs each change and checks the single
// event it leaves, both in Redis and through Options.OnEvent.
func TestEveryChangeWritesOneEvent(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{Label: "first"})
	op := Operator{ID: "U0001", Email: testEmail, AccessID: k.ID, Interface: InterfaceAPI, SourceIP: "192.0.2.1"}
	var rotatedID string
	steps := []struct {
		name  string
		event string
		do    func() error
		key   func() string // access ID the event must name
	}{
		{"create", EventKeyCreated, func() error {
			_, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: "second", OwnerID: testUser}, op)
			return err
		}, nil},
		{"deactivate", EventKeyDeactivated, func() error {
			_, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, op)
			return err
		}, func() string { return k.ID }},
		{"activate", EventKeyActivated, func() error {
			_, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(false)}, op)
			return err
		}, func() string { return k.ID }},
		{"update scopes", EventKeyUpdated, func() error {
			_, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Scopes: &[]string{"viewCollectors"}}, op)
			return err
		}, func() string { return k.ID }},
		{"update allowlist", EventKeyUpdated, func() error {
			_, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{CORSHeaders: &[]string{"https://a.example.com"}}, op)
			return err
		}, func() string { return k.ID }},
		{"rotate", EventKeyRotated, func() error {
			nk, _, err := f.store.RotateKey(f.ctx, k.ID, op)
			if err == nil {
				rotatedID = nk.ID
			}
			return err
		}, func() string { return rotatedID }},
		{"delete", EventKeyDeleted, func() error { return f.store.DeleteKey(f.ctx, rotatedID, op) }, func() string { return rotatedID }},
		{"lifetime policy", EventPolicyUpdated, func() error {
			_, err := f.store.SetLifetimeDays(f.ctx, 90, op)
			return err
		}, nil},
		{"unused policy", EventPolicyUpdated, func() error {
			_, err := f.store.SetUnusedDays(f.ctx, 10, op)
			return err
		}, nil},
	}
	for _, st := range steps {
		f.clock.Advance(time.Minute)
		before, err := f.store.Events(f.ctx, EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		hooked := len(f.log.all())
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		after, err := f.store.Events(f.ctx, EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before)+1 {
			t.Fatalf("%s: %d events written, want 1", st.name, len(after)-len(before))
		}
		e := after[len(after)-1]
		if hookedNow := f.log.all(); len(hookedNow) != hooked+1 || hookedNow[hooked].EventID != e.EventID {
			t.Errorf("%s: OnEvent got %d events", st.name, len(hookedNow)-hooked)
		}
		if e.EventName != st.event {
			t.Errorf("%s: event %q, want %q", st.name, e.EventName, st.event)
		}
		if _, err := uuid.Parse(e.EventID); err != nil {
			t.Errorf("%s: eventId %q is not a UUID", st.name, e.EventID)
		}
		if e.Subsystem != "accessKeys" || !e.EventTime.Equal(f.clock.Now()) || e.Operator != op || e.EventFormatVersion == "" {
			t.Errorf("%s: event %+v", st.name, e)
		}
		if st.key != nil && (e.AccessKey == nil || e.AccessKey.AccessID != st.key() || e.AccessKey.OwnerID != testUser) {
			t.Errorf("%s: accessKey %+v, want %s", st.name, e.AccessKey, st.key())
		}
		if strings.HasPrefix(st.name, "update") && (e.From == nil || e.To == nil) {
			t.Errorf("%s: from/to missing", st.name)
		}
	}
}

// TestNoSecretAnywhere creates, uses, updates, rotates and deletes keys,
// then searches every Redis value and every event for each secret.
func TestNoSecretAnywhere(t *testing.T) {
	f := newFixture(t)
	var secrets []string
	for i := range 5 {
		k, s := f.createKey(t, KeySpec{Label: "k", Scopes: []string{"viewCollectors"}, CORSHeaders: []string{"https://a.example.com"}})
		secrets = append(secrets, s)
		if _, err := f.verify(k.ID, s); err != nil {
			t.Fatal(err)
		}
		if _, err := f.verify(k.ID, NewAccessKey()); err == nil {
			t.Fatal("wrong secret accepted")
		}
		if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true), Scopes: &[]string{}}, testOp); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(false)}, testOp); err != nil {
			t.Fatal(err)
		}
		nk, ns, err := f.store.RotateKey(f.ctx, k.ID, testOp)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, ns)
		if _, err := f.verify(nk.ID, ns); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := f.store.DeleteKey(f.ctx, nk.ID, testOp); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.store.AppendEvent(f.ctx, Event{EventName: EventAuthFailed, AccessKey: &KeyRef{AccessID: k.ID}, Reason: string(ReasonWrongSecret)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.SetLifetimeDays(f.ctx, 30, testOp); err != nil {
		t.Fatal(err)
	}

	db := dumpDB(t, f.rdb)
	if len(db) < 5 {
		t.Fatalf("dump holds only %d keys", len(db))
	}
	hooked := mustJSON(t, f.log.all())
	if !strings.Contains(hooked, EventKeyRotated) {
		t.Fatal("OnEvent saw no rotation")
	}
	for _, s := range secrets {
		// The whole secret, and its random part alone.
		for _, needle := range []string{s, s[:20], s[30:50]} {
			for key, val := range db {
				if strings.Contains(key, needle) || strings.Contains(val, needle) {
					t.Errorf("Redis key %s holds a secret", key)
				}
			}
			if strings.Contains(hooked, needle) {
				t.Errorf("an OnEvent event holds a secret")
			}
		}
	}
}

func TestEventsFilterByName(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{})
	for range 3 {
		if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(false)}, testOp); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		filter EventFilter
		want   int
	}{
		{EventFilter{}, 7},
		{EventFilter{Name: EventKeyCreated}, 1},
		{EventFilter{Name: EventKeyDeactivated}, 3},
		{EventFilter{Name: EventKeyActivated, Limit: 2}, 2},
		{EventFilter{Name: EventKeyRotated}, 0},
		{EventFilter{Limit: 1}, 1},
	}
	for _, tt := range tests {
		got, err := f.store.Events(f.ctx, tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.want {
			t.Errorf("Events(%+v): %d events, want %d", tt.filter, len(got), tt.want)
		}
		for _, e := range got {
			if tt.filter.Name != "" && e.EventName != tt.filter.Name {
				t.Errorf("Events(%+v) returned %s", tt.filter, e.EventName)
			}
		}
	}
	all, _ := f.store.Events(f.ctx, EventFilter{})
	if all[0].EventName != EventKeyCreated {
		t.Errorf("events not oldest first: %s", all[0].EventName)
	}
}

// TestEventsManyPages reads past the 500-entry batches of the stream.
func TestEventsManyPages(t *testing.T) {
	f := newFixture(t)
	for i := range 1203 {
		name := EventAuthFailed
		if i%3 == 0 {
			name = EventScopeRejected
		}
		if err := f.store.AppendEvent(f.ctx, Event{EventName: name}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		filter EventFilter
		want   int
	}{
		{EventFilter{Limit: 5000}, 1203},
		{EventFilter{}, 1000},
		{EventFilter{Name: EventScopeRejected, Limit: 5000}, 401},
		{EventFilter{Name: EventAuthFailed, Limit: 600}, 600},
	}
	for _, tt := range tests {
		got, err := f.store.Events(f.ctx, tt.filter)
		if err != nil || len(got) != tt.want {
			t.Errorf("Events(%+v): %d events, %v; want %d", tt.filter, len(got), err, tt.want)
		}
	}
}

// TestEventsFilterBySince: Since selects by event time, the store's
// clock, an hour apart here.
func TestEventsFilterBySince(t *testing.T) {
	f := newFixture(t)
	var times []time.Time
	for _, name := range []string{EventAuthFailed, EventScopeRejected, EventAuthFailed, EventOriginRejected} {
		if err := f.store.AppendEvent(f.ctx, Event{EventName: name}); err != nil {
			t.Fatal(err)
		}
		times = append(times, f.clock.Now())
		f.clock.Advance(time.Hour)
	}
	tests := []struct {
		name   string
		filter EventFilter
		want   []string
	}{
		{"since the start", EventFilter{Since: times[0]}, []string{EventAuthFailed, EventScopeRejected, EventAuthFailed, EventOriginRejected}},
		{"since the second", EventFilter{Since: times[1]}, []string{EventScopeRejected, EventAuthFailed, EventOriginRejected}},
		{"between", EventFilter{Since: times[1].Add(time.Minute)}, []string{EventAuthFailed, EventOriginRejected}},
		{"since and name", EventFilter{Since: times[1], Name: EventAuthFailed}, []string{EventAuthFailed}},
		{"after the last", EventFilter{Since: times[3].Add(time.Millisecond)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.store.Events(f.ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range got {
				names = append(names, e.EventName)
				if e.EventTime.Before(tt.filter.Since) {
					t.Errorf("event at %v returned for since %v", e.EventTime, tt.filter.Since)
				}
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("Events(since %v) = %q, want %q", tt.filter.Since.Sub(times[0]), names, tt.want)
			}
		})
	}
}

// TestAppendEventFillsFields checks the generated fields and that a corrupt
// stream entry is reported.
func TestAppendEventFillsFields(t *testing.T) {
	f := newFixture(t)
	e := Event{EventName: EventOriginRejected, Details: map[string]any{"origin": "https://evil.example"}}
	if err := f.store.AppendEvent(f.ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Events(f.ctx, EventFilter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("Events = %v, %v", got, err)
	}
	if got[0].Subsystem != Subsystem || got[0].EventFormatVersion != "1.0" || got[0].EventID == "" || !got[0].EventTime.Equal(f.clock.Now()) || got[0].Details["origin"] != "https://evil.example" {
		t.Errorf("event %+v", got[0])
	}
	if err := f.rdb.XAdd(f.ctx, &redis.XAddArgs{Stream: f.store.auditKey(), Values: []string{"event", "{not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Events(f.ctx, EventFilter{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("a corrupt event gave %v", err)
	}
}

// TestWriteEventOnce writes one stamped event three times, as a caller
// retrying after failures does: the stream holds it once, with its ID and
// time, and the OnEvent hook is not called by WriteEvent.
func TestWriteEventOnce(t *testing.T) {
	f := newFixture(t)
	hooked := len(f.log.all())
	e := Event{EventName: EventAuthFailed, AccessKey: &KeyRef{AccessID: "su0000000000AA"}}
	f.store.Stamp(&e)
	id, at := e.EventID, e.EventTime
	f.clock.Advance(time.Minute)
	f.store.Stamp(&e)
	if e.EventID != id || !e.EventTime.Equal(at) {
		t.Fatalf("stamping again changed the event: %s@%v, was %s@%v", e.EventID, e.EventTime, id, at)
	}
	for range 3 {
		if err := f.store.WriteEvent(f.ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.store.Events(f.ctx, EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].EventID != id || !got[0].EventTime.Equal(at) {
		t.Errorf("stream after three writes of one event: %+v", got)
	}
	if n := len(f.log.all()) - hooked; n != 0 {
		t.Errorf("WriteEvent called the OnEvent hook %d times", n)
	}
	if err := f.store.WriteEvent(f.ctx, Event{EventName: EventAuthFailed}); err == nil {
		t.Error("WriteEvent wrote an event without ID and time")
	}
}
