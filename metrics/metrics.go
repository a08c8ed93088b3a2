// Package metrics holds rehook's Prometheus metrics: deliveries, executions,
// retriggers, API requests, the sweeper, the pending executions in the store
// and asynq's queues. A process builds one Metrics and passes it to the parts
// that count; a nil *Metrics counts nothing, so tests may leave it out.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes rehook's own metric names; asynq's keep theirs.
const namespace = "rehook"

// Metrics is one process's registry and the metrics rehook counts in it.
type Metrics struct {
	reg *prometheus.Registry

	deliveries       *prometheus.CounterVec
	deliveryDuration *prometheus.HistogramVec
	executionsFinal  *prometheus.HistogramVec
	retriggers       prometheus.Counter
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	sweeps           prometheus.Counter
}

// New returns Metrics in a registry of their own, which also holds the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "deliveries_total",
			Help: "Delivery attempts by result (SUCCESS, RETRIABLE_ERROR, FATAL_ERROR) and " +
				"the class of the receiver's status code (2xx..5xx, none without an answer).",
		}, []string{"result", "status_class"}),
		deliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "delivery_duration_seconds",
			Help:      "Time of one delivery attempt, response body included, by result.",
			Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		executionsFinal: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "execution_attempts",
			Help: "Attempts an execution took to become final, by its final result; " +
				"the count is the executions finished.",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20},
		}, []string{"result"}),
		retriggers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "retriggers_accepted_total",
			Help:      "Retrigger requests accepted: a new pending execution was stored.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "http_requests_total",
			Help:      "API requests by route name and status code.",
		}, []string{"route", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "http_request_duration_seconds",
			Help:      "Time to answer an API request, by route name.",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "sweeper_reenqueued_total",
			Help:      "Pending executions the sweeper queued again because their task was lost.",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.deliveries, m.deliveryDuration, m.executionsFinal, m.retriggers,
		m.requests, m.requestDuration, m.sweeps,
	)
	return m
}

// Registry is where the metrics live, for gathering in tests or registering
// more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format. A collector that
// fails (the store or Redis unreachable) leaves its metrics out of the answer
// instead of failing it; errorLog, when not nil, is told why.
func (m *Metrics) Handler(errorLog func(msg string, err error)) http.Handler {
	var logger promhttp.Logger
	if errorLog != nil {
		logger = printLogger(errorLog)
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      logger,
	})
}

// printLogger adapts a function to promhttp's Println logger.
type printLogger func(msg string, err error)

func (l printLogger) Println(v ...any) {
	var err error
	for _, x := range v {
		if e, ok := x.(error); ok {
			err = e
		}
	}
	l("metrics collection failed", err)
}

// StatusClass is the label of a status code: "2xx" to "5xx", or "none" when
// there was no answer.
func StatusClass(code int) string {
	if code < 100 || code > 599 {
		return "none"
	}
	return strconv.Itoa(code/100) + "xx"
}

// DeliveryAttempt counts one delivery attempt and its duration.
func (m *Metrics) DeliveryAttempt(result string, statusCode int, d time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(result, StatusClass(statusCode)).Inc()
	m.deliveryDuration.WithLabelValues(result).Observe(d.Seconds())
}

// ExecutionFinal counts an execution that became final with result after
// attempts attempts.
func (m *Metrics) ExecutionFinal(result string, attempts int) {
	if m == nil {
		return
	}
	m.executionsFinal.WithLabelValues(result).Observe(float64(attempts))
}

// RetriggerAccepted counts an accepted retrigger.
func (m *Metrics) RetriggerAccepted() {
	if m == nil {
		return
	}
	m.retriggers.Inc()
}

// APIRequest counts an answered API request of the named route.
func (m *Metrics) APIRequest(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.requestDuration.WithLabelValues(route).Observe(d.Seconds())
}

// SweepReenqueued counts executions the sweeper queued again.
func (m *Metrics) SweepReenqueued(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sweeps.Add(float64(n))
}

// PendingCounter counts the executions waiting for an attempt; the store is
// one.
type PendingCounter interface {
	CountPending(ctx context.Context) (int, error)
}

// WatchPending exports rehook_executions_pending, counted by c at each
// scrape within timeout. It is the same for every process on one database.
func (m *Metrics) WatchPending(c PendingCounter, timeout time.Duration) {
	m.reg.MustRegister(&pendingCollector{counter: c, timeout: timeout})
}

// WatchQueues exports asynq's queue metrics (asynq_queue_size,
// asynq_tasks_enqueued_total, asynq_queue_latency_seconds and the others of
// github.com/hibiken/asynq/x/metrics), read through inspector at each scrape.
func (m *Metrics) WatchQueues(inspector *asynq.Inspector) {
	m.reg.MustRegister(unchecked{asynqmetrics.NewQueueMetricsCollector(inspector)})
}

// unchecked registers a collector without describing its metrics, so that
// registering asynq's does not read Redis, which may not be up yet.
type unchecked struct{ prometheus.Collector }

func (unchecked) Describe(chan<- *prometheus.Desc) {}

var pendingDesc = prometheus.NewDesc(
	prometheus.BuildFQName(namespace, "", "executions_pending"),
	"Executions stored as pending: waiting for their first attempt or a retry.",
	nil, nil,
)

// pendingCollector asks the store at each scrape.
type pendingCollector struct {
	counter PendingCounter
	timeout time.Duration
}

func (p *pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc }

func (p *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	n, err := p.counter.CountPending(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
}
