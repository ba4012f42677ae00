package soak

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Book holds every credential the soak made, with its history, and the
// ones the traffic currently uses.
type Book struct {
	mu    sync.RWMutex
	creds []*cred
	live  []int        // indices of creds the traffic uses
	lost  map[int]bool // creds with an acknowledged change found lost
}

// cred is one Access ID and key with its history.
type cred struct {
	id, key string
	changes []Change
	retire  time.Time // when the traffic stops using it; zero: not yet known
}

// Add records a new credential whose first change is c and puts it in
// the traffic. It returns the credential's index.
func (b *Book) Add(id, key string, c Change) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.creds = append(b.creds, &cred{id: id, key: key, changes: []Change{c}})
	i := len(b.creds) - 1
	b.live = append(b.live, i)
	return i
}

// Record appends a change to credential i's history.
func (b *Book) Record(i int, c Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.creds[i].changes = append(b.creds[i].changes, c)
}

// Retire makes the traffic stop using credential i after at.
func (b *Book) Retire(i int, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.creds[i].retire = at
}

// Prune removes from the traffic the credentials retired before now.
func (b *Book) Prune(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live = slices.DeleteFunc(b.live, func(i int) bool {
		r := b.creds[i].retire
		return !r.IsZero() && r.Before(now)
	})
}

// Pick returns a credential of the traffic at random.
func (b *Book) Pick(rng *rand.Rand) (i int, id, key string, ok bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if len(b.live) == 0 {
		return 0, "", "", false
	}
	i = b.live[rng.IntN(len(b.live))]
	c := b.creds[i]
	return i, c.id, c.key, true
}

// ID returns credential i's Access ID.
func (b *Book) ID(i int) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.creds[i].id
}

// Changes returns a copy of credential i's history.
func (b *Book) Changes(i int) []Change {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Clone(b.creds[i].changes)
}

// Len returns how many credentials the book holds.
func (b *Book) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.creds)
}

// MarkLost records that an acknowledged change of credential i was found
// lost (not stored), so that wrong answers for it can be told apart.
func (b *Book) MarkLost(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost == nil {
		b.lost = map[int]bool{}
	}
	b.lost[i] = true
}

// Lost reports whether MarkLost was called for credential i.
func (b *Book) Lost(i int) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.lost[i]
}
