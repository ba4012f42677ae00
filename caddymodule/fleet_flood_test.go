package caddymodule_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// totalCommands sums the calls of every command in INFO commandstats.
func totalCommands(t *testing.T, rs *redistest.Server) int64 {
	t.Helper()
	var n int64
	for _, line := range strings.Split(rs.Info(t, "commandstats"), "\n") {
		_, stat, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(stat, ",")
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		n += c
	}
	return n
}

// rawResponse is what rawFlood reads of a response.
type rawResponse struct {
	status     int
	retryAfter string
	body       []byte
}

// rawFlood sends n GET requests for target over conns keep-alive
// connections, pipelining them batch at a time: a lean client, so that a
// flood of 100,000 requests takes seconds. Request i carries the
// credential cred(i); check sees every response and runs concurrently.
func rawFlood(t *testing.T, target string, n, conns, batch int, cred func(i int) cred, check func(rawResponse)) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rawWorker(u, &next, n, batch, cred, check); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("flood: %v", err)
	}
}

func rawWorker(u *url.URL, next *atomic.Int64, n, batch int, cred func(int) cred, check func(rawResponse)) error {
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	rd := bufio.NewReaderSize(conn, 64<<10)
	var buf bytes.Buffer
	for {
		first := int(next.Add(int64(batch))) - batch
		if first >= n {
			return nil
		}
		last := min(first+batch, n)
		buf.Reset()
		for i := first; i < last; i++ {
			c := cred(i)
			fmt.Fprintf(&buf, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n\r\n",
				u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.secret)))
		}
		if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			return err
		}
		if _, err := conn.Write(buf.Bytes()); err != nil {
			return err
		}
		for i := first; i < last; i++ {
			r, err := readRawResponse(rd)
			if err != nil {
				return fmt.Errorf("response %d: %w", i, err)
			}
			check(r)
		}
	}
}

