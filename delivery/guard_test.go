package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// Addresses outside loopback appear here only as values handed to CheckIP
// or to the dial hook; nothing in these tests connects to them.

func TestCheckIP(t *testing.T) {
	t.Parallel()

	none := Config{}
	loopbackOK := Config{AllowLoopback: true}
	privateOK := Config{AllowPrivate: true}
	linkLocalOK := Config{AllowLinkLocal: true}
	allOK := Config{AllowLoopback: true, AllowPrivate: true, AllowLinkLocal: true}

	tests := []struct {
		addr string
		cfg  Config
		want string // "" when allowed
	}{
		// Public addresses.
		{"8.8.8.8", none, ""},
		{"1.1.1.1", none, ""},
		{"172.32.0.1", none, ""},
		{"100.128.0.1", none, ""},
		{"2606:4700:4700::1111", none, ""},
		{"::ffff:8.8.8.8", none, ""},
		{"2002:808:808::1", none, ""},

		// Loopback.
		{"127.0.0.1", none, "address 127.0.0.1 is loopback"},
		{"127.255.255.254", none, "address 127.255.255.254 is loopback"},
		{"::1", none, "address ::1 is loopback"},
		{"127.0.0.1", loopbackOK, ""},
		{"::1", loopbackOK, ""},
		{"127.0.0.1", privateOK, "address 127.0.0.1 is loopback"},

		// Private.
		{"10.0.0.1", none, "address 10.0.0.1 is private"},
		{"172.16.5.4", none, "address 172.16.5.4 is private"},
		{"192.168.1.1", none, "address 192.168.1.1 is private"},
		{"fc00::1", none, "address fc00::1 is private (unique local)"},
		{"fd00:ec2::254", none, "address fd00:ec2::254 is private (unique local)"},
		{"10.0.0.1", loopbackOK, "address 10.0.0.1 is private"},
		{"10.0.0.1", privateOK, ""},
		{"fc00::1", privateOK, ""},

		// Link-local, cloud metadata included.
		{"169.254.169.254", none, "address 169.254.169.254 is link-local"},
		{"fe80::1", none, "address fe80::1 is link-local"},
		{"fe80::1%eth0", none, "address fe80::1%eth0 is link-local"},
		{"169.254.169.254", privateOK, "address 169.254.169.254 is link-local"},
		{"169.254.169.254", linkLocalOK, ""},
		{"fe80::1", linkLocalOK, ""},

		// IPv6 forms judged as their IPv4 address.
		{"::ffff:127.0.0.1", none, "address ::ffff:127.0.0.1 (IPv4 127.0.0.1) is loopback"},
		{"::ffff:127.0.0.1", loopbackOK, ""},
		{"::ffff:10.0.0.1", none, "address ::ffff:10.0.0.1 (IPv4 10.0.0.1) is private"},
		{"::ffff:169.254.169.254", none,
			"address ::ffff:169.254.169.254 (IPv4 169.254.169.254) is link-local"},
		{"::127.0.0.1", none, "address ::7f00:1 (IPv4 127.0.0.1) is loopback"},
		{"::10.0.0.1", none, "address ::a00:1 (IPv4 10.0.0.1) is private"},
		{"::ffff:0:7f00:1", none, "address ::ffff:0:7f00:1 (IPv4 127.0.0.1) is loopback"},

		// Always refused, whatever the configuration.
		{"0.0.0.0", allOK, "address 0.0.0.0 is unspecified"},
		{"0.1.2.3", allOK, `address 0.1.2.3 is in 0.0.0.0/8 ("this network")`},
		{"::", allOK, "address :: is unspecified"},
		{"224.0.0.1", allOK, "address 224.0.0.1 is multicast"},
		{"ff02::1", allOK, "address ff02::1 is multicast"},
		{"255.255.255.255", allOK, "address 255.255.255.255 is broadcast"},
		{"240.0.0.1", allOK, "address 240.0.0.1 is reserved (240.0.0.0/4)"},
		{"100.64.0.1", allOK, "address 100.64.0.1 is carrier-grade NAT (100.64.0.0/10)"},
		{"100.127.255.255", allOK,
			"address 100.127.255.255 is carrier-grade NAT (100.64.0.0/10)"},
		{"64:ff9b::808:808", allOK, "address 64:ff9b::808:808 is NAT64 (64:ff9b::/96)"},
		{"64:ff9b::7f00:1", allOK, "address 64:ff9b::7f00:1 is NAT64 (64:ff9b::/96)"},
		{"64:ff9b:1::a00:1", allOK,
			"address 64:ff9b:1::a00:1 is local-use NAT64 (64:ff9b:1::/48)"},
		{"192.0.0.170", allOK, "address 192.0.0.170 is reserved for IETF protocol assignments"},
		{"192.0.2.1", allOK, "address 192.0.2.1 is reserved for documentation"},
		{"198.51.100.1", allOK, "address 198.51.100.1 is reserved for documentation"},
		{"203.0.113.1", allOK, "address 203.0.113.1 is reserved for documentation"},
		{"2001:db8::1", allOK, "address 2001:db8::1 is reserved for documentation"},
		{"198.18.0.1", allOK, "address 198.18.0.1 is reserved for benchmarking"},
		{"2001::1", allOK, "address 2001::1 is Teredo (2001::/32)"},
		{"100::1", allOK, "address 100::1 is discard-only (100::/64)"},
		{"fec0::1", allOK, "address fec0::1 is outside the global unicast space 2000::/3"},
		{"::ffff:0.0.0.0", allOK, "address ::ffff:0.0.0.0 (IPv4 0.0.0.0) is unspecified"},
		{"2002:7f00:1::1", allOK,
			"address 2002:7f00:1::1 is 6to4 embedding 127.0.0.1, which is refused"},
	}
	for _, tt := range tests {
		err := CheckIP(netip.MustParseAddr(tt.addr), tt.cfg)

		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrBlockedAddress) {
				t.Errorf("CheckIP(%s, %+v) = %v, does not match ErrBlockedAddress",
					tt.addr, tt.cfg, err)
			}
		}
		if got != tt.want {
			t.Errorf("CheckIP(%s, %+v) = %q, want %q", tt.addr, tt.cfg, got, tt.want)
		}
	}

	if err := CheckIP(netip.Addr{}, allOK); err == nil {
		t.Errorf("CheckIP(zero Addr) = nil, want an error")
	}
}

