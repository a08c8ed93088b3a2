package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/localsrv"
	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/store/storeopen"
)

// The reliability tests break real things: a Redis and a PostgreSQL of
// their own (stopped and started again), and rehook processes (killed with
// SIGKILL, stopped with SIGTERM). Intervals are short so that they run in
// seconds.

// ownRedis starts a redis-server of the test's own, which the test may stop.
// Without redis-server it skips, except in CI, where it fails.
func ownRedis(t *testing.T) *localsrv.Redis {
	t.Helper()
	r, err := localsrv.StartRedis(t.TempDir())
	needServer(t, err)
	t.Cleanup(r.Stop)
	return r
}

// ownPostgres starts a PostgreSQL cluster of the test's own, as ownRedis.
func ownPostgres(t *testing.T) *localsrv.Postgres {
	t.Helper()
	p, err := localsrv.StartPostgres("")
	needServer(t, err)
	t.Cleanup(p.Remove)
	return p
}

func needServer(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, localsrv.ErrMissing) && os.Getenv("CI") == "" {
		t.Skipf("%v: install redis-server and postgresql to run this test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// reliabilityEnv is splitEnv with the intervals the reliability tests use:
// a dead worker's execution is taken over about 3s after its claim.
func reliabilityEnv(dbURL, redisURL string, extra ...string) []string {
	env := append(splitEnv(dbURL, redisURL),
		"REHOOK_DELIVERY_TIMEOUT=2s",
		"REHOOK_LEASE_MARGIN=1s",
		"REHOOK_SWEEP_INTERVAL=200ms",
		"REHOOK_SWEEP_GRACE=500ms",
		"REHOOK_RETRY_BASE=200ms",
	)
	return append(env, extra...)
}

// gate is a receiver that answers 200 at once, except that once armed it
// holds the next request until released or until the client goes away.
type gate struct {
	*httptest.Server
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when the armed request arrives
	heldBy  string        // the armed request's remote address
	release chan struct{}
	hits    map[string]int // by X-Rehook-Execution-Id
}

func newGate(t *testing.T) *gate {
	g := &gate{hits: map[string]int{}}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(func() {
		g.open()
		g.Close()
	})
	return g
}

func (g *gate) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	g.mu.Lock()
	g.hits[r.Header.Get("X-Rehook-Execution-Id")]++
	hold := g.armed
	held, release := g.held, g.release
	if hold {
		g.heldBy = r.RemoteAddr
	}
	g.armed = false
	g.mu.Unlock()

	if hold {
		close(held)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	fmt.Fprint(w, "received")
}

// arm makes the next request wait.
func (g *gate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
	g.held, g.release = make(chan struct{}), make(chan struct{})
}

// waitHeld waits for the armed request.
func (g *gate) waitHeld(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery reached the receiver within 20s")
	}
}

// open lets a held request go.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release != nil {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	}
}

func (g *gate) hitsOf(id int64) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits[strconv.FormatInt(id, 10)]
}

const (
	relRef  = "/har/api/v1/registry/acct/org/proj/reg1/+"
	relHook = relRef + "/webhooks/hook1"
)

func execPath(id int64) string { return fmt.Sprintf("%s/executions/%d", relHook, id) }

