package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/loadgen"
	"github.com/accessgate/accessgate/keystore"
)

// The scale subcommands are the steps of scripts/scale.sh. Each reads and
// writes the run's state file (-state) and adds its figures to the
// results file (-results), which scale-report turns into the table.

// scaleFlags are the flags every scale step takes.
type scaleFlags struct {
	fs      *flag.FlagSet
	url     *string
	prefix  *string
	state   *string
	results *string
}

func newScaleFlags(name string) scaleFlags {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	return scaleFlags{
		fs:      fs,
		url:     fs.String("redis", "", "redis:// URL of the gateways' Redis"),
		prefix:  fs.String("prefix", "agscale", "the gateways' key_prefix"),
		state:   fs.String("state", "", "the run's state file"),
		results: fs.String("results", "", "the run's results file"),
	}
}

func (f scaleFlags) redis() (*redis.Client, error) {
	opt, err := redis.ParseURL(*f.url)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}

func (f scaleFlags) record(r loadgen.Results) error {
	if *f.results == "" {
		return nil
	}
	return loadgen.AppendResults(*f.results, r)
}

// scaleSeed brings the keys to -keys and measures Redis memory per key.
func scaleSeed(args []string) error {
	f := newScaleFlags("scale-seed")
	keys := f.fs.Int("keys", 10_000, "access keys the store holds after this step")
	label := f.fs.String("label", "small", "label of the stage in the results (small, large)")
	sub := f.fs.Int("sub", 200, "credentials kept for the subscription step (first stage only)")
	checkDB := f.fs.Int("check-db", -1, "when ≥ 0, first compare the layout of a key created by the store and of a seeded one in this (emptied) database")
	_ = f.fs.Parse(args)
	ctx := context.Background()
	rdb, err := f.redis()
	if err != nil {
		return err
	}
	defer rdb.Close()
	if *checkDB >= 0 {
		opt, err := redis.ParseURL(*f.url)
		if err != nil {
			return err
		}
		opt.DB = *checkDB
		scratch := redis.NewClient(opt)
		d, err := loadgen.CheckSeedLayout(ctx, scratch)
		scratch.Close()
		if err != nil {
			return err
		}
		fmt.Printf("seed layout check: one key costs %d B (MEMORY USAGE) created by the store, %d B seeded", d.StoreBytes, d.SeedBytes)
		if len(d.StoreOnly)+len(d.SeedOnly) == 0 {
			fmt.Println("; same Redis keys")
		} else {
			fmt.Println()
		}
		for _, k := range d.StoreOnly {
			fmt.Printf("  written by the store only: %s\n", k)
		}
		for _, k := range d.SeedOnly {
			fmt.Printf("  written by the seeding only: %s\n", k)
		}
	}
	st, err := loadgen.LoadScaleState(*f.state)
	if err != nil {
		return err
	}
	r, err := loadgen.ReadResults(*f.results)
	if err != nil {
		return err
	}
	avail, total := loadgen.MemInfo()
	if per, ok := r["mem.small.bytes_per_key"]; ok && avail > 0 {
		need := per * float64(*keys-st.Keys)
		if need > 0.9*float64(avail) {
			return fmt.Errorf("%d more keys need about %.1f GiB of Redis at %.0f B/key; only %.1f GiB of memory is available",
				*keys-st.Keys, need/(1<<30), per, float64(avail)/(1<<30))
		}
	}
	s, err := loadgen.ScaleSeed(ctx, rdb, *f.prefix, st, *keys, *sub)
	if err != nil {
		return err
	}
	if err := st.Save(*f.state); err != nil {
		return err
	}
	if s.Added == 0 {
		return fmt.Errorf("the store already holds %d keys", st.Keys)
	}
	fmt.Printf("seeded %d keys (now %d) in %.1fs (%.0f keys/s); Redis used_memory grew %.0f B per key, now %.2f GiB\n",
		s.Added, st.Keys, s.Seconds, float64(s.Added)/s.Seconds, s.BytesPerKey, float64(s.UsedMemory)/(1<<30))
	return f.record(loadgen.Results{
		"keys." + *label:                   float64(st.Keys),
		"mem." + *label + ".bytes_per_key": s.BytesPerKey,
		"mem." + *label + ".used":          float64(s.UsedMemory),
		"machine.mem_total":                float64(total),
	})
}

// scaleIdle counts the commands Redis executes while the gateways do not
// sweep.
func scaleIdle(args []string) error {
	f := newScaleFlags("scale-idle")
	name := f.fs.String("name", "idle.small.g1", "name of the result")
	window := f.fs.Duration("window", 10*time.Second, "length of the window")
	_ = f.fs.Parse(args)
	rdb, err := f.redis()
	if err != nil {
		return err
	}
	defer rdb.Close()
	w, err := loadgen.MeasureIdle(context.Background(), rdb, *window)
	if err != nil {
		return err
	}
	rate := float64(w.Commands) / w.Seconds
	fmt.Printf("%s: %d Redis commands in %.1fs without sweeps (%.2f/s): %s\n", *name, w.Commands, w.Seconds, rate, w.Delta.Top(6))
	return f.record(loadgen.Results{*name + ".rate": rate})
}

