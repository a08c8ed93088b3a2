package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/rehook/rehook/store"
)

// apiError is an error with the status and message a client sees. Handlers
// return these for what the client did wrong; anything else is internal and
// its text never leaves the server.
type apiError struct {
	status  int
	message string
	details *errorDetails
	// retryAfter, in seconds, is sent as Retry-After when positive.
	retryAfter int
	// allow lists the methods of the path, sent as Allow with a 405.
	allow []string
}

func (e *apiError) Error() string { return e.message }

type errorDetails struct {
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
	Value  string `json:"value,omitempty"`
}

type errorBody struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details *errorDetails `json:"details,omitempty"`
}

func newError(status int, message string) *apiError {
	return &apiError{status: status, message: message}
}

// invalid is a 400 naming the field, why it was refused, and its value.
func invalid(field, reason, value string) *apiError {
	return &apiError{
		status:  http.StatusBadRequest,
		message: "invalid " + field + ": " + reason,
		details: &errorDetails{Field: field, Reason: reason, Value: clip(value, 200)},
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// storeUnavailableRetryAfter is the Retry-After, in seconds, of a 503.
const storeUnavailableRetryAfter = 5

// abort writes err as the error shape and stops the chain. It is the one
// place where errors become status codes.
func abort(c *gin.Context, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, store.ErrUnavailable):
		c.Header("Retry-After", strconv.Itoa(storeUnavailableRetryAfter))
		ae = newError(http.StatusServiceUnavailable, "storage is unavailable, try again shortly")
	case errors.Is(err, store.ErrNotFound):
		ae = newError(http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrConflict):
		ae = newError(http.StatusConflict, "already exists")
	case errors.Is(err, store.ErrInvalidText):
		ae = newError(http.StatusBadRequest,
			"text must be valid UTF-8 without NUL bytes")
	default:
		ae = newError(http.StatusInternalServerError, "internal error")
	}
	if ae.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	if len(ae.allow) > 0 {
		c.Header("Allow", strings.Join(ae.allow, ", "))
	}
	if ae.status >= 500 {
		_ = c.Error(err)
	}
	c.AbortWithStatusJSON(ae.status, errorBody{
		Code:    strconv.Itoa(ae.status),
		Message: ae.message,
		Details: ae.details,
	})
}

// logErrors logs the internal error behind a 5xx once, at the access log's
// side, so handlers never log and return the same error.
func errorFields(c *gin.Context) []zap.Field {
	if len(c.Errors) == 0 {
		return nil
	}
	return []zap.Field{zap.String("error", c.Errors.Last().Err.Error())}
}

type success struct {
	Status string `json:"status"`
	Data   any    `json:"data,omitempty"`
}

func ok(c *gin.Context, status int, data any) {
	c.JSON(status, success{Status: "SUCCESS", Data: data})
}
