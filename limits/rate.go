package limits

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a rate limit: Requests per PeriodSeconds, with bursts of up to
// Burst requests. It is the JSON shape of the management API's rateLimit.
type Rate struct {
	// Requests admitted per period.
	Requests int64 `json:"requests"`
	// PeriodSeconds is the length of the period: 1, 60 or 3600.
	PeriodSeconds int64 `json:"periodSeconds"`
	// Burst is how many requests may come at once after a quiet spell;
	// 0 means Requests.
	Burst int64 `json:"burst,omitempty"`
}

// Bounds of a Rate.
const (
	MaxRequests = 1_000_000_000
	MaxBurst    = 1_000_000_000
)

// ParseRate reads "N/s", "N/m" or "N/h" (also "N/sec", "N/min",
// "N/hour").
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/s, N/m or N/h", s)
	}
	req, err := strconv.ParseInt(n, 10, 64)
	if err != nil || req < 1 || req > MaxRequests {
		return Rate{}, fmt.Errorf("rate %q: the number of requests must be a whole number from 1 to %d", s, MaxRequests)
	}
	var period int64
	switch strings.ToLower(unit) {
	case "s", "sec", "second":
		period = 1
	case "m", "min", "minute":
		period = 60
	case "h", "hour":
		period = 3600
	default:
		return Rate{}, fmt.Errorf("rate %q: the period must be s, m or h", s)
	}
	return Rate{Requests: req, PeriodSeconds: period}, nil
}

// Validate checks a rate given through the API or a configuration.
func (r Rate) Validate() error {
	switch {
	case r.Requests < 1 || r.Requests > MaxRequests:
		return fmt.Errorf("requests must be from 1 to %d", MaxRequests)
	case r.PeriodSeconds != 1 && r.PeriodSeconds != 60 && r.PeriodSeconds != 3600:
		return errors.New("periodSeconds must be 1, 60 or 3600")
	case r.Burst < 0 || r.Burst > MaxBurst:
		return fmt.Errorf("burst must be from 0 (the rate) to %d", MaxBurst)
	}
	return nil
}

// Normalized returns r with its default burst filled in.
func (r Rate) Normalized() Rate {
	if r.Burst == 0 {
		r.Burst = r.Requests
	}
	return r
}

// Period returns the period as a duration.
func (r Rate) Period() time.Duration { return time.Duration(r.PeriodSeconds) * time.Second }

// String writes r as the command line and the Caddyfile read it:
// "100/m" or "4/s burst 8".
func (r Rate) String() string {
	u := "s"
	switch r.PeriodSeconds {
	case 60:
		u = "m"
	case 3600:
		u = "h"
	}
	s := strconv.FormatInt(r.Requests, 10) + "/" + u
	if r.Burst != 0 && r.Burst != r.Requests {
		s += " burst " + strconv.FormatInt(r.Burst, 10)
	}
	return s
}

// Describe names r for people: "100 requests per minute".
func (r Rate) Describe() string {
	u := "second"
	switch r.PeriodSeconds {
	case 60:
		u = "minute"
	case 3600:
		u = "hour"
	}
	return strconv.FormatInt(r.Requests, 10) + " requests per " + u
}
