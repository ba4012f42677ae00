package keystore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
)

// pipelineGate is a go-redis hook that counts the pipelines a client sends
// of reads (those with a GET; a new connection's handshake is one too) and
// holds each until let through: one by step, all by release.
type pipelineGate struct {
	started atomic.Int64
	tokens  chan struct{}
	once    sync.Once
}

func newPipelineGate() *pipelineGate { return &pipelineGate{tokens: make(chan struct{})} }

func (g *pipelineGate) step()    { g.tokens <- struct{}{} }
func (g *pipelineGate) release() { g.once.Do(func() { close(g.tokens) }) }

func (g *pipelineGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *pipelineGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (g *pipelineGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "get" {
			return next(ctx, cmds)
		}
		g.started.Add(1)
		<-g.tokens
		return next(ctx, cmds)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (b *recordReader) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running == 0 && len(b.queue) == 0
}

func (b *recordReader) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// batchReply is what one read got back.
type batchReply struct {
	record, lastUsed string
	policies         map[string]string
	keyErr, err      error
}

// readOne reads record i (see seedRecords) through b.
func readOne(ctx context.Context, b *recordReader, i int, policies bool) batchReply {
	r := b.get()
	r.key = fmt.Sprintf("t:key:{k%d}", i)
	r.luKey, r.luField = "t:lastused:{s"+strconv.Itoa(i%4)+"}", fmt.Sprintf("k%d", i)
	if policies {
		r.policies, r.policyKey = true, "t:policy"
	}
	if err := b.read(ctx, r); err != nil {
		return batchReply{err: err}
	}
	out := batchReply{record: r.keyCmd.Val(), lastUsed: r.luCmd.Val(), keyErr: r.keyCmd.Err(), err: r.err()}
	if r.polCmd != nil {
		out.policies = r.polCmd.Val()
	}
	b.put(r)
	return out
}

// seedRecords writes n records; records whose index is a multiple of 3
// have no last use, and those of 5 do not exist.
func seedRecords(t *testing.T, rdb redis.UniversalClient, n int) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.HSet(ctx, "t:policy", "expiry", "30d").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i%5 != 0 {
			if err := rdb.Set(ctx, fmt.Sprintf("t:key:{k%d}", i), fmt.Sprintf("record-%d", i), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 != 0 {
			if err := rdb.HSet(ctx, "t:lastused:{s"+strconv.Itoa(i%4)+"}", fmt.Sprintf("k%d", i), strconv.Itoa(1000+i)).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkReply fails the test unless got is the right answer for record i.
func checkReply(t *testing.T, i int, policies bool, got batchReply) {
	t.Helper()
	if got.err != nil {
		t.Errorf("read %d: %v", i, got.err)
		return
	}
	wantRecord, wantLU := fmt.Sprintf("record-%d", i), strconv.Itoa(1000+i)
	if i%5 == 0 {
		wantRecord = ""
		if !errors.Is(got.keyErr, redis.Nil) {
			t.Errorf("read %d: record error %v, want redis.Nil", i, got.keyErr)
		}
	}
	if i%3 == 0 {
		wantLU = ""
	}
	if got.record != wantRecord || got.lastUsed != wantLU {
		t.Errorf("read %d: record %q, last use %q; want %q, %q", i, got.record, got.lastUsed, wantRecord, wantLU)
	}
	if policies && got.policies["expiry"] != "30d" {
		t.Errorf("read %d: policies %v", i, got.policies)
	}
	if !policies && got.policies != nil {
		t.Errorf("read %d: policies %v read though not asked for", i, got.policies)
	}
}

// readConcurrently starts n reads through b while the gate holds the
// pipelines, waits until all but the first readPipelines are queued,
// releases the gate and returns the replies.
func readConcurrently(t *testing.T, b *recordReader, g *pipelineGate, n int) []batchReply {
	t.Helper()
	replies := make([]batchReply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = readOne(context.Background(), b, i, i%2 == 0)
		}()
	}
	waitFor(t, "reads to queue", func() bool {
		return g.started.Load() == readPipelines && b.queued() == n-readPipelines
	})
	g.release()
	wg.Wait()
	return replies
}

func TestRecordReaderBatchesConcurrentReads(t *testing.T) {
	tests := []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"single", func(t *testing.T) redis.UniversalClient { return redistest.Start(t).Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.StartCluster(t, 3).Client(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 200
			rdb := tt.rdb(t)
			seedRecords(t, rdb, n)
			g := newPipelineGate()
			rdb.AddHook(g)
			b := newRecordReader(rdb)
			replies := readConcurrently(t, b, g, n)
			for i, got := range replies {
				checkReply(t, i, i%2 == 0, got)
			}
			// Two lone reads, then the queued ones maxReadBatch at a time.
			want := readPipelines + (n-readPipelines+maxReadBatch-1)/maxReadBatch
			if got := g.started.Load(); got > int64(want) {
				t.Errorf("%d reads took %d pipelines, want at most %d", n, got, want)
			}
			waitFor(t, "the pipelines to end", b.idle)
		})
	}
}

func TestRecordReaderLoneReadGoesAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	seedRecords(t, rdb, 10)
	b := newRecordReader(rdb)
	for i := range 10 {
		checkReply(t, i, i%2 == 0, readOne(context.Background(), b, i, i%2 == 0))
	}
	waitFor(t, "the pipelines to end", b.idle)
}

func TestRecordReaderCancelledWaiterLeaves(t *testing.T) {
	tests := []struct {
		name string
		// inFlight: the waiter leaves once its read is sent, not while it
		// is queued.
		inFlight bool
	}{
		{"queued", false},
		{"in flight", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := redistest.Start(t).Client(t)
			seedRecords(t, rdb, 10)
			g := newPipelineGate()
			rdb.AddHook(g)
			defer g.release()
			b := newRecordReader(rdb)

			// Fill the pipelines with lone reads held by the gate.
			var wg sync.WaitGroup
			replies := make([]batchReply, readPipelines)
			for i := range readPipelines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					replies[i] = readOne(context.Background(), b, i, false)
				}()
			}
			waitFor(t, "pipelines to fill", func() bool { return g.started.Load() == readPipelines })

			ctx, cancel := context.WithCancel(context.Background())
			left := make(chan error, 1)
			go func() { left <- readOne(ctx, b, 7, false).err }()
			waitFor(t, "the waiter to queue", func() bool { return b.queued() == 1 })
			if tt.inFlight {
				// One lone read returns; the waiter's batch is sent and
				// held in turn.
				g.step()
				waitFor(t, "the waiter's batch", func() bool { return g.started.Load() == readPipelines+1 && b.queued() == 0 })
			}
			cancel()
			if err := <-left; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
			}
			if q := b.queued(); q != 0 {
				t.Fatalf("cancelled waiter still queued (%d)", q)
			}
			g.release()
			wg.Wait()
			for i := range readPipelines {
				checkReply(t, i, false, replies[i])
			}
			waitFor(t, "the pipelines to end", b.idle)
			// The reader still answers right.
			checkReply(t, 8, true, readOne(context.Background(), b, 8, true))
		})
	}
}

func TestRecordReaderErrorGoesToEveryWaiter(t *testing.T) {
	const n = 40
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	seedRecords(t, rdb, n)
	g := newPipelineGate()
	rdb.AddHook(g)
	b := newRecordReader(rdb)

	replies := make([]batchReply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			replies[i] = readOne(ctx, b, i, true)
		}()
	}
	waitFor(t, "reads to queue", func() bool {
		return g.started.Load() == readPipelines && b.queued() == n-readPipelines
	})
	srv.Stop(t)
	g.release()
	wg.Wait()
	for i, got := range replies {
		if got.err == nil {
			t.Errorf("read %d with Redis down: no error (record %q)", i, got.record)
		}
	}
	waitFor(t, "the pipelines to end", b.idle)
}
