// Command loadgen drives accessgate's end-to-end benchmark (scripts/bench.sh)
// and its scale measurements (scripts/scale.sh).
//
//	loadgen ports N               print N free loopback TCP ports
//	loadgen upstream -addr A      serve a small JSON API at A
//	loadgen run [flags]           seed keys and load the gateway's variants
//	loadgen redismem [flags]      measure Redis memory per stored key
//	loadgen nohashcache REALM     filter a Caddy JSON config: drop the
//	                              hash_cache of basic_auth with realm REALM
//	loadgen scale-* [flags]       the steps of scripts/scale.sh: seed,
//	                              idle, sweep, list, sub, miss, report
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/loadgen"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ports":
		err = ports(os.Args[2:])
	case "upstream":
		err = upstream(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	case "redismem":
		err = redismem(os.Args[2:])
	case "nohashcache":
		err = noHashCache(os.Args[2:])
	case "scale-seed":
		err = scaleSeed(os.Args[2:])
	case "scale-idle":
		err = scaleIdle(os.Args[2:])
	case "scale-sweep":
		err = scaleSweep(os.Args[2:])
	case "scale-list":
		err = scaleList(os.Args[2:])
	case "scale-sub":
		err = scaleSub(os.Args[2:])
	case "scale-miss":
		err = scaleMiss(os.Args[2:])
	case "scale-report":
		err = scaleReport(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen ports N | upstream -addr A | run [flags] | redismem [flags] | nohashcache REALM | scale-seed|scale-idle|scale-sweep|scale-list|scale-sub|scale-miss|scale-report [flags]")
	os.Exit(2)
}

// ports prints free loopback ports, all held open until every one is
// found so that none is printed twice.
func ports(args []string) error {
	if len(args) != 1 {
		usage()
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	fmt.Println(strings.Join(out, " "))
	return nil
}

// noHashCache copies a Caddy JSON config from stdin to stdout without the
// hash_cache of the http_basic providers whose realm is args[0]: the
// Caddyfile's basic_auth always enables that cache, so a basic_auth
// that runs bcrypt on every request needs JSON.
func noHashCache(args []string) error {
	if len(args) != 1 {
		usage()
	}
	var cfg any
	if err := json.NewDecoder(os.Stdin).Decode(&cfg); err != nil {
		return err
	}
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["realm"] == args[0] {
				if _, ok := v["hash_cache"]; ok {
					delete(v, "hash_cache")
					n++
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(cfg)
	if n == 0 {
		return fmt.Errorf("no basic_auth with realm %q and a hash_cache", args[0])
	}
	return json.NewEncoder(os.Stdout).Encode(cfg)
}

// upstreamBody is the upstream's answer, the size of a small API reply.
const upstreamBody = `{"collectors":[{"id":"0000000001","name":"bench","alive":true,"category":"loadtest"}],"next":null}`

func upstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	_ = fs.Parse(args)
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(upstreamBody))
		}),
	}
	return srv.ListenAndServe()
}

