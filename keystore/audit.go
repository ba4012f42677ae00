package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Audit event names.
const (
	EventKeyCreated           = "AccessKeyCreated"
	EventKeyUpdated           = "AccessKeyUpdated"
	EventKeyActivated         = "AccessKeyActivated"
	EventKeyDeactivated       = "AccessKeyDeactivated"
	EventKeyRotated           = "AccessKeyRotated"
	EventKeyDeleted           = "AccessKeyDeleted"
	EventKeyExpired           = "AccessKeyExpired"
	EventKeyDeactivatedUnused = "AccessKeyDeactivatedUnused"
	EventPolicyUpdated        = "AccessKeysPolicyUpdated"
	EventAuthFailed           = "AccessKeyAuthenticationFailed"
	EventOriginRejected       = "AccessKeyOriginRejected"
	EventScopeRejected        = "AccessKeyScopeRejected"
	EventKeyRateLimited       = "AccessKeyRateLimited"
)

// Operator interfaces.
const (
	InterfaceAPI      = "API"
	InterfaceCLI      = "CLI"
	InterfaceInternal = "INTERNAL"
)

// Subsystem is the subsystem of every audit event.
const Subsystem = "accessKeys"

// Operator is who made a change or a request.
type Operator struct {
	ID        string `json:"id"`
	Email     string `json:"email,omitempty"`
	AccessID  string `json:"accessId,omitempty"`
	Interface string `json:"interface"`
	SourceIP  string `json:"sourceIp,omitempty"`
}

// KeyRef names the key an event is about.
type KeyRef struct {
	AccessID string `json:"accessId"`
	Label    string `json:"label,omitempty"`
	OwnerID  string `json:"ownerId,omitempty"`
}

// Event is one audit event.
type Event struct {
	EventID            string    `json:"eventId"`
	EventName          string    `json:"eventName"`
	EventTime          time.Time `json:"eventTime"`
	EventFormatVersion string    `json:"eventFormatVersion"`
	Subsystem          string    `json:"subsystem"`
	Operator           Operator  `json:"operator"`
	AccessKey          *KeyRef   `json:"accessKey,omitempty"`
	From               any       `json:"from,omitempty"`
	To                 any       `json:"to,omitempty"`
	// Reason says why a request was rejected or a key deactivated.
	Reason string `json:"reason,omitempty"`
	// Details carries event-specific facts (method, path, origin, scope,
	// or the number of suppressed events).
	Details map[string]any `json:"details,omitempty"`
}

// Stamp fills the generated fields of e that are still empty: a new
// eventId and the current time as eventTime. An event keeps them through
// every try to write it, so a caller that stamps an event when it happens
// and writes it later, or again, records it once, at the time it happened.
func (s *Store) Stamp(e *Event) {
	if e.EventID == "" {
		e.EventID = uuid.NewString()
	}
	if e.EventTime.IsZero() {
		e.EventTime = s.Now()
	}
	e.EventFormatVersion = "1.0"
	e.Subsystem = Subsystem
}

// AppendEvent stamps e, hands it to the OnEvent hook and writes it to the
// capped audit stream. The hook gets the event once, even when the write
// fails; a caller that tries again uses WriteEvent.
func (s *Store) AppendEvent(ctx context.Context, e Event) error {
	s.Stamp(&e)
	if s.onEvent != nil {
		s.onEvent(e)
	}
	return s.WriteEvent(ctx, e)
}

// auditMarkerTTL is how long the marker of a written event lasts. A try
// that timed out may still reach Redis and run later (when a hung server
// resumes, it runs what it was sent before it gets the next try); the
// marker must outlive that gap, which is a few seconds of retries.
const auditMarkerTTL = 10 * time.Minute

// appendOnce adds an event to the stream unless its marker says it is
// there already. KEYS: stream, marker. ARGV: max length, event JSON,
// marker TTL in seconds.
var appendOnce = redis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
	return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2])
return 1
`)

// WriteEvent writes a stamped event to the capped audit stream, without
// calling the OnEvent hook. Writing an event again, after a failure, is
// safe: the stream holds each eventId once, also when the failed try
// reached Redis after all.
func (s *Store) WriteEvent(ctx context.Context, e Event) error {
	if e.EventID == "" || e.EventTime.IsZero() {
		return errors.New("keystore: audit event not stamped")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return appendOnce.Run(ctx, s.rdb, []string{s.auditKey(), s.auditMarkerKey(e.EventID)},
		s.auditN, string(b), int64(auditMarkerTTL/time.Second)).Err()
}

// auditMarkerKey names the marker saying that event id is in the stream.
// Its hash tag is the stream's whole name, so that both share a Redis
// Cluster slot (the stream's name has no braces: the prefix cannot have
// any).
func (s *Store) auditMarkerKey(id string) string {
	return s.prefix + ":auditid:{" + s.auditKey() + "}:" + id
}

// emit records the audit event of a change that already happened. The
// change stands even if Redis refuses the event; the OnEvent hook (the log)
// still gets it.
func (s *Store) emit(ctx context.Context, e Event) {
	_ = s.AppendEvent(context.WithoutCancel(ctx), e)
}

// EventFilter selects audit events.
type EventFilter struct {
	Since time.Time // zero: from the start of the stream
	Name  string    // empty: every name
	Limit int       // <= 0: 1000
}

// Events reads the newest audit events that match f (up to its limit),
// returned oldest first.
func (s *Store) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	const page = 500
	var out []Event
	end := "+"
	for len(out) < limit {
		msgs, err := s.rdb.XRevRangeN(ctx, s.auditKey(), end, "-", page).Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			raw, _ := m.Values["event"].(string)
			var e Event
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return nil, fmt.Errorf("corrupt audit event %s: %w", m.ID, err)
			}
			if e.EventTime.Before(f.Since) || f.Name != "" && e.EventName != f.Name {
				continue
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
		if len(msgs) < page {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	slices.Reverse(out)
	return out, nil
}
