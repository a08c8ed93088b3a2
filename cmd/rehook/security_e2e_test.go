package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"golang.org/x/net/http/httpproxy"
	_ "modernc.org/sqlite"

	"github.com/rehook/rehook/internal/testenv"
	"github.com/rehook/rehook/internal/webhookverify"
	"github.com/rehook/rehook/store/sealed"
)

// Encryption keys of the tests, base64 of 32 bytes each.
var (
	encKey1 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x11}, 32))
	encKey2 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x22}, 32))
)

// keyID is the id rehook gives an encryption key.
func keyID(t *testing.T, key string) string {
	t.Helper()
	k, err := sealed.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

// devEnv is the environment of a rehook dev on its own SQLite file and
// in-process Redis, with the test's API key, plus extra.
func devEnv(dataDir string, extra ...string) []string {
	return append([]string{
		"REHOOK_HTTP_ADDR=127.0.0.1:0",
		"REHOOK_DATA_DIR=" + dataDir,
		"REHOOK_DEV_API_KEY=" + testKey,
		"REHOOK_DATABASE_URL=", "REHOOK_REDIS_URL=",
		"REHOOK_ENCRYPTION_KEY=", "REHOOK_ENCRYPTION_OLD_KEYS=",
	}, extra...)
}

// bannerEnd is the last line of rehook dev's banner.
var bannerEnd = regexp.MustCompile(`admin API key`)

// startDev runs rehook dev with env and returns a client of its API, once
// the whole banner is out.
func startDev(t *testing.T, env []string) (*process, client) {
	t.Helper()
	p := start(t, env, "dev")
	base := p.stdout.wait(t, listenLine, 60*time.Second)
	p.stdout.wait(t, bannerEnd, 10*time.Second)
	return p, client{t: t, base: base, key: testKey}
}

// stop ends a process started by start with SIGINT and waits for its last
// log line, so that its output is complete.
func stop(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	p.stderr.wait(t, stoppedLog, 30*time.Second)
}

// stoppedLog is the last line of a process, in JSON or console form.
var stoppedLog = regexp.MustCompile(`"msg":"stopped"|\tstopped$`)

// connCounter counts the connections a test server accepts.
type connCounter struct{ n atomic.Int64 }

func (c *connCounter) hook(_ net.Conn, state http.ConnState) {
	if state == http.StateNew {
		c.n.Add(1)
	}
}

// runRehook runs a rehook command to its end and returns its output.
func runRehook(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(rehookBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("rehook %s did not end within 90s:\n%s", strings.Join(args, " "), out)
	}
	return string(out), err
}

// TestServeRefusesPlaintextSecrets: api and worker do not start without an
// encryption key unless told to store secrets in the clear, and a malformed
// key stops them with an error that names the setting, not the value.
func TestServeRefusesPlaintextSecrets(t *testing.T) {
	base := []string{
		"REHOOK_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "rehook.db"),
		"REHOOK_REDIS_URL=redis://" + closedLoopbackAddr(t),
		"REHOOK_HTTP_ADDR=127.0.0.1:0", "REHOOK_ADMIN_ADDR=127.0.0.1:0",
		"REHOOK_ENCRYPTION_OLD_KEYS=",
	}
	badKey := "not-a-key-" + strings.Repeat("x", 20)
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"no key", []string{"REHOOK_ENCRYPTION_KEY=", "REHOOK_ALLOW_PLAINTEXT_SECRETS="},
			"REHOOK_ENCRYPTION_KEY is not set"},
		{"plaintext refused explicitly", []string{"REHOOK_ENCRYPTION_KEY=",
			"REHOOK_ALLOW_PLAINTEXT_SECRETS=false"}, "REHOOK_ENCRYPTION_KEY is not set"},
		{"malformed key", []string{"REHOOK_ENCRYPTION_KEY=" + badKey},
			"REHOOK_ENCRYPTION_KEY: encryption key: "},
		{"malformed old key", []string{"REHOOK_ENCRYPTION_KEY=" + encKey1,
			"REHOOK_ENCRYPTION_OLD_KEYS=" + encKey2 + "," + badKey},
			"REHOOK_ENCRYPTION_OLD_KEYS: older key 2"},
	}
	for _, cmd := range []string{"api", "worker"} {
		for _, tt := range tests {
			t.Run(cmd+" "+tt.name, func(t *testing.T) {
				out, err := runRehook(t, append(append([]string{}, base...), tt.env...), cmd)
				if err == nil || !strings.Contains(out, tt.want) {
					t.Errorf("rehook %s: got %v\n%s\nwant a failure saying %q", cmd, err, out,
						tt.want)
				}
				if strings.Contains(out, badKey) {
					t.Errorf("the error quotes the key: %s", out)
				}
			})
		}
	}
}

