package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// MissOptions configure MeasureMissCPU.
type MissOptions struct {
	// Prefix is the gateway's key_prefix and Owners the seeded owners.
	Prefix string
	Owners []string
	// Addr and Path: the gateway's access_keys site and a path the
	// seeded keys' scopes allow.
	Addr, Path string
	// PID is the gateway's process, whose CPU time is measured.
	PID int
	// Hot is the number of credentials the hits cycle through (64 when
	// zero); MissKeys the number the misses rotate through, more than the
	// gateway's cache holds.
	Hot, MissKeys int
	// Rounds, Phase and Conns: each round loads hits and misses for Phase
	// each with Conns connections, in alternating order.
	Rounds int
	Phase  time.Duration
	Conns  int
}

// MissCPU is the gateway's CPU time per request on cache hits and on
// cache misses.
type MissCPU struct {
	// Hit and Miss are the medians over the rounds.
	Hit, Miss time.Duration
	// Ratio is the median of the rounds' Miss ÷ Hit.
	Ratio float64
}

// MeasureMissCPU seeds o.Hot and o.MissKeys keys and loads the gateway
// with each in interleaved rounds, as the load script's variants (c) and
// (d) do, measuring the gateway's CPU time per request from /proc.
func MeasureMissCPU(ctx context.Context, rdb *redis.Client, o MissOptions) (MissCPU, error) {
	hotN := o.Hot
	if hotN <= 0 {
		hotN = 64
	}
	hot, err := SeedKeys(ctx, rdb, SeedOptions{Prefix: o.Prefix, Owners: o.Owners, N: hotN, Keep: true})
	if err != nil {
		return MissCPU{}, err
	}
	cold, err := SeedKeys(ctx, rdb, SeedOptions{Prefix: o.Prefix, Owners: o.Owners, N: o.MissKeys, Keep: true})
	if err != nil {
		return MissCPU{}, err
	}
	auths := func(cs []Cred) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.Authorization()
		}
		return out
	}
	hits := &Target{Name: "hits", Addr: o.Addr, Path: o.Path, Concurrency: o.Conns, Auth: auths(hot), ServerPID: o.PID}
	misses := &Target{Name: "misses", Addr: o.Addr, Path: o.Path, Concurrency: o.Conns, Auth: auths(cold), Rotate: true, ServerPID: o.PID}
	defer hits.Close()
	defer misses.Close()
	for _, w := range []struct {
		t *Target
		d time.Duration
	}{{hits, time.Second}, {misses, 200 * time.Millisecond}} {
		if r := w.t.Run(w.d); r.Errors > 0 {
			return MissCPU{}, fmt.Errorf("%s: %d errors in the warm-up, first: %v", w.t.Name, r.Errors, r.FirstError)
		}
	}
	var hit, miss, ratio []float64
	for round := range o.Rounds {
		order := []*Target{hits, misses}
		if round%2 == 1 {
			order[0], order[1] = misses, hits
		}
		var rh, rm Result
		for _, t := range order {
			r := t.Run(o.Phase)
			if r.Errors > 0 {
				return MissCPU{}, fmt.Errorf("%s: %d errors, first: %v", t.Name, r.Errors, r.FirstError)
			}
			if t == hits {
				rh = r
			} else {
				rm = r
			}
		}
		if rh.CPUPerRequest() <= 0 {
			return MissCPU{}, fmt.Errorf("no CPU time measured for process %d", o.PID)
		}
		hit = append(hit, float64(rh.CPUPerRequest()))
		miss = append(miss, float64(rm.CPUPerRequest()))
		ratio = append(ratio, float64(rm.CPUPerRequest())/float64(rh.CPUPerRequest()))
	}
	return MissCPU{Hit: time.Duration(Median(hit)), Miss: time.Duration(Median(miss)), Ratio: Median(ratio)}, nil
}
