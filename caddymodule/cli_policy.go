package caddymodule

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// cliPolicyView is how the policies are shown, in the API's names.
type cliPolicyView struct {
	LifetimeDays int `json:"accessKeysLifetimeInDays"`
	UnusedDays   int `json:"unusedAccessKeysDisableAfterInDays"`
}

// cliPolicyInput is what `policy` is given; nil fields stay unchanged.
type cliPolicyInput struct {
	lifetime *int
	unused   *int
}

func cliNewPolicyCommand(g *cliGlobals) *cobra.Command {
	var lifetime, unused int
	c := &cobra.Command{
		Use:   "policy [--lifetime-days <n>] [--unused-days <n>]",
		Short: "Shows or sets the expiration and deactivation policies",
		Long: `Shows the two key policies, or sets those given:

  --lifetime-days  accessKeysLifetimeInDays: keys expire this many days after
                   their creation, rotation or the last change of this
                   policy (0 = never). Changing it restarts every key's expiry.
  --unused-days    unusedAccessKeysDisableAfterInDays: keys unused this many
                   days are deactivated (0 = never).

Both are whole days from 0 to ` + strconv.Itoa(keystore.MaxPolicyDays) + `. Nothing is changed when either is invalid.`,
		Args: cobra.NoArgs,
	}
	c.Flags().IntVar(&lifetime, "lifetime-days", keystore.DefaultLifetimeDays, "Set accessKeysLifetimeInDays (0 = never)")
	c.Flags().IntVar(&unused, "unused-days", keystore.DefaultUnusedDays, "Set unusedAccessKeysDisableAfterInDays (0 = never)")
	c.RunE = g.run(func(e *cliEnv, _ []string) error {
		var in cliPolicyInput
		if c.Flags().Changed("lifetime-days") {
			in.lifetime = &lifetime
		}
		if c.Flags().Changed("unused-days") {
			in.unused = &unused
		}
		return cliSetPolicies(e, in)
	})
	return c
}

func cliSetPolicies(e *cliEnv, in cliPolicyInput) error {
	if err := in.validate(); err != nil {
		return err
	}
	if in.lifetime != nil {
		if _, err := e.store.SetLifetimeDays(e.ctx, *in.lifetime, e.op); err != nil {
			return err
		}
	}
	if in.unused != nil {
		if _, err := e.store.SetUnusedDays(e.ctx, *in.unused, e.op); err != nil {
			return err
		}
	}
	pol, err := e.store.Policies(e.ctx)
	if err != nil {
		return err
	}
	v := cliPolicyView{LifetimeDays: pol.LifetimeDays, UnusedDays: pol.UnusedDays}
	if e.json {
		return e.writeJSON(v)
	}
	_, err = fmt.Fprintf(e.out, "accessKeysLifetimeInDays:           %s\nunusedAccessKeysDisableAfterInDays: %s\n",
		cliDaysText(v.LifetimeDays), cliDaysText(v.UnusedDays))
	return err
}

// validate checks both values before either is written.
func (in cliPolicyInput) validate() error {
	v := &keystore.ValidationError{}
	check := func(field string, n *int) {
		if n != nil && (*n < 0 || *n > keystore.MaxPolicyDays) {
			v.Problems = append(v.Problems, keystore.FieldError{
				Field:   field,
				Code:    "policy:invalid_days",
				Message: fmt.Sprintf("%d is not between 0 and %d days (0 = never)", *n, keystore.MaxPolicyDays),
			})
		}
	}
	check("accessKeysLifetimeInDays", in.lifetime)
	check("unusedAccessKeysDisableAfterInDays", in.unused)
	if len(v.Problems) > 0 {
		return v
	}
	return nil
}

func cliDaysText(n int) string {
	if n == 0 {
		return "0 (never)"
	}
	return strconv.Itoa(n)
}

// cliAuditInput is what `audit` is given.
type cliAuditInput struct {
	since string
	event string
	limit int
}