func TestParseHostIP(t *testing.T) {
	t.Parallel()

	tests := []struct {
		host    string
		want    string // "" for a host name
		wantErr string
	}{
		{"127.0.0.1", "127.0.0.1", ""},
		{"2130706433", "127.0.0.1", ""},
		{"0177.0.0.1", "127.0.0.1", ""},
		{"0x7f.1", "127.0.0.1", ""},
		{"0X7F.0.0.1", "127.0.0.1", ""},
		{"127.1", "127.0.0.1", ""},
		{"127.0.1", "127.0.0.1", ""},
		{"0x7f000001", "127.0.0.1", ""},
		{"017700000001", "127.0.0.1", ""},
		{"00000177.0x0.0.1", "127.0.0.1", ""},
		{"127.0.0.1.", "127.0.0.1", ""},
		{"0", "0.0.0.0", ""},
		{"0x", "0.0.0.0", ""},
		{"10.0x0.0.01", "10.0.0.1", ""},
		{"169.254.43518", "169.254.169.254", ""},
		{"0xa9fea9fe", "169.254.169.254", ""},
		{"3232235777", "192.168.1.1", ""},
		{"4294967295", "255.255.255.255", ""},
		{"::1", "::1", ""},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1", ""},
		{"fe80::1%eth0", "fe80::1%eth0", ""},

		{"example.com", "", ""},
		{"localhost", "", ""},
		{"1e3", "", ""},
		{"0x1g", "", ""},
		{"rebind.test.", "", ""},

		{"4294967296", "", `part "4294967296" is above 4294967295`},
		{"1.2.65536", "", `part "65536" is above 65535`},
		{"1.2.3.256", "", `part "256" is above 255`},
		{"256.1", "", `part "256" is above 255`},
		{"1.2.3.4.5", "", "more than four parts"},
		{"08", "", `part "08" is not a number`},
		{"1..1", "", "empty part"},
		{"a.1", "", `part "a" is not a number`},
		{"99999999999999999999999", "", `part "99999999999999999999999" is out of range`},
		{":::", "", `invalid IPv6 address ":::"`},
	}
	for _, tt := range tests {
		ip, ok, err := parseHostIP(tt.host)

		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if tt.wantErr != "" && !strings.HasSuffix(gotErr, tt.wantErr) ||
			tt.wantErr == "" && err != nil {
			t.Errorf("parseHostIP(%q) error = %q, want %q", tt.host, gotErr, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}

		got := ""
		if ok {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("parseHostIP(%q) = %q (ok %v), want %q", tt.host, got, ok, tt.want)
		}
	}
}

// TestGuardControl calls the dial hook as the dialer does, with the address
// it is about to connect to after DNS; nothing is dialed.
func TestGuardControl(t *testing.T) {
	t.Parallel()

	c := NewClient(Config{})

	tests := []struct {
		network, address string
		want             string
	}{
		{"tcp4", "169.254.169.254:80", "address 169.254.169.254 is link-local"},
		{"tcp4", "10.0.0.1:443", "address 10.0.0.1 is private"},
		{"tcp4", "100.64.0.1:443", "address 100.64.0.1 is carrier-grade NAT (100.64.0.0/10)"},
		{"tcp4", "127.0.0.1:8080", "address 127.0.0.1 is loopback"},
		{"tcp6", "[::ffff:10.0.0.1]:443", "address ::ffff:10.0.0.1 (IPv4 10.0.0.1) is private"},
		{"tcp6", "[fe80::1%eth0]:80", "address fe80::1%eth0 is link-local"},
		{"tcp6", "[64:ff9b::a9fe:a9fe]:80", "address 64:ff9b::a9fe:a9fe is NAT64 (64:ff9b::/96)"},
		{"tcp4", "8.8.8.8:443", ""},
		{"tcp6", "[2606:4700:4700::1111]:443", ""},
		{"tcp4", "not-an-address", `cannot check dial address "not-an-address": address blocked`},
	}
	for _, tt := range tests {
		err := c.guardControl(context.Background(), tt.network, tt.address, nil)

		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("guardControl(%s, %s) = %q, want %q", tt.network, tt.address, got, tt.want)
		}
	}
}

