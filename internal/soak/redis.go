package soak

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// MasterName is the name the sentinel monitors the master under.
	MasterName = "soakmaster"
	// redisTimeout bounds start-up, replication and sentinel discovery.
	redisTimeout = 30 * time.Second
)

// Redis is a master, its replica and a sentinel watching them.
type Redis struct {
	// SentinelAddr is the sentinel's address, 127.0.0.1:port.
	SentinelAddr string
	// Addrs are the addresses of the two data servers, the first started
	// as the master.
	Addrs [2]string

	sentinel *redis.SentinelClient
}

// StartRedis starts a redis-server master, a replica of it and a
// redis-sentinel watching the master as MasterName (quorum 1), each on a
// free loopback port with its files under dir, and waits until the
// replica is in sync and the sentinel knows both.
func StartRedis(ctx context.Context, ps *Procs, dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: install it with `apt-get install -y redis-server`")
	}
	r := &Redis{}
	for i, role := range []string{"redis-master", "redis-replica"} {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r.Addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
		// min-replicas-to-write on both servers, as README's "Redis
		// persistence for production" recommends: a master left without
		// its replica (an old master after Sentinel promoted the replica)
		// refuses writes rather than acknowledge writes a failover loses.
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", filepath.Join(dir, role), "--repl-diskless-sync-delay", "0",
			"--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"}
		if i == 1 {
			args = append(args, "--replicaof", "127.0.0.1", strings.TrimPrefix(r.Addrs[0], "127.0.0.1:"))
		}
		if _, err := ps.Start(role, filepath.Join(dir, role), nil, bin, args...); err != nil {
			return nil, err
		}
		if err := WaitFor(ctx, redisTimeout, role+" to answer PING", func() error {
			return ping(ctx, r.Addrs[i])
		}); err != nil {
			return nil, err
		}
	}
	if err := WaitFor(ctx, redisTimeout, "the replica in sync", func() error {
		return replicaInSync(ctx, r.Addrs[1])
	}); err != nil {
		return nil, err
	}

	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r.SentinelAddr = "127.0.0.1:" + strconv.Itoa(port)
	sdir := filepath.Join(dir, "sentinel")
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(sdir, "sentinel.conf")
	text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %s 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 3000
`, port, sdir, MasterName, strings.TrimPrefix(r.Addrs[0], "127.0.0.1:"), MasterName, MasterName)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	if _, err := ps.Start("redis-sentinel", sdir, nil, bin, conf, "--sentinel"); err != nil {
		return nil, err
	}
	r.sentinel = redis.NewSentinelClient(&redis.Options{Addr: r.SentinelAddr})
	want := fmt.Sprintf("name=%s,status=ok,address=%s,slaves=1,sentinels=1", MasterName, r.Addrs[0])
	if err := WaitFor(ctx, redisTimeout, "the sentinel to see the master and replica", func() error {
		c := redis.NewClient(&redis.Options{Addr: r.SentinelAddr, MaxRetries: -1})
		defer c.Close()
		info, err := c.Info(ctx, "sentinel").Result()
		if err != nil {
			return err
		}
		if got := infoField(info, "master0"); got != want {
			return fmt.Errorf("master0 is %q, want %q", got, want)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// Close releases the sentinel client.
func (r *Redis) Close() error { return r.sentinel.Close() }

// MasterAddr asks the sentinel for the current master's address.
func (r *Redis) MasterAddr(ctx context.Context) (string, error) {
	hp, err := r.sentinel.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("SENTINEL get-master-addr-by-name: %q", hp)
	}
	return hp[0] + ":" + hp[1], nil
}

// Failover runs SENTINEL FAILOVER and waits until the sentinel names the
// other server as master, that server says it is the master, and the old
// master is its replica in sync. It returns the old and new masters.
func (r *Redis) Failover(ctx context.Context) (from, to string, err error) {
	from, err = r.MasterAddr(ctx)
	if err != nil {
		return "", "", err
	}
	// The sentinel refuses while it has no good replica yet (it learns of
	// the old master's new role every few seconds); retry.
	if err := WaitFor(ctx, redisTimeout, "SENTINEL FAILOVER to be accepted", func() error {
		return r.sentinel.Failover(ctx, MasterName).Err()
	}); err != nil {
		return from, "", err
	}
	if err := WaitFor(ctx, redisTimeout, "the sentinel to name a new master", func() error {
		addr, err := r.MasterAddr(ctx)
		if err != nil {
			return err
		}
		if addr == from {
			return errors.New("master unchanged")
		}
		to = addr
		return nil
	}); err != nil {
		return from, "", err
	}
	err = WaitFor(ctx, redisTimeout, "the new master and its replica", func() error {
		c := redis.NewClient(&redis.Options{Addr: to})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if role := infoField(info, "role"); role != "master" {
			return fmt.Errorf("%s has role %q", to, role)
		}
		return replicaInSync(ctx, from)
	})
	return from, to, err
}

// ping checks that a server answers PING.
func ping(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	return c.Ping(ctx).Err()
}

// replicaInSync checks that addr is a replica whose link to its master
// is up.
func replicaInSync(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if role := infoField(info, "role"); role != "slave" {
		return fmt.Errorf("%s has role %q", addr, role)
	}
	if got := infoField(info, "master_link_status"); got != "up" {
		return fmt.Errorf("%s: master_link_status is %q", addr, got)
	}
	return nil
}

// infoField returns the value of field in the text of an INFO reply.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
