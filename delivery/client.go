// Package delivery sends one webhook delivery attempt to a receiver and
// records what was sent and what came back, in a form fit for an execution
// record. It knows nothing of storage or queues: retries, backoff and
// persistence belong to its callers. The delivery contract is written on
// Client; the address guard on CheckIP.
package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Result is the outcome class of one attempt, named as in the HAR API.
type Result string

const (
	// Success: the receiver answered 2xx and its body was read.
	Success Result = "SUCCESS"
	// RetriableError: the attempt failed in a way a later attempt may not
	// (timeouts, refused or reset connections, 408, 429, most 5xx).
	RetriableError Result = "RETRIABLE_ERROR"
	// FatalError: the attempt failed in a way that repeating it will not
	// change (bad URL, refused address, certificate errors, 3xx, most 4xx).
	FatalError Result = "FATAL_ERROR"
)

const (
	defaultTimeout         = 10 * time.Second
	defaultMaxResponseBody = 64 << 10
	defaultUserAgent       = "rehook"

	// drainLimit is how much of a response body beyond the recorded part is
	// read and thrown away so the connection can be reused; a longer body
	// closes the connection instead.
	drainLimit = 256 << 10

	// maxIdleConnsPerHost keeps enough warm connections for a worker's
	// concurrent deliveries to one receiver.
	maxIdleConnsPerHost = 16

	// maxResponseHeaderBytes bounds the response headers the transport
	// accepts, whatever part of them is recorded.
	maxResponseHeaderBytes = 256 << 10
)