func TestSendLoopbackSpellings(t *testing.T) {
	t.Parallel()

	ok := func(w http.ResponseWriter, r *http.Request) {}

	tests := []struct {
		host     string // as written in the URL, without the port
		ipv6     bool   // the receiver listens on [::1] instead of 127.0.0.1
		wantAddr string // in the refusal
	}{
		{"127.0.0.1", false, "address 127.0.0.1 is loopback"},
		{"[::ffff:127.0.0.1]", false, "address 127.0.0.1 is loopback"},
		{"2130706433", false, "address 127.0.0.1 is loopback"},
		{"0x7f.1", false, "address 127.0.0.1 is loopback"},
		{"127.1", false, "address 127.0.0.1 is loopback"},
		{"0177.0.0.1", false, "address 127.0.0.1 is loopback"},
		{"localhost", false, "is loopback"},
		{"[::1]", true, "address ::1 is loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()

			newRcv := func() *receiver {
				if tt.ipv6 {
					return newReceiverOn(t, "tcp6", "[::1]:0", ok)
				}
				return newReceiver(t, ok)
			}

			resolver, queries := stubResolver(func(int64) netip.Addr {
				return netip.MustParseAddr("127.0.0.1")
			})
			t.Cleanup(func() {
				if tt.host != "localhost" && queries.Load() != 0 {
					t.Errorf("%d DNS queries for an IP host, want none", queries.Load())
				}
			})

			t.Run("refused", func(t *testing.T) {
				rcv := newRcv()
				c := newTestClient(t, Config{Resolver: resolver})

				out := c.Send(context.Background(), Request{
					URL: "http://" + tt.host + ":" + rcv.port() + "/hook",
				})

				hostName := strings.Trim(tt.host, "[]")
				if out.Result != FatalError ||
					!strings.HasPrefix(out.Error, "refusing to connect to "+hostName+": ") ||
					!strings.Contains(out.Error, tt.wantAddr) {
					t.Errorf("got %s %q, want FATAL_ERROR refusing %s: %s",
						out.Result, out.Error, hostName, tt.wantAddr)
				}
				rcv.assertNoConnection(t)
			})

			t.Run("allowed", func(t *testing.T) {
				rcv := newRcv()
				cfg := loopbackConfig()
				cfg.Resolver = resolver
				c := newTestClient(t, cfg)

				out := c.Send(context.Background(), Request{
					URL: "http://" + tt.host + ":" + rcv.port() + "/hook",
				})

				if out.Result != Success {
					t.Errorf("got %s %q, want SUCCESS", out.Result, out.Error)
				}
				if got := rcv.deliveries.Load(); got != 1 {
					t.Errorf("receiver handled %d deliveries, want 1", got)
				}
			})
		})
	}
}

