package usage

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Delta is what one key did in one minute since the last Take.
type Delta struct {
	AccessID string
	// Minute is the start of the minute (UTC).
	Minute time.Time
	Counts Counts
}

// Recorder aggregates counts in memory, per key and minute, until Take
// drains them. It holds at most its bound of (key, minute) pairs: what
// comes beyond is dropped and counted (Dropped). Safe for concurrent use.
type Recorder struct {
	seed    maphash.Seed
	per     int // pairs per shard
	shards  [recShards]recShard
	dropped atomic.Int64

	// cells lists the Cells holding counts (see cell.go).
	cellsMu sync.Mutex
	cells   []*Cell
}

const recShards = 16

type recShard struct {
	mu sync.Mutex
	m  map[recKey]*Counts
}

type recKey struct {
	id     string
	minute int64 // Unix minutes
}

// NewRecorder returns a Recorder holding at most max (key, minute) pairs.
func NewRecorder(max int) *Recorder {
	r := &Recorder{seed: maphash.MakeSeed(), per: (max + recShards - 1) / recShards}
	for i := range r.shards {
		r.shards[i].m = make(map[recKey]*Counts)
	}
	return r
}

// Add counts one request of key accessID with outcome o at now.
func (r *Recorder) Add(accessID string, o Outcome, now time.Time) {
	sh, c := r.lock(recKey{accessID, now.Unix() / 60})
	if c != nil {
		c[o]++
	}
	sh.mu.Unlock()
}

// lock locks the shard of k and returns the counts of k, nil when the
// Recorder is full (the drop is counted). The caller unlocks.
func (r *Recorder) lock(k recKey) (*recShard, *Counts) {
	sh := &r.shards[maphash.String(r.seed, k.id)%recShards]
	sh.mu.Lock()
	c := sh.m[k]
	if c == nil {
		if len(sh.m) >= r.per {
			r.dropped.Add(1)
			return sh, nil
		}
		c = new(Counts)
		sh.m[k] = c
	}
	return sh, c
}

// Take drains what was counted since the last Take, Cells included.
func (r *Recorder) Take() []Delta {
	r.drainCells()
	var out []Delta
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		m := sh.m
		sh.m = make(map[recKey]*Counts, len(m))
		sh.mu.Unlock()
		for k, c := range m {
			out = append(out, Delta{AccessID: k.id, Minute: time.Unix(k.minute*60, 0).UTC(), Counts: *c})
		}
	}
	return out
}

// Restore gives back deltas that could not be written, to be written with
// the next ones (within the Recorder's bound).
func (r *Recorder) Restore(ds []Delta) {
	for i := range ds {
		d := &ds[i]
		sh, c := r.lock(recKey{d.AccessID, d.Minute.Unix() / 60})
		if c != nil {
			c.add(&d.Counts)
		}
		sh.mu.Unlock()
	}
}

// Dropped is how many counts were dropped because the Recorder was full.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Len is the number of (key, minute) pairs held.
func (r *Recorder) Len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
