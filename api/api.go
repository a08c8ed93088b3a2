// Package api is rehook's HTTP API: the HAR registry, webhook and execution
// endpoints, the artifact-event intake, and the retrigger endpoint, under
// /har/api/v1, every route behind an x-api-key but the OpenAPI document
// (openapi.yaml) that describes them.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/rehook/rehook/metrics"
	"github.com/rehook/rehook/store"
	"github.com/rehook/rehook/worker"
)

// Prefix is where every route lives.
const Prefix = "/har/api/v1"

// Enqueuer queues the delivery of an execution; worker.Enqueuer is the real
// one.
type Enqueuer interface {
	Enqueue(ctx context.Context, e store.Execution, p worker.Payload) error
}

// Config tunes the API.
type Config struct {
	// BodyLimit is the largest request body accepted, in bytes; larger ones
	// get 413. Default 1 MiB.
	BodyLimit int64
	// RequestTimeout bounds each request's store work. Default 10s.
	RequestTimeout time.Duration
	// Metrics counts requests by route and code, their latency, and
	// accepted retriggers. Default nil: nothing is counted.
	Metrics *metrics.Metrics
	// RateLimit is how many requests a second one API key may make on
	// average, in this process; a key over it gets 429 with Retry-After.
	// Default 0: no limit.
	RateLimit float64
	// RateBurst is how many requests one API key may make at once before
	// RateLimit applies. Default 0: one.
	RateBurst int
	// MaxPendingPerWebhook is the most pending executions a webhook may
	// have for a retrigger to be accepted; at it a retrigger gets 429 with
	// Retry-After, and a bulk retrigger creates no more than the room left.
	// Default 0: no limit.
	MaxPendingPerWebhook int
}

// API holds the dependencies of the handlers.
type API struct {
	store   store.Store
	queue   Enqueuer
	log     *zap.Logger
	cfg     Config
	now     func() time.Time
	handler http.Handler
	// limiter is nil without Config.RateLimit.
	limiter *keyLimiter
}

// New builds the API's HTTP handler.
func New(s store.Store, q Enqueuer, log *zap.Logger, cfg Config) *API {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	a := &API{store: s, queue: q, log: log, cfg: cfg, now: time.Now}
	if cfg.RateLimit > 0 {
		a.limiter = newKeyLimiter(cfg.RateLimit, cfg.RateBurst)
	}

	r := gin.New()
	r.HandleMethodNotAllowed = true
	// A path one slash off is an error in the JSON shape, not a redirect in
	// HTML: clients of an API follow its paths, they do not guess them.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.Use(a.requestID, a.accessLog, a.countRequest, a.recover, a.limitBody)
	r.NoRoute(func(c *gin.Context) { abort(c, newError(http.StatusNotFound, "no such route")) })
	r.NoMethod(func(c *gin.Context) {
		abort(c, newError(http.StatusMethodNotAllowed, "method not allowed"))
	})

	r.GET(Prefix+"/openapi.yaml", a.serveOpenAPI)
	v1 := r.Group(Prefix, a.resolveRoute, a.authenticate, a.limitRate, checkText)
	v1.POST("/registry", a.createRegistry)
	v1.Any("/registry/*rest", a.dispatch)
	a.handler = r
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID honours a sane X-Request-ID or makes one, and echoes it.
func (a *API) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set("request_id", id)
	c.Header("X-Request-ID", id)
	c.Next()
}

// accessLog logs every request once, when it is done.
func (a *API) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()

	fields := []zap.Field{
		zap.String("request_id", c.GetString("request_id")),
		zap.String("method", c.Request.Method),
		zap.String("route", routeName(c)),
		zap.Int("status", c.Writer.Status()),
		zap.Duration("latency", time.Since(start)),
	}
	if id, ok := c.Get("api_key_id"); ok {
		fields = append(fields, zap.Any("api_key_id", id))
	}
	fields = append(fields, errorFields(c)...)
	switch status := c.Writer.Status(); {
	case status >= 500:
		a.log.Error("request", fields...)
	default:
		a.log.Info("request", fields...)
	}
}

// recover turns a panic into a 500 with the error shape.
func (a *API) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			a.log.Error("panic in handler", zap.Any("panic", p), zap.Stack("stack"))
			abort(c, errors.New("panic"))
		}
	}()
	c.Next()
}

// limitBody caps the request body; decodeJSON turns the cap into a 413.
func (a *API) limitBody(c *gin.Context) {
	if c.Request.ContentLength > a.cfg.BodyLimit {
		abort(c, bodyTooLarge(a.cfg.BodyLimit))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.cfg.BodyLimit)
	c.Next()
}

