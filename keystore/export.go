package keystore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// exportBatch is how many records one export pipeline reads.
const exportBatch = 500

// ExportSummary counts what an export wrote.
type ExportSummary struct {
	ExportID string `json:"exportId"`
	// Records is the number of record lines (header and end excluded).
	Records         int  `json:"records"`
	Policies        bool `json:"policies"`
	Roles           int  `json:"roles"`
	Users           int  `json:"users"`
	ServiceAccounts int  `json:"serviceAccounts"`
	// Keys counts live keys; RotatedKeys keys rotated out, in their grace.
	Keys        int `json:"keys"`
	RotatedKeys int `json:"rotatedKeys"`
	// PendingSkipped counts records of rotations in progress, which are
	// not exported: they never authenticate.
	PendingSkipped int `json:"pendingSkipped"`
	// Unreadable counts records that are not valid JSON, not exported.
	Unreadable int `json:"unreadable"`
}

// Counts reads the record counts of the indexes in one round trip (per
// node).
func (s *Store) Counts(ctx context.Context) (RecordCounts, error) {
	pipe := s.rdb.Pipeline()
	keys := pipe.ZCard(ctx, s.keysIndex())
	users := pipe.ZCard(ctx, s.ownersIndex(OwnerUser))
	sas := pipe.ZCard(ctx, s.ownersIndex(OwnerServiceAccount))
	roles := pipe.HLen(ctx, s.rolesKey())
	pol := pipe.Exists(ctx, s.policyKey())
	if _, err := pipe.Exec(ctx); err != nil {
		return RecordCounts{}, err
	}
	return RecordCounts{Policies: int(pol.Val()), Keys: int(keys.Val()), Users: int(users.Val()), ServiceAccounts: int(sas.Val()), Roles: int(roles.Val())}, nil
}

// Export writes every record of the store to w as JSON lines: a header,
// the policies, roles, users and service accounts, key records (hashed
// secrets only: no secret exists to export) with their last use, and an
// end line. Keys rotated out and still in their grace are exported with
// the time their record expires; records of rotations in progress are
// not. Memory stays constant whatever the number of records: records
// are read by SCAN in pages, on every master of a cluster. progress,
// when set, is called with the number of records written so far.
//
// An export is not a snapshot: a record changed while it runs may be
// exported before or after the change, each record whole. A SCAN may
// return a record twice; import takes the second copy as already there.
func (s *Store) Export(ctx context.Context, w io.Writer, progress func(n int)) (ExportSummary, error) {
	counts, err := s.Counts(ctx)
	if err != nil {
		return ExportSummary{}, err
	}
	ex := &exporter{s: s, bw: bufio.NewWriterSize(w, 64<<10), progress: progress}
	ex.sum.ExportID = uuid.NewString()
	hdr := exportHeader{Format: ExportFormat, Version: ExportVersion, ExportID: ex.sum.ExportID, Prefix: s.prefix, ExportedAt: s.Now(), Counts: counts}
	if err := ex.writeLine(hdr); err != nil {
		return ex.sum, err
	}
	steps := []func(context.Context) error{ex.policies, ex.roles, ex.owners, ex.keys}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return ex.sum, err
		}
	}
	n := ex.sum.Records
	if err := ex.writeLine(exportRecord{Kind: recordEnd, Records: &n}); err != nil {
		return ex.sum, err
	}
	if err := ex.bw.Flush(); err != nil {
		return ex.sum, err
	}
	return ex.sum, nil
}

// exporter writes one export. The masters of a cluster are scanned
// concurrently: batches are encoded apart and written under mu.
type exporter struct {
	s        *Store
	mu       sync.Mutex
	bw       *bufio.Writer
	sum      ExportSummary
	progress func(n int)
}

func (ex *exporter) writeLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ex.bw.Write(b)
	return ex.bw.WriteByte('\n')
}

// emit writes an encoded batch of n records and counts it with count.
func (ex *exporter) emit(buf *bytes.Buffer, n int, count func(*ExportSummary)) error {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if _, err := ex.bw.Write(buf.Bytes()); err != nil {
		return err
	}
	ex.sum.Records += n
	count(&ex.sum)
	if ex.progress != nil && n > 0 {
		ex.progress(ex.sum.Records)
	}
	return nil
}

// encode appends v to buf as one line.
func encode(buf *bytes.Buffer, v any) {
	b, _ := json.Marshal(v)
	buf.Write(b)
	buf.WriteByte('\n')
}

func (ex *exporter) policies(ctx context.Context) error {
	h, err := ex.s.rdb.HGetAll(ctx, ex.s.policyKey()).Result()
	if err != nil || len(h) == 0 {
		return err
	}
	var p policyRecord
	days := func(f string) *int {
		if v, err := strconv.Atoi(h[f]); err == nil {
			return &v
		}
		return nil
	}
	at := func(f string) *time.Time {
		if v, err := strconv.ParseInt(h[f], 10, 64); err == nil {
			t := time.UnixMilli(v).UTC()
			return &t
		}
		return nil
	}
	p.LifetimeDays, p.LifetimeSetAt = days("lifetimeDays"), at("lifetimeSetAt")
	p.UnusedDays, p.UnusedSetAt = days("unusedDays"), at("unusedSetAt")
	var buf bytes.Buffer
	encode(&buf, exportRecord{Kind: recordPolicies, Policies: &p})
	return ex.emit(&buf, 1, func(s *ExportSummary) { s.Policies = true })
}