// TestBlockedTargetThroughBinary runs rehook dev with loopback deliveries
// refused and webhooks aimed at a local receiver in several spellings of a
// loopback address: every execution ends FATAL_ERROR saying why, and the
// receiver never sees a connection. Only loopback forms are tried, so a
// broken guard reaches nothing but the receiver.
func TestBlockedTargetThroughBinary(t *testing.T) {
	var conns connCounter
	rcv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter,
		_ *http.Request) {
		fmt.Fprint(w, "should not be reached")
	}))
	rcv.Config.ConnState = conns.hook
	rcv.Start()
	t.Cleanup(rcv.Close)
	_, port, _ := net.SplitHostPort(rcv.Listener.Addr().String())

	p, c := startDev(t, devEnv(t.TempDir(), "REHOOK_ALLOW_LOOPBACK=false"))
	banner := p.stdout.String()
	if strings.Contains(banner, "loopback addresses are allowed") ||
		!strings.Contains(banner, "webhook secrets are stored unencrypted") {
		t.Errorf("dev banner with loopback refused and no key:\n%s", banner)
	}

	ref := "/har/api/v1/registry/acct/reg1/+"
	c.must("POST", "/har/api/v1/registry?space_ref=acct", `{"identifier":"reg1"}`, 201)
	targets := map[string]string{
		"literal":      "http://127.0.0.1:" + port + "/hook",
		"name":         "http://localhost:" + port + "/hook",
		"decimal":      "http://2130706433:" + port + "/hook",
		"short hex":    "http://0x7f.1:" + port + "/hook",
		"ipv4-mapped":  "http://[::ffff:127.0.0.1]:" + port + "/hook",
		"ipv6":         "http://[::1]:" + port + "/hook",
		"octal dotted": "http://0177.0.0.1:" + port + "/hook",
	}
	hooks := map[string]string{}
	for name, url := range targets {
		id := strings.NewReplacer(" ", "_", "-", "_").Replace(name)
		hooks[id] = name
		c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":%q,"name":%q,"url":%q,
			"enabled":true,"insecure":false}`, id, name, url), 201)
	}

	out := c.must("POST", ref+"/artifact-events",
		`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app"}}`, 202)
	execs := out["data"].(map[string]any)["executions"].([]any)
	if len(execs) != len(targets) {
		t.Fatalf("event made %d executions, want %d", len(execs), len(targets))
	}
	for _, e := range execs {
		e := e.(map[string]any)
		hook := ""
		for id, name := range hooks {
			if e["request"].(map[string]any)["url"] == targets[name] {
				hook = id
			}
		}
		done := c.waitFinal(fmt.Sprintf("%s/webhooks/%s/executions/%d", ref, hook,
			int64(e["id"].(float64))))
		msg, _ := done["error"].(string)
		if done["result"] != "FATAL_ERROR" || !strings.Contains(msg, "is loopback") {
			t.Errorf("%s (%s): got %v %q, want FATAL_ERROR saying the address is loopback",
				hooks[hook], targets[hooks[hook]], done["result"], msg)
		}
	}
	if n := conns.n.Load(); n != 0 {
		t.Errorf("the receiver saw %d connections, want none", n)
	}
}

