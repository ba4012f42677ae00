package usage

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps usage in Redis, under the key prefix:
//
//	<prefix>:use:{<id>}:m:<YYYYMMDDHH>  minute buckets of one hour (fields "0".."59")
//	<prefix>:use:{<id>}:h:<YYYYMMDD>    hour buckets of one day (fields "0".."23")
//	<prefix>:use:{<id>}:d:<YYYYMM>      day buckets of one month (fields "1".."31")
//	<prefix>:use:{_org}:...             the same for all keys together
//	<prefix>:usetop:{top}:h:<YYYYMMDDHH> the 1,000 keys with most requests in an hour (sorted set)
//	<prefix>:usetop:{top}:d:<YYYYMMDD>   the same for a day
//
// A bucket is one hash field holding its counts as comma-separated
// numbers in the order of the Outcomes, zeros left empty and trailing
// ones dropped ("12" is 12 unauthorized, ",,,40" is 40 answered 2xx), so
// that a key used every minute costs a few kilobytes at full retention
// and a key never used costs nothing. Every hash expires when the last
// of its buckets leaves its retention. The hashes of a key share its hash
// tag, so one script updates them together in a Redis Cluster; the
// rankings share one tag so that one ZUNION reads a range of them.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

// NewStore returns a Store on rdb whose keys start with prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now}
}

// orgID names the organisation's totals; it cannot be an Access ID.
const orgID = "_org"

// topSize is how many keys each ranking keeps.
const topSize = 1000

// chunk is one hash of buckets: its key, the start of its first bucket
// and of the next chunk.
type chunk struct {
	key        string
	start, end time.Time
}

// chunkOf returns the hash holding the bucket of granularity g that
// starts at t (UTC), and that bucket's field.
func (s *Store) chunkOf(id string, g Granularity, t time.Time) (chunk, string) {
	t = t.UTC()
	base := s.prefix + ":use:{" + id + "}:"
	switch g {
	case Minute:
		start := t.Truncate(time.Hour)
		return chunk{base + "m:" + start.Format("2006010215"), start, start.Add(time.Hour)}, strconv.Itoa(t.Minute())
	case Hour:
		start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return chunk{base + "h:" + start.Format("20060102"), start, start.AddDate(0, 0, 1)}, strconv.Itoa(t.Hour())
	}
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return chunk{base + "d:" + start.Format("200601"), start, start.AddDate(0, 1, 0)}, strconv.Itoa(t.Day())
}

// bucketStart returns the start of the bucket of chunk c named field.
func bucketStart(g Granularity, c chunk, field string) (time.Time, bool) {
	n, err := strconv.Atoi(field)
	if err != nil {
		return time.Time{}, false
	}
	switch g {
	case Minute:
		return c.start.Add(time.Duration(n) * time.Minute), n >= 0 && n < 60
	case Hour:
		return c.start.Add(time.Duration(n) * time.Hour), n >= 0 && n < 24
	}
	return c.start.AddDate(0, 0, n-1), n >= 1 && n <= 31
}

// addCounts adds ARGV[7..13] to the bucket ARGV[k] of hash KEYS[k], for
// k = 1..3 (minute, hour and day), and sets each hash to expire at
// ARGV[3+k].
var addCounts = redis.NewScript(`
for k = 1, 3 do
  local v = {0, 0, 0, 0, 0, 0, 0}
  local old = redis.call('HGET', KEYS[k], ARGV[k])
  if old then
    local i = 1
    for part in string.gmatch(old .. ',', '([^,]*),') do
      if part ~= '' and i <= 7 then v[i] = tonumber(part) end
      i = i + 1
    end
  end
  local out = {}
  for i = 1, 7 do
    local n = v[i] + tonumber(ARGV[6 + i])
    if n == 0 then out[i] = '' else out[i] = string.format('%.0f', n) end
  end
  local val = string.gsub(table.concat(out, ','), ',+$', '')
  redis.call('HSET', KEYS[k], ARGV[k], val)
  redis.call('EXPIREAT', KEYS[k], ARGV[3 + k])
end
return 1
`)

