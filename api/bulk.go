package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
)

// bulkRetriggerRequest is the body of a bulk retrigger; every field is
// optional, and an empty body selects every final execution not retriggered
// yet, up to the default limit.
type bulkRetriggerRequest struct {
	// Results keeps executions with one of these results.
	Results []store.Result `json:"results"`
	// Trigger keeps executions of this trigger.
	Trigger store.Trigger `json:"trigger"`
	// Since keeps executions created at or after it, in epoch milliseconds.
	Since *int64 `json:"since"`
	// Until keeps executions created before it, in epoch milliseconds.
	Until *int64 `json:"until"`
	// Limit is the most executions retriggered, oldest first: 1 to 1000,
	// default 100.
	Limit *int `json:"limit"`
	// DryRun counts what would be retriggered without doing it.
	DryRun bool `json:"dryRun"`
}

// selection validates the request and returns what it selects.
func (r bulkRetriggerRequest) selection() (store.RetriggerSelection, error) {
	var sel store.RetriggerSelection
	for _, result := range r.Results {
		if !validResult(result) {
			return sel, invalid("results", "each must be SUCCESS, RETRIABLE_ERROR or FATAL_ERROR",
				string(result))
		}
		sel.Results = append(sel.Results, result)
	}
	if r.Trigger != "" && !r.Trigger.Valid() {
		return sel, invalid("trigger", "must be ARTIFACT_CREATION or ARTIFACT_DELETION",
			string(r.Trigger))
	}
	sel.Trigger = r.Trigger

	if r.Since != nil {
		if *r.Since < 0 {
			return sel, invalid("since", "epoch milliseconds, not negative", ms(*r.Since))
		}
		sel.Since = time.UnixMilli(*r.Since)
	}
	if r.Until != nil {
		if *r.Until <= 0 {
			return sel, invalid("until", "epoch milliseconds, positive", ms(*r.Until))
		}
		sel.Until = time.UnixMilli(*r.Until)
	}
	if r.Since != nil && r.Until != nil && *r.Since >= *r.Until {
		return sel, invalid("until", "must be after since", ms(*r.Until))
	}

	if r.Limit != nil {
		if *r.Limit < 1 || *r.Limit > store.MaxBulkLimit {
			return sel, invalid("limit", fmt.Sprintf("an integer from 1 to %d",
				store.MaxBulkLimit), strconv.Itoa(*r.Limit))
		}
		sel.Limit = *r.Limit
	}
	sel.DryRun = r.DryRun
	return sel, nil
}

func ms(v int64) string { return strconv.FormatInt(v, 10) }

// bulkCount answers a dry run.
type bulkCount struct {
	Count int `json:"count"`
}

// bulkResult answers a bulk retrigger: the new executions' ids, in the
// order of the executions they re-send.
type bulkResult struct {
	Count      int     `json:"count"`
	Executions []int64 `json:"executions"`
}

// bulkRetrigger is POST /webhooks/{webhook_identifier}/executions/retrigger:
// one retrigger for each final execution of the webhook that matches the
// body and has not been retriggered already (see store.RetriggerSelection),
// oldest first. A dry run only counts them.
func (a *API) bulkRetrigger(c *gin.Context, ref RegistryRef, params []string) error {
	var req bulkRetriggerRequest
	if err := decodeOptionalJSON(c, a.cfg.BodyLimit, &req); err != nil {
		return err
	}
	sel, err := req.selection()
	if err != nil {
		return err
	}
	reg, hook, err := a.loadWebhook(c, ref, params[0])
	if err != nil {
		return err
	}
	if !hook.Enabled && !sel.DryRun {
		return &apiError{status: http.StatusConflict,
			message: "webhook is disabled; enable it to retrigger its executions",
			details: &errorDetails{Field: "webhook_identifier", Reason: "disabled",
				Value: hook.Identifier}}
	}

	if !sel.DryRun {
		room, err := a.pendingRoom(c, hook.ID)
		if err != nil {
			return err
		}
		sel.Limit = min(sel.EffectiveLimit(), room)
	}

	sel.RequestURL = hook.URL
	n, created, err := a.store.RetriggerMatching(c.Request.Context(), hook.ID, sel)
	if errors.Is(err, store.ErrNotFound) {
		return webhookNotFound(params[0])
	}
	if err != nil {
		return err
	}
	if sel.DryRun {
		ok(c, http.StatusOK, bulkCount{Count: n})
		return nil
	}

	a.enqueueAll(c, created, reg, hook)
	out := bulkResult{Count: len(created), Executions: make([]int64, len(created))}
	for i, e := range created {
		out.Executions[i] = e.ID
	}
	ok(c, http.StatusOK, out)
	return nil
}

// enqueueAll queues accepted executions. At the first failure it stops and
// logs once: the executions are stored, and the sweeper queues the rest.
func (a *API) enqueueAll(c *gin.Context, execs []store.Execution, reg store.Registry,
	hook store.Webhook) {
	for i, e := range execs {
		if err := a.enqueueOne(c, e, reg, hook); err != nil {
			a.log.Warn("enqueue failed; the sweeper will queue the executions left",
				zap.String("request_id", c.GetString("request_id")),
				zap.Int64("execution_id", e.ID), zap.Int("executions_left", len(execs)-i),
				zap.String("webhook", hook.Identifier), zap.Error(err))
			return
		}
	}
}

// decodeOptionalJSON is decodeJSON for a body that may be empty, which
// reads as {}.
func decodeOptionalJSON(c *gin.Context, limit int64, v any) error {
	raw, err := io.ReadAll(c.Request.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return bodyTooLarge(limit)
	}
	if err != nil {
		return invalid("body", "could not be read", "")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}

	c.Request.Body = io.NopCloser(bytes.NewReader(raw))
	return decodeJSON(c, limit, v)
}
