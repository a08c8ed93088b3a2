// Package sealed encrypts webhook signing secrets at rest. Store wraps any
// store.Store so that every secret it writes is sealed with AES-256-GCM
// under the current key of a Keyring, and every secret it returns is
// opened again, whichever key of the ring sealed it. Rotate re-seals the
// stored secrets under the current key.
//
// A sealed secret is stored as
//
//	"rhsealed1:" KEYID ":" NONCE CIPHERTEXT
//
// where KEYID is 16 hex digits naming the key (a hash of it, not the key),
// NONCE is 12 random bytes and CIPHERTEXT is the secret encrypted with its
// 16-byte tag, the text before the nonce being authenticated with it. A
// stored secret without the prefix is plaintext, written before encryption
// was configured; it is returned as it is and sealed by the next Rotate.
package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of an encryption key in bytes (AES-256).
const KeySize = 32

// prefix starts every sealed secret; the 1 is the format's version.
const prefix = "rhsealed1:"

// Lengths of the parts of a sealed secret.
const (
	keyIDLen  = 16
	headerLen = len(prefix) + keyIDLen + 1
	nonceLen  = 12
	tagLen    = 16
)

// ErrNoKey: a stored secret is sealed, but the keyring has no key of its
// id (REHOOK_ENCRYPTION_KEY or REHOOK_ENCRYPTION_OLD_KEYS is missing it).
var ErrNoKey = errors.New("secret sealed with a key that is not configured")

// ErrCorrupt: a stored secret is sealed but does not open with the key it
// names: it was altered, or the key with that id is not the one that sealed
// it.
var ErrCorrupt = errors.New("sealed secret does not open")

// Key is one AES-256-GCM key and its id.
type Key struct {
	id   string
	aead cipher.AEAD
}

// ID names the key in sealed secrets and in logs: 16 hex digits of a hash
// of it, which tells nothing of the key.
func (k Key) ID() string { return k.id }

// ParseKey reads a 32-byte key written as 64 hex digits or as base64
// (standard or URL alphabet, padded or not), such as the output of
// `head -c 32 /dev/urandom | base64`. Errors never quote the value.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	raw, err := decodeKey(s)
	if err != nil {
		return Key{}, err
	}

	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, fmt.Errorf("encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("encryption key: %w", err)
	}
	sum := sha256.Sum256(append([]byte("rehook secret key id\x00"), raw...))
	return Key{id: hex.EncodeToString(sum[:keyIDLen/2]), aead: aead}, nil
}

func decodeKey(s string) ([]byte, error) {
	if len(s) == 2*KeySize {
		if raw, err := hex.DecodeString(s); err == nil {
			return raw, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("encryption key: decodes to %d bytes, want %d", len(raw),
				KeySize)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("encryption key: want %d bytes as %d hex digits or as base64",
		KeySize, 2*KeySize)
}

// Keyring is the current key, which seals, and older keys, which only
// open. A Keyring without a current key seals nothing: secrets are written
// as they are, and only sealed ones need a key to be read.
type Keyring struct {
	current *Key
	byID    map[string]Key
}

// NewKeyring returns the keyring of a current key and older ones, each as
// ParseKey reads it. An empty current key makes a keyring that stores
// plaintext; older keys then still open what they sealed.
func NewKeyring(current string, older []string) (*Keyring, error) {
	k := &Keyring{byID: map[string]Key{}}
	if current != "" {
		key, err := ParseKey(current)
		if err != nil {
			return nil, err
		}
		k.current = &key
		k.byID[key.id] = key
	}

	for i, s := range older {
		if strings.TrimSpace(s) == "" {
			continue
		}
		key, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("older key %d: %w", i+1, err)
		}
		if _, dup := k.byID[key.id]; !dup {
			k.byID[key.id] = key
		}
	}
	return k, nil
}

// Encrypts reports whether the keyring seals what it is given.
func (k *Keyring) Encrypts() bool { return k.current != nil }

// CurrentID is the id of the current key; empty when there is none.
func (k *Keyring) CurrentID() string {
	if k.current == nil {
		return ""
	}
	return k.current.id
}

// Seal returns the stored form of a secret: sealed under the current key,
// or the secret itself without one. An empty secret stays empty.
func (k *Keyring) Seal(secret []byte) ([]byte, error) {
	if len(secret) == 0 || k.current == nil {
		return secret, nil
	}

	header := []byte(prefix + k.current.id + ":")
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(secret)+tagLen)
	copy(out, header)
	nonce := out[headerLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	return k.current.aead.Seal(out, nonce, secret, header), nil
}

// Open returns the secret a stored form holds: decrypted when it is sealed,
// as it is when it is not.
func (k *Keyring) Open(stored []byte) ([]byte, error) {
	id, ok := SealedBy(stored)
	if !ok {
		return stored, nil
	}

	key, found := k.byID[id]
	if !found {
		return nil, fmt.Errorf("%w (key id %s)", ErrNoKey, id)
	}
	if len(stored) < headerLen+nonceLen+tagLen {
		return nil, fmt.Errorf("%w: too short", ErrCorrupt)
	}
	header, rest := stored[:headerLen], stored[headerLen:]
	secret, err := key.aead.Open(nil, rest[:nonceLen], rest[nonceLen:], header)
	if err != nil {
		return nil, fmt.Errorf("%w (key id %s)", ErrCorrupt, id)
	}
	return secret, nil
}

// SealedBy returns the id of the key that sealed a stored secret; ok is
// false when the secret is not sealed.
func SealedBy(stored []byte) (id string, ok bool) {
	if len(stored) < headerLen || !bytes.HasPrefix(stored, []byte(prefix)) ||
		stored[headerLen-1] != ':' {
		return "", false
	}
	id = string(stored[len(prefix) : headerLen-1])
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}
