package caddymodule

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/limits"
)

// Headers of the usage limits (IETF RateLimit header fields).
const (
	headerRateLimit     = "RateLimit-Limit"
	headerRateRemaining = "RateLimit-Remaining"
	headerRateReset     = "RateLimit-Reset"
)

// admit applies the usage limits of an authenticated request's key and
// owner (e.subject, not nil). It sets the RateLimit-* headers of the most
// constraining rate or quota; when a limit refuses the request it answers
// 429 and returns false. An admitted request's decision must be released
// once the request is done.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, st *state, e *entry) (limits.Decision, bool) {
	sub := e.subject
	d := st.limiter.Admit(r.Context(), sub)
	if d.Limit > 0 {
		// One allocation for the three values, as for the identity
		// headers; small numbers come from a table.
		vals := new([3]string)
		vals[0], vals[1], vals[2] = itoa(d.Limit), itoa(max(d.Remaining, 0)), itoa(ceilSeconds(d.Reset))
		wh := w.Header()
		wh[headerRateLimit] = vals[0:1:1]
		wh[headerRateRemaining] = vals[1:2:2]
		wh[headerRateReset] = vals[2:3:3]
	}
	st.metrics.limited[d.Refused].Add(1)
	if d.Allowed {
		return d, true
	}
	h.gate.reject(w, r, rejection{
		status: http.StatusTooManyRequests, reason: "limit_" + d.Refused.String(), ident: e.ident,
		retryAfter: d.RetryAfter, limit: d.Refused, limitMsg: limitMessage(sub, d.Refused, st.now()),
	})
	return d, false
}

// smallInts holds the decimal forms of 0..1023, so that the usual header
// values cost no allocation.
var smallInts = func() (out [1024]string) {
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

// itoa formats n in decimal.
func itoa(n int64) string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return strconv.FormatInt(n, 10)
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// limitCode is the body A code of a refusal by limit k.
func limitCode(k limits.Kind) string {
	if k == limits.KindQuota {
		return errbody.CodeQuotaExceeded
	}
	return errbody.CodeRateLimited
}

// limitMessage names the limit that refused a request of sub.
func limitMessage(sub *limits.Subject, k limits.Kind, now time.Time) string {
	switch k {
	case limits.KindKeyRate:
		return "Rate limit exceeded: this access key may make " + sub.KeyRate.Describe() + burstText(sub.KeyRate) + "."
	case limits.KindOwnerRate:
		return "Rate limit exceeded: the access keys of this owner may make " + sub.OwnerRate.Describe() + burstText(sub.OwnerRate) + " together."
	case limits.KindConcurrency:
		return "Concurrency limit exceeded: this access key may have " + strconv.Itoa(sub.Concurrency) + " requests in flight."
	case limits.KindQuota:
		_, end := sub.Quota.Window(now)
		return "Quota exceeded: this access key may make " + strconv.FormatInt(sub.Quota.Requests, 10) + " requests per " +
			sub.Quota.Period + " (UTC); the quota resets at " + end.Format(time.RFC3339) + "."
	}
	return errbody.MsgRateLimited
}

func burstText(r limits.Rate) string {
	if r.Burst == 0 || r.Burst == r.Requests {
		return ""
	}
	return " (bursts of " + strconv.FormatInt(r.Burst, 10) + ")"
}