// recordingProxy is an HTTP proxy that answers every request itself and
// records the request URIs it was asked for.
type recordingProxy struct {
	*httptest.Server
	mu   sync.Mutex
	uris []string
}

func newRecordingProxy(t *testing.T) *recordingProxy {
	p := &recordingProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		p.mu.Lock()
		p.uris = append(p.uris, r.Method+" "+r.RequestURI)
		p.mu.Unlock()
		fmt.Fprint(w, "via proxy")
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *recordingProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.uris...)
}

// TestDeliveryProxyThroughBinary: the proxy environment variables are not
// used for deliveries; REHOOK_DELIVERY_PROXY is.
//
// Go itself never sends a request to a loopback host through the proxy of
// HTTP_PROXY, and the test can only aim at loopback, so its first half
// cannot tell rehook's ignoring the variables from Go's exception; the
// delivery package's TestSendIgnoresEnvironmentProxy checks that the
// transport has no proxy function at all. The second half shows the
// setting is wired: the proxy gets the delivery, the receiver does not.
func TestDeliveryProxyThroughBinary(t *testing.T) {
	rcv := newReceiver(t)
	proxy := newRecordingProxy(t)
	env := []string{"HTTP_PROXY=" + proxy.URL, "HTTPS_PROXY=" + proxy.URL,
		"http_proxy=" + proxy.URL, "https_proxy=" + proxy.URL, "ALL_PROXY=" + proxy.URL,
		"NO_PROXY=", "no_proxy="}

	deliver := func(c client) map[string]any {
		ref := "/har/api/v1/registry/acct/reg1/+"
		c.must("POST", "/har/api/v1/registry?space_ref=acct", `{"identifier":"reg1"}`, 201)
		c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"hook1","name":"h",
			"url":%q,"enabled":true,"insecure":false}`, rcv.URL+"/hook"), 201)
		out := c.must("POST", ref+"/artifact-events",
			`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app"}}`, 202)
		execs := out["data"].(map[string]any)["executions"].([]any)
		id := int64(execs[0].(map[string]any)["id"].(float64))
		return c.waitFinal(fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref, id))
	}

	t.Run("environment variables ignored", func(t *testing.T) {
		_, c := startDev(t, devEnv(t.TempDir(), env...))
		done := deliver(c)
		if done["result"] != "SUCCESS" {
			t.Fatalf("delivery: %v, want SUCCESS", done)
		}
		rcv.next(t)
		if got := proxy.seen(); len(got) != 0 {
			t.Errorf("proxy of the environment got %v, want nothing", got)
		}
	})

	t.Run("REHOOK_DELIVERY_PROXY used", func(t *testing.T) {
		_, c := startDev(t, devEnv(t.TempDir(), append(env,
			"REHOOK_DELIVERY_PROXY="+proxy.URL)...))
		done := deliver(c)
		body := done["response"].(map[string]any)["body"]
		if done["result"] != "SUCCESS" || body != "via proxy" {
			t.Fatalf("delivery: %v, want SUCCESS answered by the proxy", done)
		}
		want := "POST " + rcv.URL + "/hook"
		if got := proxy.seen(); len(got) != 1 || got[0] != want {
			t.Errorf("proxy got %v, want [%s]", got, want)
		}
		select {
		case h := <-rcv.hits:
			t.Errorf("receiver got a delivery past the proxy: %v", h.header)
		default:
		}
	})

	// The exception the first half cannot see past: a non-loopback target
	// would have gone through the environment's proxy.
	cfg := httpproxy.Config{HTTPProxy: proxy.URL}
	if u, _ := cfg.ProxyFunc()(mustURL(t, "http://receiver.example/hook")); u == nil {
		t.Errorf("Go's environment proxy would not proxy a public host; the test is wrong")
	}
}

