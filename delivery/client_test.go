package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// timingMargin is how much longer than its timeout an attempt may take
// under a loaded, race-instrumented test run.
const timingMargin = 1500 * time.Millisecond

func TestSendClassifiesStatuses(t *testing.T) {
	t.Parallel()

	tests := []struct {
		status     int
		wantStatus string
		want       Result
	}{
		{200, "200 OK", Success},
		{204, "204 No Content", Success},
		{404, "404 Not Found", FatalError},
		{408, "408 Request Timeout", RetriableError},
		{429, "429 Too Many Requests", RetriableError},
		{500, "500 Internal Server Error", RetriableError},
		{501, "501 Not Implemented", FatalError},
		{503, "503 Service Unavailable", RetriableError},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()

			rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, "answered %d", tt.status)
			})
			c := newTestClient(t, loopbackConfig())

			out := c.Send(context.Background(), Request{URL: rcv.URL + "/hook", Body: []byte("{}")})

			if out.Result != tt.want {
				t.Errorf("Result = %s, want %s (error %q)", out.Result, tt.want, out.Error)
			}
			if out.StatusCode != tt.status || out.Status != tt.wantStatus {
				t.Errorf("status = %d %q, want %d %q",
					out.StatusCode, out.Status, tt.status, tt.wantStatus)
			}

			wantErr := ""
			if tt.want != Success {
				wantErr = "receiver answered " + tt.wantStatus
			}
			if out.Error != wantErr {
				t.Errorf("Error = %q, want %q", out.Error, wantErr)
			}

			wantBody := fmt.Sprintf("answered %d", tt.status)
			if tt.status == http.StatusNoContent {
				wantBody = ""
			}
			if out.ResponseBody != wantBody {
				t.Errorf("ResponseBody = %q, want %q", out.ResponseBody, wantBody)
			}
			if !strings.Contains(out.ResponseHeaders, "Date: ") {
				t.Errorf("ResponseHeaders = %q, want a Date line", out.ResponseHeaders)
			}
		})
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()

	var targetHits atomic.Int64
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			targetHits.Add(1)
			return
		}
		http.Redirect(w, r, "/target", http.StatusMovedPermanently)
	})
	c := newTestClient(t, loopbackConfig())

	out := c.Send(context.Background(), Request{URL: rcv.URL + "/hook"})

	if out.Result != FatalError || out.StatusCode != 301 || out.Status != "301 Moved Permanently" {
		t.Errorf("got %s %d %q, want FATAL_ERROR 301 \"301 Moved Permanently\"",
			out.Result, out.StatusCode, out.Status)
	}
	want := "receiver answered 301 Moved Permanently " +
		"(redirects are not followed; Location: /target)"
	if out.Error != want {
		t.Errorf("Error = %q, want %q", out.Error, want)
	}
	if got := targetHits.Load(); got != 0 {
		t.Errorf("redirect target hit %d times, want 0", got)
	}
}

func TestSendSendsBodyVerbatimAndRecordsHeaders(t *testing.T) {
	t.Parallel()

	body := []byte("{ \"artifact\" :  \"café\",\n\t\"tag\":\"日本語 ✓\"  }  \r\n")
	const secret = "s3cr3t-signature"

	type received struct {
		body   []byte
		header http.Header
	}
	got := make(chan received, 1)
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{b, r.Header.Clone()}
	})
	c := newTestClient(t, loopbackConfig())

	header := http.Header{
		"Content-Type":  {"application/json"},
		"X-Signature":   {secret},
		"x-extra-lower": {"kept"},
		"X-Multi":       {"a", "b"},
		"Host":          {"ignored.example"},
	}
	out := c.Send(context.Background(), Request{
		URL:    rcv.URL + "/hook",
		Header: header,
		Masked: []string{"x-signature"},
		Body:   body,
	})
	if out.Result != Success {
		t.Fatalf("Result = %s (%s), want SUCCESS", out.Result, out.Error)
	}

	r := <-got
	if !bytes.Equal(r.body, body) {
		t.Errorf("receiver got body %q, want %q", r.body, body)
	}
	wantHeader := map[string]string{
		"User-Agent":     "rehook",
		"Content-Length": strconv.Itoa(len(body)),
		"Content-Type":   "application/json",
		"X-Signature":    secret,
		"X-Extra-Lower":  "kept",
	}
	for name, want := range wantHeader {
		if v := r.header.Get(name); v != want {
			t.Errorf("receiver got %s %q, want %q", name, v, want)
		}
	}
	if v := r.header.Values("X-Multi"); len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("receiver got X-Multi %q, want [a b]", v)
	}

	wantRecord := "Content-Length: " + strconv.Itoa(len(body)) + "\n" +
		"Content-Type: application/json\n" +
		"User-Agent: rehook\n" +
		"X-Extra-Lower: kept\n" +
		"X-Multi: a\n" +
		"X-Multi: b\n" +
		"X-Signature: ******\n"
	if out.RequestHeaders != wantRecord {
		t.Errorf("RequestHeaders =\n%s\nwant\n%s", out.RequestHeaders, wantRecord)
	}
	if header.Get("User-Agent") != "" || header.Get("Host") == "" {
		t.Errorf("Send modified the caller's header: %v", header)
	}
}

