package limits

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Quota periods. Periods are calendar days and months in UTC.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
)

// MaxQuota bounds Quota.Requests.
const MaxQuota = 1_000_000_000_000

// Quota is a number of requests per calendar day or month (UTC). It is
// the JSON shape of the management API's quota.
type Quota struct {
	// Requests admitted per period.
	Requests int64 `json:"requests"`
	// Period is "day" or "month".
	Period string `json:"period"`
}

// ParseQuota reads "N/day" or "N/month".
func ParseQuota(s string) (Quota, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Quota{}, fmt.Errorf("quota %q: want N/day or N/month", s)
	}
	req, err := strconv.ParseInt(n, 10, 64)
	if err != nil || req < 1 || req > MaxQuota {
		return Quota{}, fmt.Errorf("quota %q: the number of requests must be a whole number from 1 to %d", s, int64(MaxQuota))
	}
	q := Quota{Requests: req, Period: strings.ToLower(unit)}
	if q.Period != PeriodDay && q.Period != PeriodMonth {
		return Quota{}, fmt.Errorf("quota %q: the period must be day or month", s)
	}
	return q, nil
}

// Validate checks a quota given through the API.
func (q Quota) Validate() error {
	switch {
	case q.Requests < 1 || q.Requests > MaxQuota:
		return fmt.Errorf("requests must be from 1 to %d", int64(MaxQuota))
	case q.Period != PeriodDay && q.Period != PeriodMonth:
		return fmt.Errorf("period must be %q or %q", PeriodDay, PeriodMonth)
	}
	return nil
}

// String writes q as the command line reads it: "1000/day".
func (q Quota) String() string { return strconv.FormatInt(q.Requests, 10) + "/" + q.Period }

// Window returns the period holding t: its start and its end (the next
// period's start), in UTC.
func (q Quota) Window(t time.Time) (start, end time.Time) {
	t = t.UTC()
	if q.Period == PeriodMonth {
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 0, 1)
}

// MaxConcurrency bounds a concurrency limit.
const MaxConcurrency = 1_000_000

// ValidateConcurrency checks a concurrency limit given through the API.
func ValidateConcurrency(n int) error {
	if n < 1 || n > MaxConcurrency {
		return fmt.Errorf("concurrencyLimit must be from 1 to %d", MaxConcurrency)
	}
	return nil
}
