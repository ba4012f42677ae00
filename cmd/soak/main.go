// Command soak runs three accessgate gateways on a Sentinel-managed Redis
// for a bounded time under churn (a Sentinel failover every two minutes,
// a reload of each gateway every minute, keys created, disabled,
// enabled, rotated and deleted continually through the management API)
// while several workers send requests with valid and revoked credentials
// through all gateways. It judges every answer against the history of the
// credential it carried, measures each gateway's memory after warm-up and
// at the end, prints a markdown report and exits 1 if any answer was
// wrong or any gateway's resident memory grew by more than 10 %.
//
//	go build -o caddy ./cmd/caddy
//	go run ./cmd/soak -caddy ./caddy -duration 10m
//
// scripts/soak.sh (`make soak`) does both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// maxDuration bounds a soak.
const maxDuration = 10 * time.Minute

// config is the soak's command line.
type config struct {
	caddy         string
	dir           string
	commit        string
	duration      time.Duration
	warmup        time.Duration
	failoverEvery time.Duration
	reloadEvery   time.Duration
	churnEvery    time.Duration
	grace         time.Duration
	workers       int
	pause         time.Duration
	gateways      int
	maxGrowth     float64
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
	}
	os.Exit(code)
}

func parseFlags() (config, error) {
	c := config{}
	def := 10 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("SOAK_DURATION: %v", err)
		}
		def = d
	}
	flag.StringVar(&c.caddy, "caddy", "", "the Caddy binary built from ./cmd/caddy (required)")
	flag.StringVar(&c.dir, "dir", "", "directory for logs and configs (default: a new temporary directory, removed unless the soak fails)")
	flag.StringVar(&c.commit, "commit", "unknown", "the commit under test, for the report")
	flag.DurationVar(&c.duration, "duration", def, "how long the churn and traffic last (at most 10m; default $SOAK_DURATION or 10m)")
	flag.DurationVar(&c.warmup, "warmup", time.Minute, "when the first memory reading is taken (at most a third of -duration)")
	flag.DurationVar(&c.failoverEvery, "failover-every", 2*time.Minute, "interval between Sentinel failovers")
	flag.DurationVar(&c.reloadEvery, "reload-every", time.Minute, "interval between two reloads of one gateway")
	flag.DurationVar(&c.churnEvery, "churn-every", 300*time.Millisecond, "interval between key changes")
	flag.DurationVar(&c.grace, "grace", 10*time.Second, "the gateways' rotation_grace")
	flag.IntVar(&c.workers, "workers", 6, "traffic workers")
	flag.DurationVar(&c.pause, "pause", 10*time.Millisecond, "pause of a worker between requests")
	flag.IntVar(&c.gateways, "gateways", 3, "gateways in the fleet")
	flag.Float64Var(&c.maxGrowth, "max-growth", 0.10, "largest memory growth from warm-up to end that passes")
	flag.Parse()
	switch {
	case c.caddy == "":
		return c, errors.New("-caddy is required")
	case c.duration <= 0 || c.duration > maxDuration:
		return c, fmt.Errorf("-duration %v: want more than 0 and at most %v", c.duration, maxDuration)
	case c.gateways < 1 || c.workers < 1:
		return c, errors.New("-gateways and -workers must be at least 1")
	}
	if c.warmup > c.duration/3 {
		c.warmup = c.duration / 3
	}
	abs, err := filepath.Abs(c.caddy)
	if err != nil {
		return c, err
	}
	c.caddy = abs
	return c, nil
}
