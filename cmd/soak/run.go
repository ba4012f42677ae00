package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/accessgate/accessgate/internal/soak"
	"github.com/accessgate/accessgate/mgmtapi/client"
)

// adminOwner is the user whose key drives the management API.
const adminOwner = "soak-admin"

// endReading is how long before the end of the soak the last memory
// reading is taken, so that it is taken under traffic as the first is.
const endReading = 5 * time.Second

// run sets the fleet up, runs the soak and prints the report. It returns
// the exit code.
func run(ctx context.Context, cfg config) (int, error) {
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "accessgate-soak-")
		if err != nil {
			return 1, err
		}
		dir = d
	}
	procs := &soak.Procs{}
	defer procs.StopAll()

	log.Printf("soak: starting Redis, its replica and a sentinel under %s", dir)
	rds, err := soak.StartRedis(ctx, procs, filepath.Join(dir, "redis"))
	if err != nil {
		return 1, err
	}
	defer rds.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1, err
	}
	upstream := &http.Server{Handler: soak.Upstream(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = upstream.Serve(ln) }()
	defer upstream.Close()

	gws, err := startFleet(ctx, procs, cfg, dir, rds.SentinelAddr, ln.Addr().String())
	if err != nil {
		return 1, err
	}
	api, err := bootstrap(ctx, cfg.caddy, gws[0])
	if err != nil {
		return 1, err
	}

	sum, start, err := soakFleet(ctx, cfg, rds, gws, api)
	if err != nil {
		return 1, fmt.Errorf("%w (logs under %s)", err, dir)
	}
	for _, g := range gws {
		if g.Proc.Exited() {
			log.Printf("soak: %s exited during the soak; see %s", g.Name, g.Proc.LogPath)
		}
	}
	fmt.Print(sum.Markdown(start, 30))
	full := filepath.Join(dir, "report.md")
	if err := os.WriteFile(full, []byte(sum.Markdown(start, -1)), 0o644); err != nil {
		log.Printf("soak: %v", err)
	}
	if sum.Failed(cfg.maxGrowth) {
		fmt.Printf("\nFAIL (logs kept under %s)\n", dir)
		return 1, nil
	}
	fmt.Println("\nPASS")
	if cfg.dir == "" {
		procs.StopAll()
		_ = os.RemoveAll(dir)
	}
	return 0, nil
}

