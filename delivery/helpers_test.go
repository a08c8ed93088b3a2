package delivery

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// probePath is answered by every test receiver without counting it as a
// delivery; see receiver.assertNoConnection.
const probePath = "/__probe"

// receiver is an httptest server on a loopback address that counts the
// connections it accepted and the deliveries it handled.
type receiver struct {
	*httptest.Server
	conns      atomic.Int64
	deliveries atomic.Int64
}

// newReceiver starts a receiver on 127.0.0.1 serving handler.
func newReceiver(t *testing.T, handler http.HandlerFunc) *receiver {
	t.Helper()
	return newReceiverOn(t, "tcp4", "127.0.0.1:0", handler)
}

// newReceiverOn starts a receiver listening on a loopback address.
func newReceiverOn(t *testing.T, network, addr string, handler http.HandlerFunc) *receiver {
	t.Helper()

	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}

	r := &receiver{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(
		func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == probePath {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			r.deliveries.Add(1)
			handler(w, req)
		}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	r.Server = srv
	return r
}

// port is the receiver's port as a string.
func (r *receiver) port() string {
	_, port, _ := net.SplitHostPort(r.Listener.Addr().String())
	return port
}

// assertNoConnection checks that nothing connected to r before now: it
// makes one probe request on a fresh connection and expects it to be the
// only connection ever accepted. The server marks a connection new in its
// accept loop, in accept order, before serving it, so a connection made
// earlier would have been counted by the time the probe is answered.
func (r *receiver) assertNoConnection(t *testing.T) {
	t.Helper()

	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := probe.Get(r.URL + probePath)
	if err != nil {
		t.Fatalf("probe request: %v", err)
	}
	resp.Body.Close()

	if got := r.conns.Load(); got != 1 {
		t.Errorf("receiver accepted %d connections besides the probe, want 0", got-1)
	}
	if got := r.deliveries.Load(); got != 0 {
		t.Errorf("receiver handled %d deliveries, want 0", got)
	}
}

// newTestClient returns a client for cfg whose idle connections are closed
// when the test ends. Unless cfg names a resolver, host names resolve
// through a stub that answers 127.0.0.1, so no test ever queries the
// system's DNS servers.
func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Resolver == nil {
		cfg.Resolver, _ = stubResolver(func(int64) netip.Addr {
			return netip.MustParseAddr("127.0.0.1")
		})
	}
	c := NewClient(cfg)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// loopbackConfig allows the loopback receivers tests send to.
func loopbackConfig() Config {
	return Config{AllowLoopback: true, Timeout: 5 * time.Second}
}

// stubResolver is a resolver whose DNS server lives in the test process:
// each query travels over an in-memory pipe, and every A or AAAA query for
// any name is answered with answer(n), n counting queries from 1 (an
// address of the other family means no records, the zero Addr means no
// such name). No packet leaves the process.
func stubResolver(answer func(n int64) netip.Addr) (*net.Resolver, *atomic.Int64) {
	queries := &atomic.Int64{}
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go serveDNSQuery(server, func() netip.Addr { return answer(queries.Add(1)) })
			return client, nil
		},
	}
	return resolver, queries
}

// serveDNSQuery answers one DNS query in TCP framing (net.Pipe is not a
// PacketConn, so the resolver uses TCP framing on it).
func serveDNSQuery(conn net.Conn, answer func() netip.Addr) {
	defer conn.Close()

	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return
	}
	query := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, query); err != nil || len(query) < 12 {
		return
	}

	end := 12
	for end < len(query) && query[end] != 0 {
		end += int(query[end]) + 1
	}
	end += 5 // the root label, qtype, qclass
	if end > len(query) {
		return
	}
	qtype := binary.BigEndian.Uint16(query[end-4:])

	addr := answer()
	rdata := []byte(nil)
	if qtype == 1 && addr.Is4() || qtype == 28 && addr.Is6() {
		rdata = addr.AsSlice()
	}

	flags := []byte{0x85, 0x80} // response, authoritative, recursion
	if !addr.IsValid() {
		flags[1] |= 3 // no such name
	}
	msg := append([]byte{}, query[:2]...) // id
	msg = append(msg, flags...)
	msg = binary.BigEndian.AppendUint16(msg, 1)
	msg = binary.BigEndian.AppendUint16(msg, uint16(min(len(rdata), 1)))
	msg = append(msg, 0, 0, 0, 0)       // no authority, no additional
	msg = append(msg, query[12:end]...) // the question
	if rdata != nil {
		msg = append(msg, 0xc0, 12) // name: pointer to the question
		msg = binary.BigEndian.AppendUint16(msg, qtype)
		msg = binary.BigEndian.AppendUint16(msg, 1) // class IN
		msg = append(msg, 0, 0, 0, 1)               // TTL 1s
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(rdata)))
		msg = append(msg, rdata...)
	}

	_, _ = conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(msg))))
	_, _ = conn.Write(msg)
}