func TestSendUserAgent(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		configUA  string
		headerUA  string
		wantAgent string
	}{
		{"default", "", "", "rehook"},
		{"configured", "rehook/1.2", "", "rehook/1.2"},
		{"request header wins", "rehook/1.2", "custom/3", "custom/3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got := make(chan string, 1)
			rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				got <- r.UserAgent()
			})
			cfg := loopbackConfig()
			cfg.UserAgent = tt.configUA
			c := newTestClient(t, cfg)

			header := http.Header{}
			if tt.headerUA != "" {
				header.Set("User-Agent", tt.headerUA)
			}
			out := c.Send(context.Background(), Request{URL: rcv.URL, Header: header})

			if out.Result != Success {
				t.Fatalf("Result = %s (%s), want SUCCESS", out.Result, out.Error)
			}
			if ua := <-got; ua != tt.wantAgent {
				t.Errorf("receiver got User-Agent %q, want %q", ua, tt.wantAgent)
			}
			if !strings.Contains(out.RequestHeaders, "User-Agent: "+tt.wantAgent+"\n") {
				t.Errorf("RequestHeaders = %q, want User-Agent %q",
					out.RequestHeaders, tt.wantAgent)
			}
		})
	}
}

func TestSendMovesURLUserInfoToMaskedAuthorization(t *testing.T) {
	t.Parallel()

	type creds struct {
		user, password string
		ok             bool
	}
	got := make(chan creds, 1)
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		user, password, ok := r.BasicAuth()
		got <- creds{user, password, ok}
	})
	c := newTestClient(t, loopbackConfig())

	target := "http://hook:pa55word@127.0.0.1:" + rcv.port() + "/hook"
	out := c.Send(context.Background(), Request{URL: target})

	if out.Result != Success {
		t.Fatalf("Result = %s (%s), want SUCCESS", out.Result, out.Error)
	}
	if cr := <-got; cr != (creds{"hook", "pa55word", true}) {
		t.Errorf("receiver got basic auth %+v, want hook/pa55word", cr)
	}
	if !strings.Contains(out.RequestHeaders, "Authorization: ******\n") ||
		strings.Contains(out.RequestHeaders, "pa55word") {
		t.Errorf("RequestHeaders = %q, want Authorization masked", out.RequestHeaders)
	}
}

func TestSendTimesOutWaitingForHeaders(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name          string
		timeout       time.Duration
		parentTimeout time.Duration
		want          time.Duration
	}{
		{"config timeout", 300 * time.Millisecond, 0, 300 * time.Millisecond},
		{"shorter caller deadline", 5 * time.Second, 200 * time.Millisecond,
			200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			release := make(chan struct{})
			rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			t.Cleanup(func() { close(release) })

			cfg := loopbackConfig()
			cfg.Timeout = tt.timeout
			c := newTestClient(t, cfg)

			ctx := context.Background()
			if tt.parentTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.parentTimeout)
				defer cancel()
			}
			out := c.Send(ctx, Request{URL: rcv.URL, Body: []byte("{}")})

			if out.Result != RetriableError || out.StatusCode != 0 || out.Status != "" {
				t.Errorf("got %s %d %q, want RETRIABLE_ERROR with no status",
					out.Result, out.StatusCode, out.Status)
			}
			want := fmt.Sprintf("timeout after %s waiting for response headers from %s",
				tt.want, rcv.Listener.Addr())
			if out.Error != want {
				t.Errorf("Error = %q, want %q", out.Error, want)
			}
			if out.Duration < tt.want || out.Duration > tt.want+timingMargin {
				t.Errorf("Duration = %s, want %s to %s",
					out.Duration, tt.want, tt.want+timingMargin)
			}
		})
	}
}