// Write adds deltas to the stored buckets of their keys, to the
// organisation's totals and to the rankings, in one pipeline. On an error
// it returns the deltas whose keys' buckets were not written, to be
// written again later; the others are written (a write that timed out
// without an answer counts as not written, so it may count twice). The
// organisation's totals and the rankings follow the keys' buckets except
// when part of a pipeline fails.
func (s *Store) Write(ctx context.Context, ds []Delta) ([]Delta, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	org := map[int64]*Counts{}
	type rank struct {
		key string
		exp time.Time
	}
	tops := map[rank]map[string]int64{}
	for i := range ds {
		d := &ds[i]
		m := d.Minute.Unix()
		if org[m] == nil {
			org[m] = new(Counts)
		}
		org[m].add(&d.Counts)
		req := d.Counts.Requests()
		if req == 0 {
			continue
		}
		h := d.Minute.UTC().Truncate(time.Hour)
		day := time.Date(h.Year(), h.Month(), h.Day(), 0, 0, 0, 0, time.UTC)
		for _, r := range []rank{
			{s.topKey(Hour, h), h.Add(time.Hour + HourRetention)},
			{s.topKey(Day, day), day.AddDate(0, 0, 1).Add(DayRetention)},
		} {
			if tops[r] == nil {
				tops[r] = map[string]int64{}
			}
			tops[r][d.AccessID] += req
		}
	}
	type call struct {
		keys []string
		args []any
		cmd  *redis.Cmd
	}
	var calls []call
	pipe := s.rdb.Pipeline()
	add := func(id string, minute time.Time, c *Counts) {
		keys, args := s.addArgs(id, minute, c)
		calls = append(calls, call{keys, args, addCounts.EvalSha(ctx, pipe, keys, args...)})
	}
	for i := range ds {
		add(ds[i].AccessID, ds[i].Minute, &ds[i].Counts)
	}
	for m, c := range org {
		add(orgID, time.Unix(m, 0), c)
	}
	for r, ids := range tops {
		for id, n := range ids {
			pipe.ZIncrBy(ctx, r.key, float64(n), id)
		}
		pipe.ZRemRangeByRank(ctx, r.key, 0, -topSize-1)
		pipe.ExpireAt(ctx, r.key, r.exp)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return nil, nil
	}
	// Calls that failed with NOSCRIPT (the first write, or after a restart
	// of Redis) changed nothing: they are sent again with the script whole.
	retry := s.rdb.Pipeline()
	again := map[int]*redis.Cmd{}
	for i, c := range calls {
		if isNoScript(c.cmd.Err()) {
			again[i] = addCounts.Eval(ctx, retry, c.keys, c.args...)
		}
	}
	if len(again) > 0 {
		_, _ = retry.Exec(ctx)
	}
	var unwritten []Delta
	var firstErr error
	for i := range ds {
		cerr := calls[i].cmd.Err()
		if r, ok := again[i]; ok {
			cerr = r.Err()
		}
		if cerr != nil {
			unwritten = append(unwritten, ds[i])
			if firstErr == nil {
				firstErr = cerr
			}
		}
	}
	if firstErr == nil && !isNoScript(err) {
		firstErr = err // the keys' buckets are written; a total or a ranking is not
	}
	return unwritten, firstErr
}

// isNoScript reports whether err says Redis no longer holds a script
// (the first EVALSHA after a restart or SCRIPT FLUSH).
func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// addArgs returns the keys and arguments of addCounts that add c to the
// minute, hour and day buckets holding minute of id.
func (s *Store) addArgs(id string, minute time.Time, c *Counts) ([]string, []any) {
	mc, mf := s.chunkOf(id, Minute, minute)
	hc, hf := s.chunkOf(id, Hour, minute)
	dc, df := s.chunkOf(id, Day, minute)
	args := []any{mf, hf, df,
		mc.end.Add(MinuteRetention).Unix(), hc.end.Add(HourRetention).Unix(), dc.end.Add(DayRetention).Unix()}
	for _, n := range c {
		args = append(args, n)
	}
	return []string{mc.key, hc.key, dc.key}, args
}

