package loadgen

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// CommandStats are the calls per command from INFO commandstats, keyed by
// the command's name in lower case ("get", "client|setinfo").
type CommandStats map[string]int64

// ParseCommandStats reads the text of INFO commandstats: lines such as
// "cmdstat_get:calls=12,usec=40,usec_per_call=3.33,...".
func ParseCommandStats(info string) (CommandStats, error) {
	out := CommandStats{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("malformed commandstats line %q", line)
		}
		found := false
		for _, f := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("malformed commandstats line %q", line)
				}
				out[strings.ToLower(name)] = n
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no calls= in commandstats line %q", line)
		}
	}
	return out, nil
}

// observerCommands are the commands the measuring program itself sends
// while a window is open; they are left out of every total.
var observerCommands = []string{"info"}

// Total returns the calls of every command but the observer's own.
func (s CommandStats) Total() int64 {
	var n int64
	for name, c := range s {
		if !isObserverCommand(name) {
			n += c
		}
	}
	return n
}

// Sub returns the calls made between before and s, per command, leaving
// out commands whose count did not move.
func (s CommandStats) Sub(before CommandStats) CommandStats {
	out := CommandStats{}
	for name, c := range s {
		if d := c - before[name]; d != 0 {
			out[name] = d
		}
	}
	return out
}

// Top returns the n commands with the most calls, as "name=calls" in
// decreasing order, observer commands left out.
func (s CommandStats) Top(n int) string {
	type nc struct {
		name  string
		calls int64
	}
	var all []nc
	for name, c := range s {
		if !isObserverCommand(name) {
			all = append(all, nc{name, c})
		}
	}
	slices.SortFunc(all, func(a, b nc) int {
		if c := cmp.Compare(b.calls, a.calls); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	var parts []string
	for i := 0; i < len(all) && i < n; i++ {
		parts = append(parts, all[i].name+"="+strconv.FormatInt(all[i].calls, 10))
	}
	return strings.Join(parts, " ")
}

func isObserverCommand(name string) bool { return slices.Contains(observerCommands, name) }

// ReadCommandStats returns the server's INFO commandstats.
func ReadCommandStats(ctx context.Context, rdb *redis.Client) (CommandStats, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return ParseCommandStats(info)
}

// InfoInt returns the integer field of an INFO section, such as
// ("memory", "used_memory").
func InfoInt(ctx context.Context, rdb *redis.Client, section, field string) (int64, error) {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, err
	}
	return parseInfoInt(info, field)
}

func parseInfoInt(info, field string) (int64, error) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in INFO", field)
}