// TestSecretsEncryptedAndNothingLeaks runs rehook api and worker with an
// encryption key on the test's Redis and database, through signed
// deliveries, a failing webhook, retriggers and updates. The webhook row
// holds the secret encrypted, the deliveries are signed with it, and after
// the run neither the secret, nor the API key, nor the masked header value,
// nor the encryption key appears in the processes' output, the API's
// answers, the stored executions or anything in Redis.
func TestSecretsEncryptedAndNothingLeaks(t *testing.T) {
	t.Logf("backends: %s", testenv.Describe())
	dbURL := testenv.DatabaseURL(t)
	redisURL := testenv.Redis(t)
	env := append(splitEnv(dbURL, redisURL), "REHOOK_LOG_LEVEL=debug",
		"REHOOK_ENCRYPTION_KEY="+encKey1, "REHOOK_ENCRYPTION_OLD_KEYS=",
		"REHOOK_ALLOW_PLAINTEXT_SECRETS=false", "REHOOK_RETRY_BASE=1h")
	apiKey := prepareDatabase(t, env)

	rcv := newReceiver(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		_ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	worker := start(t, env, "worker")
	api := start(t, env, "api")

	// Every answer of the API is kept, to be searched at the end.
	var answers bytes.Buffer
	c := client{t: t, base: waitAPIListening(t, api), key: apiKey}
	call := func(method, path, body string, header http.Header, want int) map[string]any {
		t.Helper()
		status, h, out := c.doWith(method, path, body, header)
		fmt.Fprintf(&answers, "%d %v %v\n", status, h, out)
		if status != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, status, out, want)
		}
		return out
	}

	signingKey := []byte("leak-test signing key: 32 bytes!")
	secret := webhookverify.Secret(signingKey)
	const masked = "masked-header-value-7f3a"
	refused := "refused-secret"
	ref := "/har/api/v1/registry/acct/org/reg1/+"
	hookBody := func(id, url, secretField string) string {
		return fmt.Sprintf(`{"identifier":%q,"name":"n","url":%q,"enabled":true,
			"insecure":false,"extraHeaders":[{"key":"X-Token","value":%q,"masked":true}]%s}`,
			id, url, masked, secretField)
	}
	json := http.Header{"Content-Type": {"application/json"}}

	call("POST", "/har/api/v1/registry?space_ref=acct/org", `{"identifier":"reg1"}`, json, 201)
	call("POST", ref+"/webhooks", hookBody("signed", rcv.URL+"/hook",
		fmt.Sprintf(`,"secret":%q`, secret)), json, 201)
	call("POST", ref+"/webhooks", hookBody("failing", failing.URL,
		fmt.Sprintf(`,"secret":%q`, secret)), json, 201)
	call("PUT", ref+"/webhooks/signed", hookBody("signed", rcv.URL+"/hook",
		fmt.Sprintf(`,"secret":%q`, refused)), json, 400)

	out := call("POST", ref+"/artifact-events",
		`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app","version":"1"}}`, json, 202)
	var signedID int64
	for _, e := range out["data"].(map[string]any)["executions"].([]any) {
		e := e.(map[string]any)
		if strings.Contains(fmt.Sprint(e["request"]), rcv.URL) {
			signedID = int64(e["id"].(float64))
		}
	}
	first := rcv.next(t)
	verifySigned(t, secret, first)
	if first.header.Get("X-Token") != masked {
		t.Errorf("delivery X-Token %q, want the real value", first.header.Get("X-Token"))
	}

	execPath := fmt.Sprintf("%s/webhooks/signed/executions/%d", ref, signedID)
	pollUntil(t, 20*time.Second, "signed execution final", func() bool {
		return call("GET", execPath, "", nil, 200)["data"].(map[string]any)["retriggerable"] == true
	})
	call("GET", execPath+"/retrigger?wait=10s", "", http.Header{"Idempotency-Key": {"leak-1"}},
		200)
	verifySigned(t, secret, rcv.next(t))
	call("PUT", ref+"/webhooks/signed", hookBody("signed", rcv.URL+"/hook", ""), json, 200)
	call("PUT", ref+"/webhooks/signed", `{"name":"n","url":"`+rcv.URL+`/hook","enabled":true,
		"insecure":false,"extraHeaders":[{"key":"X-Token","value":"******","masked":true}]}`,
		json, 200)
	call("GET", ref+"/webhooks", "", nil, 200)
	call("GET", ref+"/webhooks/signed", "", nil, 200)
	call("GET", ref+"/webhooks/failing", "", nil, 200)
	call("GET", ref+"/webhooks/signed/executions", "", nil, 200)
	call("GET", ref+"/webhooks/failing/executions", "", nil, 200)
	call("POST", ref+"/webhooks/signed/executions/retrigger", `{"dryRun":true}`, json, 200)
	call("GET", ref, "", nil, 200)

	// The failing webhook's task waits in asynq's retry set, payload and
	// all, when Redis is searched.
	rdb := redisClient(t, redisURL)
	pollUntil(t, 20*time.Second, "a delivery task in Redis", func() bool {
		return strings.Contains(dumpRedis(t, rdb), `"execution_id"`)
	})

	// At rest: the webhook rows hold the secret sealed with the key.
	for _, row := range queryRows(t, dbURL, `SELECT identifier, secret FROM webhooks`) {
		id, ok := sealed.SealedBy(row[1])
		if !ok || id != keyID(t, encKey1) || bytes.Contains(row[1], signingKey) {
			t.Errorf("webhook %s: stored secret %q, want it encrypted with key %s", row[0],
				row[1], keyID(t, encKey1))
		}
	}

	stop(t, api)
	stop(t, worker)
	var stored bytes.Buffer
	for _, row := range queryRows(t, dbURL, `SELECT request_headers, request_url, request_body,
		response_headers, response_body, error FROM executions`) {
		stored.Write(bytes.Join(row, []byte("\n")))
	}
	for _, row := range queryRows(t, dbURL, `SELECT error, response_excerpt FROM attempts`) {
		stored.Write(bytes.Join(row, []byte("\n")))
	}
	if !strings.Contains(stored.String(), "X-Token: ******") {
		t.Errorf("stored request headers lack the masked X-Token: the search would see nothing")
	}

	places := map[string]string{
		"api output":    api.stdout.String() + api.stderr.String(),
		"worker output": worker.stdout.String() + worker.stderr.String(),
		"API answers":   answers.String(),
		"executions":    stored.String(),
		"redis":         dumpRedis(t, rdb),
	}
	forbidden := map[string]string{
		"secret":                 secret,
		"secret's base64":        strings.TrimPrefix(secret, "whsec_"),
		"signing key":            string(signingKey),
		"signing key in hex":     hex.EncodeToString(signingKey),
		"API key":                apiKey,
		"masked header value":    masked,
		"refused secret":         refused,
		"encryption key":         encKey1,
		"encryption key's bytes": string(bytes.Repeat([]byte{0x11}, 32)),
	}
	for place, text := range places {
		if len(text) == 0 {
			t.Errorf("%s: nothing to search", place)
		}
		for what, value := range forbidden {
			if strings.Contains(text, value) {
				t.Errorf("%s holds the %s", place, what)
			}
		}
	}
}