// scaleSweep counts the commands Redis executes over whole sweeps.
func scaleSweep(args []string) error {
	f := newScaleFlags("scale-sweep")
	name := f.fs.String("name", "sweep.small.g1", "name of the result")
	lease := f.fs.String("lease", "lock:sweep", "the sweep lease's Redis key, after the prefix and a colon")
	interval := f.fs.Duration("interval", time.Second, "the gateways' sweep_interval")
	skip := f.fs.Int("skip", 1, "sweeps to let pass before counting")
	sweeps := f.fs.Int("sweeps", 10, "count this many sweeps...")
	window := f.fs.Duration("window", 10*time.Second, "...or those that end after this long, at least one")
	maxWait := f.fs.Duration("max-wait", time.Hour, "give up after this long")
	quiet := f.fs.Duration("quiet", 250*time.Millisecond, "a sweep has ended when Redis ran no command for this long (less than the interval)")
	_ = f.fs.Parse(args)
	rdb, err := f.redis()
	if err != nil {
		return err
	}
	defer rdb.Close()
	w, err := loadgen.MeasureSweeps(context.Background(), rdb, loadgen.SweepOptions{
		LeaseKey: *f.prefix + ":" + *lease, Skip: *skip, MinSweeps: *sweeps, MinWindow: *window,
		FirstWait: 5**interval + 5*time.Second, Interval: *interval, MaxWait: *maxWait, Quiet: *quiet,
	})
	if err != nil {
		return err
	}
	how := "sweeps seen through the lease"
	if w.Estimated {
		how = "lease not seen: sweeps estimated from the interval"
	}
	fmt.Printf("%s: %d Redis commands over %d sweeps in %.1fs (%s; %.0f per sweep before the idle baseline): %s\n",
		*name, w.Commands, w.Sweeps, w.Seconds, how, float64(w.Commands)/float64(w.Sweeps), w.Delta.Top(6))
	est := 0.0
	if w.Estimated {
		est = 1
	}
	return f.record(loadgen.Results{*name + ".cmds": float64(w.Commands), *name + ".sweeps": float64(w.Sweeps),
		*name + ".seconds": w.Seconds, *name + ".estimated": est})
}

