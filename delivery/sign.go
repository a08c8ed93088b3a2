package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Signature headers. Header names are case-insensitive on the wire; Go
// writes them in canonical form (Webhook-Id).
const (
	// HarnessSignatureHeader is the hex HMAC-SHA256 of the body, as Harness
	// sends it.
	HarnessSignatureHeader = "X-Harness-Signature"
	// The Standard Webhooks headers: the delivery's id, the Unix time of
	// the attempt in seconds, and "v1," followed by the base64 HMAC-SHA256
	// of "id.timestamp.body".
	WebhookIDHeader        = "Webhook-Id"
	WebhookTimestampHeader = "Webhook-Timestamp"
	WebhookSignatureHeader = "Webhook-Signature"
)

// Sign sets the signature headers of one attempt on h: X-Harness-Signature,
// and, when messageID is not empty, webhook-id, webhook-timestamp (at, in
// Unix seconds) and webhook-signature. Both signatures are HMAC-SHA256 with
// key over the exact body bytes sent. A receiver that knows the secret in
// its Standard Webhooks form, "whsec_" followed by the base64 of key, can
// check the second with any Standard Webhooks library.
func Sign(h http.Header, key []byte, messageID string, at time.Time, body []byte) {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	h.Set(HarnessSignatureHeader, hex.EncodeToString(mac.Sum(nil)))

	if messageID == "" {
		return
	}
	timestamp := strconv.FormatInt(at.Unix(), 10)
	mac = hmac.New(sha256.New, key)
	mac.Write([]byte(messageID + "." + timestamp + "."))
	mac.Write(body)
	h.Set(WebhookIDHeader, messageID)
	h.Set(WebhookTimestampHeader, timestamp)
	h.Set(WebhookSignatureHeader, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}
