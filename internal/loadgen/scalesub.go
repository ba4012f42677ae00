package loadgen

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
)

// Metric series the subscription steps read from the gateway's admin
// /metrics.
const (
	metricCacheMisses     = "accessgate_cache_misses_total"
	metricAuthentications = "accessgate_authentications_total"
	outcomeCacheHit       = `outcome="cache_hit"`
)

// Presented counts the answers to a pass of requests, one per credential.
type Presented struct {
	// OK counts 200s; Refused the other statuses.
	OK, Refused int
	// FirstOK says the first credential was answered 200.
	FirstOK bool
}

// Present sends one GET path to addr with each credential in turn.
func Present(addr, path string, creds []Cred) (Presented, error) {
	c := newConn(addr)
	defer c.close()
	var p Presented
	for i, cr := range creds {
		err := c.get(path, cr.Authorization(), nil)
		if _, ok := IsStatus(err); err != nil && !ok {
			return p, err
		}
		if err == nil {
			p.OK++
			if i == 0 {
				p.FirstOK = true
			}
		} else {
			p.Refused++
		}
	}
	return p, nil
}

// PubSubClients returns the number of clients in pub/sub mode.
func PubSubClients(ctx context.Context, rdb *redis.Client) (int, error) {
	s, err := rdb.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	return countPubSub(s), nil
}

// countPubSub counts the lines of CLIENT LIST whose flags hold P (a
// client subscribed to channels or patterns).
func countPubSub(list string) int {
	n := 0
	for _, line := range strings.Split(list, "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "flags="); ok && strings.ContainsRune(v, 'P') {
				n++
			}
		}
	}
	return n
}

// awaitPubSub waits until at least n clients are in pub/sub mode.
func awaitPubSub(ctx context.Context, rdb *redis.Client, n int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		got, err := PubSubClients(ctx, rdb)
		if err == nil && got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d subscribed clients after %v, want %d (last error: %v)", got, wait, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SubOptions configure the subscription steps.
type SubOptions struct {
	// Addr is the gateway's site (host:port) and Path a path its
	// access_keys handler lets the credentials through to.
	Addr, Path string
	// Admin is the gateway's admin endpoint (host:port), for /metrics.
	Admin string
	// Creds are the credentials to cache; Other is an Access ID outside
	// them, changed while the subscription is down.
	Creds []Cred
	Other string
	// Settle is how long to wait after the subscription is back before
	// presenting the credentials again; Wait bounds the wait for it.
	Settle, Wait time.Duration
}

// SubResult is what presenting cached credentials again showed.
type SubResult struct {
	// Creds is the number of credentials presented.
	Creds int
	// Reverified is the growth of the gateway's cache misses over the
	// pass; NotHits that of its authentications other than cache hits.
	Reverified, NotHits float64
	// Commands is the number of Redis commands executed during the pass.
	Commands int64
	// Answers are the pass's answers.
	Answers Presented
	// ChangedWhileDown says the changes were made while no client was
	// subscribed (the messages about them were missed).
	ChangedWhileDown bool
}

// cacheAll presents creds twice, so that the second pass finds every one
// that is valid in the cache, and returns the metrics after.
func cacheAll(ctx context.Context, o SubOptions) (Metrics, error) {
	for range 2 {
		if _, err := Present(o.Addr, o.Path, o.Creds); err != nil {
			return nil, err
		}
	}
	return FetchMetrics(ctx, o.Admin)
}

// SubscriptionLoss caches o.Creds in the gateway, kills every pub/sub
// connection of Redis (CLIENT KILL TYPE pubsub), meanwhile disables the
// first credential and renames o.Other through store, waits until the
// gateway is subscribed again, then presents every credential once more
// and counts the gateway's re-verifications. The first credential must be
// refused: its change was announced while the subscription was down.
func SubscriptionLoss(ctx context.Context, rdb *redis.Client, store *keystore.Store, o SubOptions) (SubResult, error) {
	if len(o.Creds) == 0 {
		return SubResult{}, fmt.Errorf("no credentials to cache")
	}
	m0, err := cacheAll(ctx, o)
	if err != nil {
		return SubResult{}, err
	}
	subscribed, err := PubSubClients(ctx, rdb)
	if err != nil {
		return SubResult{}, err
	}
	if subscribed == 0 {
		return SubResult{}, fmt.Errorf("no client is subscribed to anything in Redis")
	}
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		return SubResult{}, err
	}
	op := keystore.Operator{ID: "loadgen"}
	disabled := true
	if _, err := store.UpdateKey(ctx, o.Creds[0].ID, keystore.KeyUpdate{Disabled: &disabled}, op); err != nil {
		return SubResult{}, fmt.Errorf("disabling a cached key: %w", err)
	}
	label := "renamed while the subscription was down"
	if _, err := store.UpdateKey(ctx, o.Other, keystore.KeyUpdate{Label: &label}, op); err != nil {
		return SubResult{}, fmt.Errorf("renaming a key: %w", err)
	}
	down, err := PubSubClients(ctx, rdb)
	if err != nil {
		return SubResult{}, err
	}
	if err := awaitPubSub(ctx, rdb, subscribed, o.Wait); err != nil {
		return SubResult{}, err
	}
	time.Sleep(o.Settle)
	r, err := presentAgain(ctx, rdb, o, m0)
	r.ChangedWhileDown = down == 0
	return r, err
}

// presentAgain presents o.Creds once and measures the pass against the
// metrics m0.
func presentAgain(ctx context.Context, rdb *redis.Client, o SubOptions, m0 Metrics) (SubResult, error) {
	s0, err := ReadCommandStats(ctx, rdb)
	if err != nil {
		return SubResult{}, err
	}
	p, err := Present(o.Addr, o.Path, o.Creds)
	if err != nil {
		return SubResult{}, err
	}
	s1, err := ReadCommandStats(ctx, rdb)
	if err != nil {
		return SubResult{}, err
	}
	m1, err := FetchMetrics(ctx, o.Admin)
	if err != nil {
		return SubResult{}, err
	}
	return SubResult{
		Creds:      len(o.Creds),
		Reverified: m1.Sum(metricCacheMisses) - m0.Sum(metricCacheMisses),
		NotHits:    m1.Sum(metricAuthentications, outcomeCacheHit) - m0.Sum(metricAuthentications, outcomeCacheHit),
		Commands:   s1.Sub(s0).Total(),
		Answers:    p,
	}, nil
}

// CacheBeforeRestart caches o.Creds in the gateway and returns its
// metrics after, the baseline of AfterRestart.
func CacheBeforeRestart(ctx context.Context, o SubOptions) (Metrics, error) {
	return cacheAll(ctx, o)
}

// AfterRestart waits until the gateway is subscribed to the restarted
// Redis, then presents o.Creds once more and counts the re-verifications
// since m0.
func AfterRestart(ctx context.Context, rdb *redis.Client, o SubOptions, m0 Metrics) (SubResult, error) {
	if err := awaitPubSub(ctx, rdb, 1, o.Wait); err != nil {
		return SubResult{}, err
	}
	time.Sleep(o.Settle)
	return presentAgain(ctx, rdb, o, m0)
}
