package usage

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// encodeCounts writes c as the addCounts script stores it.
func encodeCounts(c *Counts) string {
	parts := make([]string, len(c))
	for i, n := range c {
		if n != 0 {
			parts[i] = strconv.FormatInt(n, 10)
		}
	}
	return strings.TrimRight(strings.Join(parts, ","), ",")
}

// fillRetention stores, for each id, every bucket full retention keeps of
// a key used every minute (120 minute, 336 hour and 400 day buckets),
// with the counts per minute given, as Write would have left them.
func fillRetention(ctx context.Context, s *Store, ids []string, perMinute Counts, now time.Time) error {
	scale := func(f int64) string {
		var c Counts
		for i, n := range perMinute {
			c[i] = n * f
		}
		return encodeCounts(&c)
	}
	pipe := s.rdb.Pipeline()
	for n, id := range ids {
		for _, g := range []Granularity{Minute, Hour, Day} {
			val := scale(int64(g.Width() / time.Minute))
			fields := map[string]map[string]any{}
			for t := now.Add(-g.Retention()); t.Before(now); t = t.Add(g.Width()) {
				c, f := s.chunkOf(id, g, t)
				if fields[c.key] == nil {
					fields[c.key] = map[string]any{}
				}
				fields[c.key][f] = val
			}
			for k, fv := range fields {
				pipe.HSet(ctx, k, fv)
			}
		}
		if n%100 == 99 {
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		}
	}
	_, err := pipe.Exec(ctx)
	return err
}

func usedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, nil
}

// TestMemoryPerKey stores full retention for keys used every minute and
// measures Redis memory per key: it must stay within 32 KiB
// (USAGE_MEMORY_KEYS sets the number of keys; 10,000 for the published
// figure, 300 by default).
func TestMemoryPerKey(t *testing.T) {
	n := 300
	if v, err := strconv.Atoi(os.Getenv("USAGE_MEMORY_KEYS")); err == nil && v > 0 {
		n = v
	}
	s, _ := newStore(t)
	ctx := context.Background()
	before, err := usedMemory(ctx, s.rdb)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "su" + strconv.FormatInt(int64(1e11+i), 36)
	}
	// A busy key: a request a second, a few refused and a few errors.
	per := Counts{Unauthorized: 1, Status2xx: 55, Status4xx: 3, Status5xx: 1}
	if err := fillRetention(ctx, s, ids, per, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	after, err := usedMemory(ctx, s.rdb)
	if err != nil {
		t.Fatal(err)
	}
	perKey := float64(after-before) / float64(n)
	t.Logf("%d keys at full retention: %.0f bytes of Redis memory per key (%.1f KiB)", n, perKey, perKey/1024)
	if perKey > 32*1024 {
		t.Fatalf("%.0f bytes per key, more than 32 KiB", perKey)
	}
}
