package caddymodule

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/limits"
	"github.com/accessgate/accessgate/usage"
)

// Usage counting (CONTRACT §9). Every request of the access_keys handler
// that names an existing Access ID is counted, per key and minute, in the
// state's usage.Recorder: on the request path only an in-memory addition.
// A loop of the state writes the counts to Redis every usage_flush and
// right after each minute ends; a failed write gives them back to the
// Recorder (whose bound caps the memory held), and closing the state
// writes what is left. Unknown Access IDs and malformed credentials are
// never counted: nothing a client invents grows the Recorder.

// usageRecorderPairs bounds the (key, minute) pairs held in memory between
// writes: about 40 MB at most, and minutes of traffic for many thousands
// of keys during an outage.
const usageRecorderPairs = 200000

// unverifiedPairs bounds the (Access ID, minute) pairs of requests whose
// Access Key failed its checksum, held until a flush checks which IDs
// exist: invented IDs can fill it, never the counts of real keys.
const unverifiedPairs = 10000

// usageWriteTimeout bounds one write of the counts to Redis.
const usageWriteTimeout = 5 * time.Second

// usageBoundaryLag is how long after a minute ends its counts are written.
const usageBoundaryLag = 50 * time.Millisecond

// countUsage counts one request of the key accessID with outcome o.
func (s *state) countUsage(accessID string, o usage.Outcome) {
	s.usage.Add(accessID, o, s.clock.Now())
}

// countRejection counts a refused request of an existing key: 401 for a
// key whose record was found, 403 (origin or scope) for a verified key,
// 429 by a usage limit. Other refusals (unknown or malformed credentials,
// failure limits, outages) are not counted.
func (s *state) countRejection(rej *rejection) {
	switch {
	case rej.status == http.StatusUnauthorized && rej.keyFound:
		s.countUsage(rej.accessID, usage.Unauthorized)
	case rej.status == http.StatusForbidden && rej.ident != nil:
		s.countUsage(rej.ident.AccessID, usage.Forbidden)
	case rej.status == http.StatusTooManyRequests && rej.limit != limits.KindNone && rej.ident != nil:
		s.countUsage(rej.ident.AccessID, usage.RateLimited)
	}
}

// flushUsage writes the counts held to Redis; those that could not be
// written are given back, to be written with the next ones.
func (s *state) flushUsage(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, usageWriteTimeout)
	defer cancel()
	ds := append(s.usage.Take(), s.existingUnverified(ctx)...)
	if len(ds) == 0 {
		return
	}
	unwritten, err := s.usageStore.Write(ctx, ds)
	if err == nil {
		if s.usageFailing.Swap(false) {
			s.logger().Info("usage counts written again")
		}
		return
	}
	s.usage.Restore(unwritten)
	if !s.usageFailing.Swap(true) {
		s.logger().Warn("usage counts could not be written; they are kept in memory and retried", zap.Error(err))
	}
}

// runUsageFlush writes the counts every usage_flush and right after each
// minute boundary, until ctx ends.
func (s *state) runUsageFlush(ctx context.Context) {
	every := time.Duration(s.cfg.UsageFlush)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		wait := every
		if b := now.Truncate(time.Minute).Add(time.Minute + usageBoundaryLag).Sub(now); b < wait {
			wait = b
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flushUsage(ctx)
		}
	}
}

// countMalformed counts a request whose Access Key failed its checksum
// (or length) under the well-formed Access ID it named; the next flush
// keeps the count only if that ID exists.
func (s *state) countMalformed(accessID string) {
	s.unverified.Add(accessID, usage.Unauthorized, s.clock.Now())
}

// existingUnverified returns the counts of requests with malformed keys
// whose Access IDs exist, checked in one round trip; the rest are
// dropped. When Redis cannot say, they are kept for the next flush.
func (s *state) existingUnverified(ctx context.Context) []usage.Delta {
	ds := s.unverified.Take()
	if len(ds) == 0 {
		return nil
	}
	ids := make([]string, 0, len(ds))
	seen := make(map[string]bool, len(ds))
	for _, d := range ds {
		if !seen[d.AccessID] {
			seen[d.AccessID] = true
			ids = append(ids, d.AccessID)
		}
	}
	known, err := s.store.KeysExist(ctx, ids)
	if err != nil {
		s.unverified.Restore(ds)
		return nil
	}
	out := ds[:0]
	for _, d := range ds {
		if known[d.AccessID] {
			out = append(out, d)
		}
	}
	return out
}

// statusWriter remembers the status of the response it passes on, for the
// usage counts of allowed requests. Like caddyhttp.ResponseWriterWrapper
// it offers Unwrap (for http.ResponseController), Push and ReadFrom.
// Writers are pooled: wrapping costs no allocation.
type statusWriter struct {
	caddyhttp.ResponseWriterWrapper
	status int
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// WriteHeader remembers the first final status (or 101) and passes it on.
func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 && (status >= 200 || status == http.StatusSwitchingProtocols) {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write passes b on; a body written before any status is a 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom passes r on; a body written before any status is a 200.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// serveCounted runs next with a writer that remembers the status, then
// counts the request with the status class the client got: the status
// written, else the one Caddy makes of the handler's error (500 unless it
// says otherwise), else 200.
func serveCounted(st *state, e *entry, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	sw := statusWriters.Get().(*statusWriter)
	sw.ResponseWriter, sw.status = w, 0
	err := next.ServeHTTP(sw, r)
	status := sw.status
	sw.ResponseWriter = nil
	statusWriters.Put(sw)
	if status == 0 {
		status = http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			var he caddyhttp.HandlerError
			if errors.As(err, &he) && he.StatusCode != 0 {
				status = he.StatusCode
			}
		}
	}
	if e.use != nil {
		e.use.Add(usage.StatusOutcome(status), st.clock.Now())
	} else {
		st.countUsage(e.ident.AccessID, usage.StatusOutcome(status))
	}
	return err
}