// scaleList times the first page and a deep page of the key list: of
// the large store at -addr and, interleaved with it, of the small store
// at -small-addr (whose state is -small-state).
func scaleList(args []string) error {
	f := newScaleFlags("scale-list")
	addr := f.fs.String("addr", "", "the large store's gateway site serving the management API (host:port)")
	smallAddr := f.fs.String("small-addr", "", "the small store's gateway site")
	smallState := f.fs.String("small-state", "", "the small store's state file")
	n := f.fs.Int("n", 200, "requests timed per page")
	walk := f.fs.Int("walk", 100_000, "how deep to follow next when the API refuses an Access ID as token")
	_ = f.fs.Parse(args)
	large, err := loadgen.LoadScaleState(*f.state)
	if err != nil {
		return err
	}
	small, err := loadgen.LoadScaleState(*smallState)
	if err != nil {
		return err
	}
	target := func(addr string, st *loadgen.ScaleState) loadgen.ListTarget {
		return loadgen.ListTarget{Base: "http://" + addr, Auth: st.Admin.Authorization(), DeepToken: loadgen.MiddleID(st.Sample)}
	}
	ts, err := loadgen.MeasureLists(context.Background(), []loadgen.ListTarget{target(*smallAddr, small), target(*addr, large)}, *n, *walk)
	if err != nil {
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r := loadgen.Results{}
	for i, label := range []string{"small", "large"} {
		keys := []int{small.Keys, large.Keys}[i]
		fmt.Printf("list at %d keys: first page %.2f ms, deep page (by %s) %.2f ms (medians of %d, interleaved with the other store's)\n",
			keys, ms(ts[i].First), ts[i].DeepBy, ms(ts[i].Deep), ts[i].Requests)
		r["list."+label+".first_ms"], r["list."+label+".deep_ms"] = ms(ts[i].First), ms(ts[i].Deep)
	}
	return f.record(r)
}

// scaleSub runs a phase of the subscription steps: loss, before-restart,
// after-restart.
func scaleSub(args []string) error {
	f := newScaleFlags("scale-sub")
	phase := f.fs.String("phase", "loss", "loss, before-restart or after-restart")
	addr := f.fs.String("addr", "", "the gateway's site (host:port)")
	admin := f.fs.String("admin", "", "the gateway's admin endpoint (host:port)")
	path := f.fs.String("path", "/api/v1/collectors", "a path the credentials' scopes allow")
	settle := f.fs.Duration("settle", 2*time.Second, "wait this long after the subscription is back")
	_ = f.fs.Parse(args)
	ctx := context.Background()
	rdb, err := f.redis()
	if err != nil {
		return err
	}
	defer rdb.Close()
	st, err := loadgen.LoadScaleState(*f.state)
	if err != nil {
		return err
	}
	o := loadgen.SubOptions{Addr: *addr, Path: *path, Admin: *admin, Creds: st.Sub, Settle: *settle, Wait: time.Minute}
	switch *phase {
	case "loss":
		for _, id := range st.Sample {
			if !isSub(st, id) {
				o.Other = id
				break
			}
		}
		store := keystore.New(rdb, keystore.Options{Prefix: *f.prefix})
		r, err := loadgen.SubscriptionLoss(ctx, rdb, store, o)
		if err != nil {
			return err
		}
		stale := "refused, as it must be"
		if r.Answers.FirstOK {
			stale = "STILL SERVED: a missed change was not applied"
		}
		fmt.Printf("subscription loss: %d cached credentials presented again: %.0f re-verified (cache misses; %.0f authentications not from the cache), %d Redis commands; changes made while unsubscribed: %v; the disabled credential: %s\n",
			r.Creds, r.Reverified, r.NotHits, r.Commands, r.ChangedWhileDown, stale)
		return f.record(loadgen.Results{"sub.creds": float64(r.Creds), "sub.reverified": r.Reverified, "sub.not_hits": r.NotHits,
			"sub.commands": float64(r.Commands), "sub.stale": b2f(r.Answers.FirstOK)})
	case "before-restart", "after-restart":
		// The first credential was disabled by the loss phase.
		o.Creds = o.Creds[1:]
	}
	switch *phase {
	case "before-restart":
		m, err := loadgen.CacheBeforeRestart(ctx, o)
		if err != nil {
			return err
		}
		st.RestartBase = m
		fmt.Printf("before the Redis restart: %d credentials cached\n", len(o.Creds))
		return st.Save(*f.state)
	case "after-restart":
		r, err := loadgen.AfterRestart(ctx, rdb, o, st.RestartBase)
		if err != nil {
			return err
		}
		fmt.Printf("Redis restart: %d cached credentials presented again: %.0f re-verified (cache misses; %.0f not from the cache), %d answered 200 (their records are gone with the data)\n",
			r.Creds, r.Reverified, r.NotHits, r.Answers.OK)
		return f.record(loadgen.Results{"restart.creds": float64(r.Creds), "restart.reverified": r.Reverified, "restart.served": float64(r.Answers.OK)})
	}
	return fmt.Errorf("unknown phase %q", *phase)
}

func isSub(st *loadgen.ScaleState, id string) bool {
	for _, c := range st.Sub {
		if c.ID == id {
			return true
		}
	}
	return st.Admin.ID == id
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// scaleMiss measures the gateway's CPU per request on misses and hits.
func scaleMiss(args []string) error {
	f := newScaleFlags("scale-miss")
	addr := f.fs.String("addr", "", "the gateway's site (host:port)")
	path := f.fs.String("path", "/api/v1/collectors", "a path the seeded keys' scopes allow")
	pid := f.fs.Int("pid", 0, "the gateway's process")
	rounds := f.fs.Int("rounds", 10, "interleaved rounds")
	phase := f.fs.Duration("phase", time.Second, "length of each variant in a round")
	conns := f.fs.Int("c", 16, "connections")
	missKeys := f.fs.Int("miss-keys", 100_000, "credentials the misses rotate through")
	_ = f.fs.Parse(args)
	rdb, err := f.redis()
	if err != nil {
		return err
	}
	defer rdb.Close()
	st, err := loadgen.LoadScaleState(*f.state)
	if err != nil {
		return err
	}
	m, err := loadgen.MeasureMissCPU(context.Background(), rdb, loadgen.MissOptions{Prefix: *f.prefix, Owners: st.Owners,
		Addr: *addr, Path: *path, PID: *pid, MissKeys: *missKeys, Rounds: *rounds, Phase: *phase, Conns: *conns})
	if err != nil {
		return err
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	fmt.Printf("Caddy CPU per request: hits %.1f µs, misses %.1f µs; misses ÷ hits %.2f (median of %d rounds)\n", us(m.Hit), us(m.Miss), m.Ratio, *rounds)
	return f.record(loadgen.Results{"miss.hit_cpu_us": us(m.Hit), "miss.miss_cpu_us": us(m.Miss), "miss.ratio": m.Ratio})
}

// scaleReport prints the run's table.
func scaleReport(args []string) error {
	f := newScaleFlags("scale-report")
	_ = f.fs.Parse(args)
	r, err := loadgen.ReadResults(*f.results)
	if err != nil {
		return err
	}
	fmt.Print(loadgen.ScaleTable(r))
	for _, n := range loadgen.ScaleNotes(r) {
		fmt.Println(strings.TrimSpace(n))
	}
	return nil
}
