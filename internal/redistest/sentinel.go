package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// sentinelMasterName is the name the sentinel monitors the master under.
	sentinelMasterName = "mymaster"
	// sentinelTimeout bounds replication and sentinel discovery at start.
	sentinelTimeout = 15 * time.Second
)

// Sentinel is a Redis master with one replica, monitored by one
// redis-sentinel process, all started for a test.
type Sentinel struct {
	master   *Server
	replica  *Server
	sentinel *Server
}

// StartSentinel starts a master redis-server, a replica of it, and a
// sentinel monitoring the master as "mymaster" with quorum 1,
// down-after-milliseconds 1000 and failover-timeout 3000, so that killing
// the master (Master().Stop) promotes the replica within a few seconds.
// It waits until the replica is in sync and the sentinel knows both.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Sentinel{}
	// Diskless sync normally waits 5s for more replicas; there is one.
	s.master = Start(t, "--repl-diskless-sync-delay", "0")
	s.replica = Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(s.master.Port()))
	waitFor(t, sentinelTimeout, "replica "+s.replica.Addr+" in sync", func() error {
		info, err := commandString(s.replica.Addr, ioTimeout, "INFO", "replication")
		if err != nil {
			return err
		}
		if got, _ := infoField(info, "master_link_status"); got != "up" {
			return fmt.Errorf("master_link_status is %q", got)
		}
		return nil
	})

	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	written := 0
	s.sentinel = startServer(t, bin, dir, func(port int) ([]string, error) {
		// The sentinel rewrites its configuration file with what it
		// learns; keep that state when it is restarted on the same port.
		if written != port {
			text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 3000
`, port, dir, sentinelMasterName, s.master.Port(), sentinelMasterName, sentinelMasterName)
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				return nil, err
			}
			written = port
		}
		return []string{conf, "--sentinel"}, nil
	})
	waitFor(t, sentinelTimeout, "sentinel "+s.sentinel.Addr+" to see the master and replica", func() error {
		info, err := commandString(s.sentinel.Addr, ioTimeout, "INFO", "sentinel")
		if err != nil {
			return err
		}
		want := fmt.Sprintf("name=%s,status=ok,address=%s,slaves=1,sentinels=1", sentinelMasterName, s.master.Addr)
		if got, _ := infoField(info, "master0"); got != want {
			return fmt.Errorf("master0 is %q, want %q", got, want)
		}
		return nil
	})
	return s
}

// waitFor polls cond until it returns nil, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MasterName returns the name the sentinel monitors the master under.
func (s *Sentinel) MasterName() string { return sentinelMasterName }

// SentinelAddrs returns the sentinel's address (127.0.0.1:port) as a
// one-element list, the form go-redis failover options take.
func (s *Sentinel) SentinelAddrs() []string { return []string{s.sentinel.Addr} }

// Master returns the server started as the master. After a failover it
// may no longer be the master; ask the sentinel (MasterAddr) instead.
func (s *Sentinel) Master() *Server { return s.master }

// Replica returns the server started as the replica of the master.
func (s *Sentinel) Replica() *Server { return s.replica }

// MasterAddr asks the sentinel for the current master's address.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	v, err := command(s.sentinel.Addr, ioTimeout, "SENTINEL", "get-master-addr-by-name", sentinelMasterName)
	if err != nil {
		t.Fatalf("redistest: SENTINEL get-master-addr-by-name: %v", err)
	}
	hp, ok := v.([]any)
	if !ok || len(hp) != 2 {
		t.Fatalf("redistest: SENTINEL get-master-addr-by-name: unexpected reply %#v", v)
	}
	host, _ := hp[0].(string)
	port, _ := hp[1].(string)
	return host + ":" + port
}

// FailoverClient returns a go-redis client that finds the master through
// the sentinel and follows failovers. It is closed when the test ends.
func (s *Sentinel) FailoverClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    sentinelMasterName,
		SentinelAddrs: s.SentinelAddrs(),
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
