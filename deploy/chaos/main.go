// Command chaos runs rehook through failures on one machine and checks its
// promises: nothing accepted is lost, nothing finished is sent again.
//
// It starts a Redis and a PostgreSQL of its own on free loopback ports, the
// rehook binary given as api and two workers, and a loopback receiver; it
// issues retriggers at a steady rate and meanwhile kills workers with
// SIGKILL (starting them again) and restarts Redis and PostgreSQL. Then it
// waits for every accepted execution to be final, prints what happened and
// exits 1 if an accepted execution was lost or is stuck, or a delivery went
// out for an execution already recorded as SUCCESS. Everything it starts
// listens on 127.0.0.1 and is stopped before it exits. deploy/chaos.sh
// builds and runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehook/rehook/internal/localsrv"
)

type options struct {
	bin              string
	count            int
	rate             int
	workerKills      int
	redisRestarts    int
	postgresRestarts int
	drainTimeout     time.Duration
	keep             bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the rehook binary (required)")
	flag.IntVar(&o.count, "n", 10000, "retriggers to issue")
	flag.IntVar(&o.rate, "rate", 100, "retriggers per second")
	flag.IntVar(&o.workerKills, "worker-kills", 2, "workers to kill with SIGKILL, one at a time")
	flag.IntVar(&o.redisRestarts, "redis-restarts", 1, "Redis restarts")
	flag.IntVar(&o.postgresRestarts, "postgres-restarts", 1, "PostgreSQL restarts")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Minute,
		"how long to wait, after the last retrigger, for every execution to be final")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, database)")
	flag.Parse()
	if o.bin == "" || o.count < 1 || o.rate < 1 {
		flag.Usage()
		os.Exit(2)
	}

	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// run sets everything up, runs the load and the faults, and reports.
func run(o options) (bool, error) {
	dir, err := os.MkdirTemp("", "rehook-chaos-")
	if err != nil {
		return false, err
	}
	if o.keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	redis, err := localsrv.StartRedis(dir)
	if err != nil {
		return false, err
	}
	defer redis.Stop()
	pg, err := localsrv.StartPostgres("") // a directory the postgres user can reach
	if err != nil {
		return false, err
	}
	defer pg.Remove()

	rcv, err := newReceiver()
	if err != nil {
		return false, err
	}
	defer rcv.srv.Close()

	c := &cluster{bin: o.bin, dir: dir, env: processEnv(pg.URL(), redis.URL())}
	defer c.stopAll()
	if err := c.prepare(); err != nil {
		return false, err
	}
	if err := c.startAPI(); err != nil {
		return false, err
	}
	for range 2 {
		if err := c.startWorker(); err != nil {
			return false, err
		}
	}

	api := &apiClient{base: c.apiBase, key: c.key, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
	orig, err := api.setup(rcv.url)
	if err != nil {
		return false, err
	}

	r := &report{opts: o, started: time.Now()}
	faults := planFaults(o)
	loadDone := make(chan struct{})
	go func() {
		r.load(api, orig, o)
		close(loadDone)
	}()
	duration := time.Duration(o.count) * time.Second / time.Duration(o.rate)
	for i, f := range faults {
		at := r.started.Add(duration * time.Duration(i+1) / time.Duration(len(faults)+1))
		time.Sleep(time.Until(at))
		r.event(f.do(c, redis, pg, rcv))
	}
	<-loadDone
	r.loadEnded = time.Now()

	return r.finish(pg.URL(), rcv, o.drainTimeout)
}

// processEnv is the environment of every rehook process of the run.
func processEnv(dbURL, redisURL string) []string {
	return append(os.Environ(),
		"REHOOK_DATABASE_URL="+dbURL,
		"REHOOK_REDIS_URL="+redisURL,
		"REHOOK_HTTP_ADDR=127.0.0.1:0",
		"REHOOK_ADMIN_ADDR=127.0.0.1:0",
		"REHOOK_ALLOW_LOOPBACK=true",
		"REHOOK_ALLOW_PLAINTEXT_SECRETS=true",
		"REHOOK_LOG_FORMAT=json",
		"REHOOK_LOG_LEVEL=warn",
		"REHOOK_DELIVERY_TIMEOUT=5s",
		"REHOOK_LEASE_MARGIN=15s",
		"REHOOK_SWEEP_INTERVAL=2s",
		"REHOOK_SWEEP_GRACE=5s",
		"REHOOK_RETRY_BASE=1s",
		"REHOOK_SHUTDOWN_TIMEOUT=5s",
	)
}

// cluster is the rehook processes of the run.
type cluster struct {
	bin, dir string
	env      []string
	key      string
	apiBase  string

	mu      sync.Mutex
	procs   []*exec.Cmd
	workers []*exec.Cmd
	logs    int
}

func (c *cluster) prepare() error {
	cmd := exec.Command(c.bin, "migrate")
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("rehook migrate: %w\n%s", err, out)
	}
	cmd = exec.Command(c.bin, "apikey", "create", "--scope", "acct", "--role", "admin")
	cmd.Env = c.env
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("rehook apikey create: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	c.key = lines[len(lines)-1]
	return nil
}

// start runs a rehook subcommand with its output in a log file of its own.
func (c *cluster) start(sub string) (*exec.Cmd, string, error) {
	c.mu.Lock()
	c.logs++
	logPath := filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", sub, c.logs))
	c.mu.Unlock()
	log, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(c.bin, sub)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, "", fmt.Errorf("start rehook %s: %w", sub, err)
	}
	go func() {
		_ = cmd.Wait()
		log.Close()
	}()
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
	return cmd, logPath, nil
}

