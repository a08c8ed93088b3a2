package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/testenv"
)

// binary is the rehook binary the end-to-end tests run, built once.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func rehookBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rehook-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rehook")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a running rehook subcommand.
type process struct {
	cmd    *exec.Cmd
	stdout *lineWaiter
	stderr *lineWaiter

	stopOnce sync.Once
}

// lineWaiter collects a process's output lines and lets a test wait for one.
type lineWaiter struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func (w *lineWaiter) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		w.mu.Lock()
		w.lines = append(w.lines, sc.Text())
		close(w.added)
		w.added = make(chan struct{})
		w.mu.Unlock()
	}
}

func newLineWaiter() *lineWaiter { return &lineWaiter{added: make(chan struct{})} }

// String is all lines so far.
func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// wait returns the first submatch of the first line matching re.
func (w *lineWaiter) wait(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for i := 0; ; {
		w.mu.Lock()
		for ; i < len(w.lines); i++ {
			if m := re.FindStringSubmatch(w.lines[i]); m != nil {
				w.mu.Unlock()
				return m[len(m)-1]
			}
		}
		added := w.added
		w.mu.Unlock()
		select {
		case <-added:
		case <-deadline:
			t.Fatalf("no output line matching %s within %s; got:\n%s", re, timeout, w)
		}
	}
}

func start(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(rehookBinary(t), args...)
	// A free admin port unless env names one: the defaults would collide
	// between processes and with a rehook running on this host. Secrets in
	// the clear unless env sets an encryption key or says otherwise.
	cmd.Env = append(append(os.Environ(), "REHOOK_ADMIN_ADDR=127.0.0.1:0",
		"REHOOK_ALLOW_PLAINTEXT_SECRETS=true"), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stdout: newLineWaiter(), stderr: newLineWaiter()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.stdout.consume(out)
	go p.stderr.consume(errOut)
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop interrupts the process and waits for it to exit, killing it after
// 20s; it is safe to call more than once.
func (p *process) stop(t *testing.T) {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.cmd.Args[1], p.stderr.String())
		}
	})
}

// receiver is a webhook endpoint that records what it is sent.
type receiver struct {
	*httptest.Server
	hits chan hit
}

