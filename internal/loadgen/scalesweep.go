package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SweepOptions configure MeasureSweeps.
type SweepOptions struct {
	// LeaseKey is the Redis key of the lease an instance takes before it
	// sweeps: each SET of it starts one sweep.
	LeaseKey string
	// Skip is the number of sweeps to let pass before counting, since the
	// first sweep of a fleet may do one-off work.
	Skip int
	// MinSweeps ends the count after this many whole sweeps...
	MinSweeps int
	// MinWindow ...or at the first sweep to start after this long.
	MinWindow time.Duration
	// FirstWait is how long to wait for the first sweep; when none starts
	// (the lease is not seen), the commands are counted over MinWindow and
	// the sweeps estimated as MinWindow ÷ Interval.
	FirstWait time.Duration
	// Interval is the gateways' sweep_interval.
	Interval time.Duration
	// MaxWait bounds the whole measurement.
	MaxWait time.Duration
	// Quiet is how long Redis must run no command for a sweep to count
	// as finished: the window's ends are such quiet spells. 250 ms when
	// zero; it must be shorter than the gaps between sweeps.
	Quiet time.Duration
}

// CommandWindow is what Redis executed over a window of time.
type CommandWindow struct {
	// Commands is the number of commands executed, the observer's own
	// INFO left out.
	Commands int64
	// Seconds is the length of the window.
	Seconds float64
	// Sweeps is the number of whole sweeps in the window.
	Sweeps int
	// Estimated says Sweeps was derived from the interval because the
	// lease could not be seen.
	Estimated bool
	// Delta is the window's calls per command.
	Delta CommandStats
}

// MeasureIdle counts the commands Redis executes over window.
func MeasureIdle(ctx context.Context, rdb *redis.Client, window time.Duration) (CommandWindow, error) {
	s0, err := ReadCommandStats(ctx, rdb)
	if err != nil {
		return CommandWindow{}, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return CommandWindow{}, ctx.Err()
	case <-time.After(window):
	}
	s1, err := ReadCommandStats(ctx, rdb)
	if err != nil {
		return CommandWindow{}, err
	}
	d := s1.Sub(s0)
	return CommandWindow{Commands: d.Total(), Seconds: time.Since(t0).Seconds(), Delta: d}, nil
}

// MeasureSweeps counts the Redis commands executed over whole sweeps: from
// the end of one sweep to the end of a later one. Keyspace notifications
// of the sweep lease show when a sweep starts; the first spell of o.Quiet
// without commands after it, that it ended. It sets the server's
// notify-keyspace-events for the time it runs and restores it after.
func MeasureSweeps(ctx context.Context, rdb *redis.Client, o SweepOptions) (CommandWindow, error) {
	if o.Quiet <= 0 {
		o.Quiet = 250 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, o.MaxWait)
	defer cancel()
	old, err := rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return CommandWindow{}, err
	}
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", "K$").Err(); err != nil {
		return CommandWindow{}, err
	}
	defer rdb.ConfigSet(context.Background(), "notify-keyspace-events", old["notify-keyspace-events"])
	channel := "__keyspace@" + strconv.Itoa(rdb.Options().DB) + "__:" + o.LeaseKey
	ps := rdb.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		return CommandWindow{}, err
	}
	// nextSweep waits up to d for the lease to be set.
	nextSweep := func(d time.Duration) (bool, error) {
		until := time.Now().Add(d)
		for {
			left := time.Until(until)
			if left <= 0 {
				return false, nil
			}
			msg, err := ps.ReceiveTimeout(ctx, left)
			if err != nil {
				if ctx.Err() != nil {
					return false, fmt.Errorf("no sweep seen within %v", o.MaxWait)
				}
				if isTimeout(err) {
					return false, nil
				}
				return false, err
			}
			if m, ok := msg.(*redis.Message); ok && m.Payload == "set" {
				return true, nil
			}
		}
	}

	seen, err := nextSweep(o.FirstWait)
	if err != nil {
		return CommandWindow{}, err
	}
	if !seen {
		w, err := MeasureIdle(ctx, rdb, o.MinWindow)
		if err != nil {
			return CommandWindow{}, err
		}
		w.Sweeps = max(1, int(w.Seconds/o.Interval.Seconds()+0.5))
		w.Estimated = true
		return w, nil
	}
	waitSweep := func() error {
		seen, err := nextSweep(o.MaxWait)
		if err == nil && !seen {
			err = fmt.Errorf("no sweep seen within %v", o.MaxWait)
		}
		return err
	}
	for range o.Skip {
		if err := waitSweep(); err != nil {
			return CommandWindow{}, err
		}
	}
	// The window runs from the quiet after one sweep to the quiet after
	// a later one, so that it holds whole sweeps only.
	// Sweeps that started before a quiet spell are in its stats: their
	// notifications, already received, are drained and counted.
	drain := func() (int, error) {
		n := 0
		for {
			msg, err := ps.ReceiveTimeout(ctx, 20*time.Millisecond)
			if err != nil {
				if isTimeout(err) && ctx.Err() == nil {
					return n, nil
				}
				return n, err
			}
			if m, ok := msg.(*redis.Message); ok && m.Payload == "set" {
				n++
			}
		}
	}
	s0, t0, err := awaitQuiet(ctx, rdb, o.Quiet)
	if err != nil {
		return CommandWindow{}, err
	}
	if _, err := drain(); err != nil {
		return CommandWindow{}, err
	}
	n := 0
	for n < max(1, o.MinSweeps) && (n == 0 || time.Since(t0) < o.MinWindow) {
		if err := waitSweep(); err != nil {
			return CommandWindow{}, err
		}
		n++
	}
	s1, t1, err := awaitQuiet(ctx, rdb, o.Quiet)
	if err != nil {
		return CommandWindow{}, err
	}
	late, err := drain()
	if err != nil {
		return CommandWindow{}, err
	}
	n += late
	d := s1.Sub(s0)
	return CommandWindow{Commands: d.Total(), Seconds: t1.Sub(t0).Seconds(), Sweeps: n, Delta: d}, nil
}

// awaitQuiet polls INFO commandstats until no command but the observer's
// own ran for quiet, and returns the stats and the time they were read
// at the start of that quiet spell.
func awaitQuiet(ctx context.Context, rdb *redis.Client, quiet time.Duration) (CommandStats, time.Time, error) {
	prev, err := ReadCommandStats(ctx, rdb)
	if err != nil {
		return nil, time.Time{}, err
	}
	since := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, time.Time{}, fmt.Errorf("no quiet spell of %v in Redis: %w", quiet, ctx.Err())
		case <-time.After(quiet / 10):
		}
		cur, err := ReadCommandStats(ctx, rdb)
		if err != nil {
			return nil, time.Time{}, err
		}
		now := time.Now()
		if cur.Total() != prev.Total() {
			prev, since = cur, now
			continue
		}
		if now.Sub(since) >= quiet {
			return prev, since, nil
		}
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
