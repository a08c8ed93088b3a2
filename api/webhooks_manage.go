package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/rehook/rehook/store"
)

// Limits on signing secrets, in bytes of key.
const (
	minSecretKeyLen = 16
	maxSecretKeyLen = 256
)

// secretPrefix marks a secret in the Standard Webhooks form: base64 of the
// key after it.
const secretPrefix = "whsec_"

// signingKey turns the write-only secret field into the key deliveries are
// signed with: for "whsec_" followed by base64, the decoded bytes, as
// Standard Webhooks has it; for anything else, the value's own bytes. Errors
// never quote the value.
func signingKey(secret string) ([]byte, error) {
	key := []byte(secret)
	if rest, found := strings.CutPrefix(secret, secretPrefix); found {
		decoded, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			decoded, err = base64.RawStdEncoding.DecodeString(rest)
		}
		if err != nil {
			return nil, invalid("secret", "after "+secretPrefix+" must come base64", "")
		}
		key = decoded
	}

	if len(key) < minSecretKeyLen || len(key) > maxSecretKeyLen {
		return nil, invalid("secret", fmt.Sprintf("the key must be %d to %d bytes "+
			"(after base64 decoding, for a %s value)", minSecretKeyLen, maxSecretKeyLen,
			secretPrefix), "")
	}
	return key, nil
}

// webhookSortFields maps sort_field values onto the store's sort fields.
var webhookSortFields = map[string]store.WebhookSortField{
	"identifier": store.SortByIdentifier,
	"name":       store.SortByName,
	"createdAt":  store.SortByCreated,
	"modifiedAt": store.SortByModified,
}

// maxSearchTermLen bounds search_term, in bytes.
const maxSearchTermLen = 256

// parseWebhookQuery reads page, size, sort_field (identifier, name,
// createdAt or modifiedAt; default identifier), sort_order (ASC or DESC,
// any case; default ASC) and search_term from the query.
func parseWebhookQuery(c *gin.Context) (store.WebhookQuery, error) {
	var q store.WebhookQuery
	page, err := parsePage(c)
	if err != nil {
		return q, err
	}
	q.Page = page

	if v, set := c.GetQuery("sort_field"); set {
		field, known := webhookSortFields[v]
		if !known {
			return q, invalid("sort_field", "must be identifier, name, createdAt or modifiedAt", v)
		}
		q.SortField = field
	}
	if v, set := c.GetQuery("sort_order"); set {
		switch strings.ToUpper(v) {
		case "ASC":
		case "DESC":
			q.Descending = true
		default:
			return q, invalid("sort_order", "must be ASC or DESC", v)
		}
	}
	q.Search = c.Query("search_term")
	if len(q.Search) > maxSearchTermLen {
		return q, invalid("search_term", fmt.Sprintf("at most %d bytes", maxSearchTermLen),
			q.Search)
	}
	return q, nil
}

// webhookViews shows webhooks as the API does, each with the result of its
// newest execution that has one.
func (a *API) webhookViews(c *gin.Context, hooks []store.Webhook) ([]webhookJSON, error) {
	ids := make([]int64, len(hooks))
	for i, h := range hooks {
		ids[i] = h.ID
	}
	latest, err := a.store.LatestResults(c.Request.Context(), ids)
	if err != nil {
		return nil, err
	}

	views := make([]webhookJSON, len(hooks))
	for i, h := range hooks {
		views[i] = toWebhookJSON(h)
		views[i].LatestExecutionResult = string(latest[h.ID])
	}
	return views, nil
}

// updateWebhook is PUT /webhooks/{webhook_identifier}. The body is the one
// of create; an identifier other than the path's renames the webhook, an
// absent one keeps it. An absent secret keeps the current one, "" removes
// it. A masked extra header whose value is "******" (as the API shows it)
// keeps the value stored for that header.
func (a *API) updateWebhook(c *gin.Context, ref RegistryRef, params []string) error {
	var req webhookRequest
	if err := decodeJSON(c, a.cfg.BodyLimit, &req); err != nil {
		return err
	}
	if req.Identifier == "" {
		req.Identifier = params[0]
	}
	hook, err := req.validate()
	if err != nil {
		return err
	}
	var key []byte
	if req.Secret != nil && *req.Secret != "" {
		if key, err = signingKey(*req.Secret); err != nil {
			return err
		}
	}
	_, current, err := a.loadWebhook(c, ref, params[0])
	if err != nil {
		return err
	}

	hook.ID = current.ID
	hook.RegistryID = current.RegistryID
	hook.Version = current.Version
	hook.Secret = current.Secret
	if req.Secret != nil {
		hook.Secret = key
	}
	if hook.ExtraHeaders, err = keepMaskedValues(hook.ExtraHeaders,
		current.ExtraHeaders); err != nil {
		return err
	}

	err = a.store.UpdateWebhook(c.Request.Context(), &hook)
	switch {
	case errors.Is(err, store.ErrVersionMismatch):
		return &apiError{status: http.StatusConflict,
			message: "webhook was changed by another request; read it again and retry",
			details: &errorDetails{Field: "webhook_identifier", Reason: "changed concurrently",
				Value: params[0]}}
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, message: "webhook already exists",
			details: &errorDetails{Field: "identifier", Reason: "taken in this registry",
				Value: hook.Identifier}}
	case errors.Is(err, store.ErrNotFound):
		return webhookNotFound(params[0])
	case err != nil:
		return err
	}

	views, err := a.webhookViews(c, []store.Webhook{hook})
	if err != nil {
		return err
	}
	ok(c, http.StatusOK, views[0])
	return nil
}

// keepMaskedValues puts back the stored value of each masked header given
// as "******", the placeholder the API shows for it.
func keepMaskedValues(headers, stored []store.ExtraHeader) ([]store.ExtraHeader, error) {
	values := map[string]string{}
	for _, h := range stored {
		if h.Masked {
			values[h.Key] = h.Value
		}
	}

	for i, h := range headers {
		if !h.Masked || h.Value != maskedValue {
			continue
		}
		v, found := values[h.Key]
		if !found {
			return nil, invalid("extraHeaders.value", maskedValue+" stands for a stored "+
				"masked value, and this header has none", h.Key)
		}
		headers[i].Value = v
	}
	return headers, nil
}

// deleteWebhook is DELETE /webhooks/{webhook_identifier}. The webhook's
// executions and their attempts are deleted with it.
func (a *API) deleteWebhook(c *gin.Context, ref RegistryRef, params []string) error {
	_, hook, err := a.loadWebhook(c, ref, params[0])
	if err != nil {
		return err
	}

	err = a.store.DeleteWebhook(c.Request.Context(), hook.ID)
	if errors.Is(err, store.ErrNotFound) {
		return webhookNotFound(params[0])
	}
	if err != nil {
		return err
	}
	ok(c, http.StatusOK, nil)
	return nil
}

// webhookNotFound is the 404 of a webhook missing from the path's registry.
func webhookNotFound(identifier string) *apiError {
	return &apiError{status: http.StatusNotFound, message: "webhook not found",
		details: &errorDetails{Field: "webhook_identifier",
			Reason: "no such webhook in this registry", Value: clip(identifier, 200)}}
}

// callerKey is the API key of the request.
func callerKey(c *gin.Context) store.APIKey {
	key, _ := c.Request.Context().Value(keyCtx).(store.APIKey)
	return key
}
