package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// gatewayTimeout bounds a gateway's start-up and one admin API call.
const gatewayTimeout = 30 * time.Second

// Gateway is a Caddy process of the fleet.
type Gateway struct {
	// Name names the gateway in the report (gw1, gw2...).
	Name string
	// Base is the site's URL, http://127.0.0.1:port.
	Base string
	// AdminAddr is the admin endpoint, 127.0.0.1:port.
	AdminAddr string
	// Dir holds its Caddyfile, log and HOME/XDG directories.
	Dir string
	// Proc is the running process.
	Proc *Process

	admin *http.Client
}

// StartGateway writes caddyfile to dir/Caddyfile and runs
// `bin run --config <file> --adapter caddyfile`, then waits until the
// admin endpoint at adminAddr answers and the site at base accepts
// connections.
func StartGateway(ctx context.Context, ps *Procs, bin, dir, name, base, adminAddr, caddyfile string) (*Gateway, error) {
	g := &Gateway{Name: name, Base: base, AdminAddr: adminAddr, Dir: dir, admin: &http.Client{Timeout: gatewayTimeout}}
	var env []string
	for _, d := range []string{"home", "data", "config", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	env = append(env, "HOME="+filepath.Join(dir, "home"), "XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	p, err := ps.Start(name, dir, env, bin, "run", "--config", config, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	g.Proc = p
	site := strings.TrimPrefix(base, "http://")
	err = WaitFor(ctx, gatewayTimeout, name+" to listen", func() error {
		if p.Exited() {
			return errors.New("caddy exited; see " + p.LogPath)
		}
		if _, err := g.adminGet(ctx, "/config/"); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", site, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Reload loads the gateway's running configuration again through the
// admin API (POST /load with Cache-Control: must-revalidate, which makes
// Caddy apply even an unchanged configuration), as `caddy reload --force`
// does.
func (g *Gateway) Reload(ctx context.Context) error {
	cfg, err := g.adminGet(ctx, "/config/")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.AdminAddr+"/load", bytes.NewReader(cfg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := g.admin.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /load: %s: %s", resp.Status, body)
	}
	return nil
}

// Memory is a gateway's memory use at one time.
type Memory struct {
	// RSS is the resident set size in bytes (VmRSS).
	RSS int64
	// Heap is the Go heap in use after a garbage collection (HeapAlloc).
	Heap int64
}

// Memory reads the process's VmRSS from /proc and its Go heap from the
// admin endpoint's /debug/vars, after a garbage collection forced through
// /debug/pprof/heap?gc=1 so that the heap counts live memory only. That
// heap profile is written to profile (for `go tool pprof -base`) unless
// profile is empty.
func (g *Gateway) Memory(ctx context.Context, profile string) (Memory, error) {
	var m Memory
	prof, err := g.adminGet(ctx, "/debug/pprof/heap?gc=1")
	if err != nil {
		return m, err
	}
	if profile != "" {
		if err := os.WriteFile(profile, prof, 0o644); err != nil {
			return m, err
		}
	}
	vars, err := g.adminGet(ctx, "/debug/vars")
	if err != nil {
		return m, err
	}
	var v struct {
		Memstats struct {
			HeapAlloc int64
		} `json:"memstats"`
	}
	if err := json.Unmarshal(vars, &v); err != nil {
		return m, fmt.Errorf("/debug/vars: %w", err)
	}
	m.Heap = v.Memstats.HeapAlloc
	m.RSS, err = rss(g.Proc.Pid())
	return m, err
}

// rss reads VmRSS of a process from /proc/<pid>/status, in bytes.
func rss(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// adminGet fetches a path of the admin endpoint and returns its body,
// failing unless it answers 200.
func (g *Gateway) adminGet(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.AdminAddr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.admin.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}