func (s *Store) topKey(g Granularity, start time.Time) string {
	if g == Hour {
		return s.prefix + ":usetop:{top}:h:" + start.Format("2006010215")
	}
	return s.prefix + ":usetop:{top}:d:" + start.Format("20060102")
}

// Key returns the non-empty buckets of granularity g of key accessID whose
// start lies in [from, to), oldest first. The range is clamped to the
// granularity's retention.
func (s *Store) Key(ctx context.Context, accessID string, from, to time.Time, g Granularity) ([]Bucket, error) {
	return s.buckets(ctx, accessID, from, to, g)
}

// Org returns the non-empty buckets of granularity g of all keys together
// whose start lies in [from, to), oldest first.
func (s *Store) Org(ctx context.Context, from, to time.Time, g Granularity) ([]Bucket, error) {
	return s.buckets(ctx, orgID, from, to, g)
}

// clamp limits [from, to) to what granularity g keeps at now.
func clamp(from, to time.Time, g Granularity, now time.Time) (time.Time, time.Time) {
	if oldest := now.Add(-g.Retention()).Truncate(g.Width()); from.Before(oldest) {
		from = oldest
	}
	if latest := now.Add(g.Width()); to.After(latest) {
		to = latest
	}
	return from, to
}

func (s *Store) buckets(ctx context.Context, id string, from, to time.Time, g Granularity) ([]Bucket, error) {
	from, to = clamp(from, to, g, s.now())
	if !from.Before(to) {
		return nil, nil
	}
	var chunks []chunk
	for t := from; t.Before(to); {
		c, _ := s.chunkOf(id, g, t)
		chunks = append(chunks, c)
		t = c.end
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(chunks))
	for i, c := range chunks {
		cmds[i] = pipe.HGetAll(ctx, c.key)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []Bucket
	for i, c := range chunks {
		for field, val := range cmds[i].Val() {
			start, ok := bucketStart(g, c, field)
			if !ok || start.Before(from) || !start.Before(to) {
				continue
			}
			b := Bucket{Start: start}
			parseCounts(val, &b.Counts)
			if !b.Counts.zero() {
				out = append(out, b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// parseCounts reads a bucket's value into c.
func parseCounts(val string, c *Counts) {
	for i, part := range strings.SplitN(val, ",", int(numOutcomes)) {
		if part == "" {
			continue
		}
		if n, err := strconv.ParseInt(part, 10, 64); err == nil && n > 0 {
			c[i] = n
		}
	}
}

// Top returns at most n keys (1..100) with the most requests in [from,
// to), most first: from the hourly rankings for ranges up to 2 days, else
// from the daily ones, so the range is rounded out to whole hours or
// days. Each ranking keeps its 1,000 busiest keys, so a key's count can
// miss the hours or days it was not among them. Rejected requests come
// from each key's own buckets.
func (s *Store) Top(ctx context.Context, from, to time.Time, n int) ([]TopKey, error) {
	n = max(1, min(n, 100))
	g := Day
	if to.Sub(from) <= 48*time.Hour {
		g = Hour
	}
	from, to = clamp(from, to, g, s.now())
	from = from.Truncate(g.Width())
	var keys []string
	for t := from; t.Before(to); t = t.Add(g.Width()) {
		keys = append(keys, s.topKey(g, t))
	}
	if len(keys) == 0 {
		return nil, nil
	}
	zs, err := s.rdb.ZUnionWithScores(ctx, redis.ZStore{Keys: keys}).Result()
	if err != nil {
		return nil, err
	}
	sort.SliceStable(zs, func(i, j int) bool {
		if zs[i].Score != zs[j].Score {
			return zs[i].Score > zs[j].Score
		}
		return zs[i].Member.(string) < zs[j].Member.(string)
	})
	if len(zs) > n {
		zs = zs[:n]
	}
	out := make([]TopKey, len(zs))
	for i, z := range zs {
		out[i] = TopKey{AccessID: z.Member.(string), Requests: int64(z.Score)}
		bs, err := s.buckets(ctx, out[i].AccessID, from, to, g)
		if err != nil {
			return nil, err
		}
		for j := range bs {
			out[i].Rejected += bs[j].Counts.Rejected()
		}
	}
	return out, nil
}
