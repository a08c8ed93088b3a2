package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"golang.org/x/net/http/httpguts"

	"github.com/rehook/rehook/store"
)

// webhookRequest is the HAR webhook request body.
type webhookRequest struct {
	Identifier       string            `json:"identifier"`
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	URL              string            `json:"url"`
	Enabled          *bool             `json:"enabled"`
	Insecure         *bool             `json:"insecure"`
	Triggers         []store.Trigger   `json:"triggers"`
	ExtraHeaders     []extraHeaderJSON `json:"extraHeaders"`
	SecretIdentifier string            `json:"secretIdentifier"`
	SecretSpacePath  string            `json:"secretSpacePath"`
	SecretSpaceID    *int64            `json:"secretSpaceId"`
	// Secret is the signing secret, write-only: see signingKey. On update,
	// absent keeps the current one and "" removes it.
	Secret *string `json:"secret"`
}

var webhookIdentifierPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)

// Limits on webhook fields.
const (
	maxNameLen        = 256
	maxDescriptionLen = 1024
	maxURLLen         = 2048
	maxExtraHeaders   = 50
	maxHeaderValueLen = 4096
	maxSecretIDLen    = 256
)

// reservedHeaders are set by rehook on every delivery, or by the transport;
// an extra header may not replace them.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Transfer-Encoding": true,
	"Connection": true, "User-Agent": true, "X-Harness-Signature": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true,
}

// validate checks a webhook request and returns the webhook it describes.
func (req webhookRequest) validate() (store.Webhook, error) {
	var w store.Webhook
	if !webhookIdentifierPattern.MatchString(req.Identifier) {
		return w, invalid("identifier", "must match "+webhookIdentifierPattern.String(),
			req.Identifier)
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > maxNameLen {
		return w, invalid("name", fmt.Sprintf("required, at most %d bytes", maxNameLen), req.Name)
	}
	if len(req.Description) > maxDescriptionLen {
		return w, invalid("description", fmt.Sprintf("at most %d bytes", maxDescriptionLen),
			req.Description)
	}
	if err := validateURL(req.URL); err != nil {
		return w, err
	}
	if req.Enabled == nil {
		return w, invalid("enabled", "required", "")
	}
	if req.Insecure == nil {
		return w, invalid("insecure", "required", "")
	}
	if len(req.SecretIdentifier) > maxSecretIDLen {
		return w, invalid("secretIdentifier", fmt.Sprintf("at most %d bytes", maxSecretIDLen),
			req.SecretIdentifier)
	}

	seen := map[store.Trigger]bool{}
	for _, t := range req.Triggers {
		if !t.Valid() {
			return w, invalid("triggers", "must be ARTIFACT_CREATION or ARTIFACT_DELETION",
				string(t))
		}
		if !seen[t] {
			seen[t] = true
			w.Triggers = append(w.Triggers, t)
		}
	}

	if len(req.ExtraHeaders) > maxExtraHeaders {
		return w, invalid("extraHeaders", fmt.Sprintf("at most %d headers", maxExtraHeaders), "")
	}
	for _, h := range req.ExtraHeaders {
		key := http.CanonicalHeaderKey(strings.TrimSpace(h.Key))
		switch {
		case !httpguts.ValidHeaderFieldName(key):
			return w, invalid("extraHeaders.key", "not a valid header name", h.Key)
		case reservedHeaders[key] || strings.HasPrefix(key, "X-Rehook-"):
			return w, invalid("extraHeaders.key", "set by rehook itself", h.Key)
		case !httpguts.ValidHeaderFieldValue(h.Value) || len(h.Value) > maxHeaderValueLen:
			return w, invalid("extraHeaders.value", "not a valid header value", key)
		}
		w.ExtraHeaders = append(w.ExtraHeaders,
			store.ExtraHeader{Key: key, Value: h.Value, Masked: h.Masked})
	}

	w.Identifier = req.Identifier
	w.Name = req.Name
	w.Description = req.Description
	w.URL = req.URL
	w.Enabled = *req.Enabled
	w.Insecure = *req.Insecure
	w.SecretIdentifier = req.SecretIdentifier
	return w, nil
}

// validateURL checks a webhook's URL: an absolute http or https URL with a
// host, a port from 1 to 65535 if it gives one, no credentials, and no
// control character anywhere (url.Parse lets some through in a fragment).
func validateURL(raw string) error {
	if raw == "" || len(raw) > maxURLLen {
		return invalid("url", fmt.Sprintf("required, at most %d bytes", maxURLLen), raw)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("url", "must not contain control characters", raw)
	}

	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return invalid("url", "must be an absolute http or https URL with a host", raw)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return invalid("url", "port must be from 1 to 65535", raw)
		}
	}
	if u.User != nil {
		return invalid("url", "must not carry credentials; use an extra header", u.Redacted())
	}
	return nil
}

