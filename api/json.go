package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/rehook/rehook/store"
)

func bodyTooLarge(limit int64) *apiError {
	return newError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("request body exceeds %d bytes", limit))
}

// decodeJSON reads one JSON object into v, refusing unknown fields, trailing
// data and bodies over the limit with errors that name what went wrong.
func decodeJSON(c *gin.Context, limit int64, v any) error {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if field, bad := findBadText(v); field != "" {
			return badText(field, bad)
		}
		return nil
	}

	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &tooLarge):
		return bodyTooLarge(limit)
	case errors.Is(err, io.EOF):
		return invalid("body", "empty body; a JSON object is required", "")
	case errors.As(err, &typeErr):
		return invalid(typeErr.Field, "must be a JSON "+typeErr.Type.String(), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalid("body", "malformed JSON at byte "+strconv.FormatInt(syntaxErr.Offset, 10), "")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(name, "unknown field", "")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "truncated JSON", "")
	}
	return invalid("body", "malformed JSON", "")
}

// registryJSON is a registry as the API shows it.
type registryJSON struct {
	Identifier  string `json:"identifier"`
	PackageType string `json:"packageType"`
	Description string `json:"description"`
	SpaceRef    string `json:"spaceRef"`
	RegistryRef string `json:"registryRef"`
	CreatedAt   string `json:"createdAt"`
}

func toRegistryJSON(r store.Registry) registryJSON {
	ref := RegistryRef{Scope: r.Scope, Identifier: r.Identifier}
	return registryJSON{
		Identifier:  r.Identifier,
		PackageType: r.PackageType,
		Description: r.Description,
		SpaceRef:    r.Scope.String(),
		RegistryRef: ref.String(),
		CreatedAt:   strconv.FormatInt(r.Created.UnixMilli(), 10),
	}
}

// webhookJSON is a webhook as the API shows it (HAR's shape).
type webhookJSON struct {
	Identifier            string            `json:"identifier"`
	Name                  string            `json:"name"`
	Description           string            `json:"description,omitempty"`
	URL                   string            `json:"url"`
	Enabled               bool              `json:"enabled"`
	Insecure              bool              `json:"insecure"`
	Triggers              []store.Trigger   `json:"triggers"`
	ExtraHeaders          []extraHeaderJSON `json:"extraHeaders"`
	SecretIdentifier      string            `json:"secretIdentifier,omitempty"`
	SecretSet             bool              `json:"secretSet"`
	Version               int64             `json:"version"`
	CreatedBy             string            `json:"createdBy,omitempty"`
	CreatedAt             string            `json:"createdAt"`
	ModifiedAt            string            `json:"modifiedAt"`
	Internal              bool              `json:"internal"`
	LatestExecutionResult string            `json:"latestExecutionResult,omitempty"`
}

type extraHeaderJSON struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Masked bool   `json:"masked,omitempty"`
}

// maskedValue stands in for the value of a masked extra header wherever it
// is shown or recorded.
const maskedValue = "******"

func toWebhookJSON(w store.Webhook) webhookJSON {
	headers := make([]extraHeaderJSON, 0, len(w.ExtraHeaders))
	for _, h := range w.ExtraHeaders {
		v := h.Value
		if h.Masked {
			v = maskedValue
		}
		headers = append(headers, extraHeaderJSON{Key: h.Key, Value: v, Masked: h.Masked})
	}
	triggers := w.Triggers
	if triggers == nil {
		triggers = []store.Trigger{}
	}
	return webhookJSON{
		Identifier:       w.Identifier,
		Name:             w.Name,
		Description:      w.Description,
		URL:              w.URL,
		Enabled:          w.Enabled,
		Insecure:         w.Insecure,
		Triggers:         triggers,
		ExtraHeaders:     headers,
		SecretIdentifier: w.SecretIdentifier,
		SecretSet:        len(w.Secret) > 0,
		Version:          w.Version,
		CreatedBy:        w.CreatedBy,
		CreatedAt:        strconv.FormatInt(w.Created.UnixMilli(), 10),
		ModifiedAt:       strconv.FormatInt(w.Modified.UnixMilli(), 10),
	}
}

// executionJSON is an execution with exactly the seed's field names.
// Duration is in nanoseconds, as Harness reports it.
type executionJSON struct {
	ID            int64         `json:"id"`
	RetriggerOf   int64         `json:"retriggerOf,omitempty"`
	Retriggerable bool          `json:"retriggerable"`
	Created       int64         `json:"created"`
	WebhookID     int64         `json:"webhookId"`
	TriggerType   store.Trigger `json:"triggerType"`
	Result        store.Result  `json:"result,omitempty"`
	Duration      int64         `json:"duration"`
	Error         string        `json:"error,omitempty"`
	Request       requestJSON   `json:"request"`
	Response      *responseJSON `json:"response,omitempty"`
}

type requestJSON struct {
	URL     string `json:"url"`
	Headers string `json:"headers"`
	Body    string `json:"body"`
}

type responseJSON struct {
	StatusCode int    `json:"statusCode"`
	Status     string `json:"status"`
	Headers    string `json:"headers"`
	Body       string `json:"body"`
}

func toExecutionJSON(e store.Execution) executionJSON {
	out := executionJSON{
		ID:            e.ID,
		RetriggerOf:   e.RetriggerOf,
		Retriggerable: e.State == store.StateFinal,
		Created:       e.Created.UnixMilli(),
		WebhookID:     e.WebhookID,
		TriggerType:   e.TriggerType,
		Result:        e.Result,
		Duration:      e.Duration.Nanoseconds(),
		Error:         e.Error,
		Request: requestJSON{
			URL:     e.RequestURL,
			Headers: e.RequestHeaders,
			Body:    e.RequestBody,
		},
	}
	if e.ResponseStatusCode != 0 || e.ResponseStatus != "" {
		out.Response = &responseJSON{
			StatusCode: e.ResponseStatusCode,
			Status:     e.ResponseStatus,
			Headers:    e.ResponseHeaders,
			Body:       e.ResponseBody,
		}
	}
	return out
}

// pageJSON is the HAR list envelope's paging part.
type pageJSON struct {
	PageCount int `json:"pageCount"`
	ItemCount int `json:"itemCount"`
	PageSize  int `json:"pageSize"`
	PageIndex int `json:"pageIndex"`
}

func toPageJSON(p store.Page, total int) pageJSON {
	return pageJSON{
		PageCount: (total + p.Size - 1) / p.Size,
		ItemCount: total,
		PageSize:  p.Size,
		PageIndex: p.Index,
	}
}
