package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/worker"
)

// executionIDPattern is the one way to write an execution id: decimal
// digits with no sign and no leading zero, so that one execution has one
// path.
var executionIDPattern = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)

// parseExecutionID reads webhook_execution_id, as unescaped from the path:
// a positive 64-bit integer written as executionIDPattern says.
func parseExecutionID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if !executionIDPattern.MatchString(s) || err != nil {
		return 0, invalid("webhook_execution_id",
			"must be a positive 64-bit integer in decimal, without sign or leading zeros", s)
	}
	return id, nil
}

// loadExecution finds an execution of the webhook in the path. Executions are
// looked up within their webhook, never by id alone, so an id of another
// tenant's execution is a 404 like any missing one.
func (a *API) loadExecution(c *gin.Context, ref RegistryRef, params []string) (
	store.Registry, store.Webhook, store.Execution, error) {
	id, err := parseExecutionID(params[1])
	if err != nil {
		return store.Registry{}, store.Webhook{}, store.Execution{}, err
	}

	// The usual case in one round trip; when something is missing, the
	// lookups below, one by one, tell which for the 404.
	reg, hook, exec, err := a.store.GetExecutionInRegistry(c.Request.Context(), ref.Scope,
		ref.Identifier, params[0], id)
	if !errors.Is(err, store.ErrNotFound) {
		return reg, hook, exec, err
	}

	reg, hook, err = a.loadWebhook(c, ref, params[0])
	if err != nil {
		return reg, hook, store.Execution{}, err
	}
	exec, err = a.store.GetExecution(c.Request.Context(), hook.ID, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && exec.RegistryID != reg.ID) {
		return reg, hook, exec, &apiError{status: http.StatusNotFound,
			message: "execution not found",
			details: &errorDetails{Field: "webhook_execution_id",
				Reason: "no such execution of this webhook", Value: params[1]}}
	}
	return reg, hook, exec, err
}

func (a *API) getExecution(c *gin.Context, ref RegistryRef, params []string) error {
	_, _, exec, err := a.loadExecution(c, ref, params)
	if err != nil {
		return err
	}
	ok(c, http.StatusOK, toExecutionJSON(exec))
	return nil
}

type executionsPage struct {
	pageJSON
	Executions []executionJSON `json:"executions"`
}

// listExecutions is GET /executions?page=&size=&result=&trigger=, newest
// first.
func (a *API) listExecutions(c *gin.Context, ref RegistryRef, params []string) error {
	page, err := parsePage(c)
	if err != nil {
		return err
	}
	filter, err := parseExecutionFilter(c)
	if err != nil {
		return err
	}
	_, hook, err := a.loadWebhook(c, ref, params[0])
	if err != nil {
		return err
	}
	execs, total, err := a.store.FilterExecutions(c.Request.Context(), hook.ID, filter, page)
	if err != nil {
		return err
	}

	out := executionsPage{pageJSON: toPageJSON(page, total), Executions: []executionJSON{}}
	for _, e := range execs {
		out.Executions = append(out.Executions, toExecutionJSON(e))
	}
	ok(c, http.StatusOK, out)
	return nil
}

// retrigger creates a pending execution that re-sends a finished one, and
// queues it. The answer does not wait for the delivery unless the query asks
// it to (wait); an Idempotency-Key header makes a repeated request answer
// with the execution the first one created.
func (a *API) retrigger(c *gin.Context, ref RegistryRef, params []string) error {
	wait, err := parseWait(c)
	if err != nil {
		return err
	}
	idempotencyKey, err := parseIdempotencyKey(c)
	if err != nil {
		return err
	}
	reg, hook, orig, err := a.loadExecution(c, ref, params)
	if err != nil {
		return err
	}

	// A repeated key is answered with what the first request created,
	// whatever would refuse a new retrigger now.
	exec, replayed, err := a.findRetrigger(c, orig, idempotencyKey)
	if err != nil {
		return err
	}
	if !replayed {
		if err := a.checkRetriggerable(c, hook, orig, params[1]); err != nil {
			return err
		}
		exec = store.Execution{
			WebhookID:   hook.ID,
			RegistryID:  reg.ID,
			TriggerType: orig.TriggerType,
			RetriggerOf: orig.ID,
			DeliveryID:  orig.DeliveryID,
			RequestURL:  hook.URL,
			RequestBody: orig.RequestBody,
		}
		created, err := a.createRetrigger(c, orig, idempotencyKey, &exec)
		if err != nil {
			return err
		}
		if created {
			a.enqueue(c, exec, reg, hook)
		}
		replayed = !created
	}
	if replayed {
		c.Header(replayedHeader, "true")
	}

	if wait > 0 {
		exec = a.awaitFinal(c, exec, wait)
	}
	ok(c, http.StatusOK, toExecutionJSON(exec))
	return nil
}

// checkRetriggerable refuses a new retrigger of orig: 409 while orig is
// pending or the webhook is disabled, 429 while the webhook has as many
// pending executions as it may.
func (a *API) checkRetriggerable(c *gin.Context, hook store.Webhook, orig store.Execution,
	id string) error {
	if orig.State != store.StateFinal {
		return &apiError{status: http.StatusConflict,
			message: "execution is still pending; retrigger it once it is finished",
			details: &errorDetails{Field: "webhook_execution_id", Reason: "not retriggerable",
				Value: id}}
	}
	if !hook.Enabled {
		return &apiError{status: http.StatusConflict,
			message: "webhook is disabled; enable it to retrigger its executions",
			details: &errorDetails{Field: "webhook_identifier", Reason: "disabled",
				Value: hook.Identifier}}
	}
	_, err := a.pendingRoom(c, hook.ID)
	return err
}

// enqueue queues an accepted execution. A failure is logged, not returned:
// the execution is stored, and the sweeper queues what this could not.
func (a *API) enqueue(c *gin.Context, exec store.Execution, reg store.Registry,
	hook store.Webhook) {
	if err := a.enqueueOne(c, exec, reg, hook); err != nil {
		ref := RegistryRef{Scope: reg.Scope, Identifier: reg.Identifier}
		a.log.Warn("enqueue failed; the sweeper will queue the execution",
			zap.String("request_id", c.GetString("request_id")),
			zap.Int64("execution_id", exec.ID), zap.String("webhook", hook.Identifier),
			zap.String("registry", ref.String()), zap.Error(err))
	}
}

// enqueueTimeout bounds one enqueue, so that a Redis that does not answer
// slows an accepted request by this much at most.
const enqueueTimeout = time.Second

// enqueueOne queues an accepted execution and returns what went wrong. The
// enqueue outlives a client that hangs up: the execution is stored already.
func (a *API) enqueueOne(c *gin.Context, exec store.Execution, reg store.Registry,
	hook store.Webhook) error {
	ref := RegistryRef{Scope: reg.Scope, Identifier: reg.Identifier}
	p := worker.Payload{Webhook: hook.Identifier, Registry: ref.String()}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()),
		enqueueTimeout)
	defer cancel()
	return a.queue.Enqueue(ctx, exec, p)
}
