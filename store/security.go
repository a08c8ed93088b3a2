package store

// WebhookSecret is a webhook's signing secret in its stored form, which
// store/sealed may have encrypted.
type WebhookSecret struct {
	WebhookID int64
	Secret    []byte
}