func (c *cluster) startAPI() error {
	port, err := localsrv.FreePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := c.env
	c.env = append(env[:len(env):len(env)], "REHOOK_HTTP_ADDR="+addr)
	_, logPath, err := c.start("api")
	c.env = env
	if err != nil {
		return err
	}

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			c.apiBase = "http://" + addr
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("rehook api did not listen within 60s; see %s", logPath)
}

func (c *cluster) startWorker() error {
	cmd, _, err := c.start("worker")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.workers = append(c.workers, cmd)
	c.mu.Unlock()
	return nil
}

// stopAll stops every process still running, by its PID: SIGTERM, then
// SIGKILL after 15s.
func (c *cluster) stopAll() {
	c.mu.Lock()
	procs := c.procs
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.ProcessState != nil {
			continue
		}
		wg.Go(func() {
			_ = p.Process.Signal(syscall.SIGTERM)
			for range 150 {
				if p.Process.Signal(syscall.Signal(0)) != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			_ = p.Process.Kill()
		})
	}
	wg.Wait()
}

// fault is one thing the run breaks; do returns what it did.
type fault struct {
	do func(c *cluster, redis *localsrv.Redis, pg *localsrv.Postgres, rcv *receiver) string
}

// planFaults spreads the faults over the load: worker kills first and
// last, the restarts between them.
func planFaults(o options) []fault {
	var kills, restarts []fault
	for i := range o.workerKills {
		kills = append(kills, fault{func(c *cluster, _ *localsrv.Redis,
			pg *localsrv.Postgres, rcv *receiver) string {
			return killWorker(c, pg, rcv, i%2)
		}})
	}
	for range o.redisRestarts {
		restarts = append(restarts, fault{func(_ *cluster, r *localsrv.Redis,
			_ *localsrv.Postgres, _ *receiver) string {
			r.Stop()
			time.Sleep(time.Second)
			if err := r.Start(); err != nil {
				return "Redis restart FAILED: " + err.Error()
			}
			return fmt.Sprintf("restarted Redis (down 1s; it keeps nothing on disk, so every " +
				"queued task was lost)")
		}})
	}
	for range o.postgresRestarts {
		restarts = append(restarts, fault{func(_ *cluster, _ *localsrv.Redis,
			pg *localsrv.Postgres, _ *receiver) string {
			began := time.Now()
			if err := pg.Stop(); err != nil {
				return "PostgreSQL stop FAILED: " + err.Error()
			}
			time.Sleep(time.Second)
			if err := pg.Start(); err != nil {
				return "PostgreSQL start FAILED: " + err.Error()
			}
			return fmt.Sprintf("restarted PostgreSQL (fast shutdown; down %s)",
				time.Since(began).Round(100*time.Millisecond))
		}})
	}

	// kill, restarts..., kill, further kills
	var out []fault
	if len(kills) > 0 {
		out = append(out, kills[0])
		kills = kills[1:]
	}
	out = append(out, restarts...)
	return append(out, kills...)
}