type hit struct {
	header http.Header
	body   string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{hits: make(chan hit, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.hits <- hit{header: req.Header.Clone(), body: string(b)}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "received")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) next(t *testing.T) hit {
	t.Helper()
	select {
	case h := <-r.hits:
		return h
	case <-time.After(15 * time.Second):
		t.Fatal("receiver got no delivery within 15s")
	}
	return hit{}
}

// client calls the rehook API.
type client struct {
	t    *testing.T
	base string
	key  string
}

func (c client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("x-api-key", c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func (c client) must(method, path, body string, want int) map[string]any {
	c.t.Helper()
	got, out := c.do(method, path, body)
	if got != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %v", method, path, got, want, out)
	}
	return out
}

// waitFinal polls an execution until it is retriggerable (final).
func (c client) waitFinal(path string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := c.must("GET", path, "", 200)
		data := out["data"].(map[string]any)
		if data["retriggerable"] == true {
			return data
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("execution %s not final within 20s: %v", path, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var listenLine = regexp.MustCompile(`listening on (http://[^ ]+)/har/api/v1`)

const testKey = "rhk_e2e_0123456789abcdef0123456789abcdef"

// walkThrough is the README's walk-through: registry, webhook, event,
// delivery, retrigger, second delivery.
func walkThrough(t *testing.T, c client, rcv *receiver) {
	ref := "/har/api/v1/registry/acct/org/proj/reg1/+"
	c.must("POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1","packageType":"DOCKER","description":"walk-through"}`, 201)
	c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"hook1","name":"Hook 1",
		"url":%q,"enabled":true,"insecure":false,"triggers":["ARTIFACT_CREATION"],
		"extraHeaders":[{"key":"X-Token","value":"s3cr3t-value","masked":true}]}`,
		rcv.URL+"/hook"), 201)

	out := c.must("POST", ref+"/artifact-events", `{"trigger":"ARTIFACT_CREATION",
		"artifact":{"name":"app","version":"1.0","tag":"1.0","digest":"sha256:abc"},
		"principal":{"userName":"alice"}}`, 202)
	execs := out["data"].(map[string]any)["executions"].([]any)
	if len(execs) != 1 {
		t.Fatalf("event made %d executions, want 1: %v", len(execs), out)
	}
	first := execs[0].(map[string]any)
	if _, has := first["result"]; has || first["retriggerable"] != false {
		t.Fatalf("new execution should be pending without result: %v", first)
	}
	id := int64(first["id"].(float64))

	h1 := rcv.next(t)
	if h1.header.Get("X-Token") != "s3cr3t-value" {
		t.Errorf("receiver got X-Token %q, want the real value", h1.header.Get("X-Token"))
	}
	execPath := fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref, id)
	done := c.waitFinal(execPath)
	if done["result"] != "SUCCESS" || done["duration"].(float64) <= 0 {
		t.Fatalf("execution after delivery: %v", done)
	}
	resp := done["response"].(map[string]any)
	if resp["statusCode"].(float64) != 200 || resp["body"] != "received" {
		t.Errorf("recorded response: %v", resp)
	}
	reqHeaders := done["request"].(map[string]any)["headers"].(string)
	if strings.Contains(reqHeaders, "s3cr3t-value") || !strings.Contains(reqHeaders, "X-Token: ******") {
		t.Errorf("recorded request headers must mask X-Token: %q", reqHeaders)
	}

	out = c.must("GET", execPath+"/retrigger", "", 200)
	re := out["data"].(map[string]any)
	if int64(re["retriggerOf"].(float64)) != id || re["retriggerable"] != false {
		t.Fatalf("retrigger answer: %v", re)
	}
	h2 := rcv.next(t)
	if h2.body != h1.body {
		t.Errorf("retrigger sent another body:\n%s\nwant\n%s", h2.body, h1.body)
	}
	if h2.header.Get("X-Rehook-Retrigger") != "true" {
		t.Errorf("retrigger delivery header X-Rehook-Retrigger = %q", h2.header.Get("X-Rehook-Retrigger"))
	}
	reID := int64(re["id"].(float64))
	again := c.waitFinal(fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref, reID))
	if again["result"] != "SUCCESS" {
		t.Fatalf("retriggered execution: %v", again)
	}

	list := c.must("GET", ref+"/webhooks/hook1/executions?page=0&size=10", "", 200)
	items := list["data"].(map[string]any)["executions"].([]any)
	if len(items) != 2 || int64(items[0].(map[string]any)["id"].(float64)) != reID {
		t.Errorf("list should show both executions, newest first: %v", list)
	}
}

func TestDevWalkThrough(t *testing.T) {
	rcv := newReceiver(t)
	p := start(t, devEnv(t.TempDir()), "dev")
	base := p.stdout.wait(t, listenLine, 60*time.Second)
	walkThrough(t, client{t: t, base: base, key: testKey}, rcv)
}

// TestSeparateProcesses runs rehook api and rehook worker as two processes on
// one Redis and one database: the real servers in CI, else miniredis and a
// SQLite file shared by both.
func TestSeparateProcesses(t *testing.T) {
	t.Logf("backends: %s", testenv.Describe())
	dbURL := testenv.DatabaseURL(t)
	redisURL := testenv.Redis(t)
	env := []string{
		"REHOOK_DATABASE_URL=" + dbURL,
		"REHOOK_REDIS_URL=" + redisURL,
		"REHOOK_HTTP_ADDR=127.0.0.1:0",
		"REHOOK_ALLOW_LOOPBACK=true",
		"REHOOK_LOG_FORMAT=json",
	}

	key := prepareDatabase(t, env)

	rcv := newReceiver(t)
	start(t, env, "worker")
	p := start(t, env, "api")
	base := waitAPIListening(t, p)
	walkThrough(t, client{t: t, base: base, key: key}, rcv)
}

var apiListenLog = regexp.MustCompile(`"msg":"api listening".*"addr":"([^"]+)"`)

// waitAPIListening reads the API's address from its JSON start log.
func waitAPIListening(t *testing.T, p *process) string {
	t.Helper()
	return "http://" + p.stderr.wait(t, apiListenLog, 60*time.Second)
}

// TestMain removes the binary the end-to-end tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestDevKeepsItsKey: rehook dev makes one admin key per data directory and
// prints the same key on every start.
func TestDevKeepsItsKey(t *testing.T) {
	dir := t.TempDir()
	keyLine := regexp.MustCompile(`admin API key \(all accounts\): (\S+)`)
	env := []string{"REHOOK_HTTP_ADDR=127.0.0.1:0", "REHOOK_DATA_DIR=" + dir,
		"REHOOK_DEV_API_KEY=", "REHOOK_DATABASE_URL=", "REHOOK_REDIS_URL="}

	var keys []string
	for i := 0; i < 2; i++ {
		p := start(t, env, "dev")
		keys = append(keys, p.stdout.wait(t, keyLine, 60*time.Second))
		p.stop(t)
	}
	if keys[0] != keys[1] {
		t.Fatalf("second start printed key %q, want the first start's %q", keys[1], keys[0])
	}

	list := exec.Command(rehookBinary(t), "apikey", "list")
	list.Env = append(os.Environ(), env...)
	out, err := list.Output()
	if err != nil {
		t.Fatalf("rehook apikey list: %v", err)
	}
	if n := strings.Count(string(out), "admin"); n != 1 {
		t.Errorf("apikey list shows %d admin keys, want 1:\n%s", n, out)
	}
}
