package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/accessgate/accessgate/internal/soak"
	"github.com/accessgate/accessgate/mgmtapi/client"
)

// Pool bounds: below minPool keys the churn only creates, above maxPool
// it only deletes.
const (
	minPool = 10
	maxPool = 30
	// afterRevoke is how long the traffic keeps using a deleted or
	// rotated-out credential after it is revoked.
	afterRevoke = 20 * time.Second
)

// trafficScopes are the scopes of every key the churn creates; the
// traffic's path needs viewCollectors.
var trafficScopes = []string{"viewCollectors"}

// member is a key of the churn's pool.
type member struct {
	cred     int
	id       string
	disabled bool
	// pred is the credential this one replaced in a rotation, or -1.
	pred int
	// lockedUntil: a key made by a rotation is left alone until its
	// predecessor's grace is over, since the predecessor works during its
	// grace only while its successor does.
	lockedUntil time.Time
}

// churner creates, disables, enables, rotates and deletes keys through
// the management API, recording each change's start and completion in
// the book.
type churner struct {
	api   *client.Client
	book  *soak.Book
	grace time.Duration
	rng   *rand.Rand

	mu      sync.Mutex // held during a change and during a check
	pool    []member
	deleted []member // keys deleted since the last check
	counts  map[string]int
	errors  int
	serial  int
}

func newChurner(api *client.Client, book *soak.Book, grace time.Duration) *churner {
	return &churner{api: api, book: book, grace: grace, rng: rand.New(rand.NewPCG(1, 2)), counts: map[string]int{}}
}

// run makes a change every interval until ctx ends.
func (c *churner) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.step(ctx)
	}
}

// step makes one change chosen at random among those the pool allows.
func (c *churner) step(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.book.Prune(time.Now())
	var enabled, disabled, unlocked []int
	now := time.Now()
	for i, m := range c.pool {
		if m.lockedUntil.After(now) {
			continue
		}
		unlocked = append(unlocked, i)
		if m.disabled {
			disabled = append(disabled, i)
		} else {
			enabled = append(enabled, i)
		}
	}
	type choice struct {
		weight int
		do     func()
	}
	pick := func(from []int) int { return from[c.rng.IntN(len(from))] }
	choices := []choice{{2, func() { c.create(ctx) }}}
	if len(c.pool) < minPool {
		choices = choices[:1]
	} else {
		if len(enabled) > 0 {
			choices = append(choices, choice{3, func() { c.setDisabled(ctx, pick(enabled), true) }},
				choice{2, func() { c.rotate(ctx, pick(enabled)) }})
		}
		if len(disabled) > 0 {
			choices = append(choices, choice{3, func() { c.setDisabled(ctx, pick(disabled), false) }})
		}
		if len(unlocked) > 0 {
			choices = append(choices, choice{2, func() { c.delete(ctx, pick(unlocked)) }})
			if len(c.pool) > maxPool {
				choices = choices[len(choices)-1:]
			}
		}
	}
	total := 0
	for _, ch := range choices {
		total += ch.weight
	}
	n := c.rng.IntN(total)
	for _, ch := range choices {
		if n < ch.weight {
			ch.do()
			return
		}
		n -= ch.weight
	}
}

// create makes a key and adds it to the pool and the traffic.
func (c *churner) create(ctx context.Context) {
	c.serial++
	start := time.Now()
	k, err := c.api.CreateAccessKey(ctx, "", client.CreateRequest{Label: fmt.Sprintf("soak-%d", c.serial), Scopes: trafficScopes})
	end := time.Now()
	if err != nil {
		c.fail(ctx, "create", err)
		return
	}
	c.counts["create"]++
	i := c.book.Add(k.ID, k.Key, soak.Change{What: "create", Start: start, End: end, After: soak.Valid})
	c.pool = append(c.pool, member{cred: i, id: k.ID, pred: -1})
}

// setDisabled deactivates or activates pool member p.
func (c *churner) setDisabled(ctx context.Context, p int, disabled bool) {
	m := &c.pool[p]
	what, after := "enable", soak.Valid
	if disabled {
		what, after = "disable", soak.Invalid
	}
	start := time.Now()
	_, err := c.api.UpdateAccessKey(ctx, m.id, client.UpdateRequest{Disabled: disabled})
	end := time.Now()
	if err != nil {
		c.lose(ctx, p, what, start, end, err)
		return
	}
	c.counts[what]++
	c.book.Record(m.cred, soak.Change{What: what, Start: start, End: end, After: after})
	m.disabled = disabled
}

