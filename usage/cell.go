package usage

import (
	"sync"
	"sync/atomic"
	"time"
)

// Cell counts the requests of one key in its current minute with atomic
// additions only, for the hottest path: a request of a key already
// counted this minute costs two atomic loads and one atomic addition, no
// lock and no map. A Cell belongs to a Recorder, whose Take drains it;
// when its minute ends, the next request moves what it holds into the
// Recorder first.
type Cell struct {
	r      *Recorder
	id     string
	mu     sync.Mutex // serialises draining
	minute atomic.Int64
	counts [numOutcomes]atomic.Int64
	// listed: the Recorder knows the cell holds counts.
	listed atomic.Bool
}

// NewCell returns a Cell counting the requests of key accessID into r.
func (r *Recorder) NewCell(accessID string) *Cell {
	return &Cell{r: r, id: accessID}
}

// Add counts one request with outcome o at now.
func (c *Cell) Add(o Outcome, now time.Time) {
	if m := now.Unix() / 60; c.minute.Load() != m {
		c.roll(m)
	}
	c.counts[o].Add(1)
	if !c.listed.Load() && c.listed.CompareAndSwap(false, true) {
		c.r.list(c)
	}
}

// roll moves the counts of the minute that ended into the Recorder and
// starts minute m.
func (c *Cell) roll(m int64) {
	c.mu.Lock()
	if old := c.minute.Load(); old != m {
		c.drain(old)
		c.minute.Store(m)
	}
	c.mu.Unlock()
}

// drain moves the counts held into the Recorder under minute; c.mu is
// held. A request counted while draining lands in this minute or the
// next drain: none is lost.
func (c *Cell) drain(minute int64) {
	var d Counts
	for i := range c.counts {
		d[i] = c.counts[i].Swap(0)
	}
	if d.zero() {
		return
	}
	sh, rc := c.r.lock(recKey{c.id, minute})
	if rc != nil {
		rc.add(&d)
	}
	sh.mu.Unlock()
}

// list records that c holds counts.
func (r *Recorder) list(c *Cell) {
	r.cellsMu.Lock()
	r.cells = append(r.cells, c)
	r.cellsMu.Unlock()
}

// drainCells moves what every listed cell holds into the Recorder.
func (r *Recorder) drainCells() {
	r.cellsMu.Lock()
	cells := r.cells
	r.cells = nil
	r.cellsMu.Unlock()
	for _, c := range cells {
		// Unlisted first: a request counted from now on lists the cell
		// again, for the next drain.
		c.listed.Store(false)
		c.mu.Lock()
		c.drain(c.minute.Load())
		c.mu.Unlock()
	}
}