// killWorker kills worker n of the two with SIGKILL, counts what it had in
// flight, and starts a new worker in its place.
func killWorker(c *cluster, pg *localsrv.Postgres, rcv *receiver, n int) string {
	c.mu.Lock()
	victim := c.workers[n]
	c.mu.Unlock()
	pid := victim.Process.Pid

	ports := socketPorts(pid)
	atReceiver := rcv.inFlightFrom(ports)
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Sprintf("SIGKILL worker pid %d FAILED: %v", pid, err)
	}
	rcv.killedInFlight.Add(int64(atReceiver))
	leased := countLeased(pg.URL())

	time.Sleep(time.Second)
	c.mu.Lock()
	c.workers = append(c.workers[:n], c.workers[n+1:]...)
	c.mu.Unlock()
	if err := c.startWorker(); err != nil {
		return "worker restart FAILED: " + err.Error()
	}
	c.mu.Lock()
	last := len(c.workers) - 1
	c.workers[n], c.workers[last] = c.workers[last], c.workers[n]
	c.mu.Unlock()
	return fmt.Sprintf("SIGKILL worker pid %d: %d of its requests in flight at the receiver, "+
		"%d executions leased just after (all workers); new worker started", pid, atReceiver,
		leased)
}

// socketPorts returns the local TCP ports of the sockets process pid holds,
// from Linux's /proc; none elsewhere.
func socketPorts(pid int) map[int]bool {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}

	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, _ := os.ReadFile(table)
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			if i := strings.LastIndexByte(f[1], ':'); i >= 0 {
				if p, err := strconv.ParseInt(f[1][i+1:], 16, 32); err == nil {
					ports[int(p)] = true
				}
			}
		}
	}
	return ports
}