// newHook creates registry reg1 and webhook hook1 delivering to url.
func newHook(c client, url string) {
	c.must("POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1","packageType":"DOCKER"}`, 201)
	c.must("POST", relRef+"/webhooks", fmt.Sprintf(`{"identifier":"hook1","name":"Hook 1",
		"url":%q,"enabled":true,"insecure":false,"triggers":["ARTIFACT_CREATION"]}`, url), 201)
}

const relEvent = `{"trigger":"ARTIFACT_CREATION",
	"artifact":{"name":"app","version":"1.0","tag":"1.0","digest":"sha256:abc"},
	"principal":{"userName":"alice"}}`

// finishedExecution creates the webhook, posts an event and waits until its
// execution is final; it returns the execution's id.
func finishedExecution(t *testing.T, c client, url string) int64 {
	t.Helper()
	newHook(c, url)
	out := c.must("POST", relRef+"/artifact-events", relEvent, 202)
	first := out["data"].(map[string]any)["executions"].([]any)[0].(map[string]any)
	id := int64(first["id"].(float64))
	if got := c.waitFinal(execPath(id)); got["result"] != "SUCCESS" {
		t.Fatalf("first execution: %v", got)
	}
	return id
}

// retrigger retriggers execution id and returns the new execution's id.
func retrigger(c client, id int64) int64 {
	c.t.Helper()
	out := c.must("GET", execPath(id)+"/retrigger", "", 200)
	return int64(out["data"].(map[string]any)["id"].(float64))
}

// openTestStore opens the database the processes use, to read what the API
// does not show (attempts, leases).
func openTestStore(t *testing.T, dbURL string) store.Store {
	t.Helper()
	s, err := storeopen.Open(context.Background(), dbURL, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// describeAttempts renders attempts as "n:RESULT" or "n:interrupted(reason)".
func describeAttempts(t *testing.T, s store.Store, id int64) string {
	t.Helper()
	attempts, err := s.ListAttempts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, a := range attempts {
		if a.Interrupted {
			parts = append(parts, fmt.Sprintf("%d:interrupted(%s)", a.N, a.Error))
		} else {
			parts = append(parts, fmt.Sprintf("%d:%s", a.N, a.Result))
		}
	}
	return strings.Join(parts, " ")
}

// exited waits for a process started by start to exit and returns its exit
// error.
func exited(t *testing.T, p *process, timeout time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.cmd.Args[1], timeout)
	}
	return nil
}

var shuttingDownLog = regexp.MustCompile(`"msg":"(shutting down)"`)

// TestRetriggerWhileRedisDown: with Redis stopped, retriggers still answer
// 200, quickly; once Redis is back the sweeper queues them and they are
// delivered.
func TestRetriggerWhileRedisDown(t *testing.T) {
	r := ownRedis(t)
	env := reliabilityEnv(testenv.DatabaseURL(t), r.URL())
	key := prepareDatabase(t, env)
	rcv := newGate(t)
	start(t, env, "worker")
	c := client{t: t, base: waitAPIListening(t, start(t, env, "api")), key: key}
	orig := finishedExecution(t, c, rcv.URL)

	r.Stop()
	began := time.Now()
	var ids []int64
	for range 3 {
		ids = append(ids, retrigger(c, orig))
	}
	took := time.Since(began)
	t.Logf("3 retriggers with Redis down took %s", took)
	if took > 5*time.Second {
		t.Errorf("3 retriggers with Redis down took %s; want the enqueue bounded (1s, "+
			"then skipped for 5s)", took)
	}

	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		got := c.waitFinal(execPath(id))
		if got["result"] != "SUCCESS" || rcv.hitsOf(id) != 1 {
			t.Errorf("execution %d accepted while Redis was down: result %v, delivered %d "+
				"times; want SUCCESS, once", id, got["result"], rcv.hitsOf(id))
		}
	}
}

// rawGet calls the API and returns the status, headers and body as they are.
func rawGet(t *testing.T, c client, path string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// TestPostgresOutage: with PostgreSQL stopped, the API answers 503 with
// Retry-After and the error shape and stores nothing; a delivery that ends
// during the outage is recorded once the database is back, and the API
// recovers by itself.
func TestPostgresOutage(t *testing.T) {
	pg := ownPostgres(t)
	env := reliabilityEnv(pg.URL(), testenv.Redis(t), "REHOOK_DELIVERY_TIMEOUT=20s")
	key := prepareDatabase(t, env)
	rcv := newGate(t)
	start(t, env, "worker")
	c := client{t: t, base: waitAPIListening(t, start(t, env, "api")), key: key}
	orig := finishedExecution(t, c, rcv.URL)

	rcv.arm()
	inFlight := retrigger(c, orig)
	rcv.waitHeld(t)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{execPath(orig) + "/retrigger", execPath(orig)} {
		status, header, body := rawGet(t, c, path)
		var shape struct{ Code, Message string }
		err := json.Unmarshal([]byte(body), &shape)
		if status != 503 || header.Get("Retry-After") == "" || err != nil ||
			shape.Code != "503" || shape.Message == "" {
			t.Errorf("GET %s with the database down: %d, Retry-After %q, body %s; "+
				"want 503, a Retry-After, {code, message}", path, status,
				header.Get("Retry-After"), body)
		}
		if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "connect") {
			t.Errorf("503 body shows internal error text: %s", body)
		}
	}
	rcv.open() // the delivery ends while the database is down

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	got := c.waitFinal(execPath(inFlight))
	s := openTestStore(t, pg.URL())
	if got["result"] != "SUCCESS" {
		t.Errorf("delivery that ended during the outage: %v (attempts %s); want SUCCESS",
			got["result"], describeAttempts(t, s, inFlight))
	}

	list := c.must("GET", relHook+"/executions?size=10", "", 200)
	if n := len(list["data"].(map[string]any)["executions"].([]any)); n != 2 {
		t.Errorf("executions after the outage: got %d, want 2 (the refused retrigger "+
			"stored nothing)", n)
	}
	after := retrigger(c, orig)
	if got := c.waitFinal(execPath(after)); got["result"] != "SUCCESS" {
		t.Errorf("retrigger after the outage: %v", got["result"])
	}
}

// holderPID returns which of pids has the TCP connection from local port
// to the receiver open: the worker delivering the held request. It reads
// Linux's /proc.
func holderPID(t *testing.T, remoteAddr string, pids []int) int {
	t.Helper()
	_, portText, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	want := fmt.Sprintf(":%04X", port)

	inode := ""
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && strings.HasSuffix(f[1], want) {
				inode = f[9]
			}
		}
	}
	if inode == "" {
		t.Skipf("no socket with local port %d in /proc/net/tcp: cannot tell the worker", port)
	}

	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if link == "socket:["+inode+"]" {
				return pid
			}
		}
	}
	t.Fatalf("no worker of %v holds socket %s (port %d)", pids, inode, port)
	return 0
}

// TestWorkerKilledMidDelivery: two workers; the one delivering an execution
// is killed with SIGKILL mid-delivery; the other finishes it, and the cut-off
// attempt is recorded as interrupted, spending no attempt.
func TestWorkerKilledMidDelivery(t *testing.T) {
	dbURL, redisURL := testenv.DatabaseURL(t), testenv.Redis(t)
	env := reliabilityEnv(dbURL, redisURL)
	key := prepareDatabase(t, env)
	rcv := newGate(t)
	workers := []*process{start(t, env, "worker"), start(t, env, "worker")}
	c := client{t: t, base: waitAPIListening(t, start(t, env, "api")), key: key}
	orig := finishedExecution(t, c, rcv.URL)

	rcv.arm()
	id := retrigger(c, orig)
	rcv.waitHeld(t)
	rcv.mu.Lock()
	heldBy := rcv.heldBy
	rcv.mu.Unlock()
	pid := holderPID(t, heldBy, []int{workers[0].cmd.Process.Pid, workers[1].cmd.Process.Pid})
	var victim *process
	for _, w := range workers {
		if w.cmd.Process.Pid == pid {
			victim = w
		}
	}
	if victim == nil {
		t.Fatalf("task held by pid %d, not one of the workers", pid)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	got := c.waitFinal(execPath(id))
	t.Logf("execution finished %s after the kill", time.Since(killed).Round(time.Millisecond))
	s := openTestStore(t, dbURL)
	attempts := describeAttempts(t, s, id)
	want := "1:interrupted(" + store.InterruptedLeaseExpired + ") 1:SUCCESS"
	if got["result"] != "SUCCESS" || attempts != want || rcv.hitsOf(id) != 2 {
		t.Errorf("after the kill: result %v, attempts %q, %d requests; want SUCCESS, %q, 2",
			got["result"], attempts, rcv.hitsOf(id), want)
	}
	x, err := s.GetExecutionByID(context.Background(), id)
	if err != nil || x.Attempts != 1 {
		t.Errorf("attempts spent: got %d (err %v), want 1", x.Attempts, err)
	}
}

// TestWorkerSIGTERM: a stopped worker finishes what it delivers within the
// grace period, and hands back what it cannot, leaving nothing claimed.
func TestWorkerSIGTERM(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace string
		// openAfterSignal lets the held delivery end once the worker is
		// stopping; otherwise it is held until the worker gives up on it.
		openAfterSignal bool
		want            string
	}{
		{"finishes within the grace period", "20s", true, "1:SUCCESS"},
		{"hands back after the grace period", "500ms", false,
			"1:interrupted(" + store.InterruptedShutdown + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbURL := testenv.DatabaseURL(t)
			env := reliabilityEnv(dbURL, testenv.Redis(t), "REHOOK_SHUTDOWN_TIMEOUT="+tc.grace,
				"REHOOK_DELIVERY_TIMEOUT=30s")
			key := prepareDatabase(t, env)
			rcv := newGate(t)
			w := start(t, env, "worker")
			c := client{t: t, base: waitAPIListening(t, start(t, env, "api")), key: key}
			orig := finishedExecution(t, c, rcv.URL)

			rcv.arm()
			id := retrigger(c, orig)
			rcv.waitHeld(t)
			if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			w.stderr.wait(t, shuttingDownLog, 10*time.Second)
			if tc.openAfterSignal {
				rcv.open()
			}
			if err := exited(t, w, 30*time.Second); err != nil {
				t.Errorf("worker exit: %v, want 0", err)
			}

			s := openTestStore(t, dbURL)
			x, err := s.GetExecutionByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			attempts := describeAttempts(t, s, id)
			if !x.ClaimedUntil.IsZero() || attempts != tc.want {
				t.Fatalf("after the worker stopped: claimed until %v, attempts %q; "+
					"want unclaimed, %q", x.ClaimedUntil, attempts, tc.want)
			}

			if x.State == store.StatePending {
				start(t, env, "worker")
				if got := c.waitFinal(execPath(id)); got["result"] != "SUCCESS" {
					t.Errorf("handed-back execution on another worker: %v", got["result"])
				}
			}
		})
	}
}

// TestAPIDrainsOnSIGTERM: a request in flight when the API is told to stop
// is answered; new connections are refused; the process exits 0.
func TestAPIDrainsOnSIGTERM(t *testing.T) {
	env := reliabilityEnv(testenv.DatabaseURL(t), testenv.Redis(t))
	key := prepareDatabase(t, env)
	api := start(t, env, "api")
	base := waitAPIListening(t, api)
	c := client{t: t, base: base, key: key}
	newHook(c, "http://127.0.0.1:9/hook")

	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Expect: 100-continue makes the API say when its handler starts reading
	// the body: from then on the request is in flight.
	half := len(relEvent) / 2
	fmt.Fprintf(conn, "POST %s/artifact-events HTTP/1.1\r\nHost: %s\r\nx-api-key: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n"+
		"Expect: 100-continue\r\n\r\n%s",
		relRef, addr, key, len(relEvent), relEvent[:half])
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 100 {
		t.Fatalf("waiting for 100 Continue: %v, %v", resp, err)
	}

	if err := api.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	api.stderr.wait(t, shuttingDownLog, 10*time.Second)
	pollUntil(t, 10*time.Second, "new connections refused", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	if _, err := io.WriteString(conn, relEvent[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Errorf("in-flight request: status %d, want 202", resp.StatusCode)
	}
	if err := exited(t, api, 20*time.Second); err != nil {
		t.Errorf("api exit: %v, want 0", err)
	}
}

// TestRetentionDeletesOldExecutions: a worker's retention run deletes
// executions older than REHOOK_RETENTION.
func TestRetentionDeletesOldExecutions(t *testing.T) {
	env := reliabilityEnv(testenv.DatabaseURL(t), testenv.Redis(t),
		"REHOOK_RETENTION=2s", "REHOOK_RETENTION_INTERVAL=1s")
	key := prepareDatabase(t, env)
	rcv := newGate(t)
	start(t, env, "worker")
	c := client{t: t, base: waitAPIListening(t, start(t, env, "api")), key: key}
	id := finishedExecution(t, c, rcv.URL)

	pollUntil(t, 30*time.Second, "execution deleted by retention", func() bool {
		status, _ := c.do("GET", execPath(id), "")
		return status == 404
	})
}