// TestSendChecksResolvedAddressAtDial resolves a host name through a stub
// DNS server that answers with a loopback address, as a rebinding attacker
// would: the dial-time check refuses it unless loopback is allowed.
func TestSendChecksResolvedAddressAtDial(t *testing.T) {
	t.Parallel()

	resolver, queries := stubResolver(func(int64) netip.Addr {
		return netip.MustParseAddr("127.0.0.1")
	})

	t.Run("refused", func(t *testing.T) {
		rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		c := newTestClient(t, Config{Resolver: resolver})

		out := c.Send(context.Background(), Request{URL: "http://rebind.test:" + rcv.port()})

		want := "refusing to connect to rebind.test: address 127.0.0.1 is loopback"
		if out.Result != FatalError || out.Error != want {
			t.Errorf("got %s %q, want FATAL_ERROR %q", out.Result, out.Error, want)
		}
		if queries.Load() == 0 {
			t.Errorf("stub DNS server got no query, want the name resolved before the check")
		}
		rcv.assertNoConnection(t)
	})

	t.Run("allowed", func(t *testing.T) {
		rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		cfg := loopbackConfig()
		cfg.Resolver = resolver
		c := newTestClient(t, cfg)

		out := c.Send(context.Background(), Request{URL: "http://rebind.test:" + rcv.port()})

		if out.Result != Success || rcv.deliveries.Load() != 1 {
			t.Errorf("got %s %q and %d deliveries, want SUCCESS and 1",
				out.Result, out.Error, rcv.deliveries.Load())
		}
	})

	t.Run("DNS server unreachable", func(t *testing.T) {
		down := &net.Resolver{
			PreferGo: true,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("stub DNS server down")
			},
		}
		c := newTestClient(t, Config{Resolver: down})

		out := c.Send(context.Background(), Request{URL: "http://flaky.test:9/"})

		if out.Result != RetriableError ||
			!strings.HasPrefix(out.Error, "DNS lookup of flaky.test failed: ") {
			t.Errorf("got %s %q, want RETRIABLE_ERROR DNS lookup failed", out.Result, out.Error)
		}
	})

	t.Run("unknown host", func(t *testing.T) {
		nx, _ := stubResolver(func(int64) netip.Addr { return netip.Addr{} })
		c := newTestClient(t, Config{Resolver: nx})

		out := c.Send(context.Background(), Request{URL: "http://missing.test:9/"})

		want := "DNS lookup of missing.test failed: no such host"
		if out.Result != FatalError || out.Error != want {
			t.Errorf("got %s %q, want FATAL_ERROR %q", out.Result, out.Error, want)
		}
	})
}
