package webhookverify

import (
	"net/http"
	"testing"
	"time"
)

// The test vector published with the Standard Webhooks reference libraries.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = "1614265330"
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardVector(t *testing.T) {
	at := time.Unix(1614265330, 0)
	for _, tc := range []struct {
		name      string
		signature string
		body      string
		now       time.Time
		ok        bool
	}{
		{"vector", vectorSignature, vectorBody, at, true},
		{"among other signatures", "v1,bm9wZQ== " + vectorSignature, vectorBody, at, true},
		{"within tolerance", vectorSignature, vectorBody, at.Add(4 * time.Minute), true},
		{"too old", vectorSignature, vectorBody, at.Add(6 * time.Minute), false},
		{"from the future", vectorSignature, vectorBody, at.Add(-6 * time.Minute), false},
		{"body changed by a space", vectorSignature, `{"test":2432232314}`, at, false},
		{"other version", "v1a," + vectorSignature[3:], vectorBody, at, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("webhook-id", vectorID)
			h.Set("webhook-timestamp", vectorTimestamp)
			h.Set("webhook-signature", tc.signature)
			id, _, err := Standard(vectorSecret, h, []byte(tc.body), tc.now)
			if got := err == nil; got != tc.ok {
				t.Fatalf("verified: got %v (%v), want %v", got, err, tc.ok)
			}
			if tc.ok && id != vectorID {
				t.Errorf("id: got %q, want %q", id, vectorID)
			}
		})
	}
}
