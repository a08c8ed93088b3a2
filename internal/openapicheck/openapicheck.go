// Package openapicheck holds HTTP exchanges with rehook against its OpenAPI
// document, for tests. It finds each request's operation itself, because a
// registry_ref holds slashes that no OpenAPI router matches; validates the
// answer (status, headers, body) and, for a 2xx answer, the request; and
// records which operations answered which status codes.
package openapicheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Unmatched is the path under which answers to requests that match no
// operation are recorded.
const Unmatched = "(unmatched)"

// Checker validates exchanges against one document. It is safe for
// concurrent use.
type Checker struct {
	doc    *openapi3.T
	routes []route

	mu   sync.Mutex
	seen map[string]bool
}

// route is a path of the document as a pattern over escaped request paths.
type route struct {
	path   string
	re     *regexp.Regexp
	params []string
	item   *openapi3.PathItem
}

// Exchange is one request and the answer it got.
type Exchange struct {
	// Request is the request as sent; its Body is not read.
	Request *http.Request
	// RequestBody is the body that was sent.
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Load reads a document and checks that it is valid OpenAPI.
func Load(ctx context.Context, data []byte) (*Checker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load the document: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("the document is not valid OpenAPI: %w", err)
	}

	c := &Checker{doc: doc, seen: map[string]bool{}}
	for path, item := range doc.Paths.Map() {
		re, params, err := pathPattern(path)
		if err != nil {
			return nil, err
		}
		c.routes = append(c.routes, route{path: path, re: re, params: params, item: item})
	}

	// A literal path wins over a template that also matches it:
	// .../executions/retrigger before .../executions/{webhook_execution_id}.
	sort.Slice(c.routes, func(i, j int) bool {
		a, b := c.routes[i], c.routes[j]
		if len(a.params) != len(b.params) {
			return len(a.params) < len(b.params)
		}
		return a.path < b.path
	})
	return c, nil
}

// Doc is the loaded document.
func (c *Checker) Doc() *openapi3.T { return c.doc }

// refPattern matches a registry_ref in an escaped path: with real slashes up
// to its "/+", or as one percent-encoded segment.
const refPattern = `((?:[^/]+(?:/[^/]+)*?/(?:\+|%2[Bb]))|(?:[^/]*%2[Ff][^/]*))`

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

// pathPattern turns a path template into a pattern over escaped paths, and
// lists its parameters in order.
func pathPattern(path string) (*regexp.Regexp, []string, error) {
	var b strings.Builder
	var params []string
	b.WriteString("^")
	last := 0
	for _, m := range templateParam.FindAllStringSubmatchIndex(path, -1) {
		b.WriteString(regexp.QuoteMeta(path[last:m[0]]))
		name := path[m[2]:m[3]]
		if name == "registry_ref" {
			b.WriteString(refPattern)
		} else {
			b.WriteString(`([^/]+)`)
		}
		params = append(params, name)
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(path[last:]))
	b.WriteString("$")

	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, nil, fmt.Errorf("path %s: %w", path, err)
	}
	return re, params, nil
}

// Find returns the operation of method on escapedPath and its path
// parameters, unescaped. The errors are routers.ErrPathNotFound and
// routers.ErrMethodNotAllowed.
func (c *Checker) Find(method, escapedPath string) (*routers.Route, map[string]string, error) {
	pathFound := false
	for _, rt := range c.routes {
		m := rt.re.FindStringSubmatch(escapedPath)
		if m == nil {
			continue
		}
		op := rt.item.GetOperation(method)
		if op == nil {
			pathFound = true
			continue
		}

		params := map[string]string{}
		for i, name := range rt.params {
			v, err := url.PathUnescape(m[i+1])
			if err != nil {
				return nil, nil, fmt.Errorf("path parameter %s: %w", name, err)
			}
			params[name] = v
		}
		return &routers.Route{Spec: c.doc, Path: rt.path, PathItem: rt.item, Method: method,
			Operation: op}, params, nil
	}
	if pathFound {
		return nil, nil, routers.ErrMethodNotAllowed
	}
	return nil, nil, routers.ErrPathNotFound
}

// refusedResponses names the document's response for each status that a
// request may get before its operation is known: for its size, its key, a
// limit or the database, or, under /registry/, for a registry_ref that
// cannot be read.
var refusedResponses = map[int]string{
	http.StatusBadRequest:            "BadRequest",
	http.StatusUnauthorized:          "Unauthorized",
	http.StatusRequestEntityTooLarge: "PayloadTooLarge",
	http.StatusTooManyRequests:       "TooManyRequests",
	http.StatusInternalServerError:   "InternalError",
	http.StatusServiceUnavailable:    "Unavailable",
}

