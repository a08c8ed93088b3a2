// Package webhookverify checks signed deliveries the way a receiver does,
// written from the Standard Webhooks specification and the Harness signature
// header, apart from the code that signs them, so that tests of rehook's
// signing compare it against an independent reading of the spec.
package webhookverify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far a webhook-timestamp may be from the receiver's clock,
// the specification's recommended five minutes.
const Tolerance = 5 * time.Minute

// Standard checks the Standard Webhooks headers of a delivery against its
// body, with the secret in its "whsec_" form, at the receiver's time now.
// It returns the message id and the timestamp it verified.
func Standard(secret string, h http.Header, body []byte, now time.Time) (string, time.Time,
	error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", time.Time{}, err
	}

	id := h.Get("webhook-id")
	rawTS := h.Get("webhook-timestamp")
	sigs := h.Get("webhook-signature")
	if id == "" || rawTS == "" || sigs == "" {
		return "", time.Time{}, errors.New("missing webhook-id, webhook-timestamp or " +
			"webhook-signature")
	}

	secs, err := strconv.ParseInt(rawTS, 10, 64)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("webhook-timestamp %q is not an integer", rawTS)
	}
	ts := time.Unix(secs, 0)
	if d := now.Sub(ts); d > Tolerance || d < -Tolerance {
		return "", ts, fmt.Errorf("webhook-timestamp %s is %s away from now", ts, d)
	}

	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(rawTS))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)

	// The header is a space-delimited list of "version,signature"; any v1
	// entry that matches verifies the message.
	for _, entry := range strings.Fields(sigs) {
		version, encoded, found := strings.Cut(entry, ",")
		if !found || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err == nil && hmac.Equal(got, want) {
			return id, ts, nil
		}
	}
	return "", ts, errors.New("no v1 signature in webhook-signature matches")
}

// Harness checks X-Harness-Signature: the hex HMAC-SHA256 of the body with
// the secret's key.
func Harness(secret string, h http.Header, body []byte) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}

	got, err := hex.DecodeString(h.Get("X-Harness-Signature"))
	if err != nil || len(got) == 0 {
		return errors.New("X-Harness-Signature is missing or not hex")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("X-Harness-Signature does not match the body")
	}
	return nil
}

// decodeSecret reads a "whsec_" secret: base64 of the key after the prefix.
func decodeSecret(secret string) ([]byte, error) {
	encoded, found := strings.CutPrefix(secret, "whsec_")
	if !found {
		return nil, errors.New(`secret must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("secret after whsec_ is not base64: %w", err)
	}
	return key, nil
}

// Secret writes a key in the "whsec_" form a receiver is configured with.
func Secret(key []byte) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}
