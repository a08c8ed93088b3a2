package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rehook/rehook/internal/metricstest"
	"github.com/rehook/rehook/metrics"
)

// observed is a setup whose API logs to an observer and counts metrics.
func observed(t *testing.T) (*setup, *observer.ObservedLogs, *metrics.Metrics) {
	t.Helper()
	st := newSetup(t)
	core, logs := observer.New(zapcore.DebugLevel)
	m := metrics.New()
	st.srv.Close()
	st.srv = httptest.NewServer(New(st.store, st.queue, zap.New(core), Config{Metrics: m}))
	t.Cleanup(st.srv.Close)
	return st, logs, m
}

// TestRequestLogsAndMetrics sends requests of several routes and outcomes,
// and checks that each is logged once with its route, status, latency and
// request id, that no key or masked value is logged, and the metrics.
func TestRequestLogsAndMetrics(t *testing.T) {
	st, logs, m := observed(t)
	_, exec := st.finished()
	const maskedValue = "masked-header-value-77f3"
	st.must("edit", "POST", ref+"/webhooks", `{"identifier":"masked","name":"m",
		"url":"http://127.0.0.1:1/x","enabled":true,"insecure":false,
		"extraHeaders":[{"key":"X-Token","value":"`+maskedValue+`","masked":true}]}`, 201)
	logs.TakeAll()

	execPath := fmt.Sprintf("%s/webhooks/hook1/executions/%d", ref, exec.ID)
	tests := []struct {
		name      string
		key       string
		method    string
		path      string
		requestID string
		wantCode  int
		wantRoute string
	}{
		{"retrigger", "edit", "GET", execPath + "/retrigger", "trace-0001", 200, "retrigger"},
		{"retrigger of a pending execution", "edit", "GET",
			fmt.Sprintf("%s/webhooks/hook1/executions/%d/retrigger", ref, exec.ID+1), "",
			409, "retrigger"},
		{"retrigger with a bad id", "edit", "GET",
			ref + "/webhooks/hook1/executions/x/retrigger", "bad id!", 400, "retrigger"},
		{"get execution", "view", "GET", execPath, "", 200, "get_execution"},
		{"no key", "", "GET", execPath, "", 401, "get_execution"},
		{"malformed ref", "view", "GET", "/har/api/v1/registry/acct/reg1/webhooks", "", 400,
			routeUnmatched},
		{"no such route", "view", "GET", "/nowhere", "", 404, routeUnmatched},
	}
	idPattern := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, st.srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.key != "" {
				req.Header.Set("x-api-key", st.keys[tc.key])
			}
			if tc.requestID != "" {
				req.Header.Set("X-Request-ID", tc.requestID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("got %d, want %d", resp.StatusCode, tc.wantCode)
			}

			lines := logs.TakeAll()
			if len(lines) != 1 || lines[0].Message != "request" {
				t.Fatalf("got %d log lines %v, want one request line", len(lines), lines)
			}
			f := lines[0].ContextMap()
			if f["route"] != tc.wantRoute || f["status"] != int64(tc.wantCode) {
				t.Errorf("route %v status %v, want %s %d", f["route"], f["status"],
					tc.wantRoute, tc.wantCode)
			}
			if d, ok := f["latency"].(time.Duration); !ok || d <= 0 {
				t.Errorf("latency = %v, want a positive duration", f["latency"])
			}
			echoed := resp.Header.Get("X-Request-ID")
			if f["request_id"] != echoed {
				t.Errorf("logged request_id %v, answered X-Request-ID %q", f["request_id"], echoed)
			}
			switch {
			case tc.requestID == "trace-0001" && echoed != tc.requestID:
				t.Errorf("X-Request-ID %q not honoured: answered %q", tc.requestID, echoed)
			case tc.requestID != "trace-0001" && !idPattern.MatchString(echoed):
				t.Errorf("X-Request-ID %q: answered %q, want a generated id", tc.requestID, echoed)
			}
			line, _ := json.Marshal(f)
			for name, key := range st.keys {
				if strings.Contains(string(line), key) {
					t.Errorf("log line shows the %s API key: %s", name, line)
				}
			}
			if strings.Contains(string(line), maskedValue) {
				t.Errorf("log line shows a masked header value: %s", line)
			}
		})
	}

	reg := m.Registry()
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rehook_http_requests_total", []string{"route", "retrigger", "code", "200"}, 1},
		{"rehook_http_requests_total", []string{"route", "retrigger", "code", "409"}, 1},
		{"rehook_http_requests_total", []string{"route", "retrigger", "code", "400"}, 1},
		{"rehook_http_requests_total", []string{"route", "get_execution", "code", "200"}, 1},
		{"rehook_http_requests_total", []string{"route", routeUnmatched, "code", "404"}, 1},
		{"rehook_retriggers_accepted_total", nil, 1},
	} {
		if got := metricstest.Get(t, reg, tc.name, tc.labels...).Value; got != tc.want {
			t.Errorf("%s%v: got %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	got := metricstest.Get(t, reg, "rehook_http_request_duration_seconds", "route", "retrigger")
	if got.Count != 3 {
		t.Errorf("rehook_http_request_duration_seconds{route=retrigger} count %d, want 3",
			got.Count)
	}
}