// rotate rotates pool member p: the new pair joins the pool, the old one
// is revoked at the end of the grace.
func (c *churner) rotate(ctx context.Context, p int) {
	m := c.pool[p]
	start := time.Now()
	k, err := c.api.RotateAccessKey(ctx, m.id)
	end := time.Now()
	if err != nil {
		c.lose(ctx, p, "rotate", start, end, err)
		return
	}
	c.counts["rotate"]++
	c.book.Record(m.cred, soak.Change{What: "rotate-out (grace end)", Start: start.Add(c.grace), End: end.Add(c.grace), After: soak.Invalid})
	c.book.Retire(m.cred, end.Add(c.grace+afterRevoke))
	c.pool = slices.Delete(c.pool, p, p+1)
	i := c.book.Add(k.ID, k.Key, soak.Change{What: "create (rotation of " + m.id + ")", Start: start, End: end, After: soak.Valid})
	c.pool = append(c.pool, member{cred: i, id: k.ID, pred: m.cred, lockedUntil: end.Add(c.grace + 2*soak.Margin)})
}

// delete deletes pool member p.
func (c *churner) delete(ctx context.Context, p int) {
	m := c.pool[p]
	start := time.Now()
	err := c.api.DeleteAccessKey(ctx, m.id)
	end := time.Now()
	if err != nil {
		c.lose(ctx, p, "delete", start, end, err)
		return
	}
	c.counts["delete"]++
	c.book.Record(m.cred, soak.Change{What: "delete", Start: start, End: end, After: soak.Invalid})
	c.book.Retire(m.cred, end.Add(afterRevoke))
	c.pool = slices.Delete(c.pool, p, p+1)
	c.deleted = append(c.deleted, m)
}

// lose handles a change whose outcome is unknown: the credential's state
// becomes Unknown and it leaves the pool and the traffic. A 404 for a key
// the API had acknowledged means its creation was lost.
func (c *churner) lose(ctx context.Context, p int, what string, start, end time.Time, err error) {
	m := c.pool[p]
	c.fail(ctx, what, err)
	c.book.Record(m.cred, soak.Change{What: what + " (failed)", Start: start, End: end, After: soak.Unknown})
	c.book.Retire(m.cred, end)
	c.pool = slices.Delete(c.pool, p, p+1)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		c.markLost(m)
	}
}

// fail counts a failed change, unless the soak's end cut it short.
func (c *churner) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	c.errors++
	log.Printf("soak: %s failed: %v", what, err)
}

// markLost marks m, and the key it replaced in a rotation (whose
// rotation was lost with it), as having lost an acknowledged change.
func (c *churner) markLost(m member) {
	c.book.MarkLost(m.cred)
	if m.pred >= 0 {
		c.book.MarkLost(m.pred)
	}
}

// check compares the keys stored with what the management API
// acknowledged, after a failover that started at since. A key found
// different is reported, marked lost, and leaves the pool and the
// traffic; its history keeps what was acknowledged, so that the answers
// it then gets are judged (and told apart as for a lost change).
func (c *churner) check(ctx context.Context, since time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	stored := map[string]client.AccessKey{}
	err := soak.WaitFor(ctx, 30*time.Second, "the key list", func() error {
		keys, err := c.api.AllAccessKeys(ctx)
		clear(stored)
		for _, k := range keys {
			stored[k.ID] = k
		}
		return err
	})
	now := time.Now()
	if err != nil {
		log.Printf("soak: checking the stored keys: %v", err)
		return nil
	}
	var found []string
	var keep []member
	for _, m := range c.pool {
		k, ok := stored[m.id]
		switch {
		case !ok:
			found = append(found, fmt.Sprintf("%s: acknowledged as existing (disabled=%v), missing after the failover at %s", m.id, m.disabled, since.UTC().Format(time.RFC3339)))
		case k.Disabled != m.disabled:
			found = append(found, fmt.Sprintf("%s: acknowledged disabled=%v, stored disabled=%v after the failover at %s", m.id, m.disabled, k.Disabled, since.UTC().Format(time.RFC3339)))
		default:
			keep = append(keep, m)
			continue
		}
		c.markLost(m)
		c.book.Retire(m.cred, now)
	}
	c.pool = keep
	for _, m := range c.deleted {
		if _, ok := stored[m.id]; ok {
			found = append(found, fmt.Sprintf("%s: acknowledged deleted, stored again after the failover at %s", m.id, since.UTC().Format(time.RFC3339)))
			c.markLost(m)
		}
	}
	c.deleted = nil
	return found
}
