package keystore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// DefaultImportBatch is how many records one import pipeline carries.
const DefaultImportBatch = 500

// importIndexWorkers bounds the key indexings an import runs at once.
const importIndexWorkers = 16

// ImportOptions tune Import.
type ImportOptions struct {
	// Operator is recorded in the AccessKeysImported audit event.
	Operator Operator
	// Resume skips, without reading them from Redis, the lines that an
	// interrupted import of the same file recorded as done. Without it a
	// repeated import checks every record, pipelined, and writes none
	// that is there already.
	Resume bool
	// Merge imports into a store that already holds keys, users, service
	// accounts or roles that no unfinished import of this file wrote.
	// Without it such a store is refused before anything is written.
	Merge bool
	// BatchSize is the number of records per pipeline;
	// DefaultImportBatch when zero or negative.
	BatchSize int
	// Progress, when set, is called after each batch with the records
	// done (written, kept or resumed) and the total the header announces.
	Progress func(done, total int)
}

// ImportSummary counts what an import did.
type ImportSummary struct {
	ExportID     string `json:"exportId"`
	SourcePrefix string `json:"sourcePrefix"`
	// Total is the number of records the header announces.
	Total int `json:"total"`
	// Records is the number of record lines read.
	Records int `json:"records"`
	// Written counts records written; Skipped records kept because Redis
	// held the same or a newer version of them.
	Written int `json:"written"`
	Skipped int `json:"skipped"`
	// Expired counts keys rotated out whose grace ended before the import.
	Expired int `json:"expired"`
	// LastUsedWritten counts last-use times moved forward.
	LastUsedWritten int `json:"lastUsedWritten"`
	// Resumed counts lines skipped by Resume: done by an earlier import.
	Resumed int `json:"resumed"`
	// Complete is set when the whole file was imported.
	Complete bool `json:"complete"`
}

// ImportError is a problem with one line of an import file. Nothing of
// that line's record was written; records of earlier lines were.
type ImportError struct {
	Line int
	Err  error
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, truncateText(e.Err.Error(), 512))
}

func (e *ImportError) Unwrap() error { return e.Err }

// ErrStoreNotEmpty is returned by an import into a store that holds
// records no unfinished import of the same file wrote, unless
// ImportOptions.Merge.
var ErrStoreNotEmpty = errors.New("the store already holds records")

// ErrTruncated is returned when an import file ends without its end line.
var ErrTruncated = errors.New("the file ends without its end line: it was cut short")

// importMarker names the hash in which an import records which export it
// imports and the last line done, for Resume and for the empty-store
// check of a repeated import.
func (s *Store) importMarker() string { return s.prefix + ":import" }

// Import reads an export (see Export) into the store. It is streaming
// (one batch of records in memory), pipelined, and idempotent: a record
// whose ID Redis holds with the same or a higher Version (owners and
// roles: modification time; policies: time set) is kept and counted as
// skipped, so importing a file twice writes nothing the second time.
// Indexes are written before each record, through the store's own index
// functions, so that an import stopped at any point and run again leaves
// every record indexed. Last-use times only move forward.
//
// The first invalid line stops the import with an *ImportError naming
// it; the records before it are imported. A store that holds records
// not written by an unfinished import of this file is refused
// (ErrStoreNotEmpty) unless opts.Merge. One AccessKeysImported audit event records each
// import that passed these checks, and one invalidation message asks
// every gateway to drop its cache when anything was written.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportSummary, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultImportBatch
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxExportLine)
	im := &importer{s: s, opts: opts, sc: sc}
	hdr, err := im.header()
	if err != nil {
		return im.sum, err
	}
	im.sum.ExportID, im.sum.SourcePrefix, im.sum.Total = hdr.ExportID, hdr.Prefix, hdr.Counts.Total()
	skipThrough, err := im.begin(ctx, hdr)
	if err != nil {
		return im.sum, err
	}
	err = im.records(ctx, skipThrough)
	s.importDone(ctx, im.sum, im.wrote, opts.Operator, err)
	return im.sum, err
}

// importer holds the state of one import.
type importer struct {
	s    *Store
	opts ImportOptions
	sc   *bufio.Scanner
	line int
	sum  ImportSummary
	// wrote is set once a write of records was sent to Redis, whether
	// it succeeded or not: a write that failed may have been applied in
	// part.
	wrote bool
}

// next reads the next line; false at the end of the input or on a read
// error, which it returns.
func (im *importer) next() (bool, error) {
	if im.sc.Scan() {
		im.line++
		return true, nil
	}
	err := im.sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		return false, &ImportError{Line: im.line + 1, Err: fmt.Errorf("line longer than %d bytes", MaxExportLine)}
	}
	return false, err
}

// header reads and checks the first line.
func (im *importer) header() (exportHeader, error) {
	ok, err := im.next()
	if err != nil {
		return exportHeader{}, err
	}
	if !ok {
		return exportHeader{}, &ImportError{Line: 1, Err: errors.New("empty input: not an export")}
	}
	var probe struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if json.Unmarshal(im.sc.Bytes(), &probe) != nil || probe.Format != ExportFormat {
		return exportHeader{}, &ImportError{Line: 1, Err: fmt.Errorf("not an %s file: the first line must be its header", ExportFormat)}
	}
	if probe.Version != ExportVersion {
		return exportHeader{}, &ImportError{Line: 1, Err: fmt.Errorf("%s version %d; this build reads version %d only", ExportFormat, probe.Version, ExportVersion)}
	}
	var h exportHeader
	if err := strictDecode(im.sc.Bytes(), &h); err != nil {
		return exportHeader{}, &ImportError{Line: 1, Err: fmt.Errorf("header: %w", err)}
	}
	if h.ExportID == "" || len(h.ExportID) > 64 || !plainText(h.ExportID) {
		return exportHeader{}, &ImportError{Line: 1, Err: errors.New("header: exportId missing or invalid")}
	}
	if h.Prefix != "" && !ValidPrefix(h.Prefix) {
		return exportHeader{}, &ImportError{Line: 1, Err: errors.New("header: invalid prefix")}
	}
	return h, nil
}