// readRawResponse reads one HTTP/1.1 response with a Content-Length.
func readRawResponse(rd *bufio.Reader) (rawResponse, error) {
	var r rawResponse
	line, err := rd.ReadString('\n')
	if err != nil {
		return r, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return r, fmt.Errorf("status line %q", line)
	}
	if r.status, err = strconv.Atoi(f[1]); err != nil {
		return r, fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		h, err := rd.ReadString('\n')
		if err != nil {
			return r, err
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		k, v, _ := strings.Cut(h, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			if length, err = strconv.Atoi(v); err != nil {
				return r, fmt.Errorf("header %q", h)
			}
		case "retry-after":
			r.retryAfter = v
		case "transfer-encoding":
			return r, fmt.Errorf("unexpected header %q", h)
		}
	}
	if length < 0 {
		return r, fmt.Errorf("status %d without Content-Length", r.status)
	}
	r.body = make([]byte, length)
	_, err = io.ReadFull(rd, r.body)
	return r, err
}

// TestFleetUnknownIDFlood sends 100,000 requests with random, well-formed
// but unknown credentials from one client. The failure limit per client
// (max_failures_per_client, 100 a minute by default) must turn all but
// about the first hundred into 429 without asking Redis.
func TestFleetUnknownIDFlood(t *testing.T) {
	const requests, workers, limit = 100000, 8, 100
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetflood"}
	gw := startFleetGateway(t, up, o)

	getsBefore, totalBefore := rs.CommandCount(t, "get"), totalCommands(t, rs)
	var (
		counts     [600]atomic.Int64
		badRetry   atomic.Int64
		badBody    atomic.Int64
		sample     atomic.Value
		unexpected atomic.Int64
	)
	start := time.Now()
	random := func(int) cred { return cred{keystore.NewAccessID(), keystore.NewAccessKey()} }
	rawFlood(t, gw.collectors(), requests, workers, 50, random, func(r rawResponse) {
		counts[r.status%600].Add(1)
		switch r.status {
		case http.StatusTooManyRequests:
			if s, err := strconv.Atoi(r.retryAfter); err != nil || s < 1 || s > 60 {
				badRetry.Add(1)
			}
			if !bytes.Contains(r.body, []byte(`"code":"rate.limit.exceeded"`)) || !isBodyA(r.body, http.StatusTooManyRequests, "rate.limit.exceeded") {
				badBody.Add(1)
				sample.CompareAndSwap(nil, string(r.body))
			}
		case http.StatusUnauthorized:
		default:
			unexpected.Add(1)
			sample.CompareAndSwap(nil, strconv.Itoa(r.status)+" "+string(r.body))
		}
	})
	elapsed := time.Since(start)
	gets := rs.CommandCount(t, "get") - getsBefore
	total := totalCommands(t, rs) - totalBefore

	n := func(status int) int64 { return counts[status].Load() }
	t.Logf("%d requests in %v: %d × 401, %d × 429; Redis GETs %d, all Redis commands %d",
		requests, elapsed.Round(time.Millisecond), n(401), n(429), gets, total)
	// Requests in flight when the limit is reached still look the ID up.
	slack := int64(2*workers + 4)
	if gets > limit+slack {
		t.Errorf("Redis GETs = %d, want at most %d (max_failures_per_client) + %d", gets, limit, slack)
	}
	if got := n(http.StatusUnauthorized); got < limit || got > limit+slack {
		t.Errorf("401 answers = %d, want %d to %d", got, limit, limit+slack)
	}
	if got := n(http.StatusTooManyRequests); got < requests-limit-slack {
		t.Errorf("429 answers = %d, want at least %d", got, requests-limit-slack)
	}
	// Per lookup a pipeline of three commands; per rejection at most one
	// audit event (burst 100, then 20 a second, plus a summary a second),
	// each a script that Redis counts as three commands (EVALSHA, SET of
	// its marker, XADD); a few pings and INFO calls of the test itself.
	auditBound := 3 * int64(100+21*(elapsed.Seconds()+2))
	if bound := 3*(limit+slack) + auditBound + 20; total > bound {
		t.Errorf("Redis commands = %d, want at most %d", total, bound)
	}
	if badRetry.Load() > 0 || badBody.Load() > 0 || unexpected.Load() > 0 {
		t.Errorf("%d 429s without a valid Retry-After, %d without body A code rate.limit.exceeded, %d other answers; e.g. %v",
			badRetry.Load(), badBody.Load(), unexpected.Load(), sample.Load())
	}
}

// TestFleetOneUnknownIDFlood floods a gateway whose failure limits are
// off with one made-up Access ID: only the negative cache stands between
// the flood and Redis, and it must leave one lookup.
func TestFleetOneUnknownIDFlood(t *testing.T) {
	const requests, conns = 5000, 32
	rs := redistest.Start(t)
	up := gatewaytest.Upstream(t)
	o := fleetOptions{redis: []string{rs.URL()}, prefix: "fleetone", extra: "max_failures_per_client -1\n\t\tmax_failures_per_key -1"}
	gw := startFleetGateway(t, up, o)

	id, secret := keystore.NewAccessID(), keystore.NewAccessKey()
	var other atomic.Int64
	check := func(r rawResponse) {
		if r.status != http.StatusUnauthorized {
			other.Add(1)
		}
	}
	settleGets(t, rs, o.prefix)
	before := rs.CommandCount(t, "get")
	rawFlood(t, gw.collectors(), requests, conns, 10, func(int) cred { return cred{id, secret} }, check)
	same := rs.CommandCount(t, "get") - before
	// The same made-up Access ID with a different key each time.
	rawFlood(t, gw.collectors(), requests, conns, 10, func(int) cred { return cred{id, keystore.NewAccessKey()} }, check)
	varied := rs.CommandCount(t, "get") - before - same
	t.Logf("%d requests with one made-up credential: %d Redis GETs; %d more with the same Access ID and random keys: %d Redis GETs",
		requests, same, requests, varied)
	if same != 1 {
		t.Errorf("one made-up credential cost %d Redis lookups, want 1", same)
	}
	if varied != 0 {
		t.Errorf("random keys for a known-unknown Access ID cost %d Redis lookups, want 0", varied)
	}
	// Another made-up Access ID, with a different key from the first
	// request on: concurrent first requests are distinct credentials, so
	// each may look the ID up once before the negative cache knows it.
	id2 := keystore.NewAccessID()
	before = rs.CommandCount(t, "get")
	rawFlood(t, gw.collectors(), requests, conns, 10, func(int) cred { return cred{id2, keystore.NewAccessKey()} }, check)
	fresh := rs.CommandCount(t, "get") - before
	t.Logf("%d requests with a new made-up Access ID and random keys from the start: %d Redis GETs", requests, fresh)
	if fresh < 1 || fresh > conns {
		t.Errorf("a new made-up Access ID with random keys cost %d Redis lookups, want 1 to %d (one per concurrent connection at most)", fresh, conns)
	}
	if other.Load() > 0 {
		t.Errorf("%d answers other than 401", other.Load())
	}
}

// settleGets waits until a gateway just started has migrated the store
// (the schema marker is written) and the server has run no GET for 200ms:
// the start-up reads the marker with GETs too (the migration, the first
// verifications), which must not count as lookups of a credential.
func settleGets(t *testing.T, rs *redistest.Server, prefix string) {
	t.Helper()
	rdb := rs.Client(t)
	ctx := context.Background()
	waitUntil(t, 10*time.Second, "the schema marker", func() bool { return rdb.Exists(ctx, prefix+":schema").Val() == 1 })
	last := rs.CommandCount(t, "get")
	waitUntil(t, 10*time.Second, "the start-up GETs to end", func() bool {
		time.Sleep(200 * time.Millisecond)
		n := rs.CommandCount(t, "get")
		quiet := n == last
		last = n
		return quiet
	})
}
