package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/mgmtapi/client"
	"github.com/accessgate/accessgate/usage"
)

// usageInput is what `usage` is given.
type usageInput struct {
	since       string
	granularity string
	top         int
	topSet      bool
}

// Bounds of usage --top, as the management API's.
const (
	defaultUsageTop = 10
	maxUsageTop     = 100
)

func newUsageCommand(g *globals) *cobra.Command {
	var in usageInput
	c := &cobra.Command{
		Use:   "usage [<access-id>] [--since <duration|time>] [--granularity minute|hour|day] [--top <n>]",
		Short: "Shows how keys were used: requests by outcome, per minute, hour or day",
		Long: `Shows the usage of one access key, or without an Access ID the totals of
every key together and the keys with the most requests (--top, 1 to 100,
default 10). One row per bucket that counted requests, oldest first:
requests, allowed, unauthorized, forbidden, rate-limited, and the status
class allowed requests were answered with.

--since takes a duration back from now (90m, 24h, 7d; default 24h) or an
RFC 3339 time. --granularity defaults to the finest that is kept that far
back: minute buckets are kept for 2 hours, hour buckets for 14 days, day
buckets for 400 days; a range reaching further back is cut to what is
kept. --json prints the management API's shapes.`,
		Args: cobra.MaximumNArgs(1),
		RunE: g.runBoth(func(e *env, args []string) error { return showUsage(e, in, args) },
			func(e *env, args []string) error { return showUsageRemote(e, in, args) }),
	}
	c.Flags().StringVar(&in.since, "since", "24h", "Start of the range: this long ago (90m, 24h, 7d) or this RFC 3339 time")
	c.Flags().StringVar(&in.granularity, "granularity", "", "Bucket width: minute, hour or day (default: the finest kept since --since)")
	c.Flags().IntVar(&in.top, "top", defaultUsageTop, "Without an Access ID: how many of the busiest keys to list (1 to 100)")
	c.PreRun = func(cmd *cobra.Command, _ []string) { in.topSet = cmd.Flags().Changed("top") }
	return c
}

// query checks the flags and turns them into the range asked for.
func (in usageInput) query(args []string, now time.Time) (client.UsageQuery, error) {
	var q client.UsageQuery
	if in.since == "" {
		return q, errors.New(`--since "": want a duration such as 24h or 7d, or an RFC 3339 time`)
	}
	from, err := parseSince(in.since, now)
	if err != nil {
		return q, err
	}
	if !from.Before(now) {
		return q, fmt.Errorf("--since %q: the range must start before now", in.since)
	}
	q.From, q.To = from.UTC(), now.UTC()
	if in.granularity != "" {
		g, ok := usage.ParseGranularity(in.granularity)
		if !ok {
			return q, fmt.Errorf("--granularity %q: use minute, hour or day", in.granularity)
		}
		q.Granularity = string(g)
	}
	if len(args) == 1 && in.topSet {
		return q, errors.New("--top lists the busiest keys of all; it takes no Access ID")
	}
	if in.top < 1 || in.top > maxUsageTop {
		return q, fmt.Errorf("--top must be a number from 1 to %d, not %d", maxUsageTop, in.top)
	}
	q.Top = in.top
	return q, nil
}

// showUsage reads usage from Redis, as the management API does: the
// range is cut to what the granularity keeps, and top keys deleted since
// are shown without label and owner.
func showUsage(e *env, in usageInput, args []string) error {
	now := e.store.Now()
	q, err := in.query(args, now)
	if err != nil {
		return err
	}
	g := usage.Granularity(q.Granularity)
	if g == "" {
		g = usage.Finest(q.From, now)
	}
	st := usage.NewStore(e.store.Client(), e.store.Prefix())
	if len(args) == 1 {
		k, err := e.store.KeyOrRetired(e.ctx, args[0])
		if err != nil {
			return err
		}
		bs, err := st.Key(e.ctx, k.ID, q.From, q.To, g)
		if err != nil {
			return err
		}
		return printKeyUsage(e, &client.KeyUsage{AccessID: k.ID, Granularity: string(g), Data: clientBuckets(bs)})
	}
	bs, err := st.Org(e.ctx, q.From, q.To, g)
	if err != nil {
		return err
	}
	tops, err := st.Top(e.ctx, q.From, q.To, q.Top)
	if err != nil {
		return err
	}
	out := &client.OrgUsage{Granularity: string(g), Data: clientBuckets(bs), TopKeys: []client.TopKey{}}
	for _, t := range tops {
		tk := client.TopKey{AccessID: t.AccessID, Requests: t.Requests, Rejected: t.Rejected}
		k, err := e.store.KeyOrRetired(e.ctx, t.AccessID)
		if _, gone := errors.AsType[*keystore.NotFoundError](err); err != nil && !gone {
			return err
		}
		if err == nil {
			tk.Label, tk.OwnerID = k.Label, k.OwnerID
		}
		out.TopKeys = append(out.TopKeys, tk)
	}
	return printOrgUsage(e, out)
}