// dispatch routes everything under /registry/{registry_ref}. The ref holds
// slashes, so it is parsed from the escaped path by hand before the rest of
// the path is matched.
func (a *API) dispatch(c *gin.Context) {
	res, _ := c.Get(resolvedKey)
	r, _ := res.(resolved)
	if r.err != nil {
		abort(c, r.err)
		return
	}

	c.Set(requestContextKey, c.Request.Context())
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.cfg.RequestTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)

	if err := authorize(c, r.ref.Scope, r.rt.role); err != nil {
		abort(c, err)
		return
	}
	if err := r.rt.handle(a, c, r.ref, r.params); err != nil {
		abort(c, err)
	}
}

// resolved is what resolveRoute found for a request under /registry/.
type resolved struct {
	ref    RegistryRef
	rt     *route
	params []string
	// err is the answer to a malformed ref or a path with no route; it is
	// given after authentication, like every other answer.
	err error
}

const resolvedKey = "resolved_route"

// resolveRoute names the route of a request before anything can refuse it,
// so that logs and metrics of a 401 or 429 say which route was refused;
// under /registry/ it also parses the ref and matches the rest of the path
// for dispatch.
func (a *API) resolveRoute(c *gin.Context) {
	path := c.Request.URL.EscapedPath()
	if path == Prefix+"/registry" && c.Request.Method == http.MethodPost {
		c.Set("route", "create_registry")
		c.Next()
		return
	}
	escaped, under := strings.CutPrefix(path, Prefix+"/registry/")
	if !under {
		c.Next()
		return
	}

	var r resolved
	var rest []string
	r.ref, rest, r.err = splitRegistryPath(escaped)
	if r.err == nil {
		var allow []string
		r.rt, r.params, allow = match(c.Request.Method, rest)
		switch {
		case r.rt != nil:
		case len(allow) > 0:
			r.err = &apiError{status: http.StatusMethodNotAllowed, message: "method not allowed",
				allow: allow}
		default:
			r.err = newError(http.StatusNotFound, "no such route")
		}
	}
	if r.rt != nil {
		c.Set("route", r.rt.name)
	} else {
		c.Set("route", routeUnmatched)
	}
	c.Set(resolvedKey, r)
	c.Next()
}

type route struct {
	method  string
	pattern []string // "" matches any one segment, captured in order
	name    string
	role    store.Role
	handle  func(a *API, c *gin.Context, ref RegistryRef, params []string) error
}

var routes = []route{
	{"GET", nil, "get_registry", store.RoleView, (*API).getRegistry},
	{"DELETE", nil, "delete_registry", store.RoleAdmin, (*API).deleteRegistry},
	{"POST", []string{"webhooks"}, "create_webhook", store.RoleEdit, (*API).createWebhook},
	{"GET", []string{"webhooks"}, "list_webhooks", store.RoleView, (*API).listWebhooks},
	{"GET", []string{"webhooks", ""}, "get_webhook", store.RoleView, (*API).getWebhook},
	{"PUT", []string{"webhooks", ""}, "update_webhook", store.RoleEdit, (*API).updateWebhook},
	{"DELETE", []string{"webhooks", ""}, "delete_webhook", store.RoleEdit, (*API).deleteWebhook},
	{"POST", []string{"webhooks", "", "executions", "retrigger"}, "bulk_retrigger",
		store.RoleEdit, (*API).bulkRetrigger},
	{"GET", []string{"webhooks", "", "executions"}, "list_executions", store.RoleView,
		(*API).listExecutions},
	{"GET", []string{"webhooks", "", "executions", ""}, "get_execution", store.RoleView,
		(*API).getExecution},
	{"GET", []string{"webhooks", "", "executions", "", "retrigger"}, "retrigger",
		store.RoleEdit, (*API).retrigger},
	{"POST", []string{"artifact-events"}, "artifact_event", store.RoleEdit,
		(*API).artifactEvent},
	{"POST", []string{"artifact-events", "distribution"}, "distribution_event",
		store.RoleEdit, (*API).distributionEvent},
}

// match finds the route of method and path segments. When there is none but
// the path exists under other methods, allow lists them, for a 405.
func match(method string, segs []string) (rt *route, params []string, allow []string) {
	for i := range routes {
		r := &routes[i]
		p, ok := matchPattern(r.pattern, segs)
		if !ok {
			continue
		}
		if r.method == method || (method == http.MethodHead && r.answersHead()) {
			return r, p, nil
		}
		allow = append(allow, r.method)
		if r.answersHead() {
			allow = append(allow, http.MethodHead)
		}
	}
	return nil, nil, allow
}

// answersHead reports whether HEAD reaches the route as GET does: only reads
// do, for a HEAD must change nothing, and the retrigger is a GET that
// creates an execution.
func (rt *route) answersHead() bool {
	return rt.method == http.MethodGet && rt.role == store.RoleView
}

func matchPattern(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params []string
	for i, p := range pattern {
		switch {
		case p == "":
			if segs[i] == "" {
				return nil, false
			}
			params = append(params, segs[i])
		case p != segs[i]:
			return nil, false
		}
	}
	return params, true
}
