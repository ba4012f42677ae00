package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

// limitsHelp is the part of the help of create and update on the limit
// flags.
const limitsHelp = `Limits (each overrides the default of the access_keys global option):
  --rate N/s|N/m|N/h      requests per second, minute or hour, fleet-wide
  --burst N               requests allowed at once above the rate (with
                          --rate; default: the rate)
  --concurrency N         requests in flight at once
  --quota N/day|N/month   requests per UTC day or month`

// limitInput is what the limit flags of create and update are given.
type limitInput struct {
	rate, concurrency, quota string
	burst                    int64
}

// addLimitFlags declares the limit flags on f; clearable adds that
// "none" restores the default.
func addLimitFlags(f *pflag.FlagSet, in *limitInput, clearable bool) {
	none := ""
	if clearable {
		none = "; 'none' for the default"
	}
	f.StringVar(&in.rate, "rate", "", "Rate limit N/s, N/m or N/h, such as 100/m"+none)
	f.Int64Var(&in.burst, "burst", 0, "Requests allowed at once above --rate (default: the rate)")
	f.StringVar(&in.concurrency, "concurrency", "", "Most requests in flight at once, such as 10"+none)
	f.StringVar(&in.quota, "quota", "", "Quota N/day or N/month (UTC), such as 100000/day"+none)
}

// limitChange is what the limit flags ask for: a nil field leaves the
// limit as it is.
type limitChange struct {
	rate        *keystore.Setting[limits.Rate]
	concurrency *keystore.Setting[int]
	quota       *keystore.Setting[limits.Quota]
}

// empty reports whether no limit flag was given.
func (c limitChange) empty() bool {
	return c.rate == nil && c.concurrency == nil && c.quota == nil
}

// spec returns the limits of a new key; "none" is refused, a new key
// having no limit to clear.
func (c limitChange) spec() (keystore.KeyLimits, error) {
	var l keystore.KeyLimits
	var problems []string
	if c.rate != nil {
		if l.RateLimit = c.rate.Value; l.RateLimit == nil {
			problems = append(problems, "--rate: none clears a limit; a new key has the defaults without --rate")
		}
	}
	if c.concurrency != nil {
		if l.ConcurrencyLimit = c.concurrency.Value; l.ConcurrencyLimit == nil {
			problems = append(problems, "--concurrency: none clears a limit; a new key has the defaults without --concurrency")
		}
	}
	if c.quota != nil {
		if l.Quota = c.quota.Value; l.Quota == nil {
			problems = append(problems, "--quota: none clears a limit; a new key has the defaults without --quota")
		}
	}
	return l, flagProblems(problems)
}

// parseLimits reads the limit flags that changed reports as given. It
// names every bad value, with the forms its flag takes.
func parseLimits(changed func(string) bool, in limitInput) (limitChange, error) {
	var c limitChange
	var problems []string
	rateNone := false
	if changed("rate") {
		switch r, err := limits.ParseRate(in.rate); {
		case isNone(in.rate):
			c.rate, rateNone = keystore.Clear[limits.Rate](), true
		case err != nil:
			problems = append(problems, fmt.Sprintf("--rate %q: give N/s, N/m or N/h with N from 1 to %d, such as 100/m, or none for the default", in.rate, limits.MaxRequests))
		default:
			c.rate = keystore.Set(r)
		}
	}
	if changed("burst") {
		switch {
		case !changed("rate"):
			problems = append(problems, "--burst needs --rate: it is the burst of that rate")
		case rateNone:
			problems = append(problems, "--burst cannot go with --rate none")
		case in.burst < 1 || in.burst > limits.MaxBurst:
			problems = append(problems, fmt.Sprintf("--burst %d: give a whole number from 1 to %d", in.burst, limits.MaxBurst))
		case c.rate != nil:
			c.rate.Value.Burst = in.burst
		}
	}
	if changed("concurrency") {
		n, err := strconv.Atoi(strings.TrimSpace(in.concurrency))
		switch {
		case isNone(in.concurrency):
			c.concurrency = keystore.Clear[int]()
		case err != nil || limits.ValidateConcurrency(n) != nil:
			problems = append(problems, fmt.Sprintf("--concurrency %q: give a whole number from 1 to %d, or none for the default", in.concurrency, limits.MaxConcurrency))
		default:
			c.concurrency = keystore.Set(n)
		}
	}
	if changed("quota") {
		switch q, err := limits.ParseQuota(in.quota); {
		case isNone(in.quota):
			c.quota = keystore.Clear[limits.Quota]()
		case err != nil:
			problems = append(problems, fmt.Sprintf("--quota %q: give N/day or N/month with N from 1 to %d, such as 100000/day, or none for the default", in.quota, int64(limits.MaxQuota)))
		default:
			c.quota = keystore.Set(q)
		}
	}
	return c, flagProblems(problems)
}

