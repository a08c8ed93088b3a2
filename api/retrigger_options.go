package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
)

// requestContextKey holds, in the gin context, the request's context before
// dispatch bounds it with Config.RequestTimeout: a retrigger that waits for
// its delivery may outlast that bound, not the client.
const requestContextKey = "request_context"

// Waiting for a retriggered execution to become final.
const (
	// maxRetriggerWait bounds the wait query parameter.
	maxRetriggerWait = 60 * time.Second
	// firstPoll and maxPoll bound the interval between two reads of the
	// execution while waiting; it doubles from the first to the most.
	firstPoll = 20 * time.Millisecond
	maxPoll   = 250 * time.Millisecond
	// pollTimeout bounds one read of the execution.
	pollTimeout = 5 * time.Second
)

// Idempotency keys of retriggers.
const (
	idempotencyHeader = "Idempotency-Key"
	// replayedHeader is set on an answer that repeats the execution created
	// by an earlier request with the same key.
	replayedHeader      = "Idempotent-Replayed"
	maxIdempotencyKey   = 255
	idempotencyLifetime = 24 * time.Hour
)

// parseWait reads the wait query parameter: a Go duration ("10s", "1m") or
// whole seconds ("10"), from 0 (do not wait) to 60s.
func parseWait(c *gin.Context) (time.Duration, error) {
	v, set := c.GetQuery("wait")
	if !set {
		return 0, nil
	}

	bad := invalid("wait", "a duration from 0s to 60s, such as 10s, or whole seconds", v)
	d, err := time.ParseDuration(v)
	if err != nil {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > int(maxRetriggerWait/time.Second) {
			return 0, bad
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > maxRetriggerWait {
		return 0, bad
	}
	return d, nil
}

// parseIdempotencyKey reads the Idempotency-Key header: absent, or 1 to 255
// printable ASCII characters, given once.
func parseIdempotencyKey(c *gin.Context) (string, error) {
	values := c.Request.Header.Values(idempotencyHeader)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", invalid(idempotencyHeader, "given more than once", "")
	}

	key := values[0]
	reason := fmt.Sprintf("1 to %d printable ASCII characters", maxIdempotencyKey)
	if key == "" || len(key) > maxIdempotencyKey {
		return "", invalid(idempotencyHeader, reason, key)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] > '~' {
			return "", invalid(idempotencyHeader, reason, "")
		}
	}
	return key, nil
}

// findRetrigger returns the execution an earlier request created for orig
// under the idempotency key, by the same API key within the key's lifetime.
// found is false when there is none.
func (a *API) findRetrigger(c *gin.Context, orig store.Execution, idempotencyKey string) (
	exec store.Execution, found bool, err error) {
	if idempotencyKey == "" {
		return store.Execution{}, false, nil
	}

	key := a.idempotencyKey(c, orig, idempotencyKey)
	exec, err = a.store.FindRetrigger(c.Request.Context(), key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Execution{}, false, nil
	case err != nil:
		return store.Execution{}, false, err
	}
	return exec, true, nil
}

// createRetrigger stores the retrigger exec of orig, under the idempotency
// key when there is one. created is false when the key was used before for
// orig by the same API key within its lifetime; exec is then the execution
// created that time.
func (a *API) createRetrigger(c *gin.Context, orig store.Execution, idempotencyKey string,
	exec *store.Execution) (created bool, err error) {
	ctx := c.Request.Context()
	if idempotencyKey == "" {
		err := a.store.CreateExecutions(ctx, exec.RegistryID, nil, []*store.Execution{exec})
		return err == nil, err
	}
	return a.store.CreateRetrigger(ctx, a.idempotencyKey(c, orig, idempotencyKey), exec)
}

// idempotencyKey names the retrigger of orig by the request's API key under
// key, within the key's lifetime.
func (a *API) idempotencyKey(c *gin.Context, orig store.Execution,
	key string) store.IdempotencyKey {
	return store.IdempotencyKey{
		APIKeyID:    callerKey(c).ID,
		ExecutionID: orig.ID,
		Key:         key,
		NotBefore:   a.now().Add(-idempotencyLifetime),
	}
}

// awaitFinal reads exec again until it is final, wait has passed or the
// client has gone, and returns it as it then stands. The wait is bounded by
// the client's request, not by Config.RequestTimeout. A failure to read is
// logged and ends the wait: the retrigger itself has been accepted.
func (a *API) awaitFinal(c *gin.Context, exec store.Execution, wait time.Duration) store.Execution {
	stored, _ := c.Get(requestContextKey)
	parent, _ := stored.(context.Context)
	if parent == nil {
		parent = c.Request.Context()
	}
	ctx, cancel := context.WithTimeout(parent, wait)
	defer cancel()

	poll := time.NewTimer(firstPoll)
	defer poll.Stop()
	for interval := firstPoll; exec.State != store.StateFinal; {
		select {
		case <-ctx.Done():
			return exec
		case <-poll.C:
		}

		readCtx, cancelRead := context.WithTimeout(ctx, pollTimeout)
		got, err := a.store.GetExecutionByID(readCtx, exec.ID)
		cancelRead()
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("waiting for a retriggered execution; answering with it as it was",
					zap.String("request_id", c.GetString("request_id")),
					zap.Int64("execution_id", exec.ID), zap.Error(err))
			}
			return exec
		}
		exec = got

		interval = min(2*interval, maxPoll)
		poll.Reset(interval)
	}
	return exec
}

// parseExecutionFilter reads result and trigger from the query, each
// repeated or comma-separated: result=FATAL_ERROR,RETRIABLE_ERROR.
func parseExecutionFilter(c *gin.Context) (store.ExecutionFilter, error) {
	var f store.ExecutionFilter
	for _, v := range queryList(c, "result") {
		r := store.Result(v)
		if !validResult(r) {
			return f, invalid("result", "must be SUCCESS, RETRIABLE_ERROR or FATAL_ERROR", v)
		}
		f.Results = append(f.Results, r)
	}
	for _, v := range queryList(c, "trigger") {
		t := store.Trigger(v)
		if !t.Valid() {
			return f, invalid("trigger", "must be ARTIFACT_CREATION or ARTIFACT_DELETION", v)
		}
		f.Triggers = append(f.Triggers, t)
	}
	return f, nil
}

// queryList is every value of a query parameter, split at commas.
func queryList(c *gin.Context, name string) []string {
	var out []string
	for _, v := range c.QueryArray(name) {
		out = append(out, strings.Split(v, ",")...)
	}
	return out
}

// validResult reports whether r is one of the results an execution can have.
func validResult(r store.Result) bool {
	switch r {
	case store.ResultSuccess, store.ResultRetriableError, store.ResultFatalError:
		return true
	}
	return false
}
