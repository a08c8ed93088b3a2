package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Classify maps a response status code to a Result: 2xx is Success; 408,
// 429 and 5xx other than 501 are RetriableError; everything else (1xx,
// 3xx, other 4xx, 501, codes outside 100-599) is FatalError.
func Classify(statusCode int) Result {
	switch {
	case statusCode >= 200 && statusCode <= 299:
		return Success
	case statusCode == 408, statusCode == 429:
		return RetriableError
	case statusCode == 501:
		return FatalError
	case statusCode >= 500 && statusCode <= 599:
		return RetriableError
	default:
		return FatalError
	}
}

// phase is how far an attempt got, for error messages.
type phase int

const (
	phaseStart phase = iota
	phaseResolving
	phaseConnecting
	phaseTLS
	phaseSending
	phaseWaiting
	phaseHeaders
	phaseBody
)

// where describes p with the address it concerns.
func (p phase) where(addr string) string {
	switch p {
	case phaseResolving:
		return "resolving " + addr
	case phaseConnecting:
		return "connecting to " + addr
	case phaseTLS:
		return "during TLS handshake with " + addr
	case phaseSending:
		return "sending request to " + addr
	case phaseWaiting:
		return "waiting for response headers from " + addr
	case phaseHeaders:
		return "reading response headers from " + addr
	case phaseBody:
		return "reading response body from " + addr
	default:
		return "before connecting to " + addr
	}
}

// attempt follows one attempt through the transport, so that a failure
// can say where it happened. The transport calls the trace hooks from its
// own goroutines, hence the lock.
type attempt struct {
	host    string        // URL host as written, for guard messages
	timeout time.Duration // the attempt's effective time limit

	mu    sync.Mutex
	phase phase
	addr  string // host:port (or name while resolving) the phase concerns
}

// advance moves the attempt to p, never backwards; an empty addr keeps the
// last one.
func (a *attempt) advance(p phase, addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if p < a.phase {
		return
	}
	a.phase = p
	if addr != "" {
		a.addr = addr
	}
}

func (a *attempt) snapshot() (phase, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.phase, a.addr
}

func (a *attempt) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(info httptrace.DNSStartInfo) {
			a.advance(phaseResolving, info.Host)
		},
		ConnectStart: func(_, addr string) {
			a.advance(phaseConnecting, addr)
		},
		TLSHandshakeStart: func() {
			a.advance(phaseTLS, "")
		},
		GotConn: func(info httptrace.GotConnInfo) {
			a.advance(phaseSending, info.Conn.RemoteAddr().String())
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			a.advance(phaseWaiting, "")
		},
		GotFirstResponseByte: func() {
			a.advance(phaseHeaders, "")
		},
	}
}

// describe classifies a transport error of the attempt run under ctx and
// says what happened in words for an operator, without Go's wrapping
// ("Post \"...\": ..."). The state of ctx settles timeouts and
// cancellation whatever form the error took on its way up.
func (a *attempt) describe(ctx context.Context, err error) (Result, string) {
	p, addr := a.snapshot()
	where := p.where(addr)

	var blocked *blockedError
	if errors.As(err, &blocked) {
		return FatalError, fmt.Sprintf("refusing to connect to %s: %v", a.host, blocked)
	}
	if errors.Is(err, ErrBlockedAddress) {
		return FatalError, fmt.Sprintf("refusing to connect to %s: %s", a.host, plainError(err))
	}

	timedOut := fmt.Sprintf("timeout after %s %s", a.timeout, where)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return RetriableError, timedOut
	case errors.Is(ctx.Err(), context.Canceled):
		return RetriableError, "attempt canceled " + where
	}

	// Checked before other timeouts: the resolver has time limits of its own.
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return FatalError, fmt.Sprintf("DNS lookup of %s failed: no such host", dnsErr.Name)
		}
		return RetriableError, fmt.Sprintf("DNS lookup of %s failed: %s", dnsErr.Name, dnsErr.Err)
	}

	switch {
	case isTimeout(err):
		return RetriableError, timedOut
	case errors.Is(err, context.Canceled):
		return RetriableError, "attempt canceled " + where
	}

	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED:
			return RetriableError, "connect: connection refused to " + dialAddr(err, addr)
		case syscall.ECONNRESET:
			return RetriableError, "connection reset by peer " + where
		case syscall.EPIPE:
			return RetriableError, "connection closed by peer " + where
		}
		return RetriableError, fmt.Sprintf("%v %s", errno, where)
	}

	if msg, ok := tlsFailure(err); ok {
		return FatalError, fmt.Sprintf("%s (%s)", msg, where)
	}

	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return RetriableError, "connection closed by receiver " + where
	}

	return RetriableError, fmt.Sprintf("%s (%s)", plainError(err), where)
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &netErr) && netErr.Timeout()
}

// dialAddr is the address a failed dial was for, else fallback.
func dialAddr(err error, fallback string) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Addr != nil {
		return opErr.Addr.String()
	}
	return fallback
}

// tlsFailure recognizes certificate and handshake errors, which repeating
// the attempt will not fix.
func tlsFailure(err error) (string, bool) {
	var (
		verifyErr   *tls.CertificateVerificationError
		unknownCA   x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
		echRejected *tls.ECHRejectionError
	)
	switch {
	case errors.As(err, &verifyErr):
		return "TLS certificate rejected: " + verifyErr.Err.Error(), true
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return "TLS certificate rejected: " + plainError(err), true
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "receiver answered plain HTTP to HTTPS (is the URL scheme right?)", true
	case errors.As(err, &recordErr):
		return "receiver did not answer with TLS (is the URL scheme right?)", true
	case errors.As(err, &alertErr), errors.As(err, &echRejected):
		return "TLS handshake failed: " + plainError(err), true
	}
	return "", false
}

// plainError drops the "Post \"url\": " and "net/http: " wrapping Go puts
// around transport errors; the URL may carry secrets in its query.
func plainError(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return strings.TrimPrefix(err.Error(), "net/http: ")
}
