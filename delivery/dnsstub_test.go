package delivery

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
)

// loopbackDNS starts a DNS server on 127.0.0.1 (TCP) that answers every
// query with answer, and returns a resolver that asks it alone.
func loopbackDNS(t *testing.T, answer netip.Addr) (*net.Resolver, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1: %v", err)
	}
	t.Cleanup(func() { l.Close() })

	queries := &atomic.Int64{}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveDNSQuery(conn, func() netip.Addr {
				queries.Add(1)
				return answer
			})
		}
	}()

	var d net.Dialer
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", l.Addr().String())
		},
	}
	return resolver, queries
}

// TestSendRefusesNameResolvedByLoopbackDNS resolves a host name through a
// DNS server listening on 127.0.0.1 that answers with the receiver's
// loopback address: with loopback refused, the delivery is FATAL_ERROR
// naming the address, and the receiver sees no connection.
func TestSendRefusesNameResolvedByLoopbackDNS(t *testing.T) {
	t.Parallel()
	resolver, queries := loopbackDNS(t, netip.MustParseAddr("127.0.0.1"))
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})

	c := newTestClient(t, Config{Resolver: resolver})
	out := c.Send(context.Background(), Request{URL: "http://internal.test:" + rcv.port()})

	want := "refusing to connect to internal.test: address 127.0.0.1 is loopback"
	if out.Result != FatalError || out.Error != want {
		t.Errorf("got %s %q, want FATAL_ERROR %q", out.Result, out.Error, want)
	}
	if queries.Load() == 0 {
		t.Errorf("the DNS server on 127.0.0.1 got no query")
	}
	rcv.assertNoConnection(t)

	allowed := loopbackConfig()
	allowed.Resolver = resolver
	out = newTestClient(t, allowed).Send(context.Background(),
		Request{URL: "http://internal.test:" + rcv.port()})
	if out.Result != Success {
		t.Errorf("with loopback allowed: got %s %q, want SUCCESS", out.Result, out.Error)
	}
}