func redismem(args []string) error {
	fs := flag.NewFlagSet("redismem", flag.ExitOnError)
	url := fs.String("redis", "", "redis:// URL of an empty database")
	prefix := fs.String("prefix", "agmem", "key prefix")
	n := fs.Int("keys", 1_000_000, "keys to create")
	_ = fs.Parse(args)
	opt, err := redis.ParseURL(*url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	m, err := loadgen.MeasureRedisMemory(context.Background(), rdb, *prefix, *n)
	if err != nil {
		return err
	}
	fmt.Printf("Redis memory per stored key, %d keys (created in %.1fs; %d records sampled with MEMORY USAGE)\n", m.Keys, m.Seconds, m.Sampled)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measure\tbytes/key\t× JSON record\t\n")
	fmt.Fprintf(tw, "JSON record (baseline)\t%.0f\t1.00\t\n", m.RecordLen)
	fmt.Fprintf(tw, "record, MEMORY USAGE\t%.0f\t%.2f\t\n", m.RecordUsage, m.RecordUsage/m.RecordLen)
	fmt.Fprintf(tw, "indexes + last use, MEMORY USAGE\t%.0f\t%.2f\t\n", m.IndexPerKey, m.IndexPerKey/m.RecordLen)
	fmt.Fprintf(tw, "total, INFO used_memory growth\t%.0f\t%.2f\t\n", m.UsedPerKey, m.UsedPerKey/m.RecordLen)
	_ = tw.Flush()
	fmt.Printf("=> about %.0f MB of Redis per million keys\n", m.UsedPerKey*1e6/(1<<20))
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	url := fs.String("redis", "", "redis:// URL of the gateway's Redis")
	prefix := fs.String("prefix", "agbench", "the gateway's key_prefix")
	path := fs.String("path", "/api/v1/collectors", "request path")
	plain := fs.String("plain", "", "address of (a) plain reverse_proxy")
	plainHeaders := fs.String("plain-headers", "", "address of (a') reverse_proxy behind request_header setting the identity headers access_keys sets")
	clientHeaders := fs.Bool("client-headers", true, "with -plain, also load (a'') reverse_proxy with the client itself sending the 3 identity headers and no Authorization: the upstream request (c) makes")
	basic := fs.String("basic", "", "address of (b) basic_auth + reverse_proxy")
	basicUser := fs.String("basic-user", "bench", "basic_auth user")
	basicPass := fs.String("basic-pass", "", "basic_auth password")
	hits := fs.String("hits", "", "address of (c) access_keys + reverse_proxy, cache hits")
	hitsNoUsage := fs.String("hits-nousage", "", "address of (c') access_keys with usage off + reverse_proxy, cache hits")
	limited := fs.Bool("limited", false, "also load (c) with keys under a rate limit (g), a quota (h) and a concurrency limit (i), none of them reached")
	misses := fs.String("misses", "", "address of (d) access_keys + reverse_proxy, cache misses")
	respond := fs.String("respond", "", "address of (e) respond")
	keysRespond := fs.String("keys-respond", "", "address of (f) access_keys + respond")
	sameRequests := fs.Bool("same-requests", true, "send the baselines (a) and (e) the Authorization headers of (c) and (f) too")
	rounds := fs.Int("rounds", 5, "measured rounds")
	phase := fs.Duration("phase", 4*time.Second, "length of one variant's phase in a round")
	conc := fs.Int("c", 16, "connections per variant")
	basicNoCache := fs.String("basic-nocache", "", "address of (b') basic_auth without hash cache + reverse_proxy")
	basicConc := fs.Int("basic-c", 2, "connections for (b'), whose every request costs a bcrypt comparison")
	serverPID := fs.Int("caddy-pid", 0, "PID of the Caddy process, to measure its CPU time per request")
	hotN := fs.Int("hot", 64, "credentials the cache-hit variants cycle through")
	missN := fs.Int("miss-keys", 100_000, "distinct credentials the cache-miss variant rotates through")
	_ = fs.Parse(args)

	ctx := context.Background()
	opt, err := redis.ParseURL(*url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	store := keystore.New(rdb, keystore.Options{Prefix: *prefix})
	start := time.Now()
	owners, err := loadgen.SeedOwners(ctx, store, 100)
	if err != nil {
		return err
	}
	hot, err := loadgen.SeedKeys(ctx, rdb, loadgen.SeedOptions{Prefix: *prefix, Owners: owners, N: *hotN, Keep: true})
	if err != nil {
		return err
	}
	cold, err := loadgen.SeedKeys(ctx, rdb, loadgen.SeedOptions{Prefix: *prefix, Owners: owners, N: *missN, Keep: true})
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d owners and %d keys in %.1fs\n", len(owners), len(hot)+len(cold), time.Since(start).Seconds())
	auths := func(cs []loadgen.Cred) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.Authorization()
		}
		return out
	}
	hotAuth, coldAuth := auths(hot), auths(cold)
	// Keys whose limits are never reached, so that (g), (h) and (i)
	// measure what enforcing a limit costs.
	limitedAuth := func(l keystore.KeyLimits) ([]string, error) {
		var out []string
		for i := range *hotN {
			k, secret, err := store.CreateKey(ctx, keystore.KeySpec{Label: "bench", OwnerID: owners[i%len(owners)], Limits: l}, keystore.Operator{ID: "loadgen"})
			if err != nil {
				return nil, err
			}
			out = append(out, loadgen.Cred{ID: k.ID, Secret: secret}.Authorization())
		}
		return out, nil
	}
	var rateAuth, quotaAuth, concAuth []string
	if *limited {
		conc := limits.MaxConcurrency
		if rateAuth, err = limitedAuth(keystore.KeyLimits{RateLimit: &limits.Rate{Requests: limits.MaxRequests, PeriodSeconds: 1}}); err != nil {
			return err
		}
		if quotaAuth, err = limitedAuth(keystore.KeyLimits{Quota: &limits.Quota{Requests: limits.MaxQuota, Period: limits.PeriodMonth}}); err != nil {
			return err
		}
		if concAuth, err = limitedAuth(keystore.KeyLimits{ConcurrencyLimit: &conc}); err != nil {
			return err
		}
	}
	limitedAddr := func() string {
		if *limited {
			return *hits
		}
		return ""
	}
	basicAuth := []string{loadgen.Cred{ID: *basicUser, Secret: *basicPass}.Authorization()}

	// The baselines get the very requests of the access_keys variants,
	// Authorization header included (they ignore it), so that a ratio
	// measures the module and not the bytes of the header.
	var baseAuth []string
	if *sameRequests {
		baseAuth = hotAuth
	}
	// (a'') sends what (c) forwards: no Authorization, the three identity
	// headers with values of the same shape as (c)'s keys' (an Access ID,
	// an owner ID, two scopes), so that (c) ÷ (a'') is the module alone and
	// (a'') ÷ (a) what forwarding those headers costs Caddy itself.
	identityHeaders := []string{"X-Access-Id: suAAAAAAAAAAAA", "X-Access-Owner: bench-user-0001", "X-Access-Scopes: runLogSearch viewCollectors"}
	clientHeadersAddr := ""
	if *clientHeaders {
		clientHeadersAddr = *plain
	}
	all := []*loadgen.Target{
		{Name: "(a) reverse_proxy", Addr: *plain, Path: *path, Concurrency: *conc, Auth: baseAuth},
		{Name: "(a') request_header (the 3 identity headers) + reverse_proxy", Addr: *plainHeaders, Path: *path, Concurrency: *conc, Auth: baseAuth},
		{Name: "(a'') reverse_proxy, the client sending the 3 identity headers itself (the upstream request of (c))", Addr: clientHeadersAddr, Path: *path, Concurrency: *conc, Header: identityHeaders},
		{Name: "(b) basic_auth (bcrypt, Caddyfile: hash cache on) + reverse_proxy", Addr: *basic, Path: *path, Concurrency: *conc, Auth: basicAuth},
		{Name: "(b') basic_auth (bcrypt, no hash cache) + reverse_proxy", Addr: *basicNoCache, Path: *path, Concurrency: *basicConc, Auth: basicAuth},
		{Name: "(c) access_keys (hits) + reverse_proxy", Addr: *hits, Path: *path, Concurrency: *conc, Auth: hotAuth},
		{Name: "(c') access_keys (hits, usage off) + reverse_proxy", Addr: *hitsNoUsage, Path: *path, Concurrency: *conc, Auth: hotAuth},
		{Name: "(d) access_keys (misses) + reverse_proxy", Addr: *misses, Path: *path, Concurrency: *conc, Auth: coldAuth, Rotate: true},
		{Name: "(e) respond", Addr: *respond, Path: *path, Concurrency: *conc, Auth: baseAuth},
		{Name: "(f) access_keys (hits) + respond", Addr: *keysRespond, Path: *path, Concurrency: *conc, Auth: hotAuth},
		{Name: "(g) access_keys (hits, key rate limit) + reverse_proxy", Addr: limitedAddr(), Path: *path, Concurrency: *conc, Auth: rateAuth},
		{Name: "(h) access_keys (hits, quota) + reverse_proxy", Addr: limitedAddr(), Path: *path, Concurrency: *conc, Auth: quotaAuth},
		{Name: "(i) access_keys (hits, concurrency limit) + reverse_proxy", Addr: limitedAddr(), Path: *path, Concurrency: *conc, Auth: concAuth},
	}
	// The targets given, by their letter.
	var targets []*loadgen.Target
	index := map[string]int{}
	for _, t := range all {
		if t.Addr == "" {
			continue
		}
		t.ServerPID = *serverPID
		index[t.Name[:strings.IndexByte(t.Name, ')')+1]] = len(targets)
		targets = append(targets, t)
		defer t.Close()
	}
	if len(targets) == 0 {
		return fmt.Errorf("no target addresses given")
	}

	// Warm-up, not measured: connections, caches, the owner cache.
	fmt.Printf("warm-up round (not measured)\n")
	for _, t := range targets {
		d := time.Second
		if t.Rotate {
			d = 200 * time.Millisecond
		}
		if r := t.Run(d); r.Errors > 0 {
			return fmt.Errorf("%s: %d errors in the warm-up, first: %v", t.Name, r.Errors, r.FirstError)
		}
	}

	// Each round runs every variant once, in an order of its own (the
	// same in every run of the program), so that no variant always
	// follows the one that leaves the most work behind (the misses).
	results := make([][]loadgen.Result, len(targets))
	order := rand.New(rand.NewPCG(1, 2))
	for round := 1; round <= *rounds; round++ {
		fmt.Printf("round %d/%d:", round, *rounds)
		for _, i := range order.Perm(len(targets)) {
			t := targets[i]
			r := t.Run(*phase)
			if r.Errors > 0 {
				return fmt.Errorf("%s: %d errors, first: %v", t.Name, r.Errors, r.FirstError)
			}
			results[i] = append(results[i], r)
			fmt.Printf(" %s %.4g/s", t.Name[:strings.IndexByte(t.Name, ')')+1], r.Throughput())
		}
		fmt.Println()
	}

	// Ratios are taken within each round, then their median is reported:
	// the variants of a round ran seconds apart, under the same
	// background load.
	ratio := func(i, base int, f func(loadgen.Result) float64) float64 {
		var xs []float64
		for r := range results[i] {
			xs = append(xs, f(results[i][r])/f(results[base][r]))
		}
		return loadgen.Median(xs)
	}
	thr := func(r loadgen.Result) float64 { return r.Throughput() }
	p50 := func(r loadgen.Result) float64 { return float64(r.P50) }
	p99 := func(r loadgen.Result) float64 { return float64(r.P99) }
	cpu := func(r loadgen.Result) float64 { return float64(r.CPUPerRequest()) }
	sys := func(r loadgen.Result) float64 { return r.SyscallsPerRequest() }
	med := func(i int, f func(loadgen.Result) float64) float64 {
		var xs []float64
		for _, r := range results[i] {
			xs = append(xs, f(r))
		}
		return loadgen.Median(xs)
	}
	ms := func(ns float64) string { return strconv.FormatFloat(ns/1e6, 'f', 2, 64) }
	num := func(x float64, prec int) string {
		if x != 0 && x < 0.5*math.Pow10(-prec) {
			return strconv.FormatFloat(x, 'e', 1, 64)
		}
		return strconv.FormatFloat(x, 'f', prec, 64)
	}
	pair := func(label, a, b string) {
		i, ok1 := index[a]
		j, ok2 := index[b]
		if ok1 && ok2 {
			fmt.Printf("%s: %s ÷ %s  req/s %s   p50 %.2f   p99 %.2f   caddy CPU/req %.3f\n", label, a, b, num(ratio(i, j, thr), 3), ratio(i, j, p50), ratio(i, j, p99), ratio(i, j, cpu))
		}
	}

	fmt.Printf("\nmedians over %d interleaved rounds of %v per variant (order shuffled per round); ratios taken within each round\n", *rounds, *phase)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	base, hasBase := index["(a)"]
	fmt.Fprintf(tw, "variant\tconns\trequests\treq/s\tp50 ms\tp99 ms\tcaddy µs CPU/req\tcaddy syscalls/req\treq/s ÷ (a)\tp50 ÷ (a)\tp99 ÷ (a)\tCPU/req ÷ (a)\t\n")
	for i, t := range targets {
		n := 0
		for _, r := range results[i] {
			n += r.Requests
		}
		rps := num(med(i, thr), 0)
		if med(i, thr) < 100 {
			rps = num(med(i, thr), 2)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%.1f\t%.2f\t", t.Name, t.Concurrency, n, rps, ms(med(i, p50)), ms(med(i, p99)), med(i, cpu)/1e3, med(i, sys))
		if hasBase {
			fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.3f\t\n", num(ratio(i, base, thr), 3), ratio(i, base, p50), ratio(i, base, p99), ratio(i, base, cpu))
		} else {
			fmt.Fprintf(tw, "-\t-\t-\t-\t\n")
		}
	}
	_ = tw.Flush()
	fmt.Println()
	pair("respond pair", "(f)", "(e)")
	pair("access_keys hits over plain proxy", "(c)", "(a)")
	pair("access_keys hits over a proxy adding the same headers", "(c)", "(a')")
	pair("access_keys hits over a proxy sent the same upstream request", "(c)", "(a'')")
	pair("forwarding the 3 identity headers instead of Authorization", "(a'')", "(a)")
	pair("usage counting: hits counted over not", "(c)", "(c')")
	pair("access_keys hits, usage off, over plain proxy", "(c')", "(a)")
	pair("access_keys misses over hits", "(d)", "(c)")
	pair("key rate limit over no limit", "(g)", "(c)")
	pair("key rate limit over plain proxy", "(g)", "(a)")
	pair("quota over no limit", "(h)", "(c)")
	pair("concurrency limit over no limit", "(i)", "(c)")
	pair("basic_auth without hash cache over with", "(b')", "(b)")
	return nil
}
