package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/rehook/rehook/delivery"
	"github.com/rehook/rehook/metrics"
	"github.com/rehook/rehook/store"
)

// HandlerConfig tunes delivery attempts.
type HandlerConfig struct {
	// MaxAttempts is how many attempts an execution gets before a
	// RETRIABLE_ERROR becomes final. Default 5.
	MaxAttempts int
	// RetryBase is the delay before the second attempt; each later attempt
	// waits twice as long as the one before, up to RetryMax. Default 5s.
	RetryBase time.Duration
	// RetryMax caps the delay between attempts. Default 1h.
	RetryMax time.Duration
	// Lease is how long a worker holds an execution it is delivering; it
	// must exceed the delivery timeout. Default: delivery timeout + 30s.
	Lease time.Duration
	// UserAgent is sent with every delivery. Default "rehook".
	UserAgent string
	// Metrics counts attempts and finished executions. Default nil: none
	// are counted.
	Metrics *metrics.Metrics
}

func (c *HandlerConfig) fill(deliveryTimeout time.Duration) {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.Lease <= 0 {
		c.Lease = deliveryTimeout + 30*time.Second
	}
	if c.UserAgent == "" {
		c.UserAgent = "rehook"
	}
}

// Handler delivers the execution a task names. It claims the execution row
// with a conditional update, so a final execution is never delivered again
// whatever the queue replays.
type Handler struct {
	store  store.Store
	client *delivery.Client
	log    *zap.Logger
	cfg    HandlerConfig
	now    func() time.Time
}

// NewHandler builds a Handler. deliveryTimeout is the client's per-attempt
// timeout, used to size the lease.
func NewHandler(s store.Store, c *delivery.Client, deliveryTimeout time.Duration,
	log *zap.Logger, cfg HandlerConfig) *Handler {
	cfg.fill(deliveryTimeout)
	return &Handler{store: s, client: c, log: log, cfg: cfg, now: time.Now}
}

// retryIn is a handler error that tells asynq when to run the task again.
type retryIn struct {
	delay time.Duration
	err   error
}

func (r *retryIn) Error() string { return r.err.Error() }
func (r *retryIn) Unwrap() error { return r.err }

// storeRetryDelay is how long a task waits when the store was unreachable or
// the execution was leased by another worker.
const storeRetryDelay = 2 * time.Second

// RetryDelay is the asynq RetryDelayFunc matching the handler's errors.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return storeBackoff(n)
	case errors.Is(err, context.Canceled):
		return handBackDelay
	}
	var r *retryIn
	if errors.As(err, &r) {
		return r.delay
	}
	return storeRetryDelay
}

// Backoff is the delay after attempt n (1-based) failed retriably.
func (c HandlerConfig) Backoff(n int) time.Duration {
	d := c.RetryBase
	for i := 1; i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}

// ProcessTask implements asynq.Handler.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p Payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ExecutionID <= 0 {
		return fmt.Errorf("malformed payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	log := h.log.With(zap.Int64("execution_id", p.ExecutionID))

	now := h.now()
	exec, err := h.store.ClaimExecution(ctx, p.ExecutionID, now, now.Add(h.cfg.Lease))
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.Info("execution gone, dropping task")
		return nil
	case errors.Is(err, store.ErrNotClaimable):
		return h.notClaimable(ctx, p.ExecutionID, log)
	case err != nil:
		return &retryIn{storeRetryDelay, fmt.Errorf("claim execution %d: %w", p.ExecutionID, err)}
	}

	hook, err := h.store.GetWebhookByID(ctx, exec.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		log.Info("webhook gone, dropping task", zap.Int64("webhook_id", exec.WebhookID))
		return nil
	}
	if err != nil {
		h.release(exec.ID, log)
		return &retryIn{storeRetryDelay, fmt.Errorf("load webhook %d: %w", exec.WebhookID, err)}
	}
	log = log.With(zap.String("webhook", hook.Identifier),
		zap.String("registry", h.registryRef(ctx, p, exec)),
		zap.Int64("registry_id", exec.RegistryID))

	return h.attempt(ctx, exec, hook, log)
}

// registryRef names the execution's registry for logs: the ref the task
// carries, else the registry looked up by id (a task queued by hand), else
// nothing, registry_id being logged beside it.
func (h *Handler) registryRef(ctx context.Context, p Payload, exec store.Execution) string {
	if p.Registry != "" {
		return p.Registry
	}
	reg, err := h.store.GetRegistryByID(ctx, exec.RegistryID)
	if err != nil {
		return ""
	}
	return RegistryRef(reg)
}

// notClaimable decides what a task does when its execution cannot be
// claimed: nothing if it is final, try later if another worker holds it.
func (h *Handler) notClaimable(ctx context.Context, id int64, log *zap.Logger) error {
	exec, err := h.store.GetExecutionByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return &retryIn{storeRetryDelay, fmt.Errorf("load execution %d: %w", id, err)}
	}
	if exec.State == store.StateFinal {
		log.Debug("execution already final, not delivering again")
		return nil
	}
	wait := max(exec.ClaimedUntil.Sub(h.now()), storeRetryDelay)
	return &retryIn{wait, fmt.Errorf("execution %d is leased by another worker", id)}
}