// unmatchedResponse names the document's response for an answer to a
// request that matched no operation, as find told why.
func unmatchedResponse(why error, status int) (string, bool) {
	switch {
	case why == routers.ErrPathNotFound && status == http.StatusNotFound:
		return "NoSuchRoute", true
	case why == routers.ErrMethodNotAllowed && status == http.StatusMethodNotAllowed:
		return "MethodNotAllowed", true
	}
	name, found := refusedResponses[status]
	return name, found
}

// Check validates the answer of an exchange against the operation of its
// request, and the request too when the answer is a 2xx. A request that
// matches no operation must have got an error the document describes for
// that case (components/responses). It records what it saw, valid or not.
func (c *Checker) Check(ctx context.Context, ex Exchange) error {
	req := ex.Request
	route, params, err := c.Find(req.Method, req.URL.EscapedPath())
	if err != nil {
		if !errors.Is(err, routers.ErrPathNotFound) && !errors.Is(err, routers.ErrMethodNotAllowed) {
			return err
		}
		c.record(req.Method, Unmatched, ex.Status)
		name, known := unmatchedResponse(err, ex.Status)
		if !known {
			return fmt.Errorf("%s %s matches no operation (%v) and got %d, which the "+
				"document does not describe for that case", req.Method, req.URL.Path, err, ex.Status)
		}
		resp := c.doc.Components.Responses[name]
		if resp == nil {
			return fmt.Errorf("the document has no components/responses/%s", name)
		}
		route = &routers.Route{Spec: c.doc, Path: Unmatched, Method: req.Method,
			Operation: &openapi3.Operation{
				Responses: openapi3.NewResponses(openapi3.WithStatus(ex.Status, resp)),
			}}
	} else {
		c.record(req.Method, route.Path, ex.Status)
	}

	in := &openapi3filter.RequestValidationInput{
		Request:    withBody(req, ex.RequestBody),
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: requireKey},
	}
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 ex.Status,
		Header:                 ex.Header,
		Body:                   io.NopCloser(bytes.NewReader(ex.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		return fmt.Errorf("answer of %s %s (%s %s): %w", req.Method, req.URL.Path, route.Method,
			route.Path, err)
	}

	if ex.Status < 200 || ex.Status > 299 || route.Path == Unmatched {
		return nil
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return fmt.Errorf("request %s %s (%s %s), answered %d: %w", req.Method, req.URL.Path,
			route.Method, route.Path, ex.Status, err)
	}
	return nil
}

// requireKey checks that an API key security scheme's header is present; its
// value is the server's to judge.
func requireKey(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s.Type != "apiKey" || s.In != "header" {
		return fmt.Errorf("security scheme %s: only apiKey in a header is known", in.SecuritySchemeName)
	}
	if in.RequestValidationInput.Request.Header.Get(s.Name) == "" {
		return fmt.Errorf("no %s header", s.Name)
	}
	return nil
}

// withBody is a copy of req whose body reads body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

func seenKey(method, path string, status int) string {
	return fmt.Sprintf("%s %s %d", method, path, status)
}

func (c *Checker) record(method, path string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[seenKey(method, path, status)] = true
}

// Seen reports whether an answer with status to method on the document's
// path was checked.
func (c *Checker) Seen(method, path string, status int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[seenKey(method, path, status)]
}

// Unseen lists, as "METHOD path status", every status of every operation of
// the document whose path keep accepts and that no checked answer had.
func (c *Checker) Unseen(keep func(method, path string, status int) bool) []string {
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				var status int
				if _, err := fmt.Sscan(code, &status); err != nil {
					out = append(out, fmt.Sprintf("%s %s %s (not a status code)", method, path, code))
					continue
				}
				if keep(method, path, status) && !c.Seen(method, path, status) {
					out = append(out, seenKey(method, path, status))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// Send makes a request with body and returns the exchange, body read.
func Send(client *http.Client, method, target string, header http.Header,
	body []byte) (Exchange, error) {
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		return Exchange{}, err
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Exchange{}, err
	}
	defer resp.Body.Close()

	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Exchange{}, fmt.Errorf("%s %s: read the answer: %w", method, target, err)
	}
	return Exchange{Request: req, RequestBody: body, Status: resp.StatusCode,
		Header: resp.Header, Body: raw}, nil
}