// strictDecode decodes one JSON value, refusing unknown fields (written
// by a newer build, they would be lost) and trailing data.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// begin checks that the store may take this export and records the
// import in the marker. It returns the last line that Resume skips.
func (im *importer) begin(ctx context.Context, hdr exportHeader) (int, error) {
	s := im.s
	marker, err := s.rdb.HGetAll(ctx, s.importMarker()).Result()
	if err != nil {
		return 0, err
	}
	same := marker["exportId"] == hdr.ExportID
	// Only an import of this file that has not completed may go on into
	// the store it left non-empty: once complete, the store is the
	// operator's again, and keys deleted since must not come back.
	unfinished := same && marker["complete"] != "1"
	if !unfinished && !im.opts.Merge {
		c, err := s.Counts(ctx)
		if err != nil {
			return 0, err
		}
		if c.Total()-c.Policies > 0 {
			return 0, fmt.Errorf("%w (prefix %s: %d keys, %d users, %d service accounts, %d roles) that no import of export %s wrote",
				ErrStoreNotEmpty, s.prefix, c.Keys, c.Users, c.ServiceAccounts, c.Roles, hdr.ExportID)
		}
	}
	skip := 0
	if same && im.opts.Resume {
		skip, _ = strconv.Atoi(marker["line"])
	}
	fields := []any{"exportId", hdr.ExportID, "complete", 0}
	if !same {
		fields = append(fields, "line", 0)
	}
	if err := s.rdb.HSet(ctx, s.importMarker(), fields...).Err(); err != nil {
		return 0, err
	}
	return skip, nil
}

// records imports every line after the header.
func (im *importer) records(ctx context.Context, skipThrough int) error {
	batch := make([]lineRecord, 0, im.opts.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := im.flush(ctx, batch); err != nil {
			return err
		}
		last := batch[len(batch)-1].line
		batch = batch[:0]
		if err := im.s.rdb.HSet(ctx, im.s.importMarker(), "line", last).Err(); err != nil {
			return err
		}
		im.progress()
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ok, err := im.next()
		if err != nil {
			return errors.Join(flush(), err)
		}
		if !ok {
			if err := flush(); err != nil {
				return err
			}
			return &ImportError{Line: im.line + 1, Err: ErrTruncated}
		}
		if im.line <= skipThrough {
			im.sum.Resumed++
			if im.sum.Resumed%im.opts.BatchSize == 0 {
				im.progress()
			}
			continue
		}
		rec, err := parseRecord(im.sc.Bytes(), im.s.Now())
		if err != nil {
			return errors.Join(flush(), &ImportError{Line: im.line, Err: err})
		}
		if rec.Kind == recordEnd {
			if err := flush(); err != nil {
				return err
			}
			return im.end(ctx, *rec.Records)
		}
		im.sum.Records++
		batch = append(batch, lineRecord{line: im.line, rec: rec})
		if len(batch) == im.opts.BatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// end checks the end line against the lines read and that nothing
// follows it, and marks the import complete.
func (im *importer) end(ctx context.Context, want int) error {
	endLine := im.line
	if got := endLine - 2; got != want {
		return &ImportError{Line: endLine, Err: fmt.Errorf("the end line counts %d records, the file holds %d", want, got)}
	}
	ok, err := im.next()
	if err != nil {
		return err
	}
	if ok {
		return &ImportError{Line: im.line, Err: errors.New("data after the end line")}
	}
	im.sum.Complete = true
	im.progress()
	return im.s.rdb.HSet(ctx, im.s.importMarker(), "complete", 1).Err()
}

func (im *importer) progress() {
	if im.opts.Progress != nil {
		im.opts.Progress(im.sum.Resumed+im.sum.Written+im.sum.Skipped+im.sum.Expired, im.sum.Total)
	}
}

// lineRecord is a parsed record and the line it came from.
type lineRecord struct {
	line int
	rec  exportRecord
}

// importDone announces an import that wrote anything, or tried to, and
// records it in the audit stream, whether it completed or not.
func (s *Store) importDone(ctx context.Context, sum ImportSummary, wrote bool, op Operator, err error) {
	ctx = context.WithoutCancel(ctx)
	if wrote {
		_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			return s.announce(ctx, p, invalidateAll)
		})
	}
	details := map[string]any{
		"exportId": sum.ExportID, "sourcePrefix": sum.SourcePrefix, "records": sum.Records, "written": sum.Written,
		"skipped": sum.Skipped, "expired": sum.Expired, "lastUsedWritten": sum.LastUsedWritten, "resumed": sum.Resumed,
		"complete": sum.Complete,
	}
	if err != nil {
		details["error"] = truncateText(err.Error(), 256)
	}
	s.emit(ctx, Event{EventName: EventKeysImported, Operator: op, Details: details})
}

// truncateText cuts s to at most n bytes, on a rune boundary, marking
// the cut with an ellipsis.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