// isNone reports whether a limit flag's value asks for the default.
func isNone(s string) bool { return strings.TrimSpace(s) == clearValue }

// flagProblems is nil without problems, else an error listing them one
// a line.
func flagProblems(problems []string) error {
	switch len(problems) {
	case 0:
		return nil
	case 1:
		return &verbError{msg: problems[0]}
	}
	return &verbError{msg: "invalid input:\n  " + strings.Join(problems, "\n  ")}
}

// keyView is the public shape of a key the command prints: the
// AccessKey of the management API with its limits.
type keyView struct {
	keystore.AccessKey
	// QuotaUsed and QuotaResetsAt say how much of the key's quota the
	// current period has used (0 without a quota) and when it ends (nil
	// without a quota), as the management API shows them.
	QuotaUsed     int64               `json:"quotaUsed"`
	QuotaResetsAt *keystore.Timestamp `json:"quotaResetsAt"`
}

// withLimits adds the use of k's quota to v.
func (e *env) withLimits(v keystore.AccessKey, k *keystore.Key) (keyView, error) {
	out := []keyView{{AccessKey: v}}
	err := e.fillQuotaUse([]*keystore.Key{k}, out)
	return out[0], err
}

// fillQuotaUse sets quotaUsed and quotaResetsAt of the views of the keys
// with a quota, reading every counter in one round trip.
func (e *env) fillQuotaUse(keys []*keystore.Key, out []keyView) error {
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
	uses, err := limits.QuotaUsages(e.ctx, e.store.Client(), e.store.Prefix(), subs, e.store.Now())
	if err != nil {
		return fmt.Errorf("reading quota use: %w", err)
	}
	for j, u := range uses {
		out[at[j]].QuotaUsed, out[at[j]].QuotaResetsAt = u.Used, &keystore.Timestamp{Time: u.ResetsAt.UTC().Truncate(time.Millisecond)}
	}
	return nil
}

// normalRate is r with its burst filled in, as the API shows it.
func normalRate(r *limits.Rate) *limits.Rate {
	if r == nil {
		return nil
	}
	n := r.Normalized()
	return &n
}

// hasLimits reports whether the key has any limit override.
func (v keyView) hasLimits() bool {
	return v.RateLimit != nil || v.ConcurrencyLimit != nil || v.Quota != nil
}

// limitList shows a key's limits compactly, such as "100/m, 10 conc,
// 1000/day", or "-" when it has the defaults.
func (v keyView) limitList() string {
	var parts []string
	if v.RateLimit != nil {
		parts = append(parts, v.RateLimit.String())
	}
	if v.ConcurrencyLimit != nil {
		parts = append(parts, strconv.Itoa(*v.ConcurrencyLimit)+" conc")
	}
	if v.Quota != nil {
		parts = append(parts, v.Quota.String())
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// limitLine describes a key's limits in the text output of create,
// rotate and update.
func (v keyView) limitLine() string {
	if !v.hasLimits() {
		return "default"
	}
	return v.limitList()
}