func TestSendCanceledByCaller(t *testing.T) {
	t.Parallel()

	arrived := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	c := newTestClient(t, loopbackConfig())

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	out := c.Send(ctx, Request{URL: rcv.URL})

	want := "attempt canceled waiting for response headers from " + rcv.Listener.Addr().String()
	if out.Result != RetriableError || out.Error != want {
		t.Errorf("got %s %q, want RETRIABLE_ERROR %q", out.Result, out.Error, want)
	}
}

func TestSendConnectionFailures(t *testing.T) {
	t.Parallel()

	closeWithoutResponse := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	}
	resetConnection := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}

	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // Error without the receiver's address
	}{
		{"closed without response", closeWithoutResponse,
			"connection closed by receiver waiting for response headers from "},
		{"reset", resetConnection,
			"connection reset by peer waiting for response headers from "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			rcv := newReceiver(t, tt.handler)
			c := newTestClient(t, loopbackConfig())

			out := c.Send(context.Background(), Request{URL: rcv.URL, Body: []byte("{}")})

			want := tt.want + rcv.Listener.Addr().String()
			if out.Result != RetriableError || out.Error != want {
				t.Errorf("got %s %q, want RETRIABLE_ERROR %q", out.Result, out.Error, want)
			}
			if out.StatusCode != 0 {
				t.Errorf("StatusCode = %d, want 0", out.StatusCode)
			}
		})
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	c := newTestClient(t, loopbackConfig())
	const secret = "never-in-errors"
	out := c.Send(context.Background(), Request{
		URL:    "http://" + addr + "/hook?token=query-secret",
		Header: http.Header{"X-Token": {secret}},
		Masked: []string{"X-Token"},
		Body:   []byte("body-secret"),
	})

	want := "connect: connection refused to " + addr
	if out.Result != RetriableError || out.Error != want {
		t.Errorf("got %s %q, want RETRIABLE_ERROR %q", out.Result, out.Error, want)
	}
	if !strings.Contains(out.RequestHeaders, "X-Token: ******\n") {
		t.Errorf("RequestHeaders = %q, want X-Token masked", out.RequestHeaders)
	}
	for _, s := range []string{secret, "query-secret", "body-secret"} {
		if strings.Contains(out.Error+out.RequestHeaders, s) {
			t.Errorf("outcome leaks %q: %+v", s, out)
		}
	}
}

func TestSendCapsHugeBodyWithBoundedMemory(t *testing.T) {
	// Not parallel: it measures the process's allocations.
	const total = 50 << 20

	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("Content-Length declared %v", declared), func(t *testing.T) {
			written := make(chan int64, 1)
			rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				if declared {
					w.Header().Set("Content-Length", strconv.Itoa(total))
				}
				chunk := bytes.Repeat([]byte("a"), 32<<10)
				var n int64
				for n < total {
					m, err := w.Write(chunk)
					n += int64(m)
					if err != nil {
						break
					}
				}
				written <- n
			})
			c := newTestClient(t, loopbackConfig())

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out := c.Send(context.Background(), Request{URL: rcv.URL})
			runtime.ReadMemStats(&after)

			if out.Result != Success || out.Error != "" {
				t.Errorf("got %s %q, want SUCCESS", out.Result, out.Error)
			}
			wantBody := strings.Repeat("a", defaultMaxResponseBody) +
				"\n…[truncated by rehook: body exceeded 65536 bytes]"
			if out.ResponseBody != wantBody {
				t.Errorf("ResponseBody has %d bytes ending %q, want %d bytes ending %q",
					len(out.ResponseBody), tail(out.ResponseBody), len(wantBody), tail(wantBody))
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("Send allocated %d bytes", alloc)
			if alloc > 8<<20 {
				t.Errorf("Send allocated %d bytes for a %d byte body, want under 8 MiB",
					alloc, total)
			}

			select {
			case n := <-written:
				if n >= total {
					t.Errorf("receiver wrote all %d bytes, want the connection closed early", n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("receiver still writing 10s after Send returned")
			}
		})
	}
}

func tail(s string) string {
	return s[max(len(s)-60, 0):]
}

