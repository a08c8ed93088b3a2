package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/testenv"
)

// TestEveryCommandHasHelp runs each subcommand's --help: it succeeds and
// lists the command's flags and every variable it reads with the default
// that applies to it.
func TestEveryCommandHasHelp(t *testing.T) {
	tests := []struct {
		args      []string
		wantFlags []string
	}{
		{[]string{"dev"}, nil},
		{[]string{"api"}, nil},
		{[]string{"worker"}, nil},
		{[]string{"migrate"}, nil},
		{[]string{"apikey"}, []string{"--scope", "--role"}},
		{[]string{"apikey", "create"}, []string{"--scope", "--role"}},
		{[]string{"apikey", "list"}, nil},
		{[]string{"apikey", "revoke"}, nil},
		// healthcheck reads no environment and prints flag's own help.
		{[]string{"healthcheck"}, []string{"-timeout", "(default 3s)"}},
		{[]string{"version"}, nil},
	}
	for _, tt := range tests {
		for _, flag := range []string{"--help", "-h"} {
			name := strings.Join(tt.args, " ") + " " + flag
			t.Run(name, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				args := append(append([]string{}, tt.args...), flag)
				err := runWith(context.Background(), args, &stdout, &stderr, func(string) string {
					return ""
				})
				if err != nil {
					t.Fatalf("rehook %s: %v\n%s", name, err, stderr.String())
				}
				out := stdout.String() + stderr.String()
				cmd := tt.args[0]
				if !strings.Contains(out, "Usage: rehook "+cmd) {
					t.Errorf("no usage line for %s:\n%s", cmd, out)
				}
				wantFlags := tt.wantFlags
				if cmd != "healthcheck" {
					wantFlags = append(wantFlags, "--help")
				}
				for _, f := range wantFlags {
					if !strings.Contains(out, f) {
						t.Errorf("help does not list flag %s:\n%s", f, out)
					}
				}
				for _, s := range settingsOf(cmd) {
					def := defaultFor(s.def, cmd)
					if def == "" {
						def = "(none)"
					}
					row := regexp.MustCompile(`(?m)^  ` + s.env + ` +` + regexp.QuoteMeta(def) + ` `)
					if !row.MatchString(out) {
						t.Errorf("help does not list %s with default %q:\n%s", s.env, def, out)
					}
				}
			})
		}
	}

	var stdout bytes.Buffer
	if err := runWith(context.Background(), []string{"help"}, &stdout, io.Discard,
		func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"dev", "api", "worker", "migrate", "apikey", "healthcheck",
		"version"} {
		if !strings.Contains(stdout.String(), "rehook "+cmd) {
			t.Errorf("rehook help does not name %s:\n%s", cmd, stdout.String())
		}
	}

	stdout.Reset()
	if err := runWith(context.Background(), []string{"version"}, &stdout, io.Discard,
		func(string) string { return "" }); err != nil || stdout.String() != "rehook "+version+"\n" {
		t.Errorf("rehook version: %q, %v; want %q", stdout.String(), err, "rehook "+version+"\n")
	}
}

