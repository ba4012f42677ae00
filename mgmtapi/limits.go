package mgmtapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

// Usage limits (rateLimit, concurrencyLimit, quota) are read from request
// bodies strictly: numbers must be whole JSON numbers within the bounds of
// package limits, so that a float, a numeric string or a number too large
// for 64 bits is refused with 400 rather than rounded. A field left out
// leaves the setting as it is, null clears it (the default applies), and
// a value equal to the current one is no change at all.

// present reports whether a field is in the body, null or not.
func (b *jsonBody) present(name string) bool {
	_, ok := b.fields[name]
	return ok
}

// limitProblem records an invalid limit under the code the store uses for
// it: <noun>:invalid_rate_limit, :invalid_concurrency_limit or
// :invalid_quota.
func (b *jsonBody) limitProblem(code, message string) {
	b.problems = append(b.problems, apiProblem{Code: b.noun + ":" + code, Message: message})
}

// wholeNumber reads a JSON integer that fits 64 bits.
func wholeNumber(v json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	return n, err == nil
}

// isJSONNumber reports whether v is a JSON number (not a string holding
// one).
func isJSONNumber(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// object reads a field holding a JSON object into its members; it records
// a problem and returns nil when the field is something else.
func (b *jsonBody) object(name, want string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(b.fields[name], &m) != nil || m == nil {
		b.wrongType(name, want)
		return nil
	}
	return m
}

// rate reads a rate limit: {"requests","periodSeconds","burst"}; burst
// may be left out (the rate). nil when the field is absent.
func (b *jsonBody) rate(name string) *keystore.Setting[limits.Rate] {
	if !b.present(name) {
		return nil
	}
	if b.raw(name) == nil {
		return keystore.Clear[limits.Rate]()
	}
	m := b.object(name, `an object {"requests", "periodSeconds", "burst"} or null`)
	if m == nil {
		return nil
	}
	var r limits.Rate
	for _, f := range []struct {
		key string
		dst *int64
	}{{"requests", &r.Requests}, {"periodSeconds", &r.PeriodSeconds}, {"burst", &r.Burst}} {
		v, ok := m[f.key]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		n, ok := wholeNumber(v)
		if !ok {
			b.limitProblem("invalid_rate_limit", name+"."+f.key+" must be a whole number")
			return nil
		}
		*f.dst = n
	}
	if err := r.Validate(); err != nil {
		b.limitProblem("invalid_rate_limit", name+": "+err.Error())
		return nil
	}
	return keystore.Set(r)
}

// concurrency reads a concurrency limit: a whole number. nil when the
// field is absent.
func (b *jsonBody) concurrency(name string) *keystore.Setting[int] {
	if !b.present(name) {
		return nil
	}
	v := b.raw(name)
	if v == nil {
		return keystore.Clear[int]()
	}
	if !isJSONNumber(v) {
		b.wrongType(name, "a whole number or null")
		return nil
	}
	n, ok := wholeNumber(v)
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		b.limitProblem("invalid_concurrency_limit", name+" must be a whole number from 1 to "+strconv.Itoa(limits.MaxConcurrency))
		return nil
	}
	if err := limits.ValidateConcurrency(int(n)); err != nil {
		b.limitProblem("invalid_concurrency_limit", err.Error())
		return nil
	}
	return keystore.Set(int(n))
}

// quota reads a quota: {"requests","period"}. nil when the field is
// absent.
func (b *jsonBody) quota(name string) *keystore.Setting[limits.Quota] {
	if !b.present(name) {
		return nil
	}
	if b.raw(name) == nil {
		return keystore.Clear[limits.Quota]()
	}
	m := b.object(name, `an object {"requests", "period"} or null`)
	if m == nil {
		return nil
	}
	var q limits.Quota
	if v, ok := m["requests"]; ok {
		n, ok := wholeNumber(v)
		if !ok {
			b.limitProblem("invalid_quota", name+".requests must be a whole number")
			return nil
		}
		q.Requests = n
	}
	if v, ok := m["period"]; ok && json.Unmarshal(v, &q.Period) != nil {
		b.limitProblem("invalid_quota", name+`.period must be "day" or "month"`)
		return nil
	}
	if err := q.Validate(); err != nil {
		b.limitProblem("invalid_quota", name+": "+err.Error())
		return nil
	}
	return keystore.Set(q)
}

// settingOrNil returns the value a create gives: nil for a left-out or
// null field.
func settingOrNil[T any](s *keystore.Setting[T]) *T {
	if s == nil {
		return nil
	}
	return s.Value
}

// sameSetting reports whether applying s would leave cur as it is.
func sameSetting[T comparable](s *keystore.Setting[T], cur *T) bool {
	switch {
	case s == nil:
		return true
	case s.Value == nil || cur == nil:
		return s.Value == nil && cur == nil
	}
	return *s.Value == *cur
}

// sameRate is sameSetting for rates, whose burst 0 means the rate.
func sameRate(s *keystore.Setting[limits.Rate], cur *limits.Rate) bool {
	if s == nil || s.Value == nil || cur == nil {
		return sameSetting(s, cur)
	}
	return s.Value.Normalized() == cur.Normalized()
}

// keepUnchangedLimits drops from u the limit settings that would leave
// key k as it is, so that sending back the values a read showed changes
// nothing and needs no capability.
func keepUnchangedLimits(u *keystore.KeyUpdate, k *keystore.Key) {
	if sameRate(u.RateLimit, k.RateLimit) {
		u.RateLimit = nil
	}
	if sameSetting(u.ConcurrencyLimit, k.ConcurrencyLimit) {
		u.ConcurrencyLimit = nil
	}
	if sameSetting(u.Quota, k.Quota) {
		u.Quota = nil
	}
}

// checkLimitsChange refuses, with 403, a change of a key's limits by a
// caller without manageAccessKeys: a key's holder must not raise or
// remove its own limits.
func (c *apiCall) checkLimitsChange(changed bool) error {
	if changed && !c.can(capManageKeys) {
		e := apiErrorf(http.StatusForbidden, errbody.CodeForbidden,
			"This access key lacks the capability %s needed to set or change the usage limits of an access key", capManageKeys)
		e.scope = capManageKeys
		return e
	}
	return nil
}

// fillQuotaUsage sets quotaUsed and quotaResetsAt of the views of keys
// with a quota, reading every counter in one round trip.
func (c *apiCall) fillQuotaUsage(keys []*keystore.Key, out []apiAccessKey) error {
	var subs []limits.QuotaSubject
	var at []int
	for i, k := range keys {
		if k.Quota != nil {
			subs = append(subs, limits.QuotaSubject{ID: k.LimitID(), Quota: *k.Quota})
			at = append(at, i)
		}
	}
	if len(subs) == 0 {
		return nil
	}
	uses, err := c.inst.QuotaUsages(c.ctx, subs)
	if err != nil {
		return err
	}
	for j, u := range uses {
		out[at[j]].QuotaUsed, out[at[j]].QuotaResetsAt = u.Used, keystore.Timestamp{Time: u.ResetsAt.UTC().Truncate(time.Millisecond)}
	}
	return nil
}
