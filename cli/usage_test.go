package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/usage"
)

// writeUsage writes usage of keys at the minutes given, with prefix, to
// the Redis at url.
func writeUsage(t *testing.T, url, prefix string, ds ...usage.Delta) {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	if _, err := usage.NewStore(rdb, prefix).Write(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
}

// usageCounts builds counts from pairs of outcome and number.
func usageCounts(pairs ...int) usage.Counts {
	var c usage.Counts
	for i := 0; i+1 < len(pairs); i += 2 {
		c[pairs[i]] = int64(pairs[i+1])
	}
	return c
}

// usageKeys creates two keys of alice, one deleted after use, and writes
// usage of both 90 and 75 minutes ago. It returns the two Access IDs and
// the two minutes.
func usageKeys(t *testing.T, c runner, prefix string) (kept, gone string, m90, m75 time.Time) {
	t.Helper()
	setupOwner(c)
	kept = decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--label", "busy", "--json")).ID
	gone = decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json")).ID
	now := time.Now().UTC().Truncate(time.Minute)
	m90, m75 = now.Add(-90*time.Minute), now.Add(-75*time.Minute)
	writeUsage(t, c.url, prefix,
		usage.Delta{AccessID: kept, Minute: m75, Counts: usageCounts(int(usage.Status4xx), 2, int(usage.RateLimited), 1)},
		usage.Delta{AccessID: kept, Minute: m90, Counts: usageCounts(int(usage.Status2xx), 30, int(usage.Unauthorized), 1, int(usage.Status5xx), 4)},
		usage.Delta{AccessID: gone, Minute: m90, Counts: usageCounts(int(usage.Status2xx), 5, int(usage.Forbidden), 1)},
	)
	c.ok("delete", gone)
	return kept, gone, m90, m75
}

// TestCLIUsage: usage of one key and of all keys, as a table and as the
// API's JSON, oldest first, only buckets with requests.
func TestCLIUsage(t *testing.T) {
	c, _ := newCLI(t)
	kept, gone, m90, m75 := usageKeys(t, c, keystore.DefaultPrefix)
	ts := func(m time.Time) string { return m.Format(keystore.TimeFormat) }

	out := c.ok("usage", kept, "--since", "2h", "--granularity", "minute")
	rows := tableRows(out)
	want := [][]string{
		{"Access", "key", kept + ",", "by", "minute:"},
		{"START", "REQUESTS", "ALLOWED", "UNAUTH", "FORBIDDEN", "LIMITED", "2XX", "3XX", "4XX", "5XX"},
		{ts(m90), "35", "34", "1", "0", "0", "30", "0", "0", "4"},
		{ts(m75), "3", "2", "0", "0", "1", "0", "0", "2", "0"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("usage %s printed\n%s\nwant rows %q", kept, out, want)
	}

	// --json: the API's shape; the default granularity of 2h is minute.
	raw := c.ok("usage", kept, "--since", "2h", "--json")
	var ku map[string]any
	if err := json.Unmarshal([]byte(raw), &ku); err != nil {
		t.Fatalf("usage --json: %v\n%s", err, raw)
	}
	if got := slices.Sorted(maps.Keys(ku)); !slices.Equal(got, []string{"accessId", "data", "granularity"}) || ku["accessId"] != kept || ku["granularity"] != "minute" {
		t.Errorf("usage --json: %s", raw)
	}
	data, _ := ku["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("usage --json: data %v", ku["data"])
	}
	first := data[0].(map[string]any)
	wantFirst := map[string]any{"start": ts(m90), "requests": 35.0, "allowed": 34.0, "unauthorized": 1.0, "forbidden": 0.0, "rateLimited": 0.0,
		"status2xx": 30.0, "status3xx": 0.0, "status4xx": 0.0, "status5xx": 4.0}
	if !maps.Equal(first, wantFirst) {
		t.Errorf("first bucket %v, want %v", first, wantFirst)
	}

	// Nothing in range; the default granularity of 24h is hour.
	if out := c.ok("usage", kept, "--since", "30m", "--granularity", "minute"); !strings.Contains(out, "(no requests)") {
		t.Errorf("usage --since 30m printed\n%s", out)
	}
	if ku := decodeJSON[map[string]any](t, c.ok("usage", kept, "--json")); ku["granularity"] != "hour" || len(ku["data"].([]any)) == 0 {
		t.Errorf("usage --json with the defaults: %v", ku)
	}

	// All keys: totals and top keys, a deleted key without label.
	out = c.ok("usage", "--since", "2h", "--granularity", "minute")
	rows = tableRows(out)
	wantOrg := [][]string{
		{"All", "keys,", "by", "minute:"},
		{"START", "REQUESTS", "ALLOWED", "UNAUTH", "FORBIDDEN", "LIMITED", "2XX", "3XX", "4XX", "5XX"},
		{ts(m90), "41", "39", "1", "1", "0", "35", "0", "0", "4"},
		{ts(m75), "3", "2", "0", "0", "1", "0", "0", "2", "0"},
		{"Top", "keys:"},
		{"ACCESS", "ID", "LABEL", "OWNER", "REQUESTS", "REJECTED"},
		{kept, "busy", "alice", "38", "2"},
		{gone, "(deleted)", "-", "6", "1"},
	}
	if !slices.EqualFunc(rows, wantOrg, slices.Equal) {
		t.Errorf("usage printed\n%s\nwant rows %q", out, wantOrg)
	}
	org := decodeJSON[struct {
		Granularity string
		Data        []map[string]any
		TopKeys     []map[string]any `json:"topKeys"`
	}](t, c.ok("usage", "--since", "2h", "--top", "1", "--json"))
	if org.Granularity != "minute" || len(org.Data) != 2 || len(org.TopKeys) != 1 ||
		!maps.Equal(org.TopKeys[0], map[string]any{"accessId": kept, "label": "busy", "ownerId": "alice", "requests": 38.0, "rejected": 2.0}) {
		t.Errorf("usage --top 1 --json: %+v", org)
	}
}

// tableRows splits printed lines into their words, without empty lines.
func tableRows(out string) [][]string {
	var rows [][]string
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// TestCLIUsageErrors: bad flags and unknown keys are refused with a
// message naming the flag.
func TestCLIUsageErrors(t *testing.T) {
	c, _ := newCLI(t)
	setupOwner(c)
	k := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json"))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"usage", "--granularity", "week"}, `--granularity "week": use minute, hour or day`},
		{[]string{"usage", "--top", "0"}, "--top must be a number from 1 to 100, not 0"},
		{[]string{"usage", "--top", "101"}, "--top must be a number from 1 to 100, not 101"},
		{[]string{"usage", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"usage", "--since", "-1h"}, "must not be negative"},
		{[]string{"usage", "--since", "0s"}, "the range must start before now"},
		{[]string{"usage", "--since", ""}, `--since ""`},
		{[]string{"usage", k.ID, "--top", "5"}, "it takes no Access ID"},
		{[]string{"usage", "su" + strings.Repeat("A", 12)}, "does not exist"},
		{[]string{"usage", k.ID, "other"}, "accepts at most 1 arg"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c := runner{t: t, url: c.url}
			c.fail(tc.args, tc.want)
		})
	}
}

// TestCLIRemoteUsage: usage through the management API prints what local
// mode prints for the same buckets; a key's holder sees its own key, only manageAccessKeys
// the totals.
func TestCLIRemoteUsage(t *testing.T) {
	admin, member := newRemote(t)
	now := time.Now().UTC().Truncate(time.Minute)
	m90 := now.Add(-90 * time.Minute)
	writeUsage(t, admin.local.url, keystore.DefaultPrefix,
		usage.Delta{AccessID: member.id, Minute: m90, Counts: usageCounts(int(usage.Status2xx), 7, int(usage.Forbidden), 2)})
	// Requests the test makes may be counted in the current minute: only
	// the bucket written is compared.
	args := []string{"usage", member.id, "--since", "2h", "--granularity", "minute", "--json"}
	want := fmt.Sprintf(`{"start":%q,"requests":9,"allowed":7,"unauthorized":0,"forbidden":2,"rateLimited":0,"status2xx":7,"status3xx":0,"status4xx":0,"status5xx":0}`, m90.Format(keystore.TimeFormat))
	for name, out := range map[string]string{"through the API": member.ok(args...), "from Redis": admin.local.ok(args...)} {
		if compact := strings.Join(strings.Fields(out), ""); !strings.Contains(compact, want) || !strings.Contains(compact, `"accessId":"`+member.id+`"`) {
			t.Errorf("usage --json %s printed\n%s\nwant a bucket %s", name, out, want)
		}
	}
	args = []string{"usage", "--since", "2h", "--granularity", "minute"}
	row := m90.Format(keystore.TimeFormat) + " 9 7 0 2 0 7 0 0 0"
	for name, out := range map[string]string{"through the API": admin.ok(args...), "from Redis": admin.local.ok(args...)} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), row) || !strings.Contains(out, member.id) {
			t.Errorf("usage %s printed\n%s\nwant a row %q and the key %s", name, out, row, member.id)
		}
	}
	member.fail([]string{"usage"}, "403", "manageAccessKeys")
	member.fail([]string{"usage", admin.id}, "404")
	member.fail([]string{"usage", "--granularity", "week"}, `--granularity "week"`)
}