func TestDefaultAdminAddresses(t *testing.T) {
	for cmd, want := range map[string]string{
		"dev": "127.0.0.1:8081", "api": "127.0.0.1:8081", "worker": "127.0.0.1:8082",
	} {
		cfg, err := loadConfig(func(string) string { return "" }, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AdminAddr != want {
			t.Errorf("%s: REHOOK_ADMIN_ADDR defaults to %s, want %s", cmd, cfg.AdminAddr, want)
		}
	}
}

var (
	devAdminLine = regexp.MustCompile(`admin:\s+http://(\S+)`)
	adminListen  = regexp.MustCompile(`"msg":"admin listening".*"addr":"([^"]+)"`)
)

// waitAdmin reads the admin listener's address from a process's JSON log.
func waitAdmin(t *testing.T, p *process) string {
	t.Helper()
	return "http://" + p.stderr.wait(t, adminListen, 60*time.Second)
}

// httpGet fetches url and returns its status and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scraped returns the value of the series of name that has all labels
// (`key="value"` strings) in a Prometheus text exposition, or -1.
func scraped(body, name string, labels ...string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		series, value, ok := strings.Cut(line, "} ")
		if !ok {
			series, value, _ = strings.Cut(line, " ")
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if match {
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestMetricsAndHealthAfterRun runs rehook api and rehook worker, sends
// events to a webhook that answers 200 and to one that answers 404, and a
// retrigger, then scrapes both admin listeners and checks the numbers.
func TestMetricsAndHealthAfterRun(t *testing.T) {
	t.Logf("backends: %s", testenv.Describe())
	env := []string{
		"REHOOK_DATABASE_URL=" + testenv.DatabaseURL(t),
		"REHOOK_REDIS_URL=" + testenv.Redis(t),
		"REHOOK_HTTP_ADDR=127.0.0.1:0",
		"REHOOK_ALLOW_LOOPBACK=true",
		"REHOOK_LOG_FORMAT=json",
		"REHOOK_SWEEP_INTERVAL=1h",
	}
	key := prepareDatabase(t, env)

	ok := newReceiver(t)
	gone := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(gone.Close)
	wp := start(t, env, "worker")
	ap := start(t, env, "api")
	c := client{t: t, base: waitAPIListening(t, ap), key: key}
	apiAdmin, workerAdmin := waitAdmin(t, ap), waitAdmin(t, wp)

	ref := "/har/api/v1/registry/acct/org/proj/reg1/+"
	c.must("POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1","packageType":"DOCKER"}`, 201)
	for _, h := range []struct{ id, url string }{{"ok", ok.URL}, {"gone", gone.URL}} {
		c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":%q,"name":"h","url":%q,
			"enabled":true,"insecure":false,"triggers":["ARTIFACT_CREATION"]}`, h.id, h.url), 201)
	}
	const events = 3
	for i := range events {
		out := c.must("POST", ref+"/artifact-events", fmt.Sprintf(`{"trigger":"ARTIFACT_CREATION",
			"artifact":{"name":"app","version":"1.%d","tag":"1.%d","digest":"sha256:%d"}}`,
			i, i, i), 202)
		if n := len(out["data"].(map[string]any)["executions"].([]any)); n != 2 {
			t.Fatalf("event %d made %d executions, want 2", i, n)
		}
	}
	okIDs := waitAllFinal(c, ref+"/webhooks/ok", events)
	waitAllFinal(c, ref+"/webhooks/gone", events)
	re := c.must("GET", fmt.Sprintf("%s/webhooks/ok/executions/%d/retrigger", ref, okIDs[0]),
		"", 200)
	c.waitFinal(fmt.Sprintf("%s/webhooks/ok/executions/%v", ref,
		re["data"].(map[string]any)["id"]))

	_, apiMetrics := httpGet(t, apiAdmin+"/metrics")
	_, workerMetrics := httpGet(t, workerAdmin+"/metrics")
	for _, tc := range []struct {
		what   string
		body   string
		name   string
		labels []string
		want   float64
	}{
		{"api", apiMetrics, "rehook_http_requests_total",
			[]string{`route="artifact_event"`, `code="202"`}, events},
		{"api", apiMetrics, "rehook_http_requests_total",
			[]string{`route="retrigger"`, `code="200"`}, 1},
		{"api", apiMetrics, "rehook_http_request_duration_seconds_count",
			[]string{`route="retrigger"`}, 1},
		{"api", apiMetrics, "rehook_retriggers_accepted_total", nil, 1},
		{"api", apiMetrics, "rehook_executions_pending", nil, 0},
		{"worker", workerMetrics, "rehook_deliveries_total",
			[]string{`result="SUCCESS"`, `status_class="2xx"`}, events + 1},
		{"worker", workerMetrics, "rehook_deliveries_total",
			[]string{`result="FATAL_ERROR"`, `status_class="4xx"`}, events},
		{"worker", workerMetrics, "rehook_delivery_duration_seconds_count",
			[]string{`result="SUCCESS"`}, events + 1},
		{"worker", workerMetrics, "rehook_execution_attempts_count",
			[]string{`result="FATAL_ERROR"`}, events},
		{"worker", workerMetrics, "rehook_execution_attempts_sum",
			[]string{`result="SUCCESS"`}, events + 1},
		{"worker", workerMetrics, "rehook_sweeper_reenqueued_total", nil, 0},
		{"worker", workerMetrics, "rehook_executions_pending", nil, 0},
		{"worker", workerMetrics, "asynq_tasks_processed_total",
			[]string{`queue="retrigger"`}, 1},
		{"worker", workerMetrics, "asynq_tasks_enqueued_total",
			[]string{`queue="events"`, `state="pending"`}, 0},
		{"worker", workerMetrics, "asynq_tasks_enqueued_total",
			[]string{`queue="events"`, `state="archived"`}, events},
	} {
		if got := scraped(tc.body, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s /metrics %s%v: got %v, want %v", tc.what, tc.name, tc.labels, got,
				tc.want)
		}
	}
	if t.Failed() {
		t.Logf("worker metrics:\n%s", workerMetrics)
	}

	for _, base := range []string{apiAdmin, workerAdmin} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := httpGet(t, base+path); code != http.StatusOK {
				t.Errorf("%s%s: got %d %s, want 200", base, path, code, body)
			}
		}
	}
}