func TestSendTricklingBodyEndsAtTimeout(t *testing.T) {
	t.Parallel()

	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()

		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				_, _ = w.Write([]byte("x"))
				_ = rc.Flush()
			}
		}
	})
	cfg := loopbackConfig()
	cfg.Timeout = time.Second
	c := newTestClient(t, cfg)

	out := c.Send(context.Background(), Request{URL: rcv.URL})

	if out.Result != RetriableError || out.StatusCode != 200 {
		t.Errorf("got %s %d, want RETRIABLE_ERROR 200", out.Result, out.StatusCode)
	}
	n := len(out.ResponseBody)
	if n == 0 || n > 10 || strings.Trim(out.ResponseBody, "x") != "" {
		t.Errorf("ResponseBody = %q, want the 1 to 10 bytes sent before the timeout",
			out.ResponseBody)
	}
	want := fmt.Sprintf("timeout after 1s reading response body from %s (%d bytes of body read)",
		rcv.Listener.Addr(), n)
	if out.Error != want {
		t.Errorf("Error = %q, want %q", out.Error, want)
	}
	if out.Duration < time.Second || out.Duration > time.Second+timingMargin {
		t.Errorf("Duration = %s, want 1s to %s", out.Duration, time.Second+timingMargin)
	}
}

func TestSendTruncatesOnRuneBoundary(t *testing.T) {
	t.Parallel()

	// "é" is two bytes; with a cap of 10 its first byte is the 10th.
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Long", strings.Repeat("v", 200))
		io.WriteString(w, "123456789é and more")
	})
	cfg := loopbackConfig()
	cfg.MaxResponseBody = 10
	c := newTestClient(t, cfg)

	out := c.Send(context.Background(), Request{URL: rcv.URL})

	if out.Result != Success {
		t.Errorf("Result = %s (%s), want SUCCESS", out.Result, out.Error)
	}
	wantBody := "123456789\n…[truncated by rehook: body exceeded 10 bytes]"
	if out.ResponseBody != wantBody {
		t.Errorf("ResponseBody = %q, want %q", out.ResponseBody, wantBody)
	}
	marker := "\n…[truncated by rehook: headers exceeded 10 bytes]"
	if !strings.HasSuffix(out.ResponseHeaders, marker) ||
		len(out.ResponseHeaders) > 10+len(marker) {
		t.Errorf("ResponseHeaders = %q, want at most 10 bytes and the marker", out.ResponseHeaders)
	}
}

func TestSendRecordsBinaryBodyAsText(t *testing.T) {
	t.Parallel()

	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\x00\xff\xfe!"))
	})
	c := newTestClient(t, loopbackConfig())

	out := c.Send(context.Background(), Request{URL: rcv.URL})

	if want := "ok\uFFFD\uFFFD!"; out.ResponseBody != want {
		t.Errorf("ResponseBody = %q, want %q", out.ResponseBody, want)
	}
}

func TestSendReusesConnections(t *testing.T) {
	t.Parallel()

	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("z"), 100<<10)) // beyond the cap, within the drain
	})
	c := newTestClient(t, loopbackConfig())

	for i := range 3 {
		out := c.Send(context.Background(), Request{URL: rcv.URL, Body: []byte("{}")})
		if out.Result != Success {
			t.Fatalf("send %d: Result = %s (%s), want SUCCESS", i, out.Result, out.Error)
		}
	}

	if got := rcv.conns.Load(); got != 1 {
		t.Errorf("receiver accepted %d connections for 3 sends, want 1", got)
	}
}