func (a *API) createWebhook(c *gin.Context, ref RegistryRef, _ []string) error {
	var req webhookRequest
	if err := decodeJSON(c, a.cfg.BodyLimit, &req); err != nil {
		return err
	}
	hook, err := req.validate()
	if err != nil {
		return err
	}
	if req.Secret != nil && *req.Secret != "" {
		if hook.Secret, err = signingKey(*req.Secret); err != nil {
			return err
		}
	}
	reg, err := a.loadRegistry(c, ref)
	if err != nil {
		return err
	}

	hook.RegistryID = reg.ID
	hook.CreatedBy = callerName(c)
	err = a.store.CreateWebhook(c.Request.Context(), &hook)
	if errors.Is(err, store.ErrConflict) {
		return &apiError{status: http.StatusConflict, message: "webhook already exists",
			details: &errorDetails{Field: "identifier", Reason: "taken in this registry",
				Value: hook.Identifier}}
	}
	if err != nil {
		return err
	}
	ok(c, http.StatusCreated, toWebhookJSON(hook))
	return nil
}

// callerName names the API key of the request, for createdBy.
func callerName(c *gin.Context) string {
	key, _ := c.Request.Context().Value(keyCtx).(store.APIKey)
	return "apikey:" + strconv.FormatInt(key.ID, 10)
}

// loadWebhook finds a registry's webhook by identifier, or a 404 that says
// which.
func (a *API) loadWebhook(c *gin.Context, ref RegistryRef, identifier string) (
	store.Registry, store.Webhook, error) {
	reg, err := a.loadRegistry(c, ref)
	if err != nil {
		return reg, store.Webhook{}, err
	}
	hook, err := a.store.GetWebhook(c.Request.Context(), reg.ID, identifier)
	if errors.Is(err, store.ErrNotFound) {
		return reg, hook, &apiError{status: http.StatusNotFound, message: "webhook not found",
			details: &errorDetails{Field: "webhook_identifier",
				Reason: "no such webhook in this registry", Value: clip(identifier, 200)}}
	}
	return reg, hook, err
}

func (a *API) getWebhook(c *gin.Context, ref RegistryRef, params []string) error {
	_, hook, err := a.loadWebhook(c, ref, params[0])
	if err != nil {
		return err
	}
	views, err := a.webhookViews(c, []store.Webhook{hook})
	if err != nil {
		return err
	}
	ok(c, http.StatusOK, views[0])
	return nil
}

type webhooksPage struct {
	pageJSON
	Webhooks []webhookJSON `json:"webhooks"`
}

// listWebhooks is GET /webhooks?page=&size=&sort_field=&sort_order=&search_term=.
func (a *API) listWebhooks(c *gin.Context, ref RegistryRef, _ []string) error {
	q, err := parseWebhookQuery(c)
	if err != nil {
		return err
	}
	reg, err := a.loadRegistry(c, ref)
	if err != nil {
		return err
	}
	hooks, total, err := a.store.QueryWebhooks(c.Request.Context(), reg.ID, q)
	if err != nil {
		return err
	}

	views, err := a.webhookViews(c, hooks)
	if err != nil {
		return err
	}
	ok(c, http.StatusOK, webhooksPage{pageJSON: toPageJSON(q.Page, total), Webhooks: views})
	return nil
}

// Paging limits.
const (
	defaultPageSize = 20
	maxPageSize     = 100
	maxPageIndex    = 1_000_000
)

// parsePage reads page (from 0) and size from the query.
func parsePage(c *gin.Context) (store.Page, error) {
	p := store.Page{Size: defaultPageSize}
	if v, set := c.GetQuery("page"); set {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxPageIndex {
			return p, invalid("page", fmt.Sprintf("an integer from 0 to %d", maxPageIndex), v)
		}
		p.Index = n
	}
	if v, set := c.GetQuery("size"); set {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return p, invalid("size", fmt.Sprintf("an integer from 1 to %d", maxPageSize), v)
		}
		p.Size = n
	}
	return p, nil
}