// attempt sends one delivery, records it, and tells asynq what comes next.
func (h *Handler) attempt(ctx context.Context, exec store.Execution, hook store.Webhook,
	log *zap.Logger) error {
	n := exec.Attempts + 1
	started := h.now()

	if err := ctx.Err(); err != nil {
		h.release(exec.ID, log)
		return fmt.Errorf("execution %d handed back before delivery: %w", exec.ID, err)
	}
	var out delivery.Outcome
	if hook.Enabled {
		out = h.client.Send(ctx, h.request(exec, hook))
	} else {
		out = delivery.Outcome{Result: delivery.FatalError, Error: "webhook is disabled"}
	}
	if err := ctx.Err(); err != nil {
		return h.interrupted(exec, log, err)
	}

	result := store.Result(out.Result)
	final := result != store.ResultRetriableError || n >= h.cfg.MaxAttempts
	next := started.Add(h.cfg.Backoff(n))
	rec := store.AttemptRecord{
		Attempt: store.Attempt{
			ExecutionID: exec.ID, N: n, Started: started, Duration: out.Duration,
			Result: result, StatusCode: out.StatusCode, Error: out.Error,
			ResponseExcerpt: excerpt(out.ResponseBody),
		},
		Final:              final,
		NextAttemptAt:      next,
		RequestURL:         hook.URL,
		RequestHeaders:     out.RequestHeaders,
		ResponseStatusCode: out.StatusCode,
		ResponseStatus:     out.Status,
		ResponseHeaders:    out.ResponseHeaders,
		ResponseBody:       out.ResponseBody,
	}

	// Record with a context of its own: the task's may be nearly spent, and a
	// delivery that happened must not go unrecorded for want of time.
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := h.record(recCtx, exec.ID, rec)

	log.Info("delivery attempt",
		zap.Int("attempt", n), zap.String("result", string(result)),
		zap.Int("status_code", out.StatusCode), zap.Duration("duration", out.Duration),
		zap.Bool("final", final), zap.String("error", out.Error))
	h.cfg.Metrics.DeliveryAttempt(string(result), out.StatusCode, out.Duration)
	if err == nil && final {
		h.cfg.Metrics.ExecutionFinal(string(result), n)
	}

	switch {
	case errors.Is(err, store.ErrNotFound):
		// The webhook was deleted, and its executions with it, while this
		// attempt ran.
		log.Info("execution deleted while this attempt ran; attempt not recorded")
		return nil
	case errors.Is(err, store.ErrNotClaimable), errors.Is(err, store.ErrConflict):
		// Another worker took the execution over after this one's lease ran
		// out, and recorded first.
		log.Warn("execution recorded by another worker while this attempt ran; " +
			"attempt not recorded")
		return nil
	case err != nil:
		h.release(exec.ID, log)
		return &retryIn{storeRetryDelay, fmt.Errorf("record attempt %d: %w", n, err)}
	case !final:
		return &retryIn{next.Sub(h.now()), fmt.Errorf("attempt %d: %s", n, out.Error)}
	case result == store.ResultSuccess:
		return nil
	}
	return fmt.Errorf("attempt %d final %s: %s: %w", n, result, out.Error, asynq.SkipRetry)
}

// release drops the lease so the execution can be claimed again without
// waiting it out. Failure is harmless: the lease expires.
func (h *Handler) release(id int64, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.store.ReleaseExecution(ctx, id); err != nil {
		log.Warn("release execution", zap.Error(err))
	}
}

// request builds the HTTP request of an execution: its stored body, the
// webhook's current URL, headers and signing secret, and the delivery id
// that its signature names (the same for all retriggers of a delivery).
func (h *Handler) request(exec store.Execution, hook store.Webhook) delivery.Request {
	header := http.Header{}
	var masked []string
	for _, x := range hook.ExtraHeaders {
		header.Set(x.Key, x.Value)
		if x.Masked {
			masked = append(masked, x.Key)
		}
	}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", h.cfg.UserAgent)
	header.Set("X-Rehook-Webhook", hook.Identifier)
	header.Set("X-Rehook-Trigger", string(exec.TriggerType))
	header.Set("X-Rehook-Execution-Id", strconv.FormatInt(exec.ID, 10))
	header.Set("X-Rehook-Delivery-Id", exec.DeliveryID)
	header.Set("X-Rehook-Retrigger", strconv.FormatBool(exec.RetriggerOf != 0))
	if exec.RetriggerOf != 0 {
		header.Set("X-Rehook-Retrigger-Of", strconv.FormatInt(exec.RetriggerOf, 10))
	}

	return delivery.Request{
		URL:       hook.URL,
		Header:    header,
		Masked:    masked,
		Body:      []byte(exec.RequestBody),
		Insecure:  hook.Insecure,
		Secret:    hook.Secret,
		MessageID: exec.DeliveryID,
	}
}

// excerptLen is how much of a response body an attempt row keeps.
const excerptLen = 512

func excerpt(body string) string {
	if len(body) <= excerptLen {
		return body
	}
	cut := excerptLen
	for cut > 0 && body[cut]&0xC0 == 0x80 {
		cut--
	}
	return body[:cut]
}

func secondsOf(n int) time.Duration { return time.Duration(n) * time.Second }
