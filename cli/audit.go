package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// auditInput is what `audit` is given.
type auditInput struct {
	since string
	event string
	limit int
}

// auditEventNames are the names `audit --event` accepts.
var auditEventNames = []string{
	keystore.EventKeyCreated, keystore.EventKeyUpdated, keystore.EventKeyActivated,
	keystore.EventKeyDeactivated, keystore.EventKeyRotated, keystore.EventKeyDeleted,
	keystore.EventKeyExpired, keystore.EventKeyDeactivatedUnused, keystore.EventPolicyUpdated,
	keystore.EventAuthFailed, keystore.EventOriginRejected, keystore.EventScopeRejected,
	keystore.EventUserCreated, keystore.EventUserUpdated, keystore.EventUserDeleted,
	keystore.EventServiceAccountCreated, keystore.EventServiceAccountUpdated, keystore.EventServiceAccountDeleted,
	keystore.EventRoleCreated, keystore.EventRoleUpdated, keystore.EventRoleDeleted,
	keystore.EventKeysExported, keystore.EventKeysImported,
}

func newAuditCommand(g *globals) *cobra.Command {
	var in auditInput
	c := &cobra.Command{
		Use:   "audit [--since <duration|time>] [--event <name>] [--limit <n>]",
		Short: "Reads audit events, oldest first",
		Long: `Reads the audit stream, oldest first: one line per event (time, name,
operator, key, reason), or one JSON object per line with --json.

--since takes a duration back from now (90s, 1h, 7d) or an RFC 3339 time.
--event takes one of: ` + strings.Join(auditEventNames, ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(e *env, _ []string) error { return readAudit(e, in) }),
	}
	c.Flags().StringVar(&in.since, "since", "", "Only events since this long ago (1h, 7d) or this RFC 3339 time")
	c.Flags().StringVar(&in.event, "event", "", "Only events of this name")
	c.Flags().IntVar(&in.limit, "limit", 1000, "Most events to print")
	return c
}

func readAudit(e *env, in auditInput) error {
	f, err := in.filter(e.store.Now())
	if err != nil {
		return err
	}
	events, err := e.store.Events(e.ctx, f)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSONLines(e, events)
	}
	return printEvents(e, events)
}

// filter turns the flags into an event filter.
func (in auditInput) filter(now time.Time) (keystore.EventFilter, error) {
	f := keystore.EventFilter{Name: in.event, Limit: in.limit}
	if in.limit <= 0 {
		return f, fmt.Errorf("--limit must be a positive number, not %d", in.limit)
	}
	if in.event != "" && !slices.Contains(auditEventNames, in.event) {
		return f, fmt.Errorf("unknown event name %q; use one of %s", in.event, strings.Join(auditEventNames, ", "))
	}
	since, err := parseSince(in.since, now)
	f.Since = since
	return f, err
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := parseDuration(s); err == nil {
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

// parseDuration reads a duration as Caddy reads those of its config
// (caddy.ParseDuration): Go's syntax, plus d for days of 24h, as in 7d or
// 1.5d. It is a copy, so that the command line does not import Caddy.
func parseDuration(s string) (time.Duration, error) {
	if len(s) > 1024 {
		return 0, errors.New("parsing duration: input string too long")
	}
	var inNumber bool
	var numStart int
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == 'd' {
			days, err := strconv.ParseFloat(s[numStart:i], 64)
			if err != nil {
				return 0, err
			}
			hours := strconv.FormatFloat(days*24.0, 'f', -1, 64)
			s = s[:numStart] + hours + "h" + s[i+1:]
			i--
			continue
		}
		if !inNumber {
			numStart = i
		}
		inNumber = (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+'
	}
	return time.ParseDuration(s)
}

func writeJSONLines(e *env, events []keystore.Event) error {
	enc := json.NewEncoder(e.out)
	for _, ev := range events {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return nil
}

func printEvents(e *env, events []keystore.Event) error {
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	for _, ev := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.EventTime.UTC().Format(keystore.TimeFormat), ev.EventName,
			operatorText(ev.Operator), keyText(ev.AccessKey), dashIfEmpty(ev.Reason))
	}
	return tw.Flush()
}

// operatorText shows who made a change: ID, interface and the Access ID
// used, when there is one.
func operatorText(op keystore.Operator) string {
	s := dashIfEmpty(op.ID) + " (" + op.Interface
	if op.AccessID != "" {
		s += " " + op.AccessID
	}
	return s + ")"
}

func keyText(k *keystore.KeyRef) string {
	if k == nil {
		return "-"
	}
	return k.AccessID
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
