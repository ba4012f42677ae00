package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every Redis key when no prefix is configured.
const DefaultPrefix = "accessgate"

// DefaultRotationGrace is how long a rotated-out key keeps working when
// no grace is configured.
const DefaultRotationGrace = 5 * time.Minute

// prefixPattern is what a key prefix may look like: no braces, which
// would break the hash tags that keep a record in one Cluster slot.
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// ValidPrefix reports whether p can start every Redis key of a store:
// 1-64 letters, digits and _.:- (a brace would break Redis Cluster hash
// tags).
func ValidPrefix(p string) bool { return prefixPattern.MatchString(p) }

// Options configure a Store.
type Options struct {
	// Prefix starts every Redis key; DefaultPrefix when empty.
	Prefix string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RotationGrace is how long a rotated-out key keeps working;
	// DefaultRotationGrace when zero or negative.
	RotationGrace time.Duration
	// AuditMaxLen caps the audit stream (approximately); 100000 when zero.
	AuditMaxLen int64
	// ChangesMaxLen caps the changes stream (approximately), which holds
	// the invalidation messages an instance replays after it lost its
	// subscription; 100000 when zero.
	ChangesMaxLen int64
	// OnEvent, when set, is called with every audit event written.
	OnEvent func(Event)
}

// Store reads and writes the access-key domain in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
	grace  time.Duration
	auditN int64
	// changesN caps the changes stream.
	changesN int64
	onEvent  func(Event)
	// dueLayout is set once the store is known to hold the due indexes
	// and sharded last-use times (schema 2, see migrate.go);
	// schemaChecked is when, in Unix nanoseconds, the schema was last
	// read while it was not.
	dueLayout     atomic.Bool
	schemaChecked atomic.Int64
	// compact is set once records may be written in the compact layout
	// (upgrade.go); compactChecked is when that was last read while not.
	compact        atomic.Bool
	compactChecked atomic.Int64
	// reads batches the Redis reads of concurrent verifications.
	reads *recordReader
}

// New returns a Store on rdb. The client stays owned by the caller.
func New(rdb redis.UniversalClient, opts Options) *Store {
	s := &Store{rdb: rdb, prefix: opts.Prefix, now: opts.Now, grace: opts.RotationGrace, auditN: opts.AuditMaxLen, changesN: opts.ChangesMaxLen, onEvent: opts.OnEvent}
	s.reads = newRecordReader(rdb)
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.grace <= 0 {
		s.grace = DefaultRotationGrace
	}
	if s.auditN <= 0 {
		s.auditN = 100000
	}
	if s.changesN <= 0 {
		s.changesN = 100000
	}
	return s
}

// Client returns the Redis client of the store.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Prefix returns the prefix of every Redis key of the store.
func (s *Store) Prefix() string { return s.prefix }

// Now returns the store's current time, in UTC, at millisecond precision.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Redis key names. Per-record keys carry a hash tag so that everything an
// atomic change touches lives in one cluster slot.
func (s *Store) keyKey(id string) string        { return s.prefix + ":key:{" + id + "}" }
func (s *Store) ownerKey(id string) string      { return s.prefix + ":owner:{" + id + "}" }
func (s *Store) ownerKeysKey(id string) string  { return s.prefix + ":owner:{" + id + "}:keys" }
func (s *Store) keysIndex() string              { return s.prefix + ":keys" }
func (s *Store) ownersIndex(k OwnerKind) string { return s.prefix + ":owners:" + string(k) }
func (s *Store) rolesKey() string               { return s.prefix + ":roles" }
func (s *Store) policyKey() string              { return s.prefix + ":policy" }
func (s *Store) auditKey() string               { return s.prefix + ":audit" }
func (s *Store) changesKey() string             { return s.prefix + ":changes" }
func (s *Store) schemaKey() string              { return s.prefix + ":schema" }

// legacyLastUsedKey is the one hash of every key's last use that stores
// of schema 1 kept; the migration to schema 2 moves it into shards.
func (s *Store) legacyLastUsedKey() string { return s.prefix + ":lastused" }

// Keys of one shard of the due indexes and last-use times (due.go). The
// shard's hash tag keeps its three keys in one cluster slot, so that one
// script updates a last use and the unused index together.
func (s *Store) lastUsedKey(shard int) string  { return s.prefix + ":lastused:" + shardTag(shard) }
func (s *Store) dueExpiryKey(shard int) string { return s.prefix + ":due:expiry:" + shardTag(shard) }
func (s *Store) dueUnusedKey(shard int) string { return s.prefix + ":due:unused:" + shardTag(shard) }

// InvalidationChannel is the pub/sub channel on which changes are announced.
func (s *Store) InvalidationChannel() string { return s.prefix + ":invalidate" }

// Errors of the store. Validation problems are *ValidationError.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// NotFoundError names what was not found.
type NotFoundError struct {
	Kind string // accessKey, user, serviceAccount, role
	ID   string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q does not exist", e.Kind, e.ID) }

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ConflictError explains a conflict.
type ConflictError struct {
	Code    string
	Message string
}

func (e *ConflictError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// FieldError is one problem with one input field.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ValidationError lists every problem found with an input.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid input"
	}
	msg := e.Problems[0].Message
	if n := len(e.Problems); n > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", n-1)
	}
	return msg
}

func (e *ValidationError) add(field, code, msg string) {
	e.Problems = append(e.Problems, FieldError{Field: field, Code: code, Message: msg})
}

func (e *ValidationError) err() error {
	if e == nil || len(e.Problems) == 0 {
		return nil
	}
	return e
}

// getJSON reads a JSON record; it returns (false, nil) when the key is absent.
func (s *Store) getJSON(ctx context.Context, key string, v any) (bool, error) {
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if k, ok := v.(*Key); ok {
		err = decodeKey(b, k)
	} else {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return false, fmt.Errorf("corrupt record %s: %w", key, err)
	}
	return true, nil
}

// maxTxRetries bounds optimistic-transaction retries under contention.
const maxTxRetries = 50

// update runs fn inside WATCH key / MULTI / EXEC, retrying when another
// writer got there first, so concurrent changes never lose an update.
func (s *Store) update(ctx context.Context, key string, fn func(tx *redis.Tx) error) error {
	for range maxTxRetries {
		err := s.rdb.Watch(ctx, fn, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return &ConflictError{Code: "conflict", Message: "the record is changing too often; try again"}
}

// strconvQuote quotes s for an error message.
func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