func (ex *exporter) roles(ctx context.Context) error {
	var cursor uint64
	for {
		kv, next, err := ex.s.rdb.HScan(ctx, ex.s.rolesKey(), cursor, "", exportBatch).Result()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		n, bad := 0, 0
		for i := 0; i+1 < len(kv); i += 2 {
			var r Role
			if json.Unmarshal([]byte(kv[i+1]), &r) != nil || r.ID != kv[i] {
				bad++
				continue
			}
			encode(&buf, exportRecord{Kind: recordRole, Role: &r})
			n++
		}
		if err := ex.emit(&buf, n, func(s *ExportSummary) { s.Roles += n; s.Unreadable += bad }); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// recordID returns the ID inside the hash tag of a record's Redis key
// named prefix + "{" + id + "}", or "" when name is another key (such as
// an owner's key set, which shares the owner's prefix).
func recordID(name, prefix string) string {
	if !strings.HasPrefix(name, prefix+"{") || !strings.HasSuffix(name, "}") {
		return ""
	}
	return name[len(prefix)+1 : len(name)-1]
}

func (ex *exporter) owners(ctx context.Context) error {
	prefix := ex.s.prefix + ":owner:"
	return ex.s.scanAll(ctx, prefix+"{*}", func(ctx context.Context, names []string) error {
		names = keepRecords(names, prefix)
		if len(names) == 0 {
			return nil
		}
		pipe := ex.s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(names))
		for i, n := range names {
			cmds[i] = pipe.Get(ctx, n)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		var buf bytes.Buffer
		var users, sas, bad int
		for i, c := range cmds {
			raw, err := c.Bytes()
			if err != nil {
				continue // deleted since the scan
			}
			var o Owner
			if json.Unmarshal(raw, &o) != nil || o.ID != recordID(names[i], prefix) {
				bad++
				continue
			}
			encode(&buf, exportRecord{Kind: recordOwner, Owner: &o})
			if o.Kind == OwnerServiceAccount {
				sas++
			} else {
				users++
			}
		}
		return ex.emit(&buf, users+sas, func(s *ExportSummary) { s.Users += users; s.ServiceAccounts += sas; s.Unreadable += bad })
	})
}

// keepRecords keeps the names of records (prefix{id}) among names.
func keepRecords(names []string, prefix string) []string {
	out := names[:0]
	for _, n := range names {
		if recordID(n, prefix) != "" {
			out = append(out, n)
		}
	}
	return out
}

func (ex *exporter) keys(ctx context.Context) error {
	prefix := ex.s.prefix + ":key:"
	return ex.s.scanAll(ctx, prefix+"{*}", func(ctx context.Context, names []string) error {
		names = keepRecords(names, prefix)
		if len(names) == 0 {
			return nil
		}
		ids := make([]string, len(names))
		for i, n := range names {
			ids[i] = recordID(n, prefix)
		}
		pipe := ex.s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(names))
		for i, n := range names {
			cmds[i] = pipe.Get(ctx, n)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		used, err := ex.s.LastUsed(ctx, ids...)
		if err != nil {
			return err
		}
		recs := make([]exportRecord, 0, len(names))
		var pending, bad int
		for i, c := range cmds {
			raw, err := c.Bytes()
			if err != nil {
				continue // deleted since the scan
			}
			var k Key
			if decodeKey(raw, &k) != nil || k.ID != ids[i] {
				bad++
				continue
			}
			if k.Pending {
				pending++
				continue
			}
			rec := exportRecord{Kind: recordKey, Key: &k}
			if t, ok := used[k.ID]; ok {
				t = t.UTC()
				rec.LastUsed = &t
			}
			recs = append(recs, rec)
		}
		recs, err = ex.recordExpiries(ctx, recs)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		var live, rotated int
		for _, rec := range recs {
			encode(&buf, rec)
			if rec.Key.ReplacedBy != "" {
				rotated++
			} else {
				live++
			}
		}
		return ex.emit(&buf, len(recs), func(s *ExportSummary) {
			s.Keys += live
			s.RotatedKeys += rotated
			s.PendingSkipped += pending
			s.Unreadable += bad
		})
	})
}

// recordExpiries sets RecordExpiresAt on the records of keys rotated out,
// whose Redis record expires at the end of their grace (at graceUntil
// for a record that has no TTL), and drops those that expired meanwhile
// or that have no grace at all.
func (ex *exporter) recordExpiries(ctx context.Context, recs []exportRecord) ([]exportRecord, error) {
	pipe := ex.s.rdb.Pipeline()
	ttls := make(map[int]*redis.DurationCmd)
	for i, rec := range recs {
		if rec.Key.ReplacedBy != "" {
			ttls[i] = pipe.PTTL(ctx, ex.s.keyKey(rec.Key.ID))
		}
	}
	if len(ttls) == 0 {
		return recs, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	now := ex.s.Now()
	out := recs[:0]
	for i, rec := range recs {
		if c := ttls[i]; c != nil {
			ttl := c.Val()
			if ttl == -2 || ttl == 0 { // gone (go-redis keeps -2 and -1 as they are)
				continue
			}
			switch {
			case ttl > 0:
				t := now.Add(ttl)
				rec.RecordExpiresAt = &t
			case rec.Key.GraceUntil.IsZero():
				continue // no grace, never to work again: import refuses it
			default:
				// A record without a TTL (PERSIST, a restore) lives on,
				// but its key works only until the end of its grace.
				t := rec.Key.GraceUntil.UTC()
				rec.RecordExpiresAt = &t
			}
		}
		out = append(out, rec)
	}
	return out, nil
}
