package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterTimeout bounds cluster creation and convergence.
const clusterTimeout = 30 * time.Second

// Cluster is a Redis Cluster of masters without replicas, each a
// redis-server started for a test.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts a Redis Cluster of masters nodes (at least 3, as
// redis-cli requires), each on its own free client and cluster-bus ports,
// assigns the hash slots with `redis-cli --cluster create`, and waits
// until every node reports cluster_state:ok and knows every other node.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, got %d", masters)
	}
	bin := lookPath(t, "redis-server")
	cli := lookPath(t, "redis-cli")

	c := &Cluster{}
	for range masters {
		dir := t.TempDir()
		busPorts := map[int]int{} // keeps the bus port across Restart
		node := startServer(t, bin, dir, func(port int) ([]string, error) {
			if busPorts[port] == 0 {
				busPorts[port] = freePort(t)
			}
			return []string{
				"--save", "",
				"--appendonly", "no",
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--dir", dir,
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "5000",
				"--cluster-port", strconv.Itoa(busPorts[port]),
			}, nil
		})
		c.nodes = append(c.nodes, node)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	deadline := time.Now().Add(clusterTimeout)
	for _, n := range c.nodes {
		for {
			err := clusterReady(n.Addr, masters)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ready within %v: %v", n.Addr, clusterTimeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// clusterReady reports whether the node at addr sees a healthy cluster of
// n nodes with every slot served.
func clusterReady(addr string, n int) error {
	info, err := commandString(addr, ioTimeout, "CLUSTER", "INFO")
	if err != nil {
		return err
	}
	want := map[string]string{
		"cluster_state":       "ok",
		"cluster_slots_ok":    "16384",
		"cluster_known_nodes": strconv.Itoa(n),
	}
	for field, v := range want {
		if got, _ := infoField(info, field); got != v {
			return fmt.Errorf("%s is %q, want %q", field, got, v)
		}
	}
	return nil
}

// Addrs returns the addresses (127.0.0.1:port) of the cluster's nodes.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Nodes returns the cluster's nodes.
func (c *Cluster) Nodes() []*Server {
	return append([]*Server(nil), c.nodes...)
}

// Client returns a go-redis cluster client seeded with every node's
// address. It is closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
