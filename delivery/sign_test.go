package delivery

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rehook/rehook/internal/webhookverify"
)

// capture is what a receiver got: the body's bytes and the headers.
type capture struct {
	header http.Header
	body   []byte
}

// capturingReceiver answers 200 and hands each request to the test.
func capturingReceiver(t *testing.T) (*httptest.Server, chan capture) {
	t.Helper()
	got := make(chan capture, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- capture{header: r.Header.Clone(), body: body}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func receive(t *testing.T, got chan capture) capture {
	t.Helper()
	select {
	case c := <-got:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("receiver got nothing within 10s")
	}
	return capture{}
}

// TestSignMatchesStandardWebhooksVector signs the specification's published
// example and compares with its published signature.
func TestSignMatchesStandardWebhooksVector(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}

	h := http.Header{}
	Sign(h, key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0),
		[]byte(`{"test": 2432232314}`))
	want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got := h.Get("webhook-signature"); got != want {
		t.Errorf("webhook-signature: got %q, want %q", got, want)
	}
	if got := h.Get("webhook-timestamp"); got != "1614265330" {
		t.Errorf("webhook-timestamp: got %q, want 1614265330", got)
	}
}

// TestSendSignsExactBytes sends bodies whose bytes any re-encoding would
// change (spacing, key order, non-ASCII, escapes, line ends) and checks,
// with a verifier written from the specifications, that the bytes sent are
// the bytes given and the bytes signed.
func TestSendSignsExactBytes(t *testing.T) {
	key := []byte("0123456789abcdef-signing-key")
	secret := webhookverify.Secret(key)
	srv, got := capturingReceiver(t)
	c := NewClient(Config{AllowLoopback: true})

	for _, tc := range []struct{ name, body string }{
		{"odd spacing", "{ \"b\" :1,\n\t\"a\":[ 1 ,2 ]   }"},
		{"keys out of order", `{"zeta":1,"alpha":{"y":2,"x":1}}`},
		{"non-ASCII", `{"name":"café ☕","city":"Zürich","ja":"日本語","emoji":"🚀"}`},
		{"escapes kept as written", `{"a":"\u00e9\/\n","b":"é"}`},
		{"CRLF and trailing newline", "{\r\n\"a\": 1\r\n}\n"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			out := c.Send(context.Background(), Request{URL: srv.URL, Body: body,
				Header: http.Header{"Content-Type": {"application/json"}}, Secret: key,
				MessageID: "delivery-1"})
			if out.Result != Success {
				t.Fatalf("result %s: %s", out.Result, out.Error)
			}
			r := receive(t, got)

			if !bytes.Equal(r.body, body) {
				t.Fatalf("body received:\ngot  %q\nwant %q", r.body, body)
			}
			id, _, err := webhookverify.Standard(secret, r.header, r.body, time.Now())
			if err != nil || id != "delivery-1" {
				t.Errorf("Standard Webhooks signature: id %q, %v", id, err)
			}
			if err := webhookverify.Harness(secret, r.header, r.body); err != nil {
				t.Errorf("X-Harness-Signature: %v", err)
			}

			tampered := append(bytes.Clone(r.body), ' ')
			if _, _, err := webhookverify.Standard(secret, r.header, tampered,
				time.Now()); err == nil {
				t.Errorf("a body with one more byte verified")
			}

			for _, name := range []string{"X-Harness-Signature", "Webhook-Id",
				"Webhook-Timestamp", "Webhook-Signature"} {
				line := name + ": " + r.header.Get(name) + "\n"
				if !strings.Contains(out.RequestHeaders, line) {
					t.Errorf("recorded headers lack %q:\n%s", line, out.RequestHeaders)
				}
			}
			if strings.Contains(out.RequestHeaders, string(key)) ||
				strings.Contains(out.RequestHeaders, secret) {
				t.Errorf("recorded headers hold the secret:\n%s", out.RequestHeaders)
			}
		})
	}
}

// TestSendSignsEachAttemptAfresh sends one request twice, three hours apart
// by the client's clock: the id stays, the timestamp and signature are those
// of each attempt, so the later one verifies where the first has expired.
func TestSendSignsEachAttemptAfresh(t *testing.T) {
	key := []byte("0123456789abcdef")
	secret := webhookverify.Secret(key)
	srv, got := capturingReceiver(t)
	c := NewClient(Config{AllowLoopback: true})
	req := Request{URL: srv.URL, Body: []byte(`{"a":1}`), Secret: key, MessageID: "msg-7"}

	first := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	c.now = func() time.Time { return first }
	c.Send(context.Background(), req)
	early := receive(t, got)

	c.now = time.Now
	c.Send(context.Background(), req)
	late := receive(t, got)

	now := time.Now()
	if _, _, err := webhookverify.Standard(secret, early.header, early.body, now); err == nil {
		t.Errorf("an attempt signed three hours ago verified now")
	}
	if _, _, err := webhookverify.Standard(secret, early.header, early.body, first); err != nil {
		t.Errorf("the early attempt at its own time: %v", err)
	}
	id, ts, err := webhookverify.Standard(secret, late.header, late.body, now)
	if err != nil {
		t.Fatalf("the later attempt now: %v", err)
	}
	if id != "msg-7" || early.header.Get("webhook-id") != "msg-7" {
		t.Errorf("webhook-id: got %q and %q, want msg-7 both times",
			early.header.Get("webhook-id"), id)
	}
	if got := ts.Sub(first); got < 3*time.Hour-time.Second {
		t.Errorf("timestamps %s apart, want the three hours between the attempts", got)
	}
	if early.header.Get("webhook-signature") == late.header.Get("webhook-signature") {
		t.Errorf("both attempts carry the same signature")
	}
}

func TestSendSignatureHeadersOnlyWithSecret(t *testing.T) {
	srv, got := capturingReceiver(t)
	c := NewClient(Config{AllowLoopback: true})
	signed := []string{"X-Harness-Signature", "Webhook-Id", "Webhook-Timestamp",
		"Webhook-Signature"}

	for _, tc := range []struct {
		name string
		req  Request
		want []string
	}{
		{"no secret", Request{MessageID: "m"}, nil},
		{"secret without message id", Request{Secret: []byte("0123456789abcdef")},
			signed[:1]},
		{"secret and message id", Request{Secret: []byte("0123456789abcdef"),
			MessageID: "m"}, signed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.URL = srv.URL
			tc.req.Body = []byte("{}")
			c.Send(context.Background(), tc.req)
			r := receive(t, got)

			var have []string
			for _, name := range signed {
				if r.header.Get(name) != "" {
					have = append(have, name)
				}
			}
			if strings.Join(have, ",") != strings.Join(tc.want, ",") {
				t.Errorf("signature headers: got %v, want %v", have, tc.want)
			}
		})
	}
}
