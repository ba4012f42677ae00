package usage

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps usage in Redis, under the key prefix, per key at three
// resolutions (see the package doc), plus the organisation's totals and,
// per hour and per day, the keys with the most requests.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

// NewStore returns a Store on rdb whose keys start with prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now}
}

// errNotYet is returned by parts not written yet.
var errNotYet = errors.New("usage: not implemented yet")

// Write adds deltas to the stored buckets of their keys, to the
// organisation's totals and to the top-key rankings. On an error, part of
// the deltas may have been written.
func (s *Store) Write(ctx context.Context, ds []Delta) error { return errNotYet }

// Key returns the non-empty buckets of granularity g of key accessID whose
// start lies in [from, to), oldest first.
func (s *Store) Key(ctx context.Context, accessID string, from, to time.Time, g Granularity) ([]Bucket, error) {
	return nil, errNotYet
}

// Org returns the non-empty buckets of granularity g of all keys together
// whose start lies in [from, to), oldest first.
func (s *Store) Org(ctx context.Context, from, to time.Time, g Granularity) ([]Bucket, error) {
	return nil, errNotYet
}

// Top returns at most n keys (1..100) with the most requests in [from,
// to), most first: from hourly rankings for ranges up to 2 days, else
// from daily ones, so the range is rounded out to whole hours or days.
func (s *Store) Top(ctx context.Context, from, to time.Time, n int) ([]TopKey, error) {
	return nil, errNotYet
}
