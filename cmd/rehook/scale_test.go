package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/testenv"
)

// countingReceiver is a webhook endpoint that counts deliveries by
// X-Rehook-Execution-Id and says when it has seen want distinct ones.
type countingReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	byExec map[string]int
	want   int
	full   chan struct{}
}

func newCountingReceiver(t *testing.T, want int) *countingReceiver {
	r := &countingReceiver{byExec: map[string]int{}, want: want, full: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// A receiver that takes a moment, as real ones do, so that deliveries
		// overlap and every worker is offered some.
		time.Sleep(5 * time.Millisecond)

		id := req.Header.Get("X-Rehook-Execution-Id")
		r.mu.Lock()
		r.byExec[id]++
		if len(r.byExec) == r.want && r.byExec[id] == 1 {
			close(r.full)
		}
		r.mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

var deliveryAttemptLog = regexp.MustCompile(`"msg":"delivery attempt"`)

// attemptsLogged are the execution ids of a worker's "delivery attempt" log
// lines, with how often each appears.
func attemptsLogged(t *testing.T, p *process) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if !deliveryAttemptLog.MatchString(line) {
			continue
		}
		var entry struct {
			ExecutionID int64  `json:"execution_id"`
			Result      string `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("worker log line is not JSON: %v\n%s", err, line)
		}
		out[entry.ExecutionID]++
	}
	return out
}

// TestScaledWorkers runs three rehook worker processes and one rehook api on
// one Redis and one database, delivers 300 executions (30 webhooks, 10
// artifact events), and checks that each was delivered exactly once and
// that every worker delivered some of them.
func TestScaledWorkers(t *testing.T) {
	const webhooks, events, workers = 30, 10, 3
	const total = webhooks * events
	t.Logf("backends: %s", testenv.Describe())

	env := splitEnv(testenv.DatabaseURL(t), testenv.Redis(t))
	key := prepareDatabase(t, env)
	rcv := newCountingReceiver(t, total)

	var procs []*process
	for range workers {
		w := start(t, env, "worker")
		w.stderr.wait(t, regexp.MustCompile(`"msg":"worker started"`), 60*time.Second)
		procs = append(procs, w)
	}
	api := start(t, env, "api")
	c := client{t: t, base: waitAPIListening(t, api), key: key}

	ref := "/har/api/v1/registry/acct/org/proj/reg1/+"
	c.must("POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1","packageType":"DOCKER"}`, 201)
	for i := range webhooks {
		c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"hook%d","name":"Hook %d",
			"url":%q,"enabled":true,"insecure":false,"triggers":["ARTIFACT_CREATION"]}`,
			i, i, fmt.Sprintf("%s/hook/%d", rcv.URL, i)), 201)
	}

	began := time.Now()
	for i := range events {
		out := c.must("POST", ref+"/artifact-events", fmt.Sprintf(`{"trigger":"ARTIFACT_CREATION",
			"artifact":{"name":"app","version":"1.%d","tag":"1.%d","digest":"sha256:%064d"},
			"principal":{"userName":"alice"}}`, i, i, i), 202)
		if n := len(out["data"].(map[string]any)["executions"].([]any)); n != webhooks {
			t.Fatalf("event %d made %d executions, want %d", i, n, webhooks)
		}
	}
	select {
	case <-rcv.full:
	case <-time.After(60 * time.Second):
		rcv.mu.Lock()
		n := len(rcv.byExec)
		rcv.mu.Unlock()
		t.Fatalf("receiver saw %d of %d executions within 60s", n, total)
	}
	delivered := time.Since(began)

	// Every execution is final and SUCCESS, as the API shows it.
	for i := range webhooks {
		path := fmt.Sprintf("%s/webhooks/hook%d/executions?page=0&size=%d", ref, i, 2*events)
		pollUntil(t, 20*time.Second, "executions of hook"+fmt.Sprint(i)+" final", func() bool {
			items := c.must("GET", path, "", 200)["data"].(map[string]any)["executions"].([]any)
			if len(items) != events {
				t.Fatalf("hook%d lists %d executions, want %d", i, len(items), events)
			}
			for _, it := range items {
				if it.(map[string]any)["result"] != "SUCCESS" {
					return false
				}
			}
			return true
		})
	}

	// The receiver got each execution once.
	rcv.mu.Lock()
	hits := 0
	for id, n := range rcv.byExec {
		hits += n
		if n != 1 {
			t.Errorf("execution %s delivered %d times, want once", id, n)
		}
	}
	rcv.mu.Unlock()
	if hits != total {
		t.Errorf("receiver got %d deliveries, want %d", hits, total)
	}

	// Each worker logged its share, and no execution was attempted by two. A
	// worker logs an attempt just after recording it, so the last lines may
	// still be on their way.
	pollUntil(t, 10*time.Second, "workers log every attempt", func() bool {
		n := 0
		for _, w := range procs {
			n += len(attemptsLogged(t, w))
		}
		return n >= total
	})
	seen := map[int64]int{}
	var shares []int
	for i, w := range procs {
		got := attemptsLogged(t, w)
		shares = append(shares, len(got))
		if len(got) == 0 {
			t.Errorf("worker %d delivered nothing", i)
		}
		for id, n := range got {
			seen[id] += n
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("execution %d: %d attempts logged across the workers, want 1", id, n)
		}
	}
	if len(seen) != total {
		t.Errorf("workers logged attempts for %d executions, want %d", len(seen), total)
	}
	t.Logf("%d executions delivered in %s; shares per worker: %v", total,
		delivered.Round(time.Millisecond), shares)
}