// startFleet starts the gateways, the first one also serving the
// management API.
func startFleet(ctx context.Context, procs *soak.Procs, cfg config, dir, sentinel, upstream string) ([]*soak.Gateway, error) {
	var gws []*soak.Gateway
	for i := range cfg.gateways {
		admin, err := soak.FreePort()
		if err != nil {
			return nil, err
		}
		site, err := soak.FreePort()
		if err != nil {
			return nil, err
		}
		name := "gw" + strconv.Itoa(i+1)
		base := "http://127.0.0.1:" + strconv.Itoa(site)
		cf := caddyfile(admin, site, sentinel, upstream, cfg.grace, i == 0)
		log.Printf("soak: starting %s at %s", name, base)
		g, err := soak.StartGateway(ctx, procs, cfg.caddy, filepath.Join(dir, name), name, base, "127.0.0.1:"+strconv.Itoa(admin), cf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		gws = append(gws, g)
	}
	return gws, nil
}

// caddyfile is a gateway's configuration.
func caddyfile(admin, site int, sentinel, upstream string, grace time.Duration, management bool) string {
	mgmt := ""
	if management {
		mgmt = `	@management path /api/v1/accessKeys /api/v1/accessKeys/*
	handle @management {
		access_keys_api
	}
`
	}
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
	access_keys {
		redis_sentinel %s %s
		key_prefix soak
		rotation_grace %s
		max_failures_per_client -1
		max_failures_per_key -1
	}
}

http://127.0.0.1:%d {
%s	handle {
		access_keys {
			scope viewCollectors GET HEAD /api/v1/collectors /api/v1/collectors/*
		}
		reverse_proxy %s
	}
}
`, admin, soak.MasterName, sentinel, grace, site, mgmt, upstream)
}

// apiTimeout bounds one call of the management API.
const apiTimeout = 10 * time.Second

// bootstrap makes the user and key that drive the management API with
// `caddy access-keys`, reading the Redis setup from gw's Caddyfile.
func bootstrap(ctx context.Context, bin string, gw *soak.Gateway) (*client.Client, error) {
	conf := filepath.Join(gw.Dir, "Caddyfile")
	cli := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, append(append([]string{"access-keys"}, args...), "--config", conf)...)
		cmd.Dir = gw.Dir
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return nil, fmt.Errorf("caddy access-keys %v: %v: %s", args, err, ee.Stderr)
			}
			return nil, err
		}
		return out, nil
	}
	if _, err := cli("user", "add", "--id", adminOwner, "--email", "soak-admin@example.com",
		"--capability", "manageAccessKeys", "--capability", "createAccessKeys", "--capability", "viewCollectors"); err != nil {
		return nil, err
	}
	out, err := cli("create", "--user", adminOwner, "--label", "soak-admin", "--json")
	if err != nil {
		return nil, err
	}
	var k client.AccessKey
	if err := json.Unmarshal(out, &k); err != nil {
		return nil, fmt.Errorf("caddy access-keys create: %v: %s", err, out)
	}
	return client.New(gw.Base+"/api/v1", k.ID, k.Key, &http.Client{Timeout: apiTimeout})
}

// soakFleet runs the traffic, churn, failovers and reloads for the
// soak's duration, then judges the answers.
func soakFleet(ctx context.Context, cfg config, rds *soak.Redis, gws []*soak.Gateway, api *client.Client) (*soak.Summary, time.Time, error) {
	book := &soak.Book{}
	ch := newChurner(api, book, cfg.grace)
	for range minPool + 2 {
		ch.create(ctx)
	}
	if len(ch.pool) == 0 {
		return nil, time.Time{}, errors.New("the management API created no key")
	}
	bases := make([]string, len(gws))
	names := make([]string, len(gws))
	for i, g := range gws {
		bases[i], names[i] = g.Base, g.Name
	}

	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	log.Printf("soak: running for %v: %d workers over %d gateways, a failover every %v, a reload of each gateway every %v",
		cfg.duration, cfg.workers, len(gws), cfg.failoverEvery, cfg.reloadEvery)

	var wg sync.WaitGroup
	results := make([][]soak.Result, cfg.workers)
	for w := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w] = soak.Traffic(runCtx, book, bases, cfg.pause, uint64(w+1))
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ch.run(runCtx, cfg.churnEvery)
	}()

	sum := &soak.Summary{Commit: cfg.commit, Gateways: len(gws)}
	var mu sync.Mutex // guards sum's counters and events, and failovers
	var failovers []soak.Window
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(runCtx, cfg.failoverEvery, cfg.failoverEvery, func() {
			if time.Until(start.Add(cfg.duration)) < 30*time.Second {
				return
			}
			t0 := time.Now()
			from, to, err := rds.Failover(runCtx)
			t1 := time.Now()
			log.Printf("soak: failover %s -> %s in %v (err %v)", from, to, t1.Sub(t0).Round(time.Millisecond), err)
			mu.Lock()
			sum.Failovers++
			if err != nil {
				sum.FailoverErrors++
			}
			failovers = append(failovers, soak.Window{Start: t0, End: t1.Add(5 * time.Second)})
			sum.Events = append(sum.Events, soak.Event{What: "failover " + from + " -> " + to, Window: soak.Window{Start: t0, End: t1}})
			mu.Unlock()
			select {
			case <-runCtx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			found := ch.check(runCtx, t0)
			mu.Lock()
			sum.Mismatches = append(sum.Mismatches, found...)
			mu.Unlock()
		})
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		step := cfg.reloadEvery / time.Duration(len(gws))
		n := 0
		every(runCtx, step, step, func() {
			g := gws[n%len(gws)]
			n++
			t0 := time.Now()
			err := g.Reload(runCtx)
			t1 := time.Now()
			if runCtx.Err() != nil {
				return
			}
			if err != nil {
				log.Printf("soak: reload of %s: %v", g.Name, err)
			}
			mu.Lock()
			sum.Reloads++
			if err != nil {
				sum.ReloadErrors++
			}
			sum.Events = append(sum.Events, soak.Event{What: "reload " + g.Name, Window: soak.Window{Start: t0, End: t1}})
			mu.Unlock()
		})
	}()

	memory := make([]soak.GatewayMemory, len(gws))
	read := func(end bool) error {
		stage := "warmup"
		if end {
			stage = "end"
		}
		for i, g := range gws {
			m, err := g.Memory(ctx, filepath.Join(g.Dir, "heap-"+stage+".pprof"))
			if err != nil {
				return fmt.Errorf("memory of %s: %w", g.Name, err)
			}
			memory[i].Name = g.Name
			if end {
				memory[i].End = m
			} else {
				memory[i].Start = m
			}
		}
		return nil
	}
	// Both readings are taken under traffic: after warm-up, and
	// endReading before the end.
	var memErr error
	select {
	case <-runCtx.Done():
	case <-time.After(cfg.warmup):
		memErr = read(false)
		log.Printf("soak: memory after warm-up read (%v)", memErr)
	}
	select {
	case <-runCtx.Done():
	case <-time.After(time.Until(start.Add(cfg.duration - endReading))):
		if memErr == nil {
			memErr = read(true)
			log.Printf("soak: memory at the end read (%v)", memErr)
		}
	}
	<-runCtx.Done()
	if ctx.Err() != nil {
		wg.Wait()
		return nil, start, ctx.Err()
	}
	if memErr == nil && memory[0].End.RSS == 0 {
		memErr = errors.New("the soak ended before the memory readings")
	}
	wg.Wait()
	sum.Duration = time.Since(start)
	if memErr != nil {
		return nil, start, memErr
	}
	sum.Memory = memory
	sum.Changes, sum.ChangeErrors = ch.counts, ch.errors
	var all []soak.Result
	for _, r := range results {
		all = append(all, r...)
	}
	sum.Evaluate(book, names, all, failovers)
	return sum, start, nil
}

// every calls f after first, then every interval, until ctx ends.
func every(ctx context.Context, first, interval time.Duration, f func()) {
	next := time.Now().Add(first)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		f()
		next = next.Add(interval)
	}
}