func TestSendRefusesInvalidRequests(t *testing.T) {
	t.Parallel()

	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newTestClient(t, loopbackConfig())
	base := "http://127.0.0.1:" + rcv.port()

	tests := []struct {
		name   string
		url    string
		header http.Header
		want   string
	}{
		{"empty URL", "", nil, "invalid URL: no scheme (only http and https are allowed)"},
		{"ftp", "ftp://127.0.0.1/", nil,
			`unsupported URL scheme "ftp" (only http and https are allowed)`},
		{"file", "file:///etc/passwd", nil,
			`unsupported URL scheme "file" (only http and https are allowed)`},
		{"gopher", "gopher://127.0.0.1:" + rcv.port() + "/", nil,
			`unsupported URL scheme "gopher" (only http and https are allowed)`},
		{"no host", "http:///hook", nil, "invalid URL: no host"},
		{"unclosed bracket", "http://[::1/", nil, "invalid URL: missing ']' in host"},
		{"no scheme", "127.0.0.1:" + rcv.port() + "/hook", nil,
			"invalid URL: first path segment in URL cannot contain colon"},
		{"IPv4 part above 255", "http://127.0.0.256/", nil,
			`invalid URL host: invalid IPv4 address "127.0.0.256": part "256" is above 255`},
		{"bad octal", "http://08.1/", nil,
			`invalid URL host: invalid IPv4 address "08.1": part "08" is not a number`},
		{"header value with newline", base, http.Header{"X-Secret": {"a\r\nInjected: 1"}},
			"invalid value for request header X-Secret: control characters are not allowed"},
		{"header name with space", base, http.Header{"Bad Name": {"v"}},
			`invalid request header name "Bad Name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := c.Send(context.Background(), Request{URL: tt.url, Header: tt.header})

			if out.Result != FatalError || out.Error != tt.want {
				t.Errorf("got %s %q, want FATAL_ERROR %q", out.Result, out.Error, tt.want)
			}
		})
	}

	rcv.assertNoConnection(t)
}

func TestSendTLS(t *testing.T) {
	t.Parallel()

	tlsRcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure")
	}))
	t.Cleanup(tlsRcv.Close)
	plainRcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newTestClient(t, loopbackConfig())

	tests := []struct {
		name       string
		url        string
		insecure   bool
		want       Result
		wantPrefix string
	}{
		{"untrusted certificate", tlsRcv.URL, false, FatalError,
			"TLS certificate rejected: x509: certificate signed by unknown authority"},
		{"insecure skips verification", tlsRcv.URL, true, Success, ""},
		{"verification back after insecure", tlsRcv.URL, false, FatalError,
			"TLS certificate rejected: x509: certificate signed by unknown authority"},
		{"https to plain http", "https://" + plainRcv.Listener.Addr().String(), false,
			FatalError, "receiver answered plain HTTP to HTTPS (is the URL scheme right?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := c.Send(context.Background(), Request{URL: tt.url, Insecure: tt.insecure})

			if out.Result != tt.want || !strings.HasPrefix(out.Error, tt.wantPrefix) {
				t.Errorf("got %s %q, want %s %q...", out.Result, out.Error, tt.want, tt.wantPrefix)
			}
			if tt.want == Success && out.ResponseBody != "secure" {
				t.Errorf("ResponseBody = %q, want %q", out.ResponseBody, "secure")
			}
		})
	}
}

func TestSendIgnoresEnvironmentProxy(t *testing.T) {
	t.Parallel()

	c := newTestClient(t, loopbackConfig())

	for name, hc := range map[string]*http.Client{"secure": c.secure, "insecure": c.insecure} {
		if hc.Transport.(*http.Transport).Proxy != nil {
			t.Errorf("%s transport has a Proxy function, want none", name)
		}
	}
}

func TestSendThroughProxy(t *testing.T) {
	t.Parallel()

	// The proxy answers every request itself: the target is never dialed.
	proxied := make(chan string, 1)
	proxy := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		proxied <- r.RequestURI
		io.WriteString(w, "via proxy")
	})
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("target allowed", func(t *testing.T) {
		cfg := loopbackConfig()
		cfg.Proxy = proxyURL
		c := newTestClient(t, cfg)

		out := c.Send(context.Background(), Request{URL: "http://127.0.0.1:9/hook"})

		if out.Result != Success || out.ResponseBody != "via proxy" {
			t.Fatalf("got %s %q %q, want SUCCESS via proxy",
				out.Result, out.Error, out.ResponseBody)
		}
		if uri := <-proxied; uri != "http://127.0.0.1:9/hook" {
			t.Errorf("proxy got request URI %q, want http://127.0.0.1:9/hook", uri)
		}
	})

	t.Run("target refused before the proxy", func(t *testing.T) {
		resolver, _ := stubResolver(func(int64) netip.Addr {
			return netip.MustParseAddr("127.0.0.1")
		})
		c := newTestClient(t, Config{Proxy: proxyURL, Resolver: resolver, Timeout: 5 * time.Second})

		for _, target := range []string{"http://127.0.0.1:9/hook", "http://rebind.test:9/hook"} {
			out := c.Send(context.Background(), Request{URL: target})

			if out.Result != FatalError || !strings.Contains(out.Error, "is loopback") {
				t.Errorf("%s: got %s %q, want FATAL_ERROR loopback", target, out.Result, out.Error)
			}
		}
		select {
		case uri := <-proxied:
			t.Errorf("proxy got %q, want nothing", uri)
		default:
		}
	})

	t.Run("proxy address exempt from the guard", func(t *testing.T) {
		other := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		c := newTestClient(t, Config{Proxy: proxyURL})
		dial := c.secure.Transport.(*http.Transport).DialContext

		conn, err := dial(context.Background(), "tcp", proxy.Listener.Addr().String())
		if err != nil {
			t.Fatalf("dialing the proxy: %v", err)
		}
		conn.Close()

		_, err = dial(context.Background(), "tcp", other.Listener.Addr().String())
		if !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("dialing another loopback address: err = %v, want ErrBlockedAddress", err)
		}
	})
}