// mustURL parses a URL of the test.
func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// redisClient connects to a Redis URL of testenv.
func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dumpRedis renders every key of the client's database with its value,
// whatever its type.
func dumpRedis(t *testing.T, c *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	iter := c.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		typ, err := c.Type(ctx, key).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", key, err)
		}
		var val any
		switch typ {
		case "string":
			val, err = c.Get(ctx, key).Result()
		case "hash":
			val, err = c.HGetAll(ctx, key).Result()
		case "list":
			val, err = c.LRange(ctx, key, 0, -1).Result()
		case "set":
			val, err = c.SMembers(ctx, key).Result()
		case "zset":
			val, err = c.ZRangeWithScores(ctx, key, 0, -1).Result()
		case "stream":
			val, err = c.XRange(ctx, key, "-", "+").Result()
		}
		if err != nil && err != redis.Nil {
			t.Fatalf("read %s %s: %v", typ, key, err)
		}
		fmt.Fprintf(&b, "%s %s %v\n", typ, key, val)
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return b.String()
}

// queryRows runs a query on the database of a testenv URL with a driver of
// its own, past rehook's stores, and returns each row's columns as bytes.
// The columns must be text or binary.
func queryRows(t *testing.T, dbURL, query string) [][][]byte {
	t.Helper()
	var out [][][]byte
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		// A process that has just stopped may still hold the file's lock
		// while it checkpoints: wait for it.
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			row := make([][]byte, len(cols))
			ptrs := make([]any, len(cols))
			for i := range row {
				ptrs[i] = &row[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			out = append(out, row)
		}
		return out
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, query, pgx.QueryResultFormats{pgx.BinaryFormatCode})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		var row [][]byte
		for _, v := range rows.RawValues() {
			row = append(row, bytes.Clone(v))
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// TestRotateSecretsThroughBinary stores a secret in the clear under rehook
// dev, encrypts it with rehook rotate-secrets, rotates it to a second key,
// and delivers with the second key alone: the signature still verifies.
func TestRotateSecretsThroughBinary(t *testing.T) {
	data := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(data, "rehook.db")
	rcv := newReceiver(t)
	signingKey := []byte("rotation test signing key, 32 b!")
	secret := webhookverify.Secret(signingKey)
	ref := "/har/api/v1/registry/acct/reg1/+"

	p, c := startDev(t, devEnv(data))
	c.must("POST", "/har/api/v1/registry?space_ref=acct", `{"identifier":"reg1"}`, 201)
	c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"hook1","name":"h","url":%q,
		"enabled":true,"insecure":false,"secret":%q}`, rcv.URL+"/hook", secret), 201)
	stop(t, p)
	stored := func() []byte {
		return queryRows(t, dbURL, `SELECT secret FROM webhooks`)[0][0]
	}
	if !bytes.Equal(stored(), signingKey) {
		t.Fatalf("dev without a key stored %q, want the key in the clear", stored())
	}

	cmdEnv := []string{"REHOOK_DATABASE_URL=" + dbURL, "REHOOK_ENCRYPTION_OLD_KEYS="}
	steps := []struct {
		name    string
		env     []string
		want    string
		sealer  string
		wantErr bool
	}{
		{"without a key", []string{"REHOOK_ENCRYPTION_KEY="}, "needs REHOOK_ENCRYPTION_KEY",
			"", true},
		{"encrypt", []string{"REHOOK_ENCRYPTION_KEY=" + encKey1},
			"1 checked, 1 encrypted", encKey1, false},
		{"second key unknown", []string{"REHOOK_ENCRYPTION_KEY=" + encKey2},
			"1 not decryptable", encKey1, true},
		{"rotate", []string{"REHOOK_ENCRYPTION_KEY=" + encKey2,
			"REHOOK_ENCRYPTION_OLD_KEYS=" + encKey1}, "1 checked, 1 encrypted", encKey2, false},
		{"again", []string{"REHOOK_ENCRYPTION_KEY=" + encKey2,
			"REHOOK_ENCRYPTION_OLD_KEYS=" + encKey1}, "1 checked, 0 encrypted", encKey2, false},
	}
	for _, st := range steps {
		out, err := runRehook(t, append(append([]string{}, cmdEnv...), st.env...),
			"rotate-secrets")
		if (err != nil) != st.wantErr || !strings.Contains(out, st.want) {
			t.Fatalf("rotate-secrets %s: %v\n%s\nwant error %v and %q", st.name, err, out,
				st.wantErr, st.want)
		}
		if st.sealer == "" {
			continue
		}
		if id, _ := sealed.SealedBy(stored()); id != keyID(t, st.sealer) {
			t.Fatalf("after %s: stored secret %q, want it encrypted with key %s", st.name,
				stored(), keyID(t, st.sealer))
		}
	}

	p, c = startDev(t, devEnv(data, "REHOOK_ENCRYPTION_KEY="+encKey2))
	if !strings.Contains(p.stdout.String(), "encrypted at rest (key id "+keyID(t, encKey2)) {
		t.Errorf("dev banner with a key:\n%s", p.stdout.String())
	}
	c.must("POST", ref+"/artifact-events",
		`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app"}}`, 202)
	verifySigned(t, secret, rcv.next(t))
}

func TestRotateSecretsHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := runWith(context.Background(), []string{"rotate-secrets", "--help"}, &stdout, &stderr,
		func(string) string { return "" })
	out := stdout.String()
	if err != nil || !strings.Contains(out, "Usage: rehook rotate-secrets") ||
		!strings.Contains(out, "REHOOK_ENCRYPTION_OLD_KEYS") {
		t.Errorf("rotate-secrets --help: %v\n%s%s", err, out, stderr.String())
	}
}

