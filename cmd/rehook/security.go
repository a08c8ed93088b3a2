package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"

	"github.com/rehook/rehook/store/sealed"
)

// checkSecurity validates the settings of the proxy, the encryption keys
// and the limits. Errors never quote a key.
func (c config) checkSecurity() error {
	if _, err := c.proxyURL(); err != nil {
		return err
	}
	if _, err := c.keyring(); err != nil {
		return err
	}

	switch {
	case math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) || c.RateLimit < 0:
		return fmt.Errorf("REHOOK_RATE_LIMIT=%v: must be a number of requests per second, "+
			"0 or more", c.RateLimit)
	case c.RateBurst < 1:
		return fmt.Errorf("REHOOK_RATE_BURST=%d: must be at least 1", c.RateBurst)
	case c.MaxPendingPerWebhook < 0:
		return fmt.Errorf("REHOOK_MAX_PENDING_PER_WEBHOOK=%d: must be 0 or more",
			c.MaxPendingPerWebhook)
	}
	return nil
}

// proxyURL is REHOOK_DELIVERY_PROXY parsed; nil when it is not set.
func (c config) proxyURL() (*url.URL, error) {
	if c.DeliveryProxy == "" {
		return nil, nil
	}

	u, err := url.Parse(c.DeliveryProxy)
	if err != nil {
		return nil, errors.New("REHOOK_DELIVERY_PROXY: not a URL")
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("REHOOK_DELIVERY_PROXY=%s: the scheme must be http, https or "+
			"socks5", u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("REHOOK_DELIVERY_PROXY=%s: no host", u.Redacted())
	}
	return u, nil
}

// keyring is REHOOK_ENCRYPTION_KEY and REHOOK_ENCRYPTION_OLD_KEYS as a
// keyring: without a key it stores secrets in the clear.
func (c config) keyring() (*sealed.Keyring, error) {
	var older []string
	if c.EncryptionOldKeys != "" {
		older = strings.Split(c.EncryptionOldKeys, ",")
	}

	keys, err := sealed.NewKeyring(c.EncryptionKey, older)
	if err != nil {
		name := "REHOOK_ENCRYPTION_KEY"
		if c.EncryptionKey == "" || strings.HasPrefix(err.Error(), "older key") {
			name = "REHOOK_ENCRYPTION_OLD_KEYS"
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return keys, nil
}

// secretKeyring is the keyring a serving process seals webhook secrets
// with. Without REHOOK_ENCRYPTION_KEY it refuses to run unless
// REHOOK_ALLOW_PLAINTEXT_SECRETS is true (the default of rehook dev).
func (c config) secretKeyring() (*sealed.Keyring, error) {
	keys, err := c.keyring()
	if err != nil {
		return nil, err
	}
	if !keys.Encrypts() && !c.AllowPlaintextSecrets {
		return nil, errors.New("REHOOK_ENCRYPTION_KEY is not set: webhook secrets would be " +
			"stored unencrypted; set it to 32 random bytes in base64 " +
			"(head -c 32 /dev/urandom | base64), or set REHOOK_ALLOW_PLAINTEXT_SECRETS=true " +
			"to store them in the clear")
	}
	return keys, nil
}

// secretsNote says, for the dev banner, how webhook secrets are stored.
func (c config) secretsNote() string {
	keys, err := c.keyring()
	if err != nil || !keys.Encrypts() {
		return "webhook secrets are stored unencrypted (dev; set REHOOK_ENCRYPTION_KEY to " +
			"encrypt them)"
	}
	return "webhook secrets are encrypted at rest (key id " + keys.CurrentID() + ")"
}

// runRotateSecrets is `rehook rotate-secrets`: it seals every stored
// webhook secret under REHOOK_ENCRYPTION_KEY, opening those sealed under an
// older key with REHOOK_ENCRYPTION_OLD_KEYS.
func runRotateSecrets(ctx context.Context, args []string, stdout, stderr io.Writer,
	env func(string) string) error {
	fs := flag.NewFlagSet("rotate-secrets", flag.ContinueOnError)
	if done, err := parseFlags(fs, "rotate-secrets", args, stdout, stderr); done {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("rehook rotate-secrets takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(env, "rotate-secrets")
	if err != nil {
		return err
	}
	keys, err := cfg.keyring()
	if err != nil {
		return err
	}
	if !keys.Encrypts() {
		return errors.New("rotate-secrets needs REHOOK_ENCRYPTION_KEY, the key to encrypt with")
	}

	s, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := sealed.Rotate(ctx, s, keys)
	fmt.Fprintf(stdout, "webhook secrets: %d checked, %d encrypted with key %s, "+
		"%d changed meanwhile (left as written), %d not decryptable\n",
		res.Checked, res.Resealed, keys.CurrentID(), res.Changed, res.Failed)
	if err != nil {
		return fmt.Errorf("rotate secrets: %w", err)
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d secrets could not be decrypted with REHOOK_ENCRYPTION_KEY or "+
			"REHOOK_ENCRYPTION_OLD_KEYS (webhook ids %v); add the key that encrypted them",
			res.Failed, res.FailedIDs)
	}
	return nil
}
