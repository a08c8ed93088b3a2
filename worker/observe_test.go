package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rehook/rehook/delivery"
	"github.com/rehook/rehook/internal/metricstest"
	"github.com/rehook/rehook/metrics"
	"github.com/rehook/rehook/store"
)

// Values no log line may show: a masked extra header's and the signing
// secret.
const (
	maskedValue = "masked-token-value-5b1e"
	secretValue = "signing-secret-value-9c2d"
)

// TestDeliveryLogsAndMetrics runs two attempts of one execution (503, then
// 200) and checks the one log line of each and the metrics they count. The
// first task carries the registry ref, the second leaves it to a lookup.
func TestDeliveryLogsAndMetrics(t *testing.T) {
	srv, _ := scripted(t, 503, 200)
	e := newEnv(t, HandlerConfig{}, false)
	w := store.Webhook{RegistryID: e.reg.ID, Identifier: "observed", Name: "observed",
		URL: srv.URL, Enabled: true, Secret: []byte(secretValue),
		ExtraHeaders: []store.ExtraHeader{{Key: "X-Token", Value: maskedValue, Masked: true}}}
	if err := e.store.CreateWebhook(context.Background(), &w); err != nil {
		t.Fatal(err)
	}
	x := e.execution(w, `{"event":"observed"}`, false)

	core, logs := observer.New(zapcore.DebugLevel)
	m := metrics.New()
	client := delivery.NewClient(delivery.Config{Timeout: 2 * time.Second, AllowLoopback: true})
	h := NewHandler(e.store, client, 2*time.Second, zap.New(core),
		HandlerConfig{MaxAttempts: 3, RetryBase: time.Millisecond, Metrics: m})

	tasks := []Payload{
		{ExecutionID: x.ID, Webhook: w.Identifier, Registry: "acct/reg/+"},
		{ExecutionID: x.ID},
	}
	for i, p := range tasks {
		err := h.ProcessTask(context.Background(), asynq.NewTask(TypeDeliver, mustJSON(t, p)))
		if wantErr := i == 0; (err != nil) != wantErr {
			t.Fatalf("run %d: error %v, want an error: %v", i+1, err, wantErr)
		}
	}

	lines := logs.FilterMessage("delivery attempt").All()
	if len(lines) != 2 {
		t.Fatalf("%d delivery attempt lines, want one per attempt (2):\n%v", len(lines),
			logs.All())
	}
	for i, want := range []map[string]any{
		{"execution_id": x.ID, "webhook": "observed", "registry": "acct/reg/+",
			"attempt": int64(1), "result": "RETRIABLE_ERROR", "status_code": int64(503)},
		{"execution_id": x.ID, "webhook": "observed", "registry": "acct/reg/+",
			"attempt": int64(2), "result": "SUCCESS", "status_code": int64(200)},
	} {
		got := lines[i].ContextMap()
		for k, v := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("attempt %d: %s = %v, want %v", i+1, k, got[k], v)
			}
		}
		if d, ok := got["duration"].(time.Duration); !ok || d <= 0 {
			t.Errorf("attempt %d: duration = %v, want a positive duration", i+1, got["duration"])
		}
	}
	for _, entry := range logs.All() {
		line, _ := json.Marshal(entry.ContextMap())
		for _, secret := range []string{maskedValue, secretValue} {
			if strings.Contains(entry.Message+string(line), secret) {
				t.Errorf("log line %q %s shows a secret", entry.Message, line)
			}
		}
	}

	reg := m.Registry()
	for _, tc := range []struct {
		name   string
		labels []string
		got    func(metricstest.Sample) float64
		want   float64
	}{
		{"rehook_deliveries_total", []string{"result", "RETRIABLE_ERROR", "status_class", "5xx"},
			value, 1},
		{"rehook_deliveries_total", []string{"result", "SUCCESS", "status_class", "2xx"},
			value, 1},
		{"rehook_delivery_duration_seconds", []string{"result", "SUCCESS"}, count, 1},
		{"rehook_delivery_duration_seconds", []string{"result", "RETRIABLE_ERROR"}, count, 1},
		{"rehook_execution_attempts", []string{"result", "SUCCESS"}, count, 1},
		{"rehook_execution_attempts", []string{"result", "SUCCESS"}, sum, 2},
	} {
		if got := tc.got(metricstest.Get(t, reg, tc.name, tc.labels...)); got != tc.want {
			t.Errorf("%s%v: got %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func value(s metricstest.Sample) float64 { return s.Value }
func count(s metricstest.Sample) float64 { return float64(s.Count) }
func sum(s metricstest.Sample) float64   { return s.Sum }

// TestSweptTaskIsReadable: the sweeper counts what it queues again, and the
// task names its webhook, registry and attempt as the API's do.
func TestSweptTaskIsReadable(t *testing.T) {
	e := newEnv(t, HandlerConfig{}, false)
	x := e.execution(e.webhook("swept", "http://127.0.0.1:9/swept"), "{}", false)
	m := metrics.New()

	sw := &Sweeper{Store: e.store, Enqueuer: e.queue, Log: zap.NewNop(), Grace: time.Nanosecond,
		Metrics: m}
	if n, err := sw.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep enqueued %d (err %v), want 1", n, err)
	}

	got := metricstest.Get(t, m.Registry(), "rehook_sweeper_reenqueued_total").Value
	if got != 1 {
		t.Errorf("rehook_sweeper_reenqueued_total = %v, want 1", got)
	}
	info, err := e.queue.inspector.GetTaskInfo(QueueEvents, TaskID(x.ID))
	if err != nil {
		t.Fatal(err)
	}
	var p Payload
	if err := json.Unmarshal(info.Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := Payload{ExecutionID: x.ID, WebhookID: x.WebhookID, Webhook: "swept",
		Registry: "acct/reg/+", Trigger: "ARTIFACT_CREATION", Attempt: 1}
	if p != want {
		t.Errorf("swept task payload:\ngot  %+v\nwant %+v", p, want)
	}
}