// Config tunes a Client. The zero value is usable: a zero field takes the
// default written on it.
type Config struct {
	// Timeout bounds one attempt as a whole: DNS, connect, TLS handshake,
	// sending the request and reading the recorded part of the response.
	// Zero or negative means 10s.
	Timeout time.Duration

	// MaxResponseBody is how many bytes of the response body, and
	// separately of the response headers in wire form, are recorded; the
	// rest is cut off and the record says so. Zero or negative means 65536.
	MaxResponseBody int

	// UserAgent is sent as User-Agent unless Request.Header has one.
	// Empty means "rehook".
	UserAgent string

	// AllowLoopback permits connecting to 127.0.0.0/8 and ::1.
	// Default false.
	AllowLoopback bool

	// AllowPrivate permits connecting to 10.0.0.0/8, 172.16.0.0/12,
	// 192.168.0.0/16 and fc00::/7. Default false.
	AllowPrivate bool

	// AllowLinkLocal permits connecting to 169.254.0.0/16, which holds the
	// cloud metadata address 169.254.169.254, and fe80::/10. Default false.
	AllowLinkLocal bool

	// Proxy is the URL (http, https or socks5) of a proxy every delivery
	// goes through. The proxy's own address is exempt from the address
	// guard, since it is chosen by the operator; a target host name is then
	// resolved locally and all its addresses checked before the request is
	// handed to the proxy, which resolves it again, so the proxy should
	// enforce its own egress policy too. Nil means no proxy at all: the
	// HTTP_PROXY family of environment variables is never read.
	Proxy *url.URL

	// Resolver looks up target host names. Nil means net.DefaultResolver.
	// Whatever it answers, the address actually dialed is checked.
	Resolver *net.Resolver
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MaxResponseBody <= 0 {
		cfg.MaxResponseBody = defaultMaxResponseBody
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = defaultUserAgent
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	return cfg
}

// Request is one delivery attempt to make.
type Request struct {
	// URL is the receiver's http or https URL. User information in it
	// (https://user:pass@host/) is sent as basic authorization, masked in
	// the record.
	URL string

	// Header holds every header to send: Content-Type, identity and
	// signature headers, the webhook's extra headers. Host,
	// Content-Length, Transfer-Encoding and Trailer are set by the client
	// and ignored here.
	Header http.Header

	// Masked names the headers whose values are recorded as "******".
	// Names match case-insensitively.
	Masked []string

	// Body is sent verbatim.
	Body []byte

	// Insecure skips verification of the receiver's TLS certificate.
	Insecure bool

	// Secret is the webhook's signing key. When set, every attempt is
	// signed at the time it is sent; see Sign. Nil sends no signature.
	Secret []byte

	// MessageID is the delivery's identity in the Standard Webhooks
	// signature (webhook-id): the same for every attempt and every
	// retrigger of one delivery. Empty leaves out the Standard Webhooks
	// headers and sends only X-Harness-Signature.
	MessageID string
}

// Outcome records one attempt. Its text fields are valid UTF-8 without NUL
// bytes, ready to be stored.
type Outcome struct {
	// Result classifies the attempt.
	Result Result

	// StatusCode is the response status code, 0 when no response came.
	StatusCode int

	// Status is the response status line without the protocol, such as
	// "200 OK"; empty when no response came.
	Status string

	// RequestHeaders is the wire form of the headers sent (see
	// FormatHeaders), masked values written as "******". Host is not
	// included.
	RequestHeaders string

	// ResponseHeaders is the wire form of the response headers, capped at
	// Config.MaxResponseBody bytes.
	ResponseHeaders string

	// ResponseBody is the start of the response body, at most
	// Config.MaxResponseBody bytes cut on a UTF-8 boundary, followed by a
	// marker line when the body was longer. Invalid UTF-8 and NUL bytes
	// are replaced by U+FFFD.
	ResponseBody string

	// Duration runs from the start of Send to the end of reading the
	// recorded part of the response body (or to the failure).
	Duration time.Duration

	// Error says why the attempt did not succeed, for an operator; empty
	// on Success. It never contains header values or the request body.
	Error string
}

// Client sends webhook deliveries. It is safe for concurrent use and is
// meant to live as long as the process, so that connections to a receiver
// are reused.
//
// Send's contract:
//
//   - One attempt is one POST of Request.Body, verbatim with its
//     Content-Length, bounded as a whole by Config.Timeout and by ctx.
//     Redirects are never followed.
//   - Success is a 2xx status with the recorded part of the body read.
//     408, 429 and 5xx other than 501 are RetriableError; 1xx, 3xx, other
//     4xx and 501 are FatalError (see Classify).
//   - Transport failures that may pass are RetriableError: timeouts at any
//     step (the body included), refused, reset or early-closed connections,
//     temporary DNS failures, the caller's ctx being canceled, and errors
//     not listed here. FatalError: an invalid URL or header, a scheme
//     other than http and https, a host that DNS says does not exist, an
//     address refused by the address guard (see CheckIP), TLS certificate
//     and handshake errors. A 2xx whose body cannot be read to the cap is
//     not a Success but takes the class of the read error.
//   - The address guard judges literal IP hosts in any spelling before any
//     connection is made, and every address the dialer is about to connect
//     to after DNS, so a name that resolves or rebinds to a refused address
//     is refused too.
//   - At most Config.MaxResponseBody bytes of the response body are read
//     and kept; up to 256 KiB more may be read and discarded so the
//     connection can be reused, and a longer body closes it. Memory per
//     attempt is bounded by these caps whatever the receiver sends.
//   - Send reads and closes the response body itself: the caller has
//     nothing to close. It never returns an error: everything is in the
//     Outcome.
//   - With a Request.Secret, each attempt carries signatures of the exact
//     body bytes it sends, made when it is sent (see Sign), and they are
//     recorded with the other headers; the secret itself never is.
type Client struct {
	cfg      Config
	secure   *http.Client
	insecure *http.Client
	// now is the clock signatures are timestamped with.
	now func() time.Time
}

// NewClient returns a Client for cfg, zero fields set to their defaults.
// Call CloseIdleConnections when it is no longer needed.
func NewClient(cfg Config) *Client {
	c := &Client{cfg: cfg.withDefaults(), now: time.Now}

	guarded := &net.Dialer{
		KeepAlive:      30 * time.Second,
		Resolver:       c.cfg.Resolver,
		ControlContext: c.guardControl,
	}
	dial := guarded.DialContext

	if c.cfg.Proxy != nil {
		proxyAddr := proxyAddress(c.cfg.Proxy)
		plain := &net.Dialer{KeepAlive: 30 * time.Second, Resolver: c.cfg.Resolver}
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == proxyAddr {
				return plain.DialContext(ctx, network, addr)
			}
			return guarded.DialContext(ctx, network, addr)
		}
	}

	c.secure = c.newHTTPClient(dial, nil)
	c.insecure = c.newHTTPClient(dial, &tls.Config{InsecureSkipVerify: true})
	return c
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// newHTTPClient builds a client over its own transport. Redirects come
// back as responses; no Accept-Encoding is added, so the headers recorded
// are the headers sent; the only proxy is Config.Proxy.
func (c *Client) newHTTPClient(dial dialFunc, tlsConfig *tls.Config) *http.Client {
	transport := &http.Transport{
		DialContext:            dial,
		TLSClientConfig:        tlsConfig,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	if c.cfg.Proxy != nil {
		transport.Proxy = http.ProxyURL(c.cfg.Proxy)
	}

	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// proxyAddress is the host:port the transport dials to reach proxy.
func proxyAddress(proxy *url.URL) string {
	port := proxy.Port()
	if port == "" {
		switch proxy.Scheme {
		case "https":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(proxy.Hostname(), port)
}

// CloseIdleConnections closes the connections kept for reuse. The Client
// stays usable.
func (c *Client) CloseIdleConnections() {
	c.secure.CloseIdleConnections()
	c.insecure.CloseIdleConnections()
}

// Send makes one delivery attempt and records it. See Client for the
// contract.
func (c *Client) Send(ctx context.Context, req Request) Outcome {
	start := time.Now()

	timeout := c.cfg.Timeout
	if deadline, ok := ctx.Deadline(); ok && deadline.Sub(start) < timeout {
		timeout = max(deadline.Sub(start), 0).Round(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	var out Outcome
	fail := func(result Result, msg string) Outcome {
		out.Result, out.Error, out.Duration = result, msg, time.Since(start)
		return out
	}

	target, host, urlErr := parseTarget(req.URL)

	header, masked := c.requestHeader(req, target)
	if len(req.Secret) > 0 {
		Sign(header, req.Secret, req.MessageID, c.now(), req.Body)
	}
	recorded := header.Clone()
	recorded.Set("Content-Length", strconv.Itoa(len(req.Body)))
	out.RequestHeaders = cleanText(FormatHeaders(recorded, masked))

	if urlErr != nil {
		return fail(FatalError, urlErr.Error())
	}
	if err := validateHeader(header); err != nil {
		return fail(FatalError, err.Error())
	}

	state := &attempt{host: host, addr: target.Host, timeout: timeout}
	if err := c.checkTarget(ctx, target); err != nil {
		return fail(state.describe(ctx, err))
	}

	httpReq, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, state.trace()),
		http.MethodPost, target.String(), bytes.NewReader(req.Body))
	if err != nil {
		return fail(FatalError, "cannot build request: "+err.Error())
	}
	httpReq.Header = header

	client := c.secure
	if req.Insecure {
		client = c.insecure
	}

	resp, err := client.Do(httpReq)
	if err != nil {
		return fail(state.describe(ctx, err))
	}
	defer resp.Body.Close()

	state.advance(phaseBody, "")
	truncated := c.recordResponse(ctx, resp, state, &out)
	out.Duration = time.Since(start)

	if truncated && !longerThanDrain(resp, c.cfg.MaxResponseBody) {
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	return out
}

// recordResponse reads the capped body of resp and fills the response
// fields of out, its Result and its Error. truncated reports that the body
// went on beyond the cap.
func (c *Client) recordResponse(ctx context.Context, resp *http.Response, state *attempt,
	out *Outcome) (truncated bool) {
	out.StatusCode, out.Status = resp.StatusCode, statusText(resp)
	out.ResponseHeaders = recordText([]byte(FormatHeaders(resp.Header, nil)),
		c.cfg.MaxResponseBody, false, "headers")

	body, truncated, readErr := readCapped(resp.Body, c.cfg.MaxResponseBody)
	out.ResponseBody = recordText(body, c.cfg.MaxResponseBody, truncated, "body")

	out.Result = Classify(resp.StatusCode)
	var reasons []string
	if out.Result != Success {
		reasons = append(reasons, statusReason(resp, out.Status))
	}
	if readErr != nil {
		result, msg := state.describe(ctx, readErr)
		if out.Result == Success {
			out.Result = result
		}
		reasons = append(reasons, fmt.Sprintf("%s (%d bytes of body read)", msg, len(body)))
	}
	out.Error = strings.Join(reasons, "; ")

	return truncated
}

// parseTarget checks rawURL and returns it with an IP host in canonical
// form, so that 2130706433 or 0x7f.1 is dialed, and judged, as 127.0.0.1,
// along with the host as written.
func parseTarget(rawURL string) (*url.URL, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, "", fmt.Errorf("invalid URL: %v", err)
	}

	switch u.Scheme {
	case "http", "https":
	case "":
		return nil, "", errors.New("invalid URL: no scheme (only http and https are allowed)")
	default:
		return nil, "", fmt.Errorf("unsupported URL scheme %q (only http and https are allowed)",
			u.Scheme)
	}

	host := u.Hostname()
	if host == "" {
		return nil, "", errors.New("invalid URL: no host")
	}

	ip, isIP, err := parseHostIP(host)
	if err != nil {
		return nil, host, fmt.Errorf("invalid URL host: %v", err)
	}
	if strings.HasPrefix(u.Host, "[") && (!isIP || !ip.Is6()) {
		return nil, "", fmt.Errorf("invalid URL host: %q is not an IPv6 address", host)
	}
	if isIP {
		u.Host = hostPort(ip.Unmap(), u.Port())
	}

	return u, host, nil
}

// hostPort formats ip and an optional port as a URL host.
func hostPort(ip netip.Addr, port string) string {
	host := ip.String()
	if ip.Is6() {
		host = "[" + host + "]"
	}
	if port == "" {
		return host
	}
	return host + ":" + port
}

// checkTarget refuses a literal IP host before any connection is made.
// With a proxy, a host name is resolved here and all its addresses judged,
// since the dialer only ever sees the proxy's address.
func (c *Client) checkTarget(ctx context.Context, target *url.URL) error {
	host := target.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return CheckIP(ip, c.cfg)
	}
	if c.cfg.Proxy == nil {
		return nil
	}

	addrs, err := c.cfg.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	for _, ip := range addrs {
		if err := CheckIP(ip, c.cfg); err != nil {
			return err
		}
	}
	return nil
}

// requestHeader returns the headers to send for req and the canonical
// names of those to mask in the record. User information in the target
// URL is moved into a masked Authorization header.
func (c *Client) requestHeader(req Request, target *url.URL) (http.Header, []string) {
	header := canonicalHeader(req.Header)
	for _, name := range []string{"Host", "Content-Length", "Transfer-Encoding", "Trailer"} {
		delete(header, name)
	}
	if header.Get("User-Agent") == "" {
		header.Set("User-Agent", c.cfg.UserAgent)
	}

	masked := make([]string, 0, len(req.Masked)+1)
	for _, name := range req.Masked {
		masked = append(masked, http.CanonicalHeaderKey(name))
	}

	if target != nil && target.User != nil {
		if header.Get("Authorization") == "" {
			password, _ := target.User.Password()
			credentials := target.User.Username() + ":" + password
			header.Set("Authorization",
				"Basic "+base64.StdEncoding.EncodeToString([]byte(credentials)))
		}
		masked = append(masked, "Authorization")
		target.User = nil
	}

	return header, masked
}

// validateHeader refuses header names and values that cannot be sent.
// Values are never quoted in the error: they may be secrets.
func validateHeader(h http.Header) error {
	for name, values := range h {
		if !validHeaderName(name) {
			return fmt.Errorf("invalid request header name %q", name)
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return fmt.Errorf("invalid value for request header %s: "+
					"control characters are not allowed", name)
			}
		}
	}
	return nil
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		isAlnum := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
		if !isAlnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// readCapped reads at most limit bytes of body; truncated reports that
// there was more.
func readCapped(body io.Reader, limit int) (data []byte, truncated bool, err error) {
	data, err = io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if len(data) > limit {
		return data[:limit], true, err
	}
	return data, false, err
}

// longerThanDrain reports whether resp declares a body so long that
// draining it is pointless: the connection will be closed anyway.
func longerThanDrain(resp *http.Response, recorded int) bool {
	return resp.ContentLength > int64(recorded)+1+drainLimit
}

// statusText is resp's status without the protocol, with the standard
// reason phrase when the receiver sent none.
func statusText(resp *http.Response) string {
	status := strings.TrimSpace(resp.Status)
	if status == "" || status == strconv.Itoa(resp.StatusCode) {
		status = strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode,
			http.StatusText(resp.StatusCode)))
	}
	return status
}

// statusReason explains a status that is not a success.
func statusReason(resp *http.Response, status string) string {
	reason := "receiver answered " + status
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		reason += " (redirects are not followed"
		if location := resp.Header.Get("Location"); location != "" {
			reason += "; Location: " + recordText([]byte(location), 512, false, "location")
		}
		reason += ")"
	}
	return reason
}