// TestLimitsThroughBinary: REHOOK_RATE_LIMIT and REHOOK_RATE_BURST bound
// the requests of an API key, and REHOOK_MAX_PENDING_PER_WEBHOOK the
// pending executions retriggers may add, each with 429 and Retry-After.
func TestLimitsThroughBinary(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		_, c := startDev(t, devEnv(t.TempDir(), "REHOOK_RATE_LIMIT=0.01",
			"REHOOK_RATE_BURST=3"))
		for i := range 3 {
			if status, _ := c.do("GET", "/har/api/v1/registry/acct/reg1/+", ""); status != 404 {
				t.Fatalf("request %d of the burst: got %d, want 404", i+1, status)
			}
		}
		status, header, out := c.doWith("GET", "/har/api/v1/registry/acct/reg1/+", "", nil)
		if status != http.StatusTooManyRequests || header.Get("Retry-After") == "" ||
			out["code"] != "429" {
			t.Errorf("request past the burst: got %d %v (Retry-After %q), want 429 with "+
				"Retry-After", status, out, header.Get("Retry-After"))
		}
	})

	t.Run("pending per webhook", func(t *testing.T) {
		// The receiver answers the first delivery and holds the next ones
		// until the test ends, so that a retrigger stays pending.
		release := make(chan struct{})
		var n atomic.Int64
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
			r *http.Request) {
			if n.Add(1) > 1 {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		}))
		t.Cleanup(rcv.Close)
		_, c := startDev(t, devEnv(t.TempDir(), "REHOOK_MAX_PENDING_PER_WEBHOOK=1",
			"REHOOK_DELIVERY_TIMEOUT=60s"))
		t.Cleanup(func() { close(release) })

		ref := "/har/api/v1/registry/acct/reg1/+"
		c.must("POST", "/har/api/v1/registry?space_ref=acct", `{"identifier":"reg1"}`, 201)
		c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"hook1","name":"h",
			"url":%q,"enabled":true,"insecure":false}`, rcv.URL), 201)
		out := c.must("POST", ref+"/artifact-events",
			`{"trigger":"ARTIFACT_CREATION","artifact":{"name":"app"}}`, 202)
		execs := out["data"].(map[string]any)["executions"].([]any)
		execPath := fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref,
			int64(execs[0].(map[string]any)["id"].(float64)))
		c.waitFinal(execPath)

		c.must("GET", execPath+"/retrigger", "", 200)
		status, header, out := c.doWith("GET", execPath+"/retrigger", "", nil)
		if status != http.StatusTooManyRequests || header.Get("Retry-After") != "10" {
			t.Errorf("retrigger with one pending: got %d %v (Retry-After %q), want 429 "+
				"with Retry-After 10", status, out, header.Get("Retry-After"))
		}
	})
}