// showUsageRemote reads usage through the management API.
func showUsageRemote(e *env, in usageInput, args []string) error {
	q, err := in.query(args, time.Now())
	if err != nil {
		return err
	}
	if len(args) == 1 {
		q.Top = 0
		u, err := e.api.KeyUsage(e.ctx, args[0], q)
		if err != nil {
			return err
		}
		return printKeyUsage(e, u)
	}
	u, err := e.api.OrgUsage(e.ctx, q)
	if err != nil {
		return err
	}
	return printOrgUsage(e, u)
}

// clientBuckets builds the API's shape of buckets.
func clientBuckets(bs []usage.Bucket) []client.UsageBucket {
	out := make([]client.UsageBucket, 0, len(bs))
	for i := range bs {
		c := &bs[i].Counts
		out = append(out, client.UsageBucket{
			Start: bs[i].Start.UTC(), Requests: c.Requests(), Allowed: c.Allowed(),
			Unauthorized: c[usage.Unauthorized], Forbidden: c[usage.Forbidden], RateLimited: c[usage.RateLimited],
			Status2xx: c[usage.Status2xx], Status3xx: c[usage.Status3xx], Status4xx: c[usage.Status4xx], Status5xx: c[usage.Status5xx],
		})
	}
	return out
}

// usageBucketJSON is a bucket as --json prints it: the API's shape, its
// start in the API's time format.
type usageBucketJSON struct {
	Start keystore.Timestamp `json:"start"`
	client.UsageBucket
}

// bucketsJSON gives buckets the API's time format.
func bucketsJSON(bs []client.UsageBucket) []usageBucketJSON {
	out := make([]usageBucketJSON, 0, len(bs))
	for _, b := range bs {
		out = append(out, usageBucketJSON{Start: keystore.Timestamp{Time: b.Start.UTC().Truncate(time.Millisecond)}, UsageBucket: b})
	}
	return out
}

func printKeyUsage(e *env, u *client.KeyUsage) error {
	if e.json {
		return e.writeJSON(struct {
			AccessID    string            `json:"accessId"`
			Granularity string            `json:"granularity"`
			Data        []usageBucketJSON `json:"data"`
		}{u.AccessID, u.Granularity, bucketsJSON(u.Data)})
	}
	fmt.Fprintf(e.out, "Access key %s, by %s:\n", u.AccessID, u.Granularity)
	return printBuckets(e.out, u.Data)
}

func printOrgUsage(e *env, u *client.OrgUsage) error {
	if e.json {
		tops := u.TopKeys
		if tops == nil {
			tops = []client.TopKey{}
		}
		return e.writeJSON(struct {
			Granularity string            `json:"granularity"`
			Data        []usageBucketJSON `json:"data"`
			TopKeys     []client.TopKey   `json:"topKeys"`
		}{u.Granularity, bucketsJSON(u.Data), tops})
	}
	fmt.Fprintf(e.out, "All keys, by %s:\n", u.Granularity)
	if err := printBuckets(e.out, u.Data); err != nil {
		return err
	}
	fmt.Fprintln(e.out, "\nTop keys:")
	if len(u.TopKeys) == 0 {
		_, err := fmt.Fprintln(e.out, "(no requests)")
		return err
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS ID\tLABEL\tOWNER\tREQUESTS\tREJECTED")
	for _, t := range u.TopKeys {
		label, owner := t.Label, t.OwnerID
		if owner == "" {
			label, owner = "(deleted)", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", t.AccessID, label, owner, t.Requests, t.Rejected)
	}
	return tw.Flush()
}

// printBuckets prints one row per bucket.
func printBuckets(out io.Writer, bs []client.UsageBucket) error {
	if len(bs) == 0 {
		_, err := fmt.Fprintln(out, "(no requests)")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "START\tREQUESTS\tALLOWED\tUNAUTH\tFORBIDDEN\tLIMITED\t2XX\t3XX\t4XX\t5XX\t")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", b.Start.UTC().Format(keystore.TimeFormat),
			b.Requests, b.Allowed, b.Unauthorized, b.Forbidden, b.RateLimited, b.Status2xx, b.Status3xx, b.Status4xx, b.Status5xx)
	}
	return tw.Flush()
}