func countLeased(dbURL string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM executions
		WHERE state = 'pending' AND claimed_until > now()`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// receiver is the webhook endpoint: it answers 200 after 20-120ms (so that
// some deliveries are in flight whenever a worker dies) with a body
// naming the arrival, "rcv-SEQ", which rehook records as the response.
type receiver struct {
	srv *http.Server
	url string

	seq            atomic.Int64
	killedInFlight atomic.Int64

	mu       sync.Mutex
	arrivals map[int64][]int64 // execution id -> arrival seqs
	inFlight map[string]int    // remote address -> requests in flight
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{arrivals: map[int64][]int64{}, inFlight: map[string]int{},
		url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	id, _ := strconv.ParseInt(req.Header.Get("X-Rehook-Execution-Id"), 10, 64)
	seq := r.seq.Add(1)
	r.mu.Lock()
	r.arrivals[id] = append(r.arrivals[id], seq)
	r.inFlight[req.RemoteAddr]++
	r.mu.Unlock()

	time.Sleep(time.Duration(20+rand.IntN(100)) * time.Millisecond)

	r.mu.Lock()
	r.inFlight[req.RemoteAddr]--
	r.mu.Unlock()
	fmt.Fprintf(w, "rcv-%d", seq)
}

// inFlightFrom counts requests in flight from the given local ports of a
// worker.
func (r *receiver) inFlightFrom(ports map[int]bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for addr, k := range r.inFlight {
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if ports[port] {
			n += k
		}
	}
	return n
}

// apiClient calls rehook's API.
type apiClient struct {
	base, key string
	http      *http.Client
}

const (
	ref  = "/har/api/v1/registry/acct/chaos/+"
	hook = ref + "/webhooks/hook"
)

func (a *apiClient) call(method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("x-api-key", a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// setup creates the registry, the webhook and a first execution, waits until
// it is final, and returns its id: the execution the load retriggers.
func (a *apiClient) setup(url string) (int64, error) {
	steps := []struct {
		path, body string
		want       int
	}{
		{"/har/api/v1/registry?space_ref=acct", `{"identifier":"chaos","packageType":"DOCKER"}`,
			201},
		{ref + "/webhooks", fmt.Sprintf(`{"identifier":"hook","name":"chaos","url":%q,
			"enabled":true,"insecure":false,"triggers":["ARTIFACT_CREATION"]}`, url), 201},
		{ref + "/artifact-events", `{"trigger":"ARTIFACT_CREATION",
			"artifact":{"name":"app","version":"1","tag":"1","digest":"sha256:c"}}`, 202},
	}
	var last []byte
	for _, s := range steps {
		status, raw, err := a.call("POST", s.path, s.body)
		if err != nil || status != s.want {
			return 0, fmt.Errorf("POST %s: %d %s %v", s.path, status, raw, err)
		}
		last = raw
	}

	var ev struct {
		Data struct{ Executions []struct{ ID int64 } }
	}
	if err := json.Unmarshal(last, &ev); err != nil || len(ev.Data.Executions) != 1 {
		return 0, fmt.Errorf("event answer %s: %v", last, err)
	}
	id := ev.Data.Executions[0].ID
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, raw, _ := a.call("GET", fmt.Sprintf("%s/executions/%d", hook, id), "")
		var e struct{ Data struct{ Retriggerable bool } }
		if json.Unmarshal(raw, &e) == nil && e.Data.Retriggerable {
			return id, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, errors.New("first execution not final within 60s")
}

// report gathers what happened.
type report struct {
	opts      options
	started   time.Time
	loadEnded time.Time

	mu       sync.Mutex
	events   []string
	accepted []int64
	refused  int
	failed   int
	firstErr string
}

func (r *report) event(what string) {
	line := fmt.Sprintf("  +%6.1fs  %s", time.Since(r.started).Seconds(), what)
	fmt.Println(line)
	r.mu.Lock()
	r.events = append(r.events, line)
	r.mu.Unlock()
}

// load issues o.count retriggers of orig at o.rate per second.
func (r *report) load(a *apiClient, orig int64, o options) {
	path := fmt.Sprintf("%s/executions/%d/retrigger", hook, orig)
	interval := time.Second / time.Duration(o.rate)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range o.count {
		time.Sleep(time.Until(r.started.Add(time.Duration(i) * interval)))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			status, raw, err := a.call("GET", path, "")
			r.mu.Lock()
			defer r.mu.Unlock()
			switch {
			case err == nil && status == 200:
				var e struct{ Data struct{ ID int64 } }
				if json.Unmarshal(raw, &e) == nil && e.Data.ID > 0 {
					r.accepted = append(r.accepted, e.Data.ID)
					return
				}
				r.failed++
			case err == nil && status == 503:
				r.refused++
			default:
				r.failed++
				if r.firstErr == "" {
					r.firstErr = fmt.Sprintf("%d %s %v", status, raw, err)
				}
			}
		})
	}
	wg.Wait()
}

type execRow struct {
	state, result, body string
}

// finish waits for every execution to be final, then counts and prints.
func (r *report) finish(dbURL string, rcv *receiver, timeout time.Duration) (bool, error) {
	ctx := context.Background()
	var conn *pgx.Conn
	deadline := time.Now().Add(timeout)
	pending := -1
	for {
		if conn == nil {
			conn, _ = pgx.Connect(ctx, dbURL)
		}
		if conn != nil {
			err := conn.QueryRow(ctx,
				`SELECT count(*) FROM executions WHERE state = 'pending'`).Scan(&pending)
			if err != nil {
				conn.Close(ctx)
				conn = nil
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if conn == nil {
		return false, errors.New("database unreachable at the end of the run")
	}
	defer conn.Close(ctx)
	drained := time.Since(r.loadEnded)

	rows, err := conn.Query(ctx, `SELECT id, state, result, response_body FROM executions`)
	if err != nil {
		return false, err
	}
	execs := map[int64]execRow{}
	for rows.Next() {
		var id int64
		var x execRow
		if err := rows.Scan(&id, &x.state, &x.result, &x.body); err != nil {
			return false, err
		}
		execs[id] = x
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	var interrupted int
	_ = conn.QueryRow(ctx, `SELECT count(*) FROM attempt_interruptions`).Scan(&interrupted)

	var delivered, lost, notSuccess, neverReceived int
	rcv.mu.Lock()
	for _, id := range r.accepted {
		x, ok := execs[id]
		switch {
		case !ok || x.state != "final":
			lost++
		case x.result != "SUCCESS":
			notSuccess++
		case len(rcv.arrivals[id]) == 0:
			neverReceived++
		default:
			delivered++
		}
	}
	rcv.mu.Unlock()
	stuck := 0
	for _, x := range execs {
		if x.state == "pending" {
			stuck++
		}
	}

	// An arrival after the one whose answer was recorded as the SUCCESS was
	// sent after the execution was final.
	duplicates, dupExecs, afterSuccess := 0, 0, 0
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, seqs := range rcv.arrivals {
		if len(seqs) > 1 {
			duplicates += len(seqs) - 1
			dupExecs++
		}
		x := execs[id]
		recorded, err := strconv.ParseInt(strings.TrimPrefix(x.body, "rcv-"), 10, 64)
		if x.result != "SUCCESS" || err != nil {
			continue
		}
		for _, s := range seqs {
			if s > recorded {
				afterSuccess++
			}
		}
	}

	ok := lost == 0 && stuck == 0 && afterSuccess == 0 && neverReceived == 0 && notSuccess == 0
	o := r.opts
	fmt.Printf("\nresults (%d retriggers at %d/s, %d worker kills, %d Redis restarts, "+
		"%d PostgreSQL restarts)\n", o.count, o.rate, o.workerKills, o.redisRestarts,
		o.postgresRestarts)
	line := func(name string, v any) { fmt.Printf("  %-46s %v\n", name, v) }
	line("issued", o.count)
	line("accepted (200)", len(r.accepted))
	line("refused (503 while PostgreSQL was down)", r.refused)
	line("failed (other answers, transport errors)", r.failed)
	line("delivered (final SUCCESS, seen by the receiver)", delivered)
	line("final but not SUCCESS", notSuccess)
	line("SUCCESS but never seen by the receiver", neverReceived)
	line("lost (accepted, never final)", lost)
	line("stuck pending", stuck)
	line("duplicates at the receiver", fmt.Sprintf("%d (%d executions)", duplicates, dupExecs))
	line("in flight at the receiver at the kills", rcv.killedInFlight.Load())
	line("interrupted attempts recorded", interrupted)
	line("already-SUCCESS executions sent again", afterSuccess)
	line("load took", r.loadEnded.Sub(r.started).Round(100*time.Millisecond))
	line("all final after the load ended", drained.Round(100*time.Millisecond))
	if r.firstErr != "" {
		line("first failure", r.firstErr)
	}
	if ok {
		fmt.Println("PASS")
	} else {
		fmt.Println("FAIL: see lost, stuck, not SUCCESS, never received or sent again")
	}
	return ok, nil
}