// cliAuditEventNames are the names `audit --event` accepts.
var cliAuditEventNames = []string{
	keystore.EventKeyCreated, keystore.EventKeyUpdated, keystore.EventKeyActivated,
	keystore.EventKeyDeactivated, keystore.EventKeyRotated, keystore.EventKeyDeleted,
	keystore.EventKeyExpired, keystore.EventKeyDeactivatedUnused, keystore.EventPolicyUpdated,
	keystore.EventAuthFailed, keystore.EventOriginRejected, keystore.EventScopeRejected,
	keystore.EventUserCreated, keystore.EventUserUpdated, keystore.EventUserDeleted,
	keystore.EventServiceAccountCreated, keystore.EventServiceAccountUpdated, keystore.EventServiceAccountDeleted,
	keystore.EventRoleCreated, keystore.EventRoleUpdated, keystore.EventRoleDeleted,
}

func cliNewAuditCommand(g *cliGlobals) *cobra.Command {
	var in cliAuditInput
	c := &cobra.Command{
		Use:   "audit [--since <duration|time>] [--event <name>] [--limit <n>]",
		Short: "Reads audit events, oldest first",
		Long: `Reads the audit stream, oldest first: one line per event (time, name,
operator, key, reason), or one JSON object per line with --json.

--since takes a duration back from now (90s, 1h, 7d) or an RFC 3339 time.
--event takes one of: ` + strings.Join(cliAuditEventNames, ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(e *cliEnv, _ []string) error { return cliReadAudit(e, in) }),
	}
	c.Flags().StringVar(&in.since, "since", "", "Only events since this long ago (1h, 7d) or this RFC 3339 time")
	c.Flags().StringVar(&in.event, "event", "", "Only events of this name")
	c.Flags().IntVar(&in.limit, "limit", 1000, "Most events to print")
	return c
}

func cliReadAudit(e *cliEnv, in cliAuditInput) error {
	f, err := in.filter(e.store.Now())
	if err != nil {
		return err
	}
	events, err := e.store.Events(e.ctx, f)
	if err != nil {
		return err
	}
	if e.json {
		return cliWriteJSONLines(e, events)
	}
	return cliPrintEvents(e, events)
}

// filter turns the flags into an event filter.
func (in cliAuditInput) filter(now time.Time) (keystore.EventFilter, error) {
	f := keystore.EventFilter{Name: in.event, Limit: in.limit}
	if in.limit <= 0 {
		return f, fmt.Errorf("--limit must be a positive number, not %d", in.limit)
	}
	if in.event != "" && !slices.Contains(cliAuditEventNames, in.event) {
		return f, fmt.Errorf("unknown event name %q; use one of %s", in.event, strings.Join(cliAuditEventNames, ", "))
	}
	since, err := cliParseSince(in.since, now)
	f.Since = since
	return f, err
}

// cliParseSince reads --since: a duration back from now, or a time.
func cliParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := caddy.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: the duration must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration such as 1h or 7d, or an RFC 3339 time", s)
	}
	return t, nil
}

func cliWriteJSONLines(e *cliEnv, events []keystore.Event) error {
	enc := json.NewEncoder(e.out)
	for _, ev := range events {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return nil
}

func cliPrintEvents(e *cliEnv, events []keystore.Event) error {
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	for _, ev := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.EventTime.UTC().Format(keystore.TimeFormat), ev.EventName,
			cliOperatorText(ev.Operator), cliKeyText(ev.AccessKey), cliDashIfEmpty(ev.Reason))
	}
	return tw.Flush()
}

// cliOperatorText shows who made a change: ID, interface and the Access ID
// used, when there is one.
func cliOperatorText(op keystore.Operator) string {
	s := cliDashIfEmpty(op.ID) + " (" + op.Interface
	if op.AccessID != "" {
		s += " " + op.AccessID
	}
	return s + ")"
}

func cliKeyText(k *keystore.KeyRef) string {
	if k == nil {
		return "-"
	}
	return k.AccessID
}

func cliDashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
