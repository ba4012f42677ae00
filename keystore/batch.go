package keystore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batching of the reads of Verify ("auto-pipelining"). A cache miss costs
// the gateway less in its own work than in the Redis round trip around it:
// taking a pooled connection, writing, reading, waking goroutines. So the
// reads of concurrent misses share pipelines: at most readPipelines are in
// flight at once; a read that finds them all busy queues, and when one
// returns, up to maxReadBatch queued reads go together in the next. There
// is no timer: a lone read goes out at once, in its caller's goroutine,
// and batches form only under load. A ClusterClient splits each pipeline
// per node by itself.
const (
	// readPipelines is how many pipelines of reads are in flight at once.
	readPipelines = 2
	// maxReadBatch bounds the reads of one pipeline.
	maxReadBatch = 64
)

// recordRead is one verification's share of a pipeline: the record, its
// last use and, when policies is set, the key policies. Its replies are
// valid once read returns nil.
type recordRead struct {
	key       string
	luKey     string
	luField   string
	policies  bool
	policyKey string

	keyCmd *redis.StringCmd
	polCmd *redis.MapStringStringCmd
	luCmd  *redis.StringCmd
	// deadline is the reader's, to bound the pipeline it goes in.
	deadline time.Time
	// done receives once the replies are in (buffered: a reader that
	// left is not waited for).
	done chan struct{}
}

// err returns the first error of the read's commands other than redis.Nil,
// as Exec of a pipeline of its own would have.
func (r *recordRead) err() error {
	for _, err := range [...]error{r.keyCmd.Err(), r.polErr(), r.luCmd.Err()} {
		if err != nil {
			if errors.Is(err, redis.Nil) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (r *recordRead) polErr() error {
	if r.polCmd == nil {
		return nil
	}
	return r.polCmd.Err()
}

// recordReader sends the reads of Verify in shared pipelines. It is safe
// for concurrent use.
type recordReader struct {
	rdb  redis.UniversalClient
	pool sync.Pool

	mu sync.Mutex
	// running is how many pipelines are in flight; queue holds the reads
	// waiting for one. The queue is empty whenever running < readPipelines.
	running int
	queue   []*recordRead
}

func newRecordReader(rdb redis.UniversalClient) *recordReader {
	return &recordReader{rdb: rdb, pool: sync.Pool{New: func() any { return &recordRead{done: make(chan struct{}, 1)} }}}
}

// get returns an empty read; put recycles one whose replies were taken.
func (b *recordReader) get() *recordRead { return b.pool.Get().(*recordRead) }

func (b *recordReader) put(r *recordRead) {
	*r = recordRead{done: r.done}
	b.pool.Put(r)
}

// read sends r, alone at once when a pipeline is free, else with the reads
// queued meanwhile, and returns when its replies are in or ctx ends. A
// read that leaves on ctx is dropped from the queue, or its replies, if
// already sent, are dropped; r must then not be reused.
func (b *recordReader) read(ctx context.Context, r *recordRead) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.running < readPipelines {
		b.running++
		b.mu.Unlock()
		b.exec(ctx, []*recordRead{r}, false)
		b.release()
		return nil
	}
	r.deadline, _ = ctx.Deadline()
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	queued := b.dequeue(r)
	b.mu.Unlock()
	if !queued {
		select {
		case <-r.done:
			// The replies came as ctx ended: they are valid.
			return nil
		default:
		}
	}
	return ctx.Err()
}

// dequeue removes r from the queue and reports whether it was there.
// b.mu is held.
func (b *recordReader) dequeue(r *recordRead) bool {
	for i, q := range b.queue {
		if q == r {
			copy(b.queue[i:], b.queue[i+1:])
			b.queue[len(b.queue)-1] = nil
			b.queue = b.queue[:len(b.queue)-1]
			return true
		}
	}
	return false
}

// release frees the pipeline of a lone read, or, when reads queued
// meanwhile, hands it to a goroutine that sends them.
func (b *recordReader) release() {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running--
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.drain()
}

// drain sends the queued reads, maxReadBatch at a time, until none is
// left, then frees its pipeline.
func (b *recordReader) drain() {
	var batch []*recordRead
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxReadBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		batch = append(batch[:0], b.queue[:n]...)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()
		b.exec(batchContext(batch), batch, true)
		clear(batch)
	}
}

// exec sends the reads of batch in one pipeline and, when notify is set,
// tells each of them its replies are in. The policies are read once for
// the batch.
func (b *recordReader) exec(ctx context.Context, batch []*recordRead, notify bool) {
	pipe := b.rdb.Pipeline()
	var polCmd *redis.MapStringStringCmd
	for _, r := range batch {
		r.keyCmd = pipe.Get(ctx, r.key)
		if r.policies {
			if polCmd == nil {
				polCmd = pipe.HGetAll(ctx, r.policyKey)
			}
			r.polCmd = polCmd
		}
		r.luCmd = pipe.HGet(ctx, r.luKey, r.luField)
	}
	// Every command carries its own error; read takes them from there.
	_, _ = pipe.Exec(ctx)
	if !notify {
		return
	}
	for _, r := range batch {
		r.done <- struct{}{}
	}
}

// batchContext returns the context of a shared pipeline: no reader's
// leaving ends it for the others, but it lasts no longer than the latest
// of their deadlines, if they all have one.
func batchContext(batch []*recordRead) context.Context {
	var last time.Time
	for _, r := range batch {
		if r.deadline.IsZero() {
			return context.Background()
		}
		if r.deadline.After(last) {
			last = r.deadline
		}
	}
	return deadlineContext{Context: context.Background(), deadline: last}
}

// deadlineContext has a deadline but is never cancelled: the deadline
// bounds the Redis I/O (ContextTimeoutEnabled), and readers that give up
// earlier leave on their own contexts.
type deadlineContext struct {
	context.Context
	deadline time.Time
}

func (c deadlineContext) Deadline() (time.Time, bool) { return c.deadline, true }
