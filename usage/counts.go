package usage

import (
	"time"
)

// Outcome is what became of one request.
type Outcome uint8

// Outcomes. The status classes are those of allowed requests.
const (
	Unauthorized Outcome = iota
	Forbidden
	RateLimited
	Status2xx
	Status3xx
	Status4xx
	Status5xx
	numOutcomes
)

// StatusOutcome is the outcome of an allowed request answered with status.
func StatusOutcome(status int) Outcome {
	switch {
	case status >= 500:
		return Status5xx
	case status >= 400:
		return Status4xx
	case status >= 300:
		return Status3xx
	}
	return Status2xx
}

// Counts are the requests of one key (or of every key) in one bucket, by
// outcome. Allowed and Requests are derived.
type Counts [numOutcomes]int64

// Allowed is the number of requests let through (all status classes).
func (c *Counts) Allowed() int64 {
	return c[Status2xx] + c[Status3xx] + c[Status4xx] + c[Status5xx]
}

// Requests is the number of requests in all.
func (c *Counts) Requests() int64 {
	return c.Allowed() + c[Unauthorized] + c[Forbidden] + c[RateLimited]
}

// Rejected is the number of requests refused (unauthorized, forbidden or
// rate-limited).
func (c *Counts) Rejected() int64 {
	return c[Unauthorized] + c[Forbidden] + c[RateLimited]
}

// add adds d to c.
func (c *Counts) add(d *Counts) {
	for i := range c {
		c[i] += d[i]
	}
}

// zero reports whether c counts nothing.
func (c *Counts) zero() bool { return *c == Counts{} }

// Granularity is the width of a bucket.
type Granularity string

// Granularities and how long their buckets are kept.
const (
	Minute Granularity = "minute"
	Hour   Granularity = "hour"
	Day    Granularity = "day"

	MinuteRetention = 2 * time.Hour
	HourRetention   = 14 * 24 * time.Hour
	DayRetention    = 400 * 24 * time.Hour
)

// ParseGranularity reads "minute", "hour" or "day".
func ParseGranularity(s string) (Granularity, bool) {
	switch g := Granularity(s); g {
	case Minute, Hour, Day:
		return g, true
	}
	return "", false
}

// Width is the length of one bucket.
func (g Granularity) Width() time.Duration {
	switch g {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	}
	return 24 * time.Hour
}

// Retention is how long buckets of g are kept.
func (g Granularity) Retention() time.Duration {
	switch g {
	case Minute:
		return MinuteRetention
	case Hour:
		return HourRetention
	}
	return DayRetention
}

// Finest returns the finest granularity whose retention reaches back to
// from at now.
func Finest(from, now time.Time) Granularity {
	switch age := now.Sub(from); {
	case age <= MinuteRetention:
		return Minute
	case age <= HourRetention:
		return Hour
	}
	return Day
}

// Bucket is the counts of one bucket, starting at Start (UTC).
type Bucket struct {
	Start  time.Time
	Counts Counts
}

// TopKey is a key among those with the most requests in a range.
type TopKey struct {
	AccessID string
	Requests int64
	Rejected int64
}
