package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehook/rehook/internal/testenv"
)

// needRedisServer skips the test when redis-server is not installed, except
// in CI (CI set), where .ci/run installs it and a skip would hide a gap.
func needRedisServer(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing in CI: %v", tool, err)
			}
			t.Skipf("%s is not installed (apt-get install redis-server)", tool)
		}
	}
}

// freeClusterPort picks a loopback port that is free together with its
// cluster bus port (port + 10000).
func freeClusterPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(20000)
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		_ = a.Close()
		if err != nil {
			continue
		}
		_ = b.Close()
		return p
	}
	t.Fatal("no free loopback port pair for a cluster node")
	return 0
}

// startRedisNode runs a redis-server on a loopback port with the extra
// arguments, waits until it answers, and stops it (by its PID) at cleanup.
// A first extra argument naming a .conf file is the configuration file.
func startRedisNode(t *testing.T, dir string, port int, extra ...string) {
	t.Helper()
	var args []string
	if len(extra) > 0 && strings.HasSuffix(extra[0], ".conf") {
		args, extra = extra[:1], extra[1:]
	}
	args = append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
	args = append(args, extra...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server on %d: %v", port, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer c.Close()
	pollUntil(t, 10*time.Second, fmt.Sprintf("redis-server on %d answers", port), func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

// pollUntil checks cond every 50ms until it holds, failing after timeout.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRedisCluster starts a three-node Redis Cluster (no replicas) on
// loopback ports and returns the seed addresses once every slot is served.
func startRedisCluster(t *testing.T) []string {
	t.Helper()
	needRedisServer(t)
	dir := t.TempDir()

	var addrs []string
	for range 3 {
		p := freeClusterPort(t)
		startRedisNode(t, dir, p, "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", p)))
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}

	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		pollUntil(t, 20*time.Second, a+" reports cluster_state:ok", func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
	}
	return addrs
}

// TestRedisCluster runs the README's walk-through with rehook api and rehook
// worker on a three-node Redis Cluster, reached through a redis-cluster://
// URL, and checks that the queue's keys are spread over the nodes by queue.
func TestRedisCluster(t *testing.T) {
	addrs := startRedisCluster(t)
	t.Logf("cluster %v, database: %s", addrs, testenv.Describe())

	env := splitEnv(testenv.DatabaseURL(t), "redis-cluster://"+strings.Join(addrs, ","))
	key := prepareDatabase(t, env)
	rcv := newReceiver(t)
	w := start(t, env, "worker")
	p := start(t, env, "api")
	base := waitAPIListening(t, p)
	walkThrough(t, client{t: t, base: base, key: key}, rcv)

	// asynq keeps each queue's keys in one hash slot ({events}, {retrigger});
	// both queues were used, and each node holds what its slots hold.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	ctx := context.Background()
	for _, q := range []string{"events", "retrigger"} {
		slot, err := cc.ClusterKeySlot(ctx, "asynq:{"+q+"}:pending").Result()
		if err != nil {
			t.Fatal(err)
		}
		n, err := cc.ClusterCountKeysInSlot(ctx, int(slot)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("queue %s: no keys in its slot %d; the tasks did not go through the cluster",
				q, slot)
		}
	}
	if log := w.stderr.String(); strings.Contains(log, "CROSSSLOT") {
		t.Errorf("worker logged a cross-slot error:\n%s", log)
	}

	// Everything else that talks to Redis goes through the cluster too: the
	// readiness check (asked with rehook healthcheck, as a container's health
	// check does) and the dashboard's queue list.
	for name, proc := range map[string]*process{"api": p, "worker": w} {
		admin := waitAdmin(t, proc)
		out, err := exec.Command(rehookBinary(t), "healthcheck", admin+"/readyz").CombinedOutput()
		if err != nil {
			t.Errorf("%s: rehook healthcheck %s/readyz: %v\n%s", name, admin, err, out)
		}
	}
	code, body := httpGet(t, waitAdmin(t, p)+"/monitoring/api/queues")
	if code != 200 || !strings.Contains(body, `"retrigger"`) || !strings.Contains(body, `"events"`) {
		t.Errorf("dashboard queues on the cluster: %d %s; want both queues", code, body)
	}
}

// TestRedisSentinel runs the walk-through through a Redis Sentinel: a master
// and one sentinel on loopback ports, reached by a redis-sentinel:// URL.
func TestRedisSentinel(t *testing.T) {
	needRedisServer(t)
	dir := t.TempDir()
	master := freeClusterPort(t)
	startRedisNode(t, dir, master, "--save", "", "--appendonly", "no")

	sentinel := freeClusterPort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(
		"sentinel monitor rehookmain 127.0.0.1 %d 1\n", master)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	startRedisNode(t, dir, sentinel, conf, "--sentinel")
	sc := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(sentinel)})
	defer sc.Close()
	pollUntil(t, 10*time.Second, "sentinel names the master", func() bool {
		addr, err := sc.GetMasterAddrByName(context.Background(), "rehookmain").Result()
		return err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(master)
	})

	env := splitEnv(testenv.DatabaseURL(t),
		fmt.Sprintf("redis-sentinel://127.0.0.1:%d/2?master=rehookmain", sentinel))
	key := prepareDatabase(t, env)
	rcv := newReceiver(t)
	start(t, env, "worker")
	p := start(t, env, "api")
	walkThrough(t, client{t: t, base: waitAPIListening(t, p), key: key}, rcv)

	// The tasks went to database 2 of the master the sentinel named.
	mc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(master), DB: 2})
	defer mc.Close()
	n, err := mc.Exists(context.Background(), "asynq:queues").Result()
	if err != nil || n != 1 {
		t.Errorf("master database 2 has no asynq:queues (%d, %v): the tasks went elsewhere", n, err)
	}
}