// waitAllFinal waits until the webhook at hookPath has n executions, all
// final, and returns their ids.
func waitAllFinal(c client, hookPath string, n int) []int64 {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := c.must("GET", hookPath+"/executions?page=0&size=100", "", 200)
		items := out["data"].(map[string]any)["executions"].([]any)
		var ids []int64
		for _, it := range items {
			x := it.(map[string]any)
			if x["retriggerable"] == true {
				ids = append(ids, int64(x["id"].(float64)))
			}
		}
		if len(items) == n && len(ids) == n {
			return ids
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %d of %d executions final within 30s: %v", hookPath, len(ids), n,
				items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedLoopbackAddr is a loopback address where nothing listens.
func closedLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestReadinessWithoutRedis starts rehook api on a Redis that is not there:
// it runs, /healthz says so, and /readyz answers 503 naming Redis.
func TestReadinessWithoutRedis(t *testing.T) {
	p := start(t, []string{
		"REHOOK_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "rehook.db"),
		"REHOOK_REDIS_URL=redis://" + closedLoopbackAddr(t),
		"REHOOK_HTTP_ADDR=127.0.0.1:0",
		"REHOOK_LOG_FORMAT=json",
	}, "api")
	admin := waitAdmin(t, p)

	if code, body := httpGet(t, admin+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: got %d %s, want 200", code, body)
	}
	code, body := httpGet(t, admin+"/readyz")
	var got struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.Unmarshal([]byte(body), &got)
	if code != http.StatusServiceUnavailable || got.Checks["redis"] != "unreachable" ||
		got.Checks["store"] != "ok" {
		t.Errorf("/readyz: got %d %s, want 503 with redis unreachable, store ok", code, body)
	}
}

// TestAdminAddrInUse: a process whose admin address is taken stops at once
// with an error naming the setting, rather than running without it.
func TestAdminAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	cmd := exec.Command(rehookBinary(t), "api")
	cmd.Env = append(os.Environ(),
		"REHOOK_DATABASE_URL=sqlite:"+filepath.Join(t.TempDir(), "rehook.db"),
		"REHOOK_REDIS_URL=redis://"+closedLoopbackAddr(t),
		"REHOOK_HTTP_ADDR=127.0.0.1:0",
		"REHOOK_ADMIN_ADDR="+ln.Addr().String(),
		"REHOOK_ALLOW_PLAINTEXT_SECRETS=true")
	done := make(chan struct{})
	var out []byte
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("rehook api kept running with its admin address taken")
	}
	if err == nil || !strings.Contains(string(out), "REHOOK_ADMIN_ADDR") ||
		!strings.Contains(string(out), "address already in use") {
		t.Errorf("rehook api with a taken admin address: %v\n%s\nwant a failure naming "+
			"REHOOK_ADMIN_ADDR", err, out)
	}
}

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// chromium runs headless chromium on a loopback page with everything that
// would reach another host switched off, and returns its standard output.
func chromium(t *testing.T, url string, extra ...string) string {
	t.Helper()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
		"--disable-dev-shm-usage", "--no-proxy-server",
		// Every host but 127.0.0.1 fails to resolve, so nothing the page or
		// the browser asks for can leave the machine.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=15000",
		"--window-size=1400,900",
	}
	args = append(append(args, extra...), url)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	return stdout.String()
}

// TestDashboardInBrowser loads the dashboard of rehook dev (embedded Redis)
// in headless chromium after deliveries ran through both queues, finds the
// queues on the page, and saves a screenshot in the test's directory.
func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; .ci/run installs Debian's chromium", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium); skipping the browser test",
			chromiumPath)
	}
	rcv := newReceiver(t)
	p := start(t, devEnv(t.TempDir()), "dev")
	base := p.stdout.wait(t, listenLine, 60*time.Second)
	admin := "http://" + p.stdout.wait(t, devAdminLine, time.Second)
	walkThrough(t, client{t: t, base: base, key: testKey}, rcv)

	dashboard := admin + "/monitoring/"
	dom := chromium(t, dashboard, "--dump-dom")
	for _, want := range []string{"Queues", ">events<", ">retrigger<"} {
		if !strings.Contains(dom, want) {
			t.Errorf("dashboard page lacks %q; page:\n%.3000s", want, dom)
		}
	}

	redisPage := chromium(t, admin+"/monitoring/redis", "--dump-dom")
	if !strings.Contains(redisPage, "miniredis (in-process, rehook dev)") {
		t.Errorf("dashboard's Redis page does not describe the embedded Redis:\n%.3000s",
			redisPage)
	}

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	chromium(t, dashboard, "--screenshot="+shot, "--hide-scrollbars")
	fi, err := os.Stat(shot)
	if err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v, %d bytes; want a picture of the page", shot, err, sizeOf(fi))
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", shot, fi.Size())
	if dir := os.Getenv("REHOOK_TEST_SCREENSHOT_DIR"); dir != "" {
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), b, 0o644)
		}
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}
